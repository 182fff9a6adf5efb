"""The service never dies of one failure: a scan's unforeseen error fails that job, a turn
of the loop that fails is logged and the loop goes on, a helper thread that dies stops the
service loudly (exit 1: systemd starts it again), a purge waits for a lock held by another
process. Real service, real catalogue, real locks."""

from __future__ import annotations

import json
import logging
import os
import shutil
import sqlite3
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from conftest import DATA, cli_env, connect, files, indexer, make_library, wait_for
from indexer import catalog
from indexer.config import LibraryConfig
from indexer.daemon import Service
from indexer.scan import Scan
from indexer.walk import looks_unmounted
from test_daemon import daemon_process, reconciled, service_config  # noqa: F401 (a fixture)


@pytest.fixture
def music(tmp_path) -> Path:
    root = tmp_path / "music"
    make_library(root, albums=2, tracks=2)
    return root


def start(service: Service) -> threading.Thread:
    """Run the service in a thread; its exit code lands in `service.exit_code`."""
    thread = threading.Thread(target=lambda: setattr(service, "exit_code", service.run()),
                              daemon=True)
    thread.start()
    wait_for(lambda: service.last_reconcile, timeout=20, what="the first reconcile")
    return thread


def test_a_scan_that_cannot_even_start_its_job_fails_with_its_reason_and_raises_nothing(
        tmp_path, music):
    db = tmp_path / "library.db"
    cfg = service_config(db, [music])
    with catalog.open_for_writing(db) as write_conn:
        holder = sqlite3.connect(db, isolation_level=None, timeout=0)
        holder.execute("BEGIN IMMEDIATE")  # another process writing, past every retry
        try:
            stop = threading.Event()
            stop.set()  # (the retries end at once instead of after 10 minutes)
            job = Scan(write_conn, catalog.connect(db), cfg.library, cfg.scan, roots=[str(music)],
                       stop=stop)
            result = job.run()
        finally:
            holder.execute("ROLLBACK")
            holder.close()
    assert (result.status, result.job_id) == ("failed", 0)
    assert "could not start a scan job" in result.message and "locked" in result.message


def test_a_root_gone_while_it_is_scanned_looks_unmounted():
    assert looks_unmounted("/nonexistent/indexer-test-root")


def test_a_turn_of_the_loop_that_fails_is_logged_and_the_service_goes_on(
        tmp_path, music, caplog):
    def broken_reload():
        raise RuntimeError("a bug in reloading")
    service = Service(service_config(tmp_path / "library.db", [music]), reload=broken_reload)
    thread = start(service)
    try:
        with caplog.at_level(logging.ERROR, logger="indexer.daemon"):
            service.reload()  # as SIGHUP: this turn of the loop raises
            wait_for(lambda: "a bug in reloading" in caplog.text, timeout=10, what="the log")
        song = music / "Artist 0" / "after the failure.flac"
        shutil.copyfile(DATA / "tone.flac", song)
        wait_for(lambda: str(song) in files(tmp_path / "library.db", "present"), timeout=20,
                 what="the service still indexing")
        assert thread.is_alive()
    finally:
        service.stop()
        thread.join(timeout=10)


def test_a_helper_thread_that_dies_stops_the_service_loudly_with_exit_1(tmp_path, music,
                                                                         caplog):
    service = Service(service_config(tmp_path / "library.db", [music]))
    thread = start(service)
    with caplog.at_level(logging.CRITICAL, logger="indexer.daemon"):
        service._thread(lambda: 1 / 0, "test")
        thread.join(timeout=15)
    assert not thread.is_alive() and service.exit_code == 1
    assert "the service's test thread died (ZeroDivisionError" in caplog.text


def test_a_purge_through_the_service_waits_for_another_writers_lock(tmp_path, music,
                                                                    daemon_process):
    db = tmp_path / "library.db"
    daemon_process(music, INDEXER_DATABASE_BUSY_TIMEOUT_S="0.2")
    wait_for(lambda: reconciled(db) and len(files(db, "present")) == 6, timeout=20,
             what="the library indexed")
    gone = next(music.rglob("*.flac"))
    gone.unlink()
    env = cli_env(tmp_path, INDEXER_DB=str(db))
    indexer("rescan", env=env, check=True)
    with connect(db) as conn:
        conn.execute("UPDATE files SET missing_since = '2020-01-01T00:00:00.000Z' "
                     "WHERE status = 'missing'")
    holder = sqlite3.connect(db, isolation_level=None, timeout=5, check_same_thread=False)
    holder.execute("BEGIN IMMEDIATE")
    release = threading.Timer(1.5, lambda: (holder.execute("ROLLBACK"), holder.close()))
    release.start()  # held for several busy timeouts: the purge must wait, not fail

    result = indexer("purge", "--missing-older-than", "30d", "--yes", env=env)

    release.join()
    assert result.returncode == 0, result.stderr
    assert "deleted 1 row and" in result.stdout
    assert str(gone) not in files(db)
    assert indexer("status", env=env, check=True).stdout.startswith("catalogue")


def test_rescan_looks_at_an_offline_root_at_once_and_says_which_stay_offline(
        tmp_path, daemon_process):
    first, second = tmp_path / "first", tmp_path / "second"
    make_library(first, albums=1, tracks=2)
    make_library(second, albums=1, tracks=1)
    db = tmp_path / "library.db"
    env = cli_env(tmp_path, INDEXER_DB=str(db))
    config = tmp_path / "config.toml"
    config.write_text(f'[library]\nroots = ["{first}", "{second}"]\n'
                      '[watch]\npoll_interval_s = 3600\n'  # no poll brings a root back
                      'settle_seconds = 0.2\n')
    env["INDEXER_CONFIG"] = str(config)
    process = subprocess.Popen([sys.executable, "-m", "indexer", "run"], env=env,
                               stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
    try:
        wait_for(lambda: reconciled(db) and len(files(db, "present")) == 5, timeout=20,
                 what="both roots indexed")
        second.rename(tmp_path / "away")
        wait_for(lambda: json.loads(indexer("status", "--json", env=env).stdout)["service"]
                 ["roots"][str(second)] == "offline", timeout=10, what="the root offline")

        asked = indexer("rescan", str(second), "--json", env=env)
        assert asked.returncode == 1
        assert json.loads(asked.stdout.splitlines()[-1]) == {"offline": [str(second)]}

        (tmp_path / "away").rename(second)
        (second / "added while away.flac").write_bytes(b"new while the root was away")
        again = indexer("rescan", env=env)
        assert again.returncode == 0, again.stderr
        wait_for(lambda: str(second / "added while away.flac") in files(db, "present"),
                 timeout=10, what="the root back and reconciled, long before its next poll")
    finally:
        process.terminate()
        process.communicate(timeout=15)


needs_mounts = pytest.mark.skipif(os.geteuid() != 0, reason="mounting needs root")


@pytest.fixture
def full_disk(tmp_path, music):
    """A service whose catalogue's disk (a 200 KiB tmpfs) filled up: once it waits for
    room, (the service, the catalogue's folder); stopped and unmounted at the end."""
    for n in range(300):  # more rows than 200 KiB of catalogue holds
        (music / "Artist 1" / f"extra {n:03d}.mp3").write_bytes(f"extra {n}".encode())
    state = tmp_path / "state"
    state.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=200k", "tmpfs", str(state)], check=True)
    service = Service(service_config(state / "library.db", [music]))
    thread = threading.Thread(target=service.run, daemon=True)
    thread.start()
    try:
        wait_for(lambda: service.status()["service"]["waiting_for_room"] == str(state),
                 timeout=30, what="the service waiting for room")
        yield service, state
    finally:
        service.stop()
        thread.join(timeout=10)
        subprocess.run(["umount", str(state)], check=False)


@needs_mounts
def test_a_full_catalogue_disk_is_waited_for_said_and_the_work_resumes_within_seconds(
        full_disk):
    service, state = full_disk
    assert service.status()["service"]["current"] is None
    subprocess.run(["mount", "-o", "remount,size=20m", str(state)], check=True)
    wait_for(lambda: reconciled(state / "library.db")
             and len(files(state / "library.db", "present")) == 6 + 300, timeout=15,
             what="every file indexed once there is room")
    assert service.status()["service"]["waiting_for_room"] is None


@needs_mounts
def test_a_full_disk_seen_only_once_room_was_back_is_tried_again_not_waited_on_forever(
        full_disk, monkeypatch):
    # The failure is noticed after the room came back (the free space then measured is
    # not "full" and does not grow): the service tries again, and takes the work up.
    from indexer import daemon
    monkeypatch.setattr(daemon, "ROOM_RETRY_S", 1.0)
    service, state = full_disk
    subprocess.run(["mount", "-o", "remount,size=20m", str(state)], check=True)
    service._wait_for_room("seen late")  # as a failure seen once the room is back
    wait_for(lambda: reconciled(state / "library.db")
             and len(files(state / "library.db", "present")) == 6 + 300, timeout=15,
             what="every file indexed")
    assert service.status()["service"]["waiting_for_room"] is None


def test_a_reload_applies_every_key_it_can_and_names_those_that_need_a_restart(
        tmp_path, music, caplog):
    db = tmp_path / "library.db"
    settings = {"service.log_level": "info", "reconcile.interval": "6h"}

    def config():
        return service_config(db, [music], **settings)
    service = Service(config(), reload=config)
    thread = start(service)
    try:
        wait_for(lambda: len(files(db, "present")) == 6, timeout=20, what="the library indexed")
        settings.update({"library.ignore": ["*.ogg"], "watch.debounce_ms": 250,
                         "watch.settle_seconds": 0.2, "reconcile.interval": "90m",
                         "service.log_level": "warning", "database.synchronous": "normal"})
        with caplog.at_level(logging.INFO, logger="indexer"):
            service.reload()
            wait_for(lambda: logging.getLogger("indexer").level == logging.WARNING, timeout=10,
                     what="the reload, whose last step is the log level")
        assert "database.synchronous changed: it takes effect when the service restarts" \
            in caplog.text
        assert service.debouncer.quiet == 0.25
        trigger = service._scheduler.get_job("reconcile").trigger
        assert trigger.interval.total_seconds() == 5400
        assert service.config.database.synchronous == "full"  # the open catalogue's
        ogg = next(music.rglob("*.ogg"))  # ignored now: the reconcile after the reload
        wait_for(lambda: files(db)[str(ogg)]["status"] == "missing", timeout=10,
                 what="the newly ignored file no longer indexed")
        new_ogg = music / "Artist 0" / "new.ogg"
        new_flac = music / "Artist 0" / "new.flac"
        new_ogg.write_bytes(b"ignored from now on")
        new_flac.write_bytes(b"indexed")
        wait_for(lambda: str(new_flac) in files(db, "present"), timeout=10, what="the flac")
        assert str(new_ogg) not in files(db)
    finally:
        logging.getLogger("indexer").setLevel(logging.NOTSET)
        service.stop()
        thread.join(timeout=10)


@pytest.mark.skipif(os.geteuid() != 0, reason="mounting needs root")
def test_changes_while_the_catalogue_disk_is_full_wait_for_room_without_failing_scans(
        tmp_path, music, caplog):
    state = tmp_path / "state"
    state.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=20m", "tmpfs", str(state)], check=True)
    service = Service(service_config(state / "library.db", [music]))
    thread = threading.Thread(target=service.run, daemon=True)
    thread.start()
    try:
        wait_for(lambda: reconciled(state / "library.db"), timeout=20, what="the first reconcile")
        with open(state / "ballast", "wb", buffering=0) as ballast:
            with pytest.raises(OSError):
                while True:
                    ballast.write(b"\0" * 4096)
        (music / "Artist 0" / "first.mp3").write_bytes(b"the scan of this finds the disk full")
        wait_for(lambda: service.status()["service"]["waiting_for_room"], timeout=10,
                 what="the service waiting for room")
        caplog.clear()
        for n in range(3):
            (music / "Artist 1" / f"while full {n}.mp3").write_bytes(b"written while full")
            wait_for(lambda: service.status()["service"]["queued"], timeout=10,
                     what="the change held until there is room")  # not a scan bound to fail
        assert "could not" not in caplog.text
        (state / "ballast").unlink()
        wait_for(lambda: len(files(state / "library.db", "present")) == 6 + 4, timeout=15,
                 what="every file indexed once there is room")
        assert service.status()["service"]["waiting_for_room"] is None
    finally:
        service.stop()
        thread.join(timeout=10)
        subprocess.run(["umount", str(state)], check=False)
