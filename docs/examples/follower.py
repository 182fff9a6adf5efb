"""An example follower of the indexer's change feed: a mirror of `files` and `media`.

    python3 follower.py CATALOGUE MIRROR [--follow]

Keeps MIRROR (a SQLite file of its own) equal to the catalogue's `files` and `media`
tables, as a media server keeps its library: catches up from the last `seq` it saved,
then, with --follow, every second until stopped. Standard library only.

It can be stopped at any instant, SIGKILL included, and started again: each batch of
changes is read in one snapshot of the catalogue and applied in one transaction of the
mirror, together with the `seq` it reaches; and it applies the rows as they are now,
not the changes, so doing a batch twice does no harm (docs/schema.md, "Following the
feed").
"""

from __future__ import annotations

import sqlite3
import sys
import time

FILE_COLUMNS = ("id", "path", "status", "size", "hash")
MEDIA_COLUMNS = ("file_id", "content_hash", "title", "artist", "album", "album_artist",
                 "track_no", "duration", "error")
BATCH = 500

MIRROR_SCHEMA = f"""
CREATE TABLE IF NOT EXISTS files ({", ".join(FILE_COLUMNS)}, PRIMARY KEY (id));
CREATE TABLE IF NOT EXISTS media ({", ".join(MEDIA_COLUMNS)}, PRIMARY KEY (file_id));
CREATE TABLE IF NOT EXISTS position (seq INTEGER NOT NULL);
"""


def open_mirror(path: str) -> sqlite3.Connection:
    mirror = sqlite3.connect(path, isolation_level=None)
    mirror.executescript(MIRROR_SCHEMA)
    if mirror.execute("SELECT count(*) FROM position").fetchone()[0] == 0:
        mirror.execute("INSERT INTO position VALUES (0)")
    return mirror


def catch_up(catalogue: sqlite3.Connection, mirror: sqlite3.Connection) -> int:
    """Apply every change after the saved position; the number applied."""
    applied = 0
    while True:
        done = apply_batch(catalogue, mirror)
        applied += done
        if done < BATCH:
            return applied


def apply_batch(catalogue: sqlite3.Connection, mirror: sqlite3.Connection) -> int:
    """Apply up to BATCH changes after the saved position; the number applied."""
    since = mirror.execute("SELECT seq FROM position").fetchone()[0]
    catalogue.execute("BEGIN")  # one snapshot: the changes and the rows they name
    try:
        top = catalogue.execute("SELECT coalesce(max(seq), 0) FROM changes").fetchone()[0]
        whole = top < since  # the catalogue was replaced (a backup restored): read it all
        if whole:
            changes, reached = [], top
            ids = {row[0] for row in catalogue.execute("SELECT id FROM files")}
        else:
            changes = catalogue.execute(
                "SELECT seq, file_id FROM changes WHERE seq > ? ORDER BY seq LIMIT ?",
                (since, BATCH)).fetchall()
            reached = changes[-1][0] if changes else since
            ids = {file_id for _, file_id in changes}
        files = _rows(catalogue, "files", FILE_COLUMNS, "id", ids)
        media = _rows(catalogue, "media", MEDIA_COLUMNS, "file_id", ids)
    finally:
        catalogue.execute("COMMIT")
    mirror.execute("BEGIN IMMEDIATE")
    if whole:
        mirror.execute("DELETE FROM files")
        mirror.execute("DELETE FROM media")
    for file_id in ids:
        _put(mirror, "files", FILE_COLUMNS, "id", file_id, files.get(file_id))
        _put(mirror, "media", MEDIA_COLUMNS, "file_id", file_id, media.get(file_id))
    mirror.execute("UPDATE position SET seq = ?", (reached,))
    mirror.execute("COMMIT")
    return len(changes)


def _rows(conn, table: str, columns: tuple, key: str, ids: set[int]) -> dict[int, tuple]:
    found = {}
    wanted = sorted(ids)
    for start in range(0, len(wanted), 500):
        chunk = wanted[start:start + 500]
        marks = ", ".join("?" * len(chunk))
        for row in conn.execute(f"SELECT {', '.join(columns)} FROM {table} "
                                f"WHERE {key} IN ({marks})", chunk):
            found[row[0]] = row
    return found


def _put(mirror, table: str, columns: tuple, key: str, file_id: int, row) -> None:
    if row is None:  # purged, or (media) never read
        mirror.execute(f"DELETE FROM {table} WHERE {key} = ?", (file_id,))
    else:
        marks = ", ".join("?" * len(columns))
        mirror.execute(f"INSERT OR REPLACE INTO {table} VALUES ({marks})", row)


def main(argv: list[str]) -> None:
    if len(argv) < 2:
        sys.exit(__doc__)
    catalogue = sqlite3.connect(f"file:{argv[0]}?mode=ro", uri=True, isolation_level=None,
                                timeout=30)
    mirror = open_mirror(argv[1])
    while True:
        print(f"applied {catch_up(catalogue, mirror)} changes", flush=True)
        if "--follow" not in argv:
            return
        time.sleep(1)


if __name__ == "__main__":
    main(sys.argv[1:])
