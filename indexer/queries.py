"""Reading the catalogue for people and scripts: the change feed, duplicates, exports.

Every query here streams its rows: an export of a catalogue of a million
files holds one row at a time, not the million.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable, Iterator

EXPORT_COLUMNS = (
    "id", "path", "dir", "kind", "size", "mtime_ns", "hash", "first_seen", "updated_at",
    "title", "artist", "album", "album_artist", "track_no", "track_total", "disc_no", "disc_total",
    "year", "date", "genre", "composer", "compilation", "duration", "bitrate", "sample_rate",
    "bit_depth", "channels", "codec", "mb_recording_id", "mb_release_id", "cover", "tags_error",
)


def changes(conn: sqlite3.Connection, since: int = 0, batch: int = 1000) -> Iterator[dict]:
    """Changes after `since`, in order, read a batch at a time."""
    while True:
        rows = conn.execute("SELECT seq, file_id, kind, path, old_path, at, job_id FROM changes "
                            "WHERE seq > ? ORDER BY seq LIMIT ?", (since, batch)).fetchall()
        for seq, file_id, kind, path, old_path, at, job_id in rows:
            yield {"seq": seq, "file_id": file_id, "kind": kind, "path": path,
                   "old_path": old_path, "at": at, "job_id": job_id}
            since = seq
        if len(rows) < batch:
            return


def follow(conn: sqlite3.Connection, since: int, stop: Callable[[], bool],
           poll_s: float = 0.2) -> Iterator[dict]:
    """Changes after `since`, then each new one as it is committed, until `stop()`.

    SQLite's `data_version` tells, without a query of the table, whether another
    connection committed since we last looked: most polls cost next to nothing."""
    version = None
    while not stop():
        current = conn.execute("PRAGMA data_version").fetchone()[0]
        if current != version:
            version = current
            for change in changes(conn, since):
                since = change["seq"]
                yield change
        time.sleep(poll_s)


def last_seq(conn: sqlite3.Connection) -> int:
    return conn.execute("SELECT coalesce(max(seq), 0) FROM changes").fetchone()[0]


def duplicates(conn: sqlite3.Connection) -> Iterator[dict]:
    """Groups of present files with the same size and content hash, most bytes wasted first."""
    groups = conn.execute(
        "SELECT size, hash, count(*) AS copies, size * (count(*) - 1) AS wasted FROM files "
        "WHERE status = 'present' AND hash IS NOT NULL GROUP BY size, hash HAVING count(*) > 1 "
        "ORDER BY wasted DESC, hash").fetchall()
    for size, digest, copies, wasted in groups:
        paths = [r[0] for r in conn.execute(
            "SELECT path FROM files WHERE hash = ? AND size = ? AND status = 'present' "
            "ORDER BY path", (digest, size))]
        yield {"hash": digest, "size": size, "copies": copies, "wasted_bytes": wasted,
               "paths": paths}


def export_rows(conn: sqlite3.Connection) -> Iterator[dict]:
    """Every present file with its tags (none for images and other files), by path."""
    columns = ", ".join(f"t.{c}" if c in _TRACK_ONLY else f"f.{c}" for c in EXPORT_COLUMNS)
    cursor = conn.execute(
        f"SELECT {columns} FROM files f LEFT JOIN tracks t ON t.id = f.id "
        "WHERE f.status = 'present' ORDER BY f.path")
    for row in cursor:
        yield dict(zip(EXPORT_COLUMNS, row))


_TRACK_ONLY = set(EXPORT_COLUMNS) - {"id", "path", "dir", "kind", "size", "mtime_ns", "hash",
                                     "first_seen", "updated_at"}
