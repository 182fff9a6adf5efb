"""Writing tags and artwork rows: the writer's half of the metadata stage.

Called by the writer only, inside its open batch transaction. A result is
applied only if its file still has the content that was parsed (same path,
same hash): a file that changed meanwhile is parsed again by the next scan,
never given the tags of its older self.
"""

from __future__ import annotations

import sqlite3

from .artwork import ArtRef, cache_path
from .records import MEDIA_COLUMNS, STREAM_COLUMNS, CopyTags, Tags

_ALL = ("content_hash", *MEDIA_COLUMNS, "tags", "extracted_at", "error")
_EMBEDDED_ART = MEDIA_COLUMNS.index("has_embedded_art")
# Parameters by position, in `_ALL`'s order: binding some 60 by name costs a scan a
# fifth of this statement.
_UPSERT_MEDIA = (
    f"INSERT INTO media (file_id, {', '.join(_ALL)}) "
    f"VALUES (?, {', '.join('?' * len(_ALL))}) "
    f"ON CONFLICT (file_id) DO UPDATE SET {', '.join(f'{c} = excluded.{c}' for c in _ALL)}"
)
# Only while the source still holds the tags of that content: it may have changed and
# been read again between the lookup and now.
_COPY_MEDIA = (
    f"INSERT INTO media (file_id, {', '.join(_ALL)}) "
    f"SELECT :file_id, {', '.join(_ALL[:-2])}, :now, error FROM media "
    f"WHERE file_id = :source AND content_hash = :hash "
    f"ON CONFLICT (file_id) DO UPDATE SET {', '.join(f'{c} = excluded.{c}' for c in _ALL)}"
)


_INSERT_STREAM = (f"INSERT OR REPLACE INTO streams (file_id, {', '.join(STREAM_COLUMNS)}) "
                  f"VALUES ({', '.join('?' * (len(STREAM_COLUMNS) + 1))})")
_COPY_STREAMS = (f"INSERT INTO streams (file_id, {', '.join(STREAM_COLUMNS)}) "
                 f"SELECT ?, {', '.join(STREAM_COLUMNS)} FROM streams WHERE file_id = ?")


def _target(conn: sqlite3.Connection, text: str, digest: str) -> tuple[int, str, bool] | None:
    """The file at `text` if it still has the content `digest`: (id, dir, tagged before)."""
    return conn.execute("SELECT id, dir, tags_hash IS NOT NULL FROM files "
                        "WHERE path = ? AND hash = ?", (text, digest)).fetchone()


def apply_tags(conn: sqlite3.Connection, tags: Tags, now: str,
               art_dir: str | None) -> tuple[str, bool] | None:
    """Store one file's tags (or its parse error) and its pictures: (its folder, whether
    that is a verdict on its content); None if it changed or went since."""
    target = _target(conn, tags.text, tags.hash)
    if target is None:
        return None
    file_id, folder, tagged_before = target
    final = tags.final or _failed_alike_before(conn, file_id, tags)
    if tags.cover:
        if tags.art:
            _folder_cover(conn, file_id, folder, tags.art[0], now, art_dir)
        if tagged_before:  # an image renamed to a cover's name: a photo no more
            conn.execute("DELETE FROM media WHERE file_id = ?", (file_id,))
            conn.execute("DELETE FROM streams WHERE file_id = ?", (file_id,))
    else:
        row = list(tags.values) if tags.values else [None] * len(MEDIA_COLUMNS)
        row[_EMBEDDED_ART] = row[_EMBEDDED_ART] or 0
        conn.execute(_UPSERT_MEDIA, (file_id, tags.hash, *row, tags.tags_json, now, tags.error))
        if tagged_before:  # pictures and streams of the content it had before
            conn.execute("DELETE FROM file_artwork WHERE file_id = ?", (file_id,))
            conn.execute("DELETE FROM streams WHERE file_id = ?", (file_id,))
        if tags.streams:  # a video's (an empty executemany still costs a call a file)
            conn.executemany(_INSERT_STREAM, ((file_id, *row) for row in tags.streams))
        for ref in tags.art:
            _artwork(conn, ref, now, art_dir)
            conn.execute("INSERT OR IGNORE INTO file_artwork (file_id, artwork_hash, picture_type) "
                         "VALUES (?, ?, ?)", (file_id, ref.hash, ref.picture_type))
    if final:  # else no verdict on the file (its worker hung or died, the disk failed):
        conn.execute("UPDATE files SET tags_hash = ? WHERE id = ?", (tags.hash, file_id))
    return folder, final  # not final: it is read again next scan


# A parse that hung or killed its worker may be the file's fault or the machine's (a worker
# stopped, memory short): tried again once; the same failure on the same content twice is
# a verdict on the file, so a file that always hangs the parser is not retried forever.
_AMBIGUOUS = ("TimeoutError:", "WorkerCrash:")
# No worker could take the file (none could start): no word on the file at all, however
# often; the writer says it once a job, not once a file.
UNAVAILABLE = "WorkerUnavailable:"


def _failed_alike_before(conn: sqlite3.Connection, file_id: int, tags: Tags) -> bool:
    if tags.error is None or not tags.error.startswith(_AMBIGUOUS):
        return False
    before = conn.execute("SELECT error FROM media WHERE file_id = ? AND content_hash = ?",
                          (file_id, tags.hash)).fetchone()
    kind = tags.error.split(":", 1)[0]
    return before is not None and (before[0] or "").startswith(kind + ":")


def copy_tags(conn: sqlite3.Connection, copy: CopyTags, now: str) -> str | None:
    """Give a file the tags of another with the same content, without parsing it.

    "copied"; or "own" when the source is the file itself (a renamed file, found by
    its own tags); None when the file changed or went since, or the source no longer
    holds the tags of that content (the file's tags are then read next scan)."""
    target = _target(conn, copy.text, copy.hash)
    if target is None:
        return None
    file_id = target[0]
    if file_id == copy.source_file_id:
        own = conn.execute("UPDATE files SET tags_hash = ? WHERE id = ? AND EXISTS (SELECT 1 "
                           "FROM media WHERE file_id = ? AND content_hash = ?)",
                           (copy.hash, file_id, file_id, copy.hash)).rowcount
        return "own" if own else None
    if not conn.execute(_COPY_MEDIA, {"file_id": file_id, "source": copy.source_file_id,
                                      "hash": copy.hash, "now": now}).rowcount:
        return None
    conn.execute("UPDATE files SET tags_hash = ? WHERE id = ?", (copy.hash, file_id))
    conn.execute("DELETE FROM file_artwork WHERE file_id = ?", (file_id,))
    conn.execute("INSERT INTO file_artwork (file_id, artwork_hash, picture_type) "
                 "SELECT ?, artwork_hash, picture_type FROM file_artwork WHERE file_id = ?",
                 (file_id, copy.source_file_id))
    conn.execute("DELETE FROM streams WHERE file_id = ?", (file_id,))
    conn.execute(_COPY_STREAMS, (file_id, copy.source_file_id))
    return "copied"


def _folder_cover(conn: sqlite3.Connection, image_id: int, folder: str, ref: ArtRef, now: str,
                  art_dir: str | None) -> None:
    _artwork(conn, ref, now, art_dir)
    conn.execute("INSERT INTO folder_artwork (dir, image_file_id, artwork_hash) VALUES (?, ?, ?) "
                 "ON CONFLICT (image_file_id) DO UPDATE SET dir = excluded.dir, "
                 "artwork_hash = excluded.artwork_hash", (folder, image_id, ref.hash))


def _artwork(conn: sqlite3.Connection, ref: ArtRef, now: str, art_dir: str | None) -> None:
    conn.execute(
        "INSERT OR IGNORE INTO artwork (hash, mime, width, height, size, path, first_seen) "
        "VALUES (?, ?, ?, ?, ?, ?, ?)",
        (ref.hash, ref.mime, ref.width, ref.height, ref.size,
         cache_path(art_dir or "", ref.hash, ref.mime), now))
