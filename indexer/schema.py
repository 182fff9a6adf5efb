"""The catalogue's tables, indexes and triggers: our public interface to media servers.

docs/schema.md documents every column, and a test keeps the two in step. The
schema is versioned with `PRAGMA user_version`; `MIGRATIONS[n]` takes a
catalogue from version n to n + 1 inside one transaction, so an upgrade
either happens whole or not at all.

The `changes` feed is written by triggers, not by the scanner: any write to
`files`, from a scan, the daemon or a future tool, appends exactly the
changes it makes, in the same transaction.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable

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
    kind          TEXT    NOT NULL CHECK (kind IN ('audio', 'video', 'image', 'other')),
    status        TEXT    NOT NULL DEFAULT 'present' CHECK (status IN ('present', 'missing')),
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
    kind     TEXT    NOT NULL CHECK (kind IN ('added', 'modified', 'moved', 'missing', 'restored')),
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
-- also changed the content is 'moved' then 'modified'.
CREATE TRIGGER files_changed AFTER UPDATE ON files BEGIN
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
    status          TEXT    NOT NULL CHECK (status IN
                        ('running', 'completed', 'failed', 'cancelled', 'interrupted')),
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


def _v1(conn: sqlite3.Connection) -> None:
    for statement in _statements(V1):
        conn.execute(statement)


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


MIGRATIONS: tuple[Callable[[sqlite3.Connection], None], ...] = (_v1,)
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
        conn.execute("BEGIN IMMEDIATE")
        try:
            if version(conn) == step:  # another process may have migrated meanwhile
                MIGRATIONS[step](conn)
                conn.execute(f"PRAGMA user_version = {step + 1}")
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
    return start
