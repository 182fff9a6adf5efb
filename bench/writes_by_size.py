"""How the cost of writing a track's rows grows with the catalogue (issue 17, target 5).

    python bench/writes_by_size.py [--rows 1000000] [--every 100000] [--cache-kib N]

Writes N tracks into a fresh catalogue with the real schema (its indexes, change-feed
triggers and full-text index), as a first scan does: per track a file row and a media
row, both with random content hashes, in transactions of 500 tracks, `synchronous =
full`. Prints the CPU a track took over each `--every` tracks: a flat line is a cost
per file that does not grow with the library. `--cache-kib` sets SQLite's page cache
(default SQLite's own, 2,000 KiB, as the writer has it).
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from needs import project_venv  # noqa: E402

project_venv("bench/writes_by_size.py")

from indexer import schema  # noqa: E402
from indexer.catalog import connect  # noqa: E402
from indexer.records import MEDIA_COLUMNS  # noqa: E402

FILES = ("root", "path", "dir", "size", "mtime_ns", "inode", "device", "ctime_ns", "hash",
         "kind", "status", "first_seen", "updated_at", "tags_hash")
MEDIA = ("file_id", "content_hash", *MEDIA_COLUMNS, "tags", "extracted_at")


def tracks(start: int, count: int, rnd: random.Random) -> tuple[list[tuple], list[tuple]]:
    """Rows of tracks start .. start + count: 12 to an album, 8 albums to an artist."""
    files, media = [], []
    for number in range(start, start + count):
        album = number // 12
        folder = f"/music/Artist {album // 8:06d}/Album {album:07d}"
        digest = f"{rnd.getrandbits(128):032x}"
        files.append(("/music", f"{folder}/{number % 12 + 1:02d} - Track {number}.flac", folder,
                      8000, 1_700_000_000_000_000_000, number + 1, 1, 1_700_000_000_000_000_000,
                      digest, "audio", "present", "now", "now", digest))
        values = dict.fromkeys(MEDIA_COLUMNS)
        values.update(title=f"Track {rnd.getrandbits(24)}", artist=f"Artist {album // 8}",
                      album=f"Album {album}", album_artist=f"Artist {album // 8}",
                      track_no=number % 12 + 1, duration=1.5, codec="flac", has_embedded_art=0)
        media.append((number + 1, digest, *values.values(), "{}", "now"))
    return files, media


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--every", type=int, default=100_000)
    parser.add_argument("--cache-kib", type=int)
    args = parser.parse_args()
    insert_file = f"INSERT INTO files ({', '.join(FILES)}) VALUES ({', '.join('?' * len(FILES))})"
    insert_media = f"INSERT INTO media ({', '.join(MEDIA)}) VALUES ({', '.join('?' * len(MEDIA))})"
    rnd = random.Random(1)
    with tempfile.TemporaryDirectory(prefix="writes-by-size-") as work:
        conn = connect(Path(work) / "catalogue.db")
        schema.migrate(conn)
        if args.cache_kib:
            conn.execute(f"PRAGMA cache_size = -{args.cache_kib}")
        conn.execute("INSERT INTO scan_jobs (kind, mode, roots, status, started_at) "
                      "VALUES ('scan', 'parallel', '[]', 'running', 'now')")
        print(f"{'tracks':>10} {'µs CPU a track':>15}   (each over the last {args.every:,})")
        started, block, last = time.perf_counter(), time.process_time(), 0
        for at in range(0, args.rows, 500):
            files, media = tracks(at, min(500, args.rows - at), rnd)
            conn.execute("BEGIN IMMEDIATE")
            conn.executemany(insert_file, files)
            conn.executemany(insert_media, media)
            conn.execute("COMMIT")
            done = at + len(files)
            if done % args.every == 0 or done == args.rows:
                now = time.process_time()
                print(f"{done:>10,} {(now - block) / (done - last) * 1e6:15.1f}", flush=True)
                block, last = now, done
        print(f"{args.rows:,} tracks in {time.perf_counter() - started:.1f} s")
        conn.close()


if __name__ == "__main__":
    main()
