"""Purging: the only way rows ever leave the catalogue.

Files missing for longer than a grace period are listed first, then deleted
with everything that hangs on them (tags, picture links, a folder cover's
link), in one transaction, and the artwork no file uses any more goes with
them, rows and cached images. Their past changes stay in the feed: it is
append-only; each deletion adds a 'purged' change, of a job of kind 'purge'.
"""

from __future__ import annotations

import os
import sqlite3
import threading
from datetime import datetime, timedelta, timezone
from typing import NamedTuple

from .artwork import cache_path, thumbnail_path
from .catalog import retrying, utc_now


class Doomed(NamedTuple):
    id: int
    path: str
    missing_since: str


def cutoff(days: float, now: datetime | None = None) -> str:
    """The catalogue timestamp `days` ago."""
    moment = (now or datetime.now(timezone.utc)) - timedelta(days=days)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def candidates(conn: sqlite3.Connection, older_than_days: float) -> list[Doomed]:
    """Files marked missing longer ago than the grace period, by path."""
    return [Doomed(*row) for row in conn.execute(
        "SELECT id, path, missing_since FROM files WHERE status = 'missing' AND "
        "missing_since < ? ORDER BY path", (cutoff(older_than_days),))]


def purge(conn: sqlite3.Connection, doomed: list[Doomed], art_dir: str | None,
          stop: threading.Event | None = None) -> dict:
    """Delete these rows, if they are still missing, and the artwork no one uses any more.
    Waits for another process's write lock as the writer does (catalog.retrying)."""
    retrying(lambda: conn.execute("BEGIN IMMEDIATE"), stop=stop)
    try:
        job_id = conn.execute(  # a job of its own: the feed's 'purged' rows name it
            "INSERT INTO scan_jobs (kind, mode, roots, status, pid, started_at) VALUES "
            "('purge', 'sequential', '[]', 'running', ?, ?)", (os.getpid(), utc_now())).lastrowid
        removed = 0
        for row in doomed:
            removed += forget(conn, row.id)
        orphans = conn.execute(
            "SELECT hash, mime FROM artwork WHERE hash NOT IN (SELECT artwork_hash FROM "
            "file_artwork) AND hash NOT IN (SELECT artwork_hash FROM folder_artwork)").fetchall()
        conn.executemany("DELETE FROM artwork WHERE hash = ?", [(h,) for h, _ in orphans])
        conn.execute("UPDATE scan_jobs SET status = 'completed', finished_at = ?, progress = 100, "
                     "message = ? WHERE id = ?", (utc_now(), f"purged {removed} files and "
                                                  f"{len(orphans)} pictures", job_id))
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
    if art_dir:  # after the commit: a crash before it leaves images, never rows without them
        for digest, mime in orphans:
            _remove_images(art_dir, digest, mime)
    return {"files": removed, "artwork": len(orphans)}


def forget(conn: sqlite3.Connection, file_id: int) -> bool:
    """Delete a missing file's row and what hangs on it (the feed gets a 'purged' change);
    False if it is not missing (any more). Inside the caller's transaction."""
    if not conn.execute("DELETE FROM files WHERE id = ? AND status = 'missing'",
                        (file_id,)).rowcount:
        return False
    for table, column in (("media", "file_id"), ("streams", "file_id"),
                          ("file_artwork", "file_id"), ("folder_artwork", "image_file_id")):
        conn.execute(f"DELETE FROM {table} WHERE {column} = ?", (file_id,))
    return True


def _remove_images(art_dir: str, digest: str, mime: str) -> None:
    paths = [cache_path(art_dir, digest, mime)]
    thumbnails = os.path.join(art_dir, "thumbnails")
    if os.path.isdir(thumbnails):
        paths += [thumbnail_path(art_dir, digest, int(size)) for size in os.listdir(thumbnails)
                  if size.isdigit()]
    for path in paths:
        try:
            os.remove(path)
        except FileNotFoundError:
            pass
