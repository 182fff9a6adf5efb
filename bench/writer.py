"""Catalogue writes alone: file rows per second through the writer, against references.

    python bench/writer.py [--rows 100000] [--runs 3] [--batch 50]

Each side writes the same N file rows (paths 40 folders deep in artist/album
form, hashes, stat figures) into a fresh catalogue with the real schema (its
indexes and change-feed triggers) in a temporary folder, committing every
`--batch` rows with the catalogue's default `synchronous = full`:

  writer        indexer's Writer, fed `Hashed` results as a scan feeds it
  sqlite-utils  `Table.upsert_all(..., pk="path", batch_size=N)` inside one
                transaction per batch (its generic upsert)
  executemany   one prepared INSERT of the writer's columns, `executemany` per batch:
                the floor for Python driving SQLite with this schema
  ... no feed   the same without the trigger that appends each row's `added` change
  ... bare      the same without that trigger and without the indexes on `files`
                (dir, device+inode, hash): what the catalogue's features cost

The sides run in turn, A B C A B C, and the table gives medians [min-max] of rows/s.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from needs import project_venv  # noqa: E402

project_venv("bench/writer.py")

from indexer import schema  # noqa: E402
from indexer.catalog import connect  # noqa: E402
from indexer.records import Hashed, Seen  # noqa: E402
from indexer.writer import Writer  # noqa: E402

ROOT = "/srv/music"
_PLAIN = """INSERT INTO files (root, path, path_raw, dir, size, mtime_ns, inode, device,
    ctime_ns, hash, kind, status, first_seen, updated_at)
    VALUES (?, ?, NULL, ?, ?, ?, ?, ?, ?, ?, ?, 'present', ?, ?)"""


def results(rows: int) -> list[Hashed]:
    made = []
    for n in range(rows):
        folder = f"{ROOT}/Artist {n // 120:05d}/Album {n // 12:06d} (2001)"
        seen = Seen(ROOT, f"{folder}/{n % 12 + 1:02d} - Track {n}.flac", 8_000 + n, 10**18 + n,
                    1_000_000 + n, 64769, 10**18 + n, "audio")
        made.append(Hashed(seen, f"{n:032x}", bytes_read=seen.size))
    return made


def fresh(folder: Path, name: str):
    conn = connect(folder / f"{name}.db")
    schema.migrate(conn)
    return conn


def with_writer(folder: Path, items: list[Hashed], batch: int) -> None:
    conn = fresh(folder, "writer")
    writer = Writer(conn, batch_size=batch, max_delay=3600)
    writer.start_job("full", "parallel", [ROOT])
    for item in items:
        writer.put(item)
    writer.finish("completed")
    conn.close()


def _plain_rows(items: list[Hashed], now: str) -> list[tuple]:
    return [(s.root, s.path, s.path.rsplit("/", 1)[0], s.size, s.mtime_ns, s.inode, s.device,
             s.ctime_ns, h.hash, s.kind, now, now) for h in items for s in (h.seen,)]


def with_sqlite_utils(folder: Path, items: list[Hashed], batch: int) -> None:
    import sqlite_utils
    conn = fresh(folder, "sqlite-utils")
    table = sqlite_utils.Database(conn)["files"]
    names = ("root", "path", "dir", "size", "mtime_ns", "inode", "device", "ctime_ns", "hash",
             "kind", "first_seen", "updated_at")
    rows = [dict(zip(names, row), status="present") for row in _plain_rows(items, "now")]
    for start in range(0, len(rows), batch):
        with conn:
            table.upsert_all(rows[start:start + batch], pk="path", batch_size=batch)
    conn.close()


def with_executemany(folder: Path, items: list[Hashed], batch: int, drop: tuple = ()) -> None:
    conn = fresh(folder, "executemany")
    for statement in drop:
        conn.execute(statement)
    rows = _plain_rows(items, "now")
    for start in range(0, len(rows), batch):
        conn.execute("BEGIN IMMEDIATE")
        conn.executemany(_PLAIN, rows[start:start + batch])
        conn.execute("COMMIT")
    conn.close()


NO_FEED = ("DROP TRIGGER files_added",)
BARE = (*NO_FEED, "DROP INDEX files_dir", "DROP INDEX files_inode", "DROP INDEX files_hash")
SIDES: dict[str, Callable[[Path, list[Hashed], int], None]] = {
    "writer": with_writer, "sqlite-utils upsert_all": with_sqlite_utils,
    "executemany": with_executemany,
    "executemany, no feed": lambda *args: with_executemany(*args, drop=NO_FEED),
    "executemany, bare": lambda *args: with_executemany(*args, drop=BARE)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--batch", type=int, default=50, help="rows per transaction")
    parser.add_argument("--only", help="comma-separated sides")
    args = parser.parse_args()
    items = results(args.rows)
    sides = {k: v for k, v in SIDES.items() if not args.only or k in args.only.split(",")}
    rates: dict[str, list[float]] = {name: [] for name in sides}
    for _ in range(args.runs):
        for name, side in sides.items():
            with tempfile.TemporaryDirectory(dir="/var/tmp") as folder:
                started = time.perf_counter()
                side(Path(folder), items, args.batch)
                rates[name].append(args.rows / (time.perf_counter() - started))
    print(f"catalogue writes: {args.rows:,} file rows, {args.batch} per transaction, "
          f"synchronous=full, {args.runs} runs each (rows/s: median [min-max])")
    for name, values in rates.items():
        print(f"  {name:<24} {statistics.median(values):>9,.0f} "
              f"[{min(values):,.0f}-{max(values):,.0f}]")
    if "writer" in rates:
        rate = statistics.median(rates["writer"])
        print(f"target: the writer >= 100,000 file rows/s: {rate:,.0f} -> "
              f"{'met' if rate >= 100_000 else 'MISSED'}")


if __name__ == "__main__":
    main()
