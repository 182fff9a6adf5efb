"""Time every view of the catalogue: `SELECT *` read to its last row, and Datasette's page.

docs/schema.md promises that each view answers `SELECT *` in under 1 s on a catalogue
of 50,000 tracks, and Datasette (whose limit is 1 s a query, sql_time_limit_ms) shows
each view's page there. This measures both, beside the views as schema 3 has them
(as V2 of schema.py first defined them, without the index `media_album_key`), on
the same rows:

    python bench/views.py --files 50000 --runs 5 --workdir /work/benchdata/views

It makes (once) a music library of --files tracks (make_library.py) and its catalogue
(`indexer scan`, which also brings a catalogue made by older code to the current
schema), then a copy of the catalogue with schema 3's views. Each view is read in a fresh
read-only connection, `SELECT *` fetched to the last row, --runs times after one
untimed run: median [min-max] seconds. With Datasette installed (the `datasette`
extra), each view's page is fetched from `datasette serve` started as the README
says, and again with Datasette's default settings (facet suggestions on): the time,
and "limit" where a query ran out of time.
"""

from __future__ import annotations

import argparse
import importlib.util
import re
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from needs import project_venv  # noqa: E402

project_venv("bench/views.py")

import make_library  # noqa: E402
from harness import clean_env  # noqa: E402
from report import spread  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
from indexer import schema, views  # noqa: E402

METADATA = REPO / "indexer" / "datasette.yaml"
README_SETTINGS = ("--setting", "suggest_facets", "off")  # as the README starts it


def catalogue(workdir: Path, files: int, seed: int) -> Path:
    """The catalogue of the library, scanned (or rescanned: nothing changed) now."""
    root = workdir / f"music-{files}-s{seed}"
    make_library.ensure_library(root, files=files, seed=seed)
    db = workdir / f"catalogue-{files}-s{seed}" / "library.db"  # Datasette names it `library`
    indexer = Path(sys.executable).parent / "indexer"
    subprocess.run([str(indexer), "scan", str(root), "--db", str(db), "--json"], check=True,
                   env=clean_env(workdir), stdout=subprocess.DEVNULL)
    return db


def as_schema_3(db: Path) -> Path:
    """A copy of the catalogue whose views are schema 3's: V2's, and no media_album_key."""
    copy = db.parent.with_name(db.parent.name + "-schema-3-views") / db.name
    copy.parent.mkdir(exist_ok=True)
    copy.unlink(missing_ok=True)
    source = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    target = sqlite3.connect(copy, isolation_level=None)
    source.backup(target)
    for name in views.NAMES:
        target.execute(f"DROP VIEW {name}")
    target.execute("DROP INDEX media_album_key")
    for statement in re.findall(r"CREATE VIEW .*?;\n", schema.V2, re.DOTALL):
        target.execute(statement)
    source.close()
    target.close()
    return copy


def select_all(db: Path, view: str, runs: int) -> tuple[int, list[float]]:
    """(rows, seconds of each timed run) of `SELECT *` read to the last row."""
    times, rows = [], 0
    for run in range(runs + 1):
        conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
        started = time.perf_counter()
        rows = len(conn.execute(f"SELECT * FROM {view}").fetchall())
        if run:  # the first is untimed: it warms the page cache
            times.append(time.perf_counter() - started)
        conn.close()
    return rows, times


class Datasette:
    """`datasette serve` on 127.0.0.1, with the project's metadata, until closed."""

    def __init__(self, db: Path, *settings: str):
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "datasette", "serve", str(db), "--metadata", str(METADATA),
             "--host", "127.0.0.1", "--port", str(self.port), *settings],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 30
        while self.get("/-/versions.json")[0] != 200:
            if time.monotonic() > deadline or self.proc.poll() is not None:
                self.close()
                raise SystemExit("bench: datasette did not start")
            time.sleep(0.1)

    def get(self, path: str) -> tuple[int, str]:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}{path}", timeout=60) as r:
                return r.status, r.read().decode()
        except urllib.error.HTTPError as error:
            return error.code, error.read().decode()
        except OSError:
            return 0, ""

    def page(self, view: str, runs: int) -> tuple[list[float], bool]:
        """Seconds of each timed fetch of the view's page; True if a query ran out of time."""
        times, limited = [], False
        for run in range(runs + 1):
            started = time.perf_counter()
            status, body = self.get(f"/library/{view}")
            if run:
                times.append(time.perf_counter() - started)
            limited |= status != 200 or "took too long" in body
        return times, limited

    def close(self) -> None:
        self.proc.terminate()
        self.proc.wait(10)


def pages(db: Path, runs: int, settings: tuple[str, ...]) -> dict[str, str]:
    server = Datasette(db, *settings)
    try:
        cells = {}
        for view in views.NAMES:
            times, limited = server.page(view, runs)
            cells[view] = spread(times) + (" limit" if limited else "")
        return cells
    finally:
        server.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--files", type=int, default=50_000, help="tracks in the library")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--workdir", type=Path, required=True,
                        help="where the library and catalogues are kept (not in the repo)")
    args = parser.parse_args()
    args.workdir.mkdir(parents=True, exist_ok=True)
    now = catalogue(args.workdir, args.files, args.seed)
    sides = {"now": now, "schema 3": as_schema_3(now)}
    revision = subprocess.run(["git", "-C", str(REPO), "describe", "--always", "--dirty"],
                              capture_output=True, text=True).stdout.strip()
    print(f"views of {now} ({args.files:,} tracks), indexer {revision}, SQLite "
          f"{sqlite3.sqlite_version}; {args.runs} timed runs after one untimed, "
          "median [min-max] seconds")
    columns = {}
    for side, db in sides.items():
        columns[f"SELECT * {side}"] = {v: select_all(db, v, args.runs) for v in views.NAMES}
    rows = {v: columns["SELECT * now"][v][0] for v in views.NAMES}
    table = {name: {v: spread(t) for v, (_, t) in cells.items()} for name, cells in columns.items()}
    if importlib.util.find_spec("datasette"):
        for side, db in sides.items():
            table[f"page {side}"] = pages(db, args.runs, README_SETTINGS)
            table[f"page {side}, defaults"] = pages(db, args.runs, ())
    header = ["view", "rows", *table]
    lines = [[v, f"{rows[v]:,}", *(table[name][v] for name in table)] for v in views.NAMES]
    print("| " + " | ".join(header) + " |\n|" + "---|" * len(header))
    for line in lines:
        print("| " + " | ".join(line) + " |")


if __name__ == "__main__":
    main()
