"""The change feed as a follower reads it: tags announced in the snapshot that holds them,
every change with its job, purges traced, numbers never given twice even after a lost
commit, and the example follower of docs/ staying an exact mirror through kills."""

from __future__ import annotations

import os
import random
import shutil
import signal
import sqlite3
import subprocess
import sys
import threading
from pathlib import Path

import mutagen
import pytest

from conftest import DATA, cli_env, connect, files, indexer, make_library, wait_for
from indexer import Manager, catalog
from indexer.purge import cutoff
from indexer.daemon import Service
from test_daemon import service_config

FOLLOWER = Path(__file__).resolve().parents[1] / "docs" / "examples" / "follower.py"


def feed(db: Path) -> list[sqlite3.Row]:
    with connect(db) as conn:
        return list(conn.execute("SELECT * FROM changes ORDER BY seq"))


def scan(db: Path, root: Path, **settings):
    return Manager(db_path=db, roots=[str(root)], env={}, settings=settings).scan()


def test_every_file_is_added_then_tagged_by_its_job(tmp_path, library):
    db = tmp_path / "library.db"
    job = scan(db, library).job_id

    rows = feed(db)
    assert {r["job_id"] for r in rows} == {job}
    by_file: dict[int, list[str]] = {}
    for r in rows:
        by_file.setdefault(r["file_id"], []).append(r["kind"])
    assert set(by_file) == {r["id"] for r in files(db).values()}
    assert all(kinds == ["added", "tagged"] for kinds in by_file.values())  # covers too


def test_a_follower_sees_the_tags_in_the_snapshot_whose_feed_says_tagged(tmp_path):
    root, db = tmp_path / "music", tmp_path / "library.db"
    make_library(root, albums=10, tracks=8)
    scanning = threading.Thread(target=scan, args=(db, root), kwargs={"scan.batch_size": 5})
    scanning.start()
    looks = announced = 0
    while scanning.is_alive() or looks == 0:
        if not db.exists():
            continue
        with connect(db) as conn:
            try:
                conn.execute("BEGIN")
                untagged = conn.execute(
                    "SELECT count(*) FROM changes c JOIN files f ON f.id = c.file_id "
                    "WHERE c.kind = 'tagged' AND f.kind = 'audio' AND NOT EXISTS "
                    "(SELECT 1 FROM media m WHERE m.file_id = c.file_id)").fetchone()[0]
                announced = conn.execute(
                    "SELECT count(*) FROM changes WHERE kind = 'tagged'").fetchone()[0]
                conn.execute("COMMIT")
            except sqlite3.OperationalError:  # not created yet
                continue
        assert untagged == 0
        looks += 1
    scanning.join()
    assert looks > 1 and announced == 10 * 8 + 10


def test_a_retag_is_modified_then_tagged_and_a_copy_is_tagged_from_its_twin(tmp_path):
    root, db = tmp_path / "music", tmp_path / "library.db"
    root.mkdir()
    shutil.copyfile(DATA / "tone.flac", root / "song.flac")
    scan(db, root)
    tagged = mutagen.File(root / "song.flac")
    tagged["title"] = "A new title"
    tagged.save()
    shutil.copyfile(root / "song.flac", root / "copy.flac")

    job = scan(db, root).job_id

    song, copy = files(db)[str(root / "song.flac")], files(db)[str(root / "copy.flac")]
    later = [(r["file_id"], r["kind"], r["job_id"]) for r in feed(db) if r["job_id"] == job]
    assert sorted(later) == sorted([(song["id"], "modified", job), (song["id"], "tagged", job),
                                    (copy["id"], "added", job), (copy["id"], "tagged", job)])
    assert later.index((song["id"], "modified", job)) < later.index((song["id"], "tagged", job))
    with connect(db) as conn:
        assert conn.execute("SELECT title FROM media WHERE file_id = ?",
                            (copy["id"],)).fetchone()[0] == "A new title"


def test_purge_leaves_a_purged_change_per_row_made_by_a_purge_job(tmp_path, library):
    db = tmp_path / "library.db"
    env = cli_env(tmp_path, INDEXER_DB=str(db))
    indexer("scan", library, env=env, check=True)
    shutil.rmtree(library / "Artist 1")
    indexer("scan", library, env=env, check=True)
    gone = {r["id"] for r in files(db, "missing").values()}
    wait_for(lambda: _missing_for(db, 1.0), what="the rows missing for a second")

    indexer("purge", "--missing-older-than", "1s", "--yes", env=env, check=True)

    purged = [r for r in feed(db) if r["kind"] == "purged"]
    assert {r["file_id"] for r in purged} == gone and len(purged) == len(gone)
    with connect(db) as conn:
        job = conn.execute("SELECT * FROM scan_jobs WHERE id = ?", (purged[0]["job_id"],)).fetchone()
    assert (job["kind"], job["status"]) == ("purge", "completed")
    assert {r["job_id"] for r in purged} == {job["id"]} and f"purged {len(gone)} files" in job["message"]


def test_a_commit_lost_under_synchronous_normal_never_gives_its_seq_numbers_again(tmp_path):
    """A power cut with synchronous = normal: a writer's last commits, already read by a
    follower, are lost (the catalogue goes back to what was synced: a snapshot taken
    after the writer opened it); the scan that redoes them must number its changes past
    everything the follower saw."""
    root, db, snapshot = tmp_path / "music", tmp_path / "library.db", tmp_path / "snapshot.db"
    make_library(root, albums=1, tracks=2)
    with catalog.open_for_writing(db, "normal") as conn:
        with sqlite3.connect(snapshot) as copy:
            conn.backup(copy)  # what the disk holds: nothing after this is synced
        copy.close()
        for n in range(3):  # commits a follower reads, and the power cut takes
            conn.execute("INSERT INTO files (root, path, dir, size, mtime_ns, inode, device, "
                         "kind, first_seen, updated_at) VALUES (?, ?, ?, 1, 1, ?, 1, 'audio', "
                         "'t', 't')", (str(root), f"{root}/lost {n}.mp3", str(root), n))
    seen_by_follower = max(r["seq"] for r in feed(db))

    for name in ("library.db-wal", "library.db-shm"):  # the power cut: back to the snapshot
        (tmp_path / name).unlink(missing_ok=True)
    shutil.copyfile(snapshot, db)
    assert feed(db) == []
    scan(db, root, **{"database.synchronous": "normal"})  # redone

    assert min(r["seq"] for r in feed(db)) > seen_by_follower


# --- the example follower, against a live service


def _follower(db: Path, mirror: Path) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, str(FOLLOWER), str(db), str(mirror), "--follow"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def _mirror_equals_catalogue(db: Path, mirror: Path) -> None:
    subprocess.run([sys.executable, str(FOLLOWER), str(db), str(mirror)], check=True,
                   capture_output=True)
    with connect(db) as conn, sqlite3.connect(mirror) as copy:
        for table, columns in (("files", "id, path, status, size, hash"),
                               ("media", "file_id, content_hash, title, artist, album, "
                                         "album_artist, track_no, duration, error")):
            ours = sorted(tuple(r) for r in conn.execute(f"SELECT {columns} FROM {table}"))
            theirs = sorted(copy.execute(f"SELECT {columns} FROM {table}").fetchall())
            assert theirs == ours, table
    copy.close()


def test_the_example_follower_mirrors_a_live_service_through_kills_and_restarts(tmp_path):
    rng = random.Random(int(os.environ.get("INDEXER_FEED_SEED", "7")))
    root, db, mirror = tmp_path / "music", tmp_path / "library.db", tmp_path / "mirror.db"
    make_library(root, albums=3, tracks=4)
    service = Service(service_config(db, [root]))
    thread = threading.Thread(target=service.run, daemon=True)
    thread.start()
    follower = None
    try:
        wait_for(lambda: _settled(service, db, root), timeout=20, what="the library indexed")
        follower = _follower(db, mirror)
        tracks = sorted(p for p in root.rglob("*") if p.suffix in (".mp3", ".flac", ".ogg"))
        steps = [
            lambda: make_library(root / "Copied in", albums=2, tracks=3),
            lambda: tracks[0].rename(tracks[0].with_name("renamed.mp3")),
            lambda: (root / "Artist 1").rename(root / "Artist 1 (remastered)"),
            lambda: _retitle(next((root / "Artist 0").rglob("*.flac")), "Retitled"),
            lambda: tracks[-1].unlink(),
            lambda: shutil.rmtree(root / "Artist 2"),
            lambda: _purge_when_a_second_missing(db, tmp_path),
            lambda: shutil.copyfile(DATA / "tone.ogg", root / "Artist 0" / "new.ogg"),
        ]
        for step in steps:
            step()
            if rng.random() < 0.5:  # killed at rest, else while it may be applying
                wait_for(lambda: _position(mirror) >= _top(db), timeout=10, what="caught up")
            if rng.random() < 0.7:
                follower.send_signal(signal.SIGKILL)
                follower.wait()
                follower = _follower(db, mirror)
        wait_for(lambda: _settled(service, db, root), timeout=30, what="the service done")
    finally:
        if follower is not None:
            follower.kill()
            follower.wait()
        service.stop()
        thread.join(timeout=10)

    _mirror_equals_catalogue(db, mirror)
    with connect(db) as conn:
        kinds = {r[0] for r in conn.execute("SELECT DISTINCT kind FROM changes")}
    assert kinds == {"added", "tagged", "moved", "modified", "missing", "purged"}


def _position(mirror: Path) -> int:
    try:
        with sqlite3.connect(mirror, timeout=10) as conn:
            found = conn.execute("SELECT seq FROM position").fetchone()
        conn.close()
    except sqlite3.OperationalError:  # not made yet
        return -1
    return found[0] if found else -1


def _top(db: Path) -> int:
    with connect(db) as conn:
        return conn.execute("SELECT coalesce(max(seq), 0) FROM changes").fetchone()[0]


def _retitle(path: Path, title: str) -> None:
    tagged = mutagen.File(path)
    tagged["title"] = title
    tagged.save()


def _missing_for(db: Path, seconds: float) -> bool:
    """Whether some rows are missing, all of them for longer than `seconds`."""
    since = [r["missing_since"] for r in files(db, "missing").values()]
    return bool(since) and max(since) < cutoff(seconds / 86400)


def _purge_when_a_second_missing(db: Path, tmp_path: Path) -> None:
    wait_for(lambda: _missing_for(db, 1.0), timeout=10, what="a file missing for a second")
    indexer("purge", "--missing-older-than", "1s", "--yes",
            env=cli_env(tmp_path, INDEXER_DB=str(db)), check=True)


def _settled(service: Service, db: Path, root: Path) -> bool:
    if not db.exists():
        return False
    status = service.status()["service"]
    on_disk = {str(p) for p in root.rglob("*") if p.is_file() and p.suffix != ".nfo"}
    return (not (status["queued"] or status["pending_places"] or status["current"])
            and set(files(db, "present")) == on_disk)


def test_a_catalogue_of_schema_2_is_migrated_in_place_its_feed_kept_and_numbered_on(
        tmp_path, library):
    from indexer import schema
    db = tmp_path / "library.db"
    with connect(db) as conn:
        conn.isolation_level = None
        for step in schema.MIGRATIONS[:2]:
            step(conn)
        conn.execute("PRAGMA user_version = 2")
        for n in range(3):  # rows a schema-2 indexer wrote, its triggers their changes
            conn.execute("INSERT INTO files (root, path, dir, size, mtime_ns, inode, device, kind, "
                         "first_seen, updated_at) VALUES ('/srv/music', ?, '/srv/music', 1, 1, ?, "
                         "1, 'audio', 't', 't')", (f"/srv/music/{n}.mp3", n))
        conn.execute("INSERT INTO media (file_id, content_hash, title, extracted_at) "
                     "VALUES (1, 'h', 'Kept', 't')")
        conn.execute("DELETE FROM changes WHERE seq = 3")  # a number read, its row gone
        rows_before = [tuple(r) for r in conn.execute("SELECT * FROM files ORDER BY id")]
        feed_before = [tuple(r) for r in conn.execute("SELECT * FROM changes ORDER BY seq")]

    job = scan(db, library).job_id

    with connect(db) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == schema.VERSION
        assert [tuple(r)[:-1] for r in conn.execute(  # less the new ctime_ns
            "SELECT * FROM files WHERE id <= 3 ORDER BY id")] == rows_before
        assert conn.execute("SELECT title FROM media WHERE file_id = 1").fetchone()[0] == "Kept"
        old = [tuple(r) for r in conn.execute("SELECT * FROM changes WHERE seq <= 3 ORDER BY seq")]
        new = list(conn.execute("SELECT * FROM changes WHERE seq > 3 ORDER BY seq"))
        assert conn.execute("SELECT count(*) FROM tracks").fetchone()[0] == 12 + 1  # and "Kept"
    assert old == [(*row, None) for row in feed_before]
    assert new[0]["seq"] == 4 and {r["job_id"] for r in new} == {job}
    assert {r["kind"] for r in new} == {"added", "tagged"}
