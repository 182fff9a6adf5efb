"""What a scan of a library cannot cost less than, in Python on this machine: each part
alone, with nothing of ours around it (issue 17: the limits beside MPD's figures).

    python bench/floors.py LIBRARY [--catalogue DB] [--runs 3]

LIBRARY is a library of `bench/make_library.py`; DB, a catalogue of it made by a first
`indexer scan` (one is made in a temporary folder when not given). Each part runs
`--runs` times in this process, or as a process of its own where start-up is the part;
medians:

  start-up      `python -c pass`, and `python -c "import indexer.cli"` (the interpreter
                and the modules a scan imports before it reads a folder), whole processes
  walk          every folder listed and every file's stat, in one Python process
                (`os.scandir`, `DirEntry.stat`), beside `find -printf` of the same
  rows          every file row a no-change rescan compares, read in `dir` order
  hash          every file opened, read and hashed with xxh3-128, one thread
  tags          every track parsed by mutagen with the class of its extension (as
                indexer/metadata.py does), one process, nothing kept; beside it, not in
                the floor, ours: `read_tags` (the columns, every tag's JSON; no artwork
                folder) and its result pickled as a worker's pipe carries it
  writes        the file and media rows of DB written again into an empty catalogue with
                its schema (indexes, feed triggers, full-text index), `executemany` in
                transactions of `scan.batch_size` rows, `synchronous = full`

Times are CPU seconds of this process (wall for the start-up and `find`). The sum of
walk, hash, tags and writes is the CPU a first scan cannot go under while it does what
ours does; divided by the cores, the wall it cannot go under.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import xxhash

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from indexer.kinds import KIND_OF_EXTENSION  # noqa: E402
from indexer.metadata import _parse, read_tags  # noqa: E402
from indexer.records import TagJob  # noqa: E402
from indexer.worker import frame  # noqa: E402


def cpu(part: Callable[[], object], runs: int) -> float:
    times = []
    for _ in range(runs):
        started = time.process_time()
        part()
        times.append(time.process_time() - started)
    return statistics.median(times)


def wall(cmd: list[str], runs: int) -> float:
    times = []
    for _ in range(runs + 1):  # the first warms the page cache
        started = time.perf_counter()
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
        times.append(time.perf_counter() - started)
    return statistics.median(times[1:])


def listing(root: str) -> list[str]:
    """Every file's path, walked as the bare walk does."""
    files, folders = [], [root]
    while folders:
        with os.scandir(folders.pop()) as entries:
            for entry in entries:
                if entry.is_dir(follow_symlinks=False):
                    folders.append(entry.path)
                else:
                    entry.stat(follow_symlinks=False)
                    files.append(entry.path)
    return files


def hash_all(paths: list[str]) -> None:
    for path in paths:
        with open(path, "rb") as handle:
            xxhash.xxh3_128(handle.read()).hexdigest()
            os.fstat(handle.fileno())


def parse_all(tracks: list[str]) -> None:
    for path in tracks:
        parsed = _parse(path)
        if parsed is not None:
            parsed.info.length, dict(parsed.tags or {})


def ours(tracks: list[str], pickled: bool) -> Callable[[], None]:
    jobs = [TagJob(path, path, "0" * 32, False, None, (), 2.0) for path in tracks]

    def run() -> None:
        for job in jobs:
            result = read_tags(job)
            if pickled:
                frame([result])
    return run


def read_rows(db: Path) -> None:
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        conn.execute("SELECT path, size, mtime_ns, inode, device, ctime_ns, hash, id, status, "
                     "dir, tags_hash FROM files ORDER BY dir").fetchall()
    finally:
        conn.close()


def rewrite(db: Path, batch: int, folder: Path) -> Callable[[], None]:
    """The rows of `db` written again into an empty catalogue of its schema."""
    source = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    tables = {name: source.execute(f"SELECT * FROM {name} ORDER BY rowid").fetchall()
              for name in ("files", "media")}
    columns = {name: len(source.execute(f"SELECT * FROM {name} LIMIT 1").description)
               for name in tables}
    schema = [sql for (sql,) in source.execute(
        "SELECT sql FROM sqlite_master WHERE sql IS NOT NULL AND name NOT LIKE 'media_fts_%' "
        "AND name <> 'sqlite_sequence' ORDER BY rowid")]
    source.close()

    def run() -> None:
        target = folder / "floor.db"
        for suffix in ("", "-wal", "-shm"):
            Path(f"{target}{suffix}").unlink(missing_ok=True)
        conn = sqlite3.connect(target, isolation_level=None)
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("PRAGMA synchronous = FULL")
        for sql in schema:
            conn.execute(sql)
        conn.execute("INSERT INTO scan_jobs (kind, mode, roots, status, started_at) "
                     "VALUES ('scan', 'parallel', '[]', 'running', 'now')")
        started = time.process_time()
        for name in ("files", "media"):
            insert = f"INSERT INTO {name} VALUES ({', '.join('?' * columns[name])})"
            rows = tables[name]
            for at in range(0, len(rows), batch):
                conn.execute("BEGIN IMMEDIATE")
                conn.executemany(insert, rows[at:at + batch])
                conn.execute("COMMIT")
        run.cpu = time.process_time() - started
        conn.close()
    return run


def first_scan(library: Path, folder: Path) -> Path:
    db = folder / "catalogue.db"
    indexer = shutil.which("indexer", path=str(Path(sys.executable).parent)) or "indexer"
    subprocess.run([indexer, "scan", str(library), "--db", str(db), "-q"], check=True,
                   stdout=subprocess.DEVNULL)
    return db


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("library", type=Path)
    parser.add_argument("--catalogue", type=Path)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--batch", type=int, default=500, help="rows a transaction (scan.batch_size)")
    args = parser.parse_args()
    root, runs = str(args.library.resolve()), args.runs

    with tempfile.TemporaryDirectory(prefix="floors-") as work:
        folder = Path(work)
        db = args.catalogue or first_scan(args.library, folder)
        paths = listing(root)
        tracks = [p for p in paths if KIND_OF_EXTENSION.get(p.rsplit(".", 1)[-1].lower()) == "audio"]
        media = [p for p in paths if KIND_OF_EXTENSION.get(p.rsplit(".", 1)[-1].lower())]
        figures = {
            "start-up: python -c pass (wall)": wall([sys.executable, "-c", "pass"], runs),
            "start-up: import indexer.cli (wall)": wall(
                [sys.executable, "-c", "import indexer.cli"], runs),
            "walk: find -printf (wall)": wall(["find", root, "-printf", "%p %s %T@\\n"], runs),
            "walk: scandir + stat, Python": cpu(lambda: listing(root), runs),
            "rows: every file row, in dir order": cpu(lambda: read_rows(db), runs),
            "hash: open, read, xxh3-128": cpu(lambda: hash_all(media), runs),
            "tags: mutagen, by extension": cpu(lambda: parse_all(tracks), runs),
            "(ours, not a floor) tags: read_tags": cpu(ours(tracks, False), runs),
            "(ours, not a floor) tags: read_tags, pickled": cpu(ours(tracks, True), runs),
        }
        writes = rewrite(db, args.batch, folder)
        samples = []
        for _ in range(runs):
            writes()
            samples.append(writes.cpu)
        figures["writes: file and media rows, schema's triggers"] = statistics.median(samples)

    print(f"floors of {root}: {len(paths):,} files, {len(media):,} indexed, {len(tracks):,} "
          f"tracks; {os.cpu_count()} CPUs; medians of {runs}")
    print(f"{'part':52} {'s':>7} {'µs a file':>10}")
    for name, seconds in figures.items():
        count = len(tracks) if "tags:" in name else len(media)
        print(f"{name:52} {seconds:7.3f} {seconds / count * 1e6:10.1f}")
    first = sum(figures[k] for k in figures if k.split(":")[0] in ("hash", "tags", "writes")) \
        + figures["walk: scandir + stat, Python"]
    cores = os.cpu_count() or 1
    print(f"first scan, CPU it cannot go under (walk + hash + tags + writes): {first:.2f} s, "
          f"{first / len(media) * 1e6:.0f} µs a file; on {cores} cores at least "
          f"{first / cores:.2f} s")
    rescan = (figures["start-up: import indexer.cli (wall)"] + figures["walk: scandir + stat, Python"]
              + figures["rows: every file row, in dir order"])
    print(f"no-change rescan in one process (start-up + walk + rows): {rescan:.2f} s")


if __name__ == "__main__":
    main()
