"""Faults: a locked catalogue, a full disk, an unmounted root, an old catalogue, and
the promises that hold whatever happens: nothing written under a root, and a control
socket that only its owner may use and that no request can crash."""

from __future__ import annotations

import json
import os
import shutil
import socket
import sqlite3
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from indexer import schema
from conftest import DATA, cli_env, connect, files, indexer, make_library, wait_for
from test_daemon import FAST, service_config

root_only = pytest.mark.skipif(os.geteuid() != 0, reason="mounting needs root")


def snapshot(root: Path) -> dict[str, tuple]:
    """Every name under a root with its size, mtime and mode: what a scan must not change."""
    found = {}
    for folder, dirs, names in os.walk(root):
        for name in dirs + names:
            info = os.lstat(os.path.join(folder, name))
            found[os.path.join(folder, name)] = (info.st_size, info.st_mtime_ns, info.st_mode)
    return found


def test_a_scan_and_the_service_never_create_change_or_delete_anything_under_a_root(
        library, tmp_path):
    shutil.copyfile(DATA / "art.mp3", library / "Artist 0" / "with cover.mp3")  # art is cached
    before = snapshot(library)
    env = cli_env(tmp_path, INDEXER_DB=str(tmp_path / "library.db"))
    indexer("scan", library, env=env, check=True)
    indexer("scan", library, "--rehash", env=env, check=True)
    from indexer.daemon import Service
    service = Service(service_config(tmp_path / "library.db", [library]))
    thread = threading.Thread(target=service.run, daemon=True)
    thread.start()
    try:
        wait_for(lambda: service.last_reconcile, timeout=20, what="a reconcile by the service")
    finally:
        service.stop()
        thread.join(timeout=10)
    assert snapshot(library) == before


def test_a_catalogue_locked_by_another_process_is_waited_for_and_nothing_is_dropped(
        library, tmp_path):
    db = tmp_path / "library.db"
    env = cli_env(tmp_path, INDEXER_DB=str(db), INDEXER_DATABASE_BUSY_TIMEOUT_S="0.3")
    indexer("scan", library, env=env, check=True)
    song = library / "Artist 0" / "late.flac"
    shutil.copyfile(DATA / "tone.flac", song)
    holder = subprocess.Popen(  # another program holds the write lock for 2 s
        [sys.executable, "-c", f"import sqlite3, sys, time; c = sqlite3.connect({str(db)!r}, "
         "isolation_level=None); c.execute('BEGIN IMMEDIATE'); print('locked', flush=True); "
         "time.sleep(2); c.execute('COMMIT')"], stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline() == "locked\n"
    result = indexer("scan", library, "--json", env=env)
    holder.wait(timeout=10)
    assert result.returncode == 0, result.stderr
    assert "locked by another process: waiting" in result.stderr
    assert json.loads(result.stdout)["added"] == 1 and str(song) in files(db)
    with connect(db) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"


def test_a_catalogue_of_schema_1_is_migrated_in_place_with_every_row_kept(tmp_path, library):
    db = tmp_path / "old.db"
    shutil.copyfile(DATA / "catalogue-v1.db", db)
    with connect(db) as conn:
        before = [tuple(r) for r in conn.execute("SELECT * FROM files ORDER BY id")]
        jobs = [tuple(r) for r in conn.execute("SELECT id, kind, status FROM scan_jobs")]
        feed = [tuple(r) for r in conn.execute("SELECT * FROM changes ORDER BY seq")]

    indexer("scan", library, "--db", db, env=cli_env(tmp_path), check=True)

    with connect(db) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == schema.VERSION == 7
        after = [tuple(r)[:-2] for r in conn.execute(  # less the new tags_hash and ctime_ns
            "SELECT * FROM files WHERE root = '/srv/music' ORDER BY id")]
        assert [tuple(r) for r in conn.execute(
            "SELECT id, kind, status FROM scan_jobs WHERE id = 1")] == jobs
        assert conn.execute("SELECT count(*) FROM media").fetchone()[0] == 12
        # the feed is copied whole into schema 4's table (no job known for its rows), and
        # its numbers go on from there, each new change with the job that made it
        assert [tuple(r) for r in conn.execute(
            "SELECT * FROM changes ORDER BY seq LIMIT ?", (len(feed),))] == [
            (*row, None) for row in feed]
        assert conn.execute("SELECT count(*) FROM changes WHERE seq > ? AND job_id IS NOT "
                            "(SELECT max(id) FROM scan_jobs)", (feed[-1][0],)).fetchone()[0] == 0
        assert conn.execute("SELECT min(seq) FROM changes WHERE seq > ?",
                            (feed[-1][0],)).fetchone()[0] == feed[-1][0] + 1
    assert after == before


@root_only
def test_a_full_disk_is_a_clear_error_and_the_work_resumes_when_there_is_room(tmp_path, library):
    mount = tmp_path / "small"
    mount.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=200k", "tmpfs", str(mount)], check=True)
    try:
        for n in range(300):  # more rows than 200 KiB of catalogue holds
            (library / "Artist 1" / f"extra {n:03d}.mp3").write_bytes(f"extra {n}".encode())
        db = mount / "library.db"
        env = cli_env(tmp_path, INDEXER_DB=str(db))
        full = indexer("scan", library, env=env)
        assert full.returncode == 1
        assert "database or disk is full" in full.stderr and str(mount) in full.stderr
        with connect(db) as conn:
            assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        subprocess.run(["mount", "-o", "remount,size=20m", str(mount)], check=True)
        indexer("scan", library, env=env, check=True)
        assert len(files(db, "present")) == 15 + 300
    finally:
        subprocess.run(["umount", str(mount)], check=False)


@root_only
def test_an_unmounted_root_is_offline_marks_nothing_missing_and_is_reconciled_when_back(
        tmp_path):
    from indexer.daemon import Service
    disk, root = tmp_path / "disk", tmp_path / "music"
    disk.mkdir()
    root.mkdir()
    make_library(disk, albums=2, tracks=2)
    subprocess.run(["mount", "--bind", str(disk), str(root)], check=True)
    db = tmp_path / "library.db"
    service = Service(service_config(db, [root]))
    thread = threading.Thread(target=service.run, daemon=True)
    thread.start()
    try:
        # The catalogue's tables exist once the first reconcile is done; the files
        # just made may be indexed by a later pass, once they held still.
        wait_for(lambda: service.last_reconcile, timeout=20, what="the first reconcile")
        wait_for(lambda: len(files(db, "present")) == 6, timeout=20, what="the library indexed")
        ids = {p: r["id"] for p, r in files(db).items()}
        subprocess.run(["umount", str(root)], check=True)
        wait_for(lambda: service.status()["service"]["roots"][str(root)] == "offline",
                 timeout=10, what="the root offline")
        assert all(r["status"] == "present" for r in files(db).values())
        shutil.copyfile(DATA / "tone.wav", disk / "added while away.wav")
        subprocess.run(["mount", "--bind", str(disk), str(root)], check=True)
        wait_for(lambda: str(root / "added while away.wav") in files(db), timeout=15,
                 what="the reconcile after the mount")
        assert {p: r["id"] for p, r in files(db).items() if p in ids} == ids
        assert all(r["status"] == "present" for r in files(db).values())
    finally:
        service.stop()
        thread.join(timeout=10)
        subprocess.run(["umount", str(root)], check=False)


@pytest.fixture
def running_service(music_root, tmp_path):
    from indexer.daemon import Service
    service = Service(service_config(tmp_path / "library.db", [music_root]))
    thread = threading.Thread(target=service.run, daemon=True)
    thread.start()
    wait_for(lambda: service.last_reconcile, timeout=20, what="the service")
    yield service
    service.stop()
    thread.join(timeout=10)


@pytest.fixture
def music_root(tmp_path):
    root = tmp_path / "music"
    root.mkdir()
    make_library(root, albums=1, tracks=2)
    return root


def _socket_of(db: Path) -> str:
    return (db.with_name(db.name + ".lock")).read_text().splitlines()[1]


def test_the_control_socket_is_its_owners_and_its_groups_alone(running_service, tmp_path):
    address = Path(_socket_of(tmp_path / "library.db"))
    assert oct(address.stat().st_mode & 0o777) == "0o660"
    assert oct(address.parent.stat().st_mode & 0o777) == "0o750"
    if os.geteuid() == 0:  # a user in neither cannot even reach it
        code = subprocess.run(
            ["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups", "--",
             "/usr/bin/python3", "-c", "import socket, sys; s = socket.socket(socket.AF_UNIX); "
             f"s.connect({str(address)!r})"], capture_output=True, text=True)
        assert code.returncode != 0 and "PermissionError" in code.stderr


@pytest.mark.parametrize("request_bytes, error", [
    (b"this is not json\n", "not a JSON request"),
    (b'{"cmd": "format-disk"}\n', "unknown command"),
    (b'{"cmd": []}\n', "unknown command"),
    (b'{"cmd": {"status": 1}}\n', "unknown command"),
    (b'["status"]\n', "unknown command"),
    (b'{"cmd": "rescan", "roots": "/"}\n', "roots must be a list"),
    (b'{"cmd": "purge", "ids": ["1; DROP TABLE files"]}\n', "ids must be a list of file ids"),
    (b'{"cmd": "status", "extra": 1}\n', "unknown fields"),
    (b"[" * 70_000 + b"\n", "request over"),
], ids=["garbage", "unknown", "cmd-list", "cmd-object", "a-list", "bad-roots", "bad-ids",
        "extra-field", "oversized"])
def test_a_malformed_or_oversized_request_gets_an_error_and_the_service_goes_on(
        running_service, tmp_path, request_bytes, error):
    address = _socket_of(tmp_path / "library.db")
    with socket.socket(socket.AF_UNIX) as conn:
        conn.connect(address)
        conn.sendall(request_bytes)
        answer = json.loads(conn.makefile("rb").readline())
    assert answer["event"] == "error" and error in answer["error"]
    with socket.socket(socket.AF_UNIX) as conn:  # still serving
        conn.connect(address)
        conn.sendall(b'{"cmd": "status"}\n')
        assert json.loads(conn.makefile("rb").readline())["event"] == "status"


def test_names_and_tags_holding_sql_are_stored_verbatim(tmp_path):
    from mutagen.flac import FLAC
    root = tmp_path / "music"
    root.mkdir()
    name = "Robert'); DROP TABLE files;--.flac"
    shutil.copyfile(DATA / "tone.flac", root / name)
    tagged = FLAC(root / name)
    tagged["title"] = "'; DELETE FROM media; --"
    tagged.save()
    db = tmp_path / "library.db"
    indexer("scan", root, env=cli_env(tmp_path, INDEXER_DB=str(db)), check=True)
    with connect(db) as conn:
        row = conn.execute("SELECT f.path, m.title FROM files f JOIN media m ON m.file_id = f.id"
                           ).fetchone()
    assert tuple(row) == (str(root / name), "'; DELETE FROM media; --")


@root_only
def test_a_root_mounted_read_only_is_scanned_and_watched_as_any_other(tmp_path):
    from indexer.daemon import Service
    disk, root = tmp_path / "disk", tmp_path / "music"
    disk.mkdir()
    root.mkdir()
    make_library(disk, albums=2, tracks=2)
    subprocess.run(["mount", "--bind", str(disk), str(root)], check=True)
    subprocess.run(["mount", "-o", "remount,bind,ro", str(root)], check=True)
    db = tmp_path / "library.db"
    try:
        with pytest.raises(OSError):
            (root / "probe").write_text("x")  # truly read-only, even for root
        indexer("scan", root, "--rehash", env=cli_env(tmp_path, INDEXER_DB=str(db)), check=True)
        service = Service(service_config(db, [root]))
        thread = threading.Thread(target=service.run, daemon=True)
        thread.start()
        try:
            wait_for(lambda: service.last_reconcile, timeout=20, what="a reconcile")
            assert service.status()["service"]["roots"] == {str(root): "inotify"}
            # The disk changes underneath (through its writable path): the watch sees it.
            shutil.copyfile(DATA / "tone.flac", disk / "added.flac")
            wait_for(lambda: str(root / "added.flac") in files(db, "present"), timeout=20,
                     what="a file added under the read-only mount to be indexed")
        finally:
            service.stop()
            thread.join(timeout=10)
        assert len(files(db, "present")) == 7
    finally:
        subprocess.run(["umount", str(root)], check=False)


def test_a_client_that_stops_reading_never_blocks_the_thread_that_answers_it():
    """Progress answers come from the writer's thread: sending must never wait on a client
    (Ctrl-Z on `indexer rescan` stalled the whole service). A socket pair, the far end
    never read."""
    import time
    from indexer.control import Sender
    service_end, client_end = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    with service_end, client_end:
        send = Sender(service_end, room=50, timeout=0.5)
        line = {"event": "progress", "padding": "x" * 20_000}
        slowest = 0.0
        for _ in range(200):  # ~4 MB: far more than the socket holds
            started = time.monotonic()
            send(line)
            slowest = max(slowest, time.monotonic() - started)
        wait_for(lambda: send.dropped, timeout=5, what="the client dropped")
        started = time.monotonic()
        send.close()
        assert slowest < 0.05 and time.monotonic() - started < 2


def test_a_client_that_reads_gets_every_answer_in_order():
    from indexer.control import Sender
    service_end, client_end = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    with service_end, client_end:
        send = Sender(service_end, timeout=5)
        received = []
        reader = threading.Thread(target=lambda: received.extend(
            json.loads(line)["n"] for line in client_end.makefile("rb")))
        reader.start()
        for n in range(500):
            send({"n": n, "padding": "y" * 2_000})
        send.close()
        service_end.shutdown(socket.SHUT_WR)
        reader.join(timeout=10)
    assert received == list(range(500))
