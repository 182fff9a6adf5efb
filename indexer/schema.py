"""The catalogue's tables, indexes and triggers: our public interface to media servers.

docs/schema.md documents every column, and a test keeps the two in step. The
schema is versioned with `PRAGMA user_version`; `MIGRATIONS[n]` takes a
catalogue from version n to n + 1 inside one transaction, so an upgrade
either happens whole or not at all.

The `changes` feed is written by triggers, not by the scanner: any write to
`files`, from a scan, the daemon or a future tool, appends exactly the
changes it makes, in the same transaction.

The views as they are now live in views.py; V2 keeps their first definitions.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable

from . import views

# CHECK constraints are OR chains, not `IN (...)`: SQLite 3.40 builds a temporary
# table for an IN list on every row checked, and that tripled the cost of an
# insert into `changes` (58k against 25k instructions a row, counted with callgrind).
V1 = """
CREATE TABLE files (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    root          TEXT    NOT NULL,
    path          TEXT    NOT NULL UNIQUE,
    path_raw      BLOB,
    dir           TEXT    NOT NULL,
    size          INTEGER NOT NULL,
    mtime_ns      INTEGER NOT NULL,
    inode         INTEGER NOT NULL,
    device        INTEGER NOT NULL,
    hash          TEXT,
    kind          TEXT    NOT NULL
                  CHECK (kind = 'audio' OR kind = 'video' OR kind = 'image' OR kind = 'other'),
    status        TEXT    NOT NULL DEFAULT 'present' CHECK (status = 'present' OR status = 'missing'),
    first_seen    TEXT    NOT NULL,
    updated_at    TEXT    NOT NULL,
    missing_since TEXT,
    error         TEXT
);
CREATE INDEX files_dir ON files (dir);
CREATE INDEX files_inode ON files (device, inode);
CREATE INDEX files_hash ON files (hash);
CREATE INDEX files_missing ON files (status) WHERE status = 'missing';
CREATE INDEX files_error ON files (id) WHERE error IS NOT NULL;

CREATE TABLE changes (
    seq      INTEGER PRIMARY KEY AUTOINCREMENT,
    file_id  INTEGER NOT NULL,
    kind     TEXT    NOT NULL CHECK (kind = 'added' OR kind = 'modified' OR kind = 'moved'
                                     OR kind = 'missing' OR kind = 'restored'),
    path     TEXT    NOT NULL,
    old_path TEXT,
    at       TEXT    NOT NULL
);
CREATE INDEX changes_file ON changes (file_id);

CREATE TRIGGER files_added AFTER INSERT ON files BEGIN
    INSERT INTO changes (file_id, kind, path, at)
    VALUES (new.id, 'added', new.path, new.updated_at);
END;

-- One UPDATE can be several changes, appended in this order: a move that
-- also changed the content is 'moved' then 'modified'. Only an UPDATE that sets
-- one of these columns runs it (not the writer's bookkeeping, e.g. tags_hash).
CREATE TRIGGER files_changed AFTER UPDATE OF path, status, hash ON files BEGIN
    INSERT INTO changes (file_id, kind, path, at)
    SELECT new.id, 'missing', new.path, new.updated_at
    WHERE old.status = 'present' AND new.status = 'missing';
    INSERT INTO changes (file_id, kind, path, at)
    SELECT new.id, 'restored', new.path, new.updated_at
    WHERE old.status = 'missing' AND new.status = 'present' AND old.path = new.path;
    INSERT INTO changes (file_id, kind, path, old_path, at)
    SELECT new.id, 'moved', new.path, old.path, new.updated_at
    WHERE old.path <> new.path;
    INSERT INTO changes (file_id, kind, path, at)
    SELECT new.id, 'modified', new.path, new.updated_at
    WHERE new.status = 'present' AND new.hash IS NOT NULL AND old.hash IS NOT new.hash;
END;

CREATE TABLE scan_jobs (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    kind            TEXT    NOT NULL,
    mode            TEXT    NOT NULL,
    roots           TEXT    NOT NULL,
    status          TEXT    NOT NULL CHECK (status = 'running' OR status = 'completed'
                        OR status = 'failed' OR status = 'cancelled' OR status = 'interrupted'),
    pid             INTEGER,
    started_at      TEXT    NOT NULL,
    finished_at     TEXT,
    files_found     INTEGER NOT NULL DEFAULT 0,
    files_processed INTEGER NOT NULL DEFAULT 0,
    bytes_processed INTEGER NOT NULL DEFAULT 0,
    progress        REAL    NOT NULL DEFAULT 0,
    added           INTEGER NOT NULL DEFAULT 0,
    modified        INTEGER NOT NULL DEFAULT 0,
    moved           INTEGER NOT NULL DEFAULT 0,
    missing         INTEGER NOT NULL DEFAULT 0,
    restored        INTEGER NOT NULL DEFAULT 0,
    unchanged       INTEGER NOT NULL DEFAULT 0,
    skipped         INTEGER NOT NULL DEFAULT 0,
    errors          INTEGER NOT NULL DEFAULT 0,
    message         TEXT
);
CREATE INDEX scan_jobs_status ON scan_jobs (status) WHERE status = 'running';

CREATE TABLE scan_errors (
    id     INTEGER PRIMARY KEY,
    job_id INTEGER NOT NULL,
    path   TEXT    NOT NULL,
    stage  TEXT    NOT NULL,
    error  TEXT    NOT NULL,
    at     TEXT    NOT NULL
);
CREATE INDEX scan_errors_job ON scan_errors (job_id);
"""


V2 = """
ALTER TABLE files ADD COLUMN tags_hash TEXT;

CREATE TABLE media (
    file_id             INTEGER PRIMARY KEY,
    content_hash        TEXT    NOT NULL,
    title               TEXT,
    artist              TEXT,
    artists             TEXT,
    album               TEXT,
    album_artist        TEXT,
    track_no            INTEGER,
    track_total         INTEGER,
    disc_no             INTEGER,
    disc_total          INTEGER,
    year                INTEGER,
    date                TEXT,
    genre               TEXT,
    composer            TEXT,
    compilation         INTEGER,
    comment             TEXT,
    mb_recording_id     TEXT,
    mb_release_id       TEXT,
    mb_artist_id        TEXT,
    mb_release_group_id TEXT,
    rg_track_gain       REAL,
    rg_track_peak       REAL,
    rg_album_gain       REAL,
    rg_album_peak       REAL,
    duration            REAL,
    bitrate             INTEGER,
    sample_rate         INTEGER,
    bit_depth           INTEGER,
    channels            INTEGER,
    codec               TEXT,
    has_embedded_art    INTEGER NOT NULL DEFAULT 0,
    tags                TEXT,
    extracted_at        TEXT    NOT NULL,
    error               TEXT
);
CREATE INDEX media_hash ON media (content_hash);
CREATE INDEX media_album ON media (album_artist, album);

CREATE TABLE artwork (
    hash       TEXT    PRIMARY KEY,
    mime       TEXT    NOT NULL,
    width      INTEGER,
    height     INTEGER,
    size       INTEGER NOT NULL,
    path       TEXT    NOT NULL,
    first_seen TEXT    NOT NULL
);

CREATE TABLE file_artwork (
    file_id      INTEGER NOT NULL,
    artwork_hash TEXT    NOT NULL,
    picture_type INTEGER NOT NULL,
    PRIMARY KEY (file_id, artwork_hash, picture_type)
);
CREATE INDEX file_artwork_hash ON file_artwork (artwork_hash);

CREATE TABLE folder_artwork (
    dir           TEXT    NOT NULL,
    image_file_id INTEGER NOT NULL PRIMARY KEY,
    artwork_hash  TEXT    NOT NULL
);
CREATE INDEX folder_artwork_dir ON folder_artwork (dir);

-- The shape sqlite-utils creates and finds (`Table.search`): `indexer search` uses it.
CREATE VIRTUAL TABLE media_fts USING FTS5 (
    title, artist, album, album_artist, genre, content=[media]
);
CREATE TRIGGER media_ai AFTER INSERT ON media BEGIN
    INSERT INTO media_fts (rowid, title, artist, album, album_artist, genre)
    VALUES (new.rowid, new.title, new.artist, new.album, new.album_artist, new.genre);
END;
CREATE TRIGGER media_ad AFTER DELETE ON media BEGIN
    INSERT INTO media_fts (media_fts, rowid, title, artist, album, album_artist, genre)
    VALUES ('delete', old.rowid, old.title, old.artist, old.album, old.album_artist, old.genre);
END;
CREATE TRIGGER media_au AFTER UPDATE ON media BEGIN
    INSERT INTO media_fts (media_fts, rowid, title, artist, album, album_artist, genre)
    VALUES ('delete', old.rowid, old.title, old.artist, old.album, old.album_artist, old.genre);
    INSERT INTO media_fts (rowid, title, artist, album, album_artist, genre)
    VALUES (new.rowid, new.title, new.artist, new.album, new.album_artist, new.genre);
END;

-- The front cover of each file: its own embedded front cover, else any embedded
-- picture, else its folder's cover image (if that image is still there, unchanged).
CREATE VIEW file_cover AS
SELECT f.id AS file_id, coalesce(
    (SELECT artwork_hash FROM file_artwork a WHERE a.file_id = f.id
     ORDER BY a.picture_type <> 3, a.artwork_hash LIMIT 1),
    (SELECT d.artwork_hash FROM folder_artwork d JOIN files i ON i.id = d.image_file_id
     WHERE d.dir = f.dir AND i.status = 'present' AND i.tags_hash IS i.hash
     ORDER BY d.image_file_id LIMIT 1)) AS artwork_hash
FROM files f;

-- Present files with their tags: the table to point sqlite3 or Datasette at.
CREATE VIEW tracks AS
SELECT f.id, f.path, f.dir, f.kind, f.size, f.hash, f.first_seen, f.updated_at,
       m.title, m.artist, m.album, m.album_artist, m.track_no, m.track_total, m.disc_no,
       m.disc_total, m.year, m.date, m.genre, m.composer, m.compilation, m.duration,
       m.bitrate, m.sample_rate, m.bit_depth, m.channels, m.codec,
       m.mb_recording_id, m.mb_release_id, m.rg_track_gain, m.rg_album_gain,
       (SELECT artwork_hash FROM file_cover c WHERE c.file_id = f.id) AS cover,
       m.error AS tags_error
FROM files f JOIN media m ON m.file_id = f.id
WHERE f.status = 'present';

-- Albums (by album artist, else artist, and album) with their cover.
CREATE VIEW album_artwork AS
SELECT coalesce(m.album_artist, m.artist) AS album_artist, m.album,
       (SELECT c.artwork_hash FROM file_cover c JOIN media m2 ON m2.file_id = c.file_id
        WHERE m2.album IS m.album AND coalesce(m2.album_artist, m2.artist) IS
              coalesce(m.album_artist, m.artist) AND c.artwork_hash IS NOT NULL
        LIMIT 1) AS artwork_hash,
       count(*) AS tracks
FROM media m JOIN files f ON f.id = m.file_id
WHERE f.status = 'present' AND m.album IS NOT NULL
GROUP BY 1, 2;

ALTER TABLE scan_jobs ADD COLUMN metadata_queued INTEGER NOT NULL DEFAULT 0;
ALTER TABLE scan_jobs ADD COLUMN metadata_extracted INTEGER NOT NULL DEFAULT 0;
ALTER TABLE scan_jobs ADD COLUMN metadata_copied INTEGER NOT NULL DEFAULT 0;
ALTER TABLE scan_jobs ADD COLUMN metadata_failed INTEGER NOT NULL DEFAULT 0;
"""


# Schema 3: the ctime of each file (the change check and identity.py use it), and
# 'purged' changes: a row deleted (by `indexer purge`, or displaced by another file
# renamed onto its path) leaves a trace in the feed. The feed's CHECK takes the new
# kind, so `changes` is copied into a new table, its seq numbers and sequence kept.
V3_FILES = """
ALTER TABLE files ADD COLUMN ctime_ns INTEGER;
DROP TRIGGER files_added;
DROP TRIGGER files_changed;
"""
V3_CHANGES = """
CREATE TABLE changes_v3 (
    seq      INTEGER PRIMARY KEY AUTOINCREMENT,
    file_id  INTEGER NOT NULL,
    kind     TEXT    NOT NULL CHECK (kind = 'added' OR kind = 'modified' OR kind = 'moved'
                                     OR kind = 'missing' OR kind = 'restored' OR kind = 'purged'),
    path     TEXT    NOT NULL,
    old_path TEXT,
    at       TEXT    NOT NULL
);
INSERT INTO changes_v3 (seq, file_id, kind, path, old_path, at)
SELECT seq, file_id, kind, path, old_path, at FROM changes ORDER BY seq;
DROP TABLE changes;
ALTER TABLE changes_v3 RENAME TO changes;
CREATE INDEX changes_file ON changes (file_id);
"""
V3_TRIGGERS = """
CREATE TRIGGER files_added AFTER INSERT ON files BEGIN
    INSERT INTO changes (file_id, kind, path, at)
    VALUES (new.id, 'added', new.path, new.updated_at);
END;

-- One UPDATE can be several changes, appended in this order: a move that
-- also changed the content is 'moved' then 'modified'. Only an UPDATE that sets
-- one of these columns runs it (not the writer's bookkeeping, e.g. tags_hash).
-- Files that swapped names are moved in one transaction through a path
-- 'moving:<old path>' (no reader sees it): that makes one 'moved' row, from
-- the old path, and a missing row moved is present again ('moved' says so).
CREATE TRIGGER files_changed AFTER UPDATE OF path, status, hash ON files BEGIN
    INSERT INTO changes (file_id, kind, path, at)
    SELECT new.id, 'missing', new.path, new.updated_at
    WHERE old.status = 'present' AND new.status = 'missing';
    INSERT INTO changes (file_id, kind, path, at)
    SELECT new.id, 'restored', new.path, new.updated_at
    WHERE old.status = 'missing' AND new.status = 'present' AND old.path = new.path;
    INSERT INTO changes (file_id, kind, path, old_path, at)
    SELECT new.id, 'moved', new.path,
           CASE WHEN old.path GLOB 'moving:*' THEN substr(old.path, 8) ELSE old.path END,
           new.updated_at
    WHERE old.path <> new.path AND new.path NOT GLOB 'moving:*';
    INSERT INTO changes (file_id, kind, path, at)
    SELECT new.id, 'modified', new.path, new.updated_at
    WHERE new.status = 'present' AND new.hash IS NOT NULL AND old.hash IS NOT new.hash;
END;

CREATE TRIGGER files_purged AFTER DELETE ON files BEGIN
    INSERT INTO changes (file_id, kind, path, at)
    VALUES (old.id, 'purged', old.path, strftime('%Y-%m-%dT%H:%M:%fZ', 'now'));
END;
"""


def _v3(conn: sqlite3.Connection) -> None:
    _keeping_the_sequence(conn, _script(V3_FILES + V3_CHANGES + V3_TRIGGERS))


# Schema 4: every change carries the job that made it (the one scan job running: only
# one process writes), and 'tagged' changes say that a file's tags (or a folder cover's
# picture) were written, in the same transaction as the media row, so that a follower
# reads them in the snapshot that says so.
V4_CHANGES = """
DROP TRIGGER files_added;
DROP TRIGGER files_changed;
DROP TRIGGER files_purged;
CREATE TABLE changes_v4 (
    seq      INTEGER PRIMARY KEY AUTOINCREMENT,
    file_id  INTEGER NOT NULL,
    kind     TEXT    NOT NULL CHECK (kind = 'added' OR kind = 'modified' OR kind = 'moved'
                                     OR kind = 'missing' OR kind = 'restored' OR kind = 'purged'
                                     OR kind = 'tagged'),
    path     TEXT    NOT NULL,
    old_path TEXT,
    at       TEXT    NOT NULL,
    job_id   INTEGER
);
INSERT INTO changes_v4 (seq, file_id, kind, path, old_path, at)
SELECT seq, file_id, kind, path, old_path, at FROM changes ORDER BY seq;
DROP TABLE changes;
ALTER TABLE changes_v4 RENAME TO changes;
CREATE INDEX changes_file ON changes (file_id);
"""
_JOB = "(SELECT max(id) FROM scan_jobs WHERE status = 'running')"
V4_TRIGGERS = f"""
CREATE TRIGGER files_added AFTER INSERT ON files BEGIN
    INSERT INTO changes (file_id, kind, path, at, job_id)
    VALUES (new.id, 'added', new.path, new.updated_at, {_JOB});
END;

-- One UPDATE can be several changes, appended in this order: a move that
-- also changed the content is 'moved' then 'modified'. Only an UPDATE that sets
-- one of these columns runs it (not the writer's bookkeeping, e.g. tags_hash).
-- Files that swapped names are moved in one transaction through a path
-- 'moving:<old path>' (no reader sees it): that makes one 'moved' row, from
-- the old path, and a missing row moved is present again ('moved' says so).
CREATE TRIGGER files_changed AFTER UPDATE OF path, status, hash ON files BEGIN
    INSERT INTO changes (file_id, kind, path, at, job_id)
    SELECT new.id, 'missing', new.path, new.updated_at, {_JOB}
    WHERE old.status = 'present' AND new.status = 'missing';
    INSERT INTO changes (file_id, kind, path, at, job_id)
    SELECT new.id, 'restored', new.path, new.updated_at, {_JOB}
    WHERE old.status = 'missing' AND new.status = 'present' AND old.path = new.path;
    INSERT INTO changes (file_id, kind, path, old_path, at, job_id)
    SELECT new.id, 'moved', new.path,
           CASE WHEN old.path GLOB 'moving:*' THEN substr(old.path, 8) ELSE old.path END,
           new.updated_at, {_JOB}
    WHERE old.path <> new.path AND new.path NOT GLOB 'moving:*';
    INSERT INTO changes (file_id, kind, path, at, job_id)
    SELECT new.id, 'modified', new.path, new.updated_at, {_JOB}
    WHERE new.status = 'present' AND new.hash IS NOT NULL AND old.hash IS NOT new.hash;
END;

CREATE TRIGGER files_purged AFTER DELETE ON files BEGIN
    INSERT INTO changes (file_id, kind, path, at, job_id)
    VALUES (old.id, 'purged', old.path, strftime('%Y-%m-%dT%H:%M:%fZ', 'now'), {_JOB});
END;

CREATE TRIGGER media_tagged AFTER INSERT ON media BEGIN
    INSERT INTO changes (file_id, kind, path, at, job_id)
    SELECT f.id, 'tagged', f.path, new.extracted_at, {_JOB} FROM files f WHERE f.id = new.file_id;
END;
CREATE TRIGGER media_retagged AFTER UPDATE ON media BEGIN
    INSERT INTO changes (file_id, kind, path, at, job_id)
    SELECT f.id, 'tagged', f.path, new.extracted_at, {_JOB} FROM files f WHERE f.id = new.file_id;
END;
CREATE TRIGGER cover_tagged AFTER INSERT ON folder_artwork BEGIN
    INSERT INTO changes (file_id, kind, path, at, job_id)
    SELECT f.id, 'tagged', f.path, f.updated_at, {_JOB} FROM files f
    WHERE f.id = new.image_file_id;
END;
CREATE TRIGGER cover_retagged AFTER UPDATE ON folder_artwork BEGIN
    INSERT INTO changes (file_id, kind, path, at, job_id)
    SELECT f.id, 'tagged', f.path, f.updated_at, {_JOB} FROM files f
    WHERE f.id = new.image_file_id;
END;
"""


def _v4(conn: sqlite3.Connection) -> None:
    _keeping_the_sequence(conn, _script(V4_CHANGES + V4_TRIGGERS))


def _keeping_the_sequence(conn: sqlite3.Connection, rebuild) -> None:
    """Rebuild `changes`; its seq numbers go on from where they were, even past rows
    that are not there (a follower may have read them)."""
    sequence = conn.execute(
        "SELECT coalesce(max(seq), 0) FROM sqlite_sequence WHERE name = 'changes'").fetchone()[0]
    rebuild(conn)
    conn.execute("UPDATE sqlite_sequence SET seq = max(seq, ?) WHERE name = 'changes'",
                 (sequence,))


def _script(script: str):
    def migrate(conn: sqlite3.Connection) -> None:
        for statement in _statements(script):
            conn.execute(statement)
    return migrate


def _statements(script: str) -> list[str]:
    """Split a script into statements; triggers hold `;` inside BEGIN ... END."""
    statements, current = [], []
    for line in script.splitlines():
        current.append(line)
        text = "\n".join(current).strip()
        if text and sqlite3.complete_statement(text):
            statements.append(text)
            current = []
    return statements


# Schema 6: where each push target ([[notify]] in the configuration) is in the feed.
# Written by the service's delivery threads (push.py), one tiny transaction per delivery.
V6 = """
CREATE TABLE push_cursors (
    target       TEXT    PRIMARY KEY,
    seq          INTEGER NOT NULL,
    delivered_at TEXT
);
"""

# Schema 7: videos and photos. Their `media` rows get the columns of their kind (video:
# the container, names, the main video stream; photo: EXIF), a video's streams are rows
# of `streams`, the full-text index learns `show`, and the views `videos` and `photos`
# appear. Videos read before (only the MP4 family, by mutagen) are read again, by the
# next scan: their tags_hash is cleared (no change is fed for that; the files_changed
# trigger watches path, status and hash only).
V7_MEDIA = "\n".join(f"ALTER TABLE media ADD COLUMN {name} {kind};" for name, kind in (
    ("container", "TEXT"), ("show", "TEXT"), ("season", "INTEGER"), ("episode", "INTEGER"),
    ("description", "TEXT"), ("chapters", "INTEGER"), ("width", "INTEGER"),
    ("height", "INTEGER"), ("display_aspect_ratio", "TEXT"), ("frame_rate", "REAL"),
    ("color_primaries", "TEXT"), ("color_transfer", "TEXT"), ("hdr", "TEXT"),
    ("audio_languages", "TEXT"), ("subtitle_languages", "TEXT"), ("taken_at", "TEXT"),
    ("camera_make", "TEXT"), ("camera_model", "TEXT"), ("lens", "TEXT"),
    ("orientation", "INTEGER"), ("latitude", "REAL"), ("longitude", "REAL"), ("iso", "INTEGER"),
    ("exposure_s", "REAL"), ("f_number", "REAL"), ("focal_length_mm", "REAL")))
V7 = V7_MEDIA + """
CREATE TABLE streams (
    file_id        INTEGER NOT NULL,
    idx            INTEGER NOT NULL,
    type           TEXT    NOT NULL,
    codec          TEXT,
    profile        TEXT,
    width          INTEGER,
    height         INTEGER,
    frame_rate     REAL,
    bit_depth      INTEGER,
    pix_fmt        TEXT,
    color_transfer TEXT,
    channels       INTEGER,
    channel_layout TEXT,
    sample_rate    INTEGER,
    language       TEXT,
    title          TEXT,
    is_default     INTEGER NOT NULL,
    is_forced      INTEGER NOT NULL,
    PRIMARY KEY (file_id, idx)
);

DROP TRIGGER media_ai;
DROP TRIGGER media_ad;
DROP TRIGGER media_au;
DROP TABLE media_fts;
CREATE VIRTUAL TABLE media_fts USING FTS5 (
    title, artist, album, album_artist, genre, show, content=[media]
);
CREATE TRIGGER media_ai AFTER INSERT ON media BEGIN
    INSERT INTO media_fts (rowid, title, artist, album, album_artist, genre, show)
    VALUES (new.rowid, new.title, new.artist, new.album, new.album_artist, new.genre, new.show);
END;
CREATE TRIGGER media_ad AFTER DELETE ON media BEGIN
    INSERT INTO media_fts (media_fts, rowid, title, artist, album, album_artist, genre, show)
    VALUES ('delete', old.rowid, old.title, old.artist, old.album, old.album_artist, old.genre,
            old.show);
END;
CREATE TRIGGER media_au AFTER UPDATE ON media BEGIN
    INSERT INTO media_fts (media_fts, rowid, title, artist, album, album_artist, genre, show)
    VALUES ('delete', old.rowid, old.title, old.artist, old.album, old.album_artist, old.genre,
            old.show);
    INSERT INTO media_fts (rowid, title, artist, album, album_artist, genre, show)
    VALUES (new.rowid, new.title, new.artist, new.album, new.album_artist, new.genre, new.show);
END;
INSERT INTO media_fts (media_fts) VALUES ('rebuild');

UPDATE files SET tags_hash = NULL WHERE kind = 'video';
"""


def _v7(conn: sqlite3.Connection) -> None:
    _script(V7)(conn)
    views.recreate(conn)


# _v4: the feed's job_id and 'tagged' changes; views.recreate: schema 5, the views of views.py
MIGRATIONS: tuple[Callable[[sqlite3.Connection], None], ...] = (
    _script(V1), _script(V2), _v3, _v4, views.recreate, _script(V6), _v7)
VERSION = len(MIGRATIONS)


class SchemaTooNew(RuntimeError):
    pass


def version(conn: sqlite3.Connection) -> int:
    return conn.execute("PRAGMA user_version").fetchone()[0]


def migrate(conn: sqlite3.Connection) -> int:
    """Bring the catalogue to `VERSION`, one transaction per step; returns the old version."""
    start = version(conn)
    if start > VERSION:
        raise SchemaTooNew(
            f"the catalogue has schema version {start}, newer than this indexer knows ({VERSION}); "
            "upgrade indexer"
        )
    for step in range(start, VERSION):
        conn.execute("BEGIN IMMEDIATE")  # (callers retry this while another process writes)
        try:
            if version(conn) == step:  # another process may have migrated meanwhile
                MIGRATIONS[step](conn)
                conn.execute(f"PRAGMA user_version = {step + 1}")
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:  # SQLite may have rolled back itself (a full disk)
                conn.execute("ROLLBACK")
            raise
    return start
