"""Make catalogue-v1.db: a catalogue as schema version 1 (the first release) left it,
for the upgrade test. Run from this folder; the file is committed.

    python make_v1_catalogue.py
"""

import os
import sqlite3
import sys

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", ".."))
from indexer import schema  # noqa: E402

TARGET = os.path.join(os.path.dirname(__file__), "catalogue-v1.db")
NOW = "2026-01-01T00:00:00.000Z"

if os.path.exists(TARGET):
    os.remove(TARGET)
conn = sqlite3.connect(TARGET, isolation_level=None)
conn.execute("PRAGMA journal_mode = DELETE")  # one file to commit
schema.MIGRATIONS[0](conn)
conn.execute("PRAGMA user_version = 1")
rows = [
    ("/srv/music", "/srv/music/A/01 one.flac", None, "/srv/music/A", 1000, 11, 101, 1, "a" * 32, "audio", "present", None, None),
    ("/srv/music", "/srv/music/A/02 two.mp3", None, "/srv/music/A", 2000, 12, 102, 1, "b" * 32, "audio", "present", None, None),
    ("/srv/music", "/srv/music/A/cover.jpg", None, "/srv/music/A", 300, 13, 103, 1, "c" * 32, "image", "present", None, None),
    ("/srv/music", "/srv/music/B/gone.ogg", None, "/srv/music/B", 400, 14, 104, 1, "d" * 32, "audio", "missing", NOW, None),
    ("/srv/music", "/srv/music/B/caf\\xe9.ogg", b"/srv/music/B/caf\xe9.ogg", "/srv/music/B", 500, 15, 105, 1, None, "audio", "present", None, "PermissionError: Permission denied"),
]
conn.executemany(
    "INSERT INTO files (root, path, path_raw, dir, size, mtime_ns, inode, device, hash, kind, "
    "status, first_seen, updated_at, missing_since, error) "
    f"VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, '{NOW}', '{NOW}', ?, ?)", rows)
conn.execute("INSERT INTO scan_jobs (kind, mode, roots, status, started_at, finished_at, "
             "files_found, added) VALUES ('full', 'parallel', '[\"/srv/music\"]', 'completed', "
             f"'{NOW}', '{NOW}', 5, 5)")
conn.close()
print(f"made {TARGET}")
