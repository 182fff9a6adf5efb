"""A transient failure is retried; only a verdict on a file's own bytes is final.

A full artwork cache, a tag worker stopped past its time limit or killed: the file
is read again on the next scan. A parse that hangs twice on the same content is a
verdict. `scan --rehash` reads every file's tags again."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import threading
import time
from pathlib import Path

import pytest

from conftest import DATA, connect, wait_for, workers_of
from indexer import Manager, catalog
from indexer.records import Hashed, Seen, Tags
from indexer.writer import Writer

root_only = pytest.mark.skipif(os.geteuid() != 0, reason="mounting needs root")


def tags_state(db: Path, name: str) -> tuple:
    """(media.error, files.tags_hash IS files.hash) of the file called `name`."""
    with connect(db) as conn:
        row = conn.execute("SELECT m.error, f.tags_hash IS f.hash FROM files f LEFT JOIN media m "
                           "ON m.file_id = f.id WHERE f.path LIKE ?", (f"%/{name}",)).fetchone()
    return tuple(row)


def distinct_flacs(root: Path, count: int, first: int = 0) -> None:
    """`count` real FLAC files, each with its own content (the `first`-th on)."""
    root.mkdir()
    for n in range(first, first + count):
        shutil.copyfile(DATA / "tone.flac", root / f"{n:03d}.flac")
        with open(root / f"{n:03d}.flac", "ab") as handle:
            handle.write(n.to_bytes(2, "big"))


def scan(db: Path, root: Path, **settings):
    return Manager(db_path=db, roots=[str(root)], env={}, settings=settings).scan()


@root_only
def test_a_full_artwork_cache_is_no_verdict_and_the_tags_are_read_when_there_is_room(tmp_path):
    root, db = tmp_path / "music", tmp_path / "state" / "library.db"
    root.mkdir()
    shutil.copyfile(DATA / "art.mp3", root / "01.mp3")  # a track with an embedded cover
    cache = db.parent / "artwork"
    cache.mkdir(parents=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4k,nr_inodes=3", "tmpfs", str(cache)],
                   check=True)
    try:
        (cache / "filler").write_bytes(b"x" * 4096)  # full: no room for the picture
        scan(db, root)
        error, done = tags_state(db, "01.mp3")
        assert error.startswith("OSError") and "No space left" in error and not done
    finally:
        subprocess.run(["umount", str(cache)], check=True)

    result = scan(db, root)  # nothing changed on disk: the tags are read again all the same

    assert tags_state(db, "01.mp3") == (None, 1)
    assert result.counters.metadata_extracted == 1


FILES = 40  # the worker is stopped while it starts or in the middle: never after the last


def test_a_tag_worker_stopped_past_its_time_limit_is_no_verdict_on_the_file(tmp_path):
    root, db = tmp_path / "music", tmp_path / "library.db"
    distinct_flacs(root, FILES)
    stopped: list[int] = []
    done = threading.Event()

    def stop_the_first_worker() -> None:  # as a user's SIGSTOP, or a machine that froze it
        first = wait_for(lambda: workers_of(os.getpid()) or done.is_set(), timeout=30,
                         what="a tag worker")
        if not done.is_set():
            os.kill(first[0], signal.SIGSTOP)
            stopped.append(first[0])

    watcher = threading.Thread(target=stop_the_first_worker)
    watcher.start()
    try:
        scan(db, root, **{"metadata.workers": 1, "metadata.timeout_s": 1})
    finally:
        done.set()
        watcher.join()
        for pid in stopped:
            try:
                os.kill(pid, signal.SIGCONT)
            except ProcessLookupError:
                pass
    def erred(kind: str) -> list[int]:
        return [n for n in range(FILES)
                if (tags_state(db, f"{n:03d}.flac")[0] or "").startswith(kind)]

    # Stopped in the middle: the item it was on timed out. Stopped while it started,
    # before its first item: no item is blamed, its chunk is left for later.
    timed_out, unplaced = erred("TimeoutError"), erred("WorkerUnavailable")
    assert stopped and (len(timed_out), bool(unplaced)) in ((1, False), (0, True))
    left = timed_out + unplaced
    assert all(tags_state(db, f"{n:03d}.flac")[1] == 0 for n in left)  # no verdict

    result = scan(db, root)

    assert all(tags_state(db, f"{n:03d}.flac") == (None, 1) for n in left)
    assert (result.counters.metadata_extracted, result.counters.bytes_processed) == (len(left), 0)


def test_a_parse_that_hangs_twice_on_the_same_content_is_a_verdict(tmp_path):
    seen = Seen("/m", "/m/a.flac", 1, 1, 1, 1, 1, "audio")
    hung = Tags("/m/a.flac", "h1", error="TimeoutError: reading the tags took over 1 s",
                final=False)
    with catalog.open_for_writing(tmp_path / "w.db") as conn:
        writer = Writer(conn, batch_size=1)
        writer.start_job("full", "sequential", ["/m"])
        writer.put(Hashed(seen, "h1"))

        def tags_hash():
            writer.flush()
            return conn.execute("SELECT tags_hash FROM files").fetchone()[0]
        writer.put(hung)
        assert tags_hash() is None   # once: the machine's fault, maybe
        writer.put(hung)
        assert tags_hash() == "h1"   # twice on the same content: the file's
        writer.finish("completed")


def test_rehash_reads_the_tags_of_every_file_again(tmp_path):
    root, db = tmp_path / "music", tmp_path / "library.db"
    root.mkdir()
    for name in ("tone.flac", "tone.ogg", "id3v24.mp3"):
        shutil.copyfile(DATA / name, root / name)
    (root / "notes.flac").write_text("not a FLAC file\n")  # a verdict, recorded
    scan(db, root)

    again = Manager(db_path=db, roots=[str(root)], env={}).scan(rehash=True)

    c = again.counters
    assert (c.metadata_queued, c.metadata_extracted, c.metadata_failed) == (4, 3, 1)
    assert c.metadata_copied == 0


@root_only
def test_a_failed_scan_leaves_no_worker_process_behind(tmp_path):
    root, state = tmp_path / "music", tmp_path / "state"
    distinct_flacs(root, 600)
    state.mkdir()
    # room for the new catalogue (about 300 KiB while it is made), not for 600 files' rows
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=700k", "tmpfs", str(state)], check=True)
    try:
        result = scan(state / "library.db", root)  # each failed scan left its tag workers
        assert result.status == "failed" and "full" in result.message
        assert result.counters.metadata_queued  # workers had been started
        assert workers_of(os.getpid()) == []
    finally:
        subprocess.run(["umount", str(state)], check=True)


def test_a_cancel_ends_a_scan_within_seconds_though_a_tag_worker_is_stopped(tmp_path):
    root, db = tmp_path / "music", tmp_path / "library.db"
    distinct_flacs(root, FILES)
    manager = Manager(db_path=db, roots=[str(root)], env={},
                      settings={"metadata.workers": 1, "metadata.timeout_s": 600})
    outcome: list = []
    running = threading.Thread(target=lambda: outcome.append(manager.scan()))
    running.start()
    stopped = wait_for(lambda: workers_of(os.getpid()), timeout=30, what="a tag worker")
    os.kill(stopped[0], signal.SIGSTOP)  # it reads nothing and answers nothing any more
    try:
        started = time.monotonic()
        manager.cancel()
        running.join(timeout=10)
        assert not running.is_alive() and time.monotonic() - started < 4
        assert outcome[0].status == "cancelled"
        assert workers_of(os.getpid()) == []
    finally:
        try:
            os.kill(stopped[0], signal.SIGCONT)
        except ProcessLookupError:
            pass


def test_the_service_reads_again_soon_the_tags_a_killed_worker_left_without_a_verdict(
        tmp_path, monkeypatch):
    from indexer import daemon
    from test_daemon import service_config
    monkeypatch.setattr(daemon, "TAGS_AGAIN_S", 0.5, raising=False)  # 10 s in service
    root, db = tmp_path / "music", tmp_path / "library.db"
    root.mkdir()
    service = daemon.Service(service_config(db, [root], **{"metadata.workers": 1}))
    thread = threading.Thread(target=service.run, daemon=True)
    thread.start()
    killed: list[int] = []
    try:
        wait_for(lambda: db.exists() and _reconciled(db), timeout=20, what="the first reconcile")
        distinct_flacs(root / "album", FILES)  # an album copied in: tags read by a worker
        killed.append(wait_for(lambda: workers_of(os.getpid()), timeout=30,
                               what="a tag worker")[0])
        os.kill(killed[0], signal.SIGKILL)  # the OOM killer, or an admin
        wait_for(lambda: _tagged(db) == FILES, timeout=30,
                 what="every file's tags, without a reconcile")
    finally:
        service.stop()
        thread.join(timeout=10)
    with connect(db) as conn:
        kinds = [k for (k,) in conn.execute("SELECT kind FROM scan_jobs ORDER BY id")]
    assert kinds.count("reconcile") == 1 and "watch" in kinds


def test_where_no_tag_worker_can_start_the_service_says_so_once_a_scan_and_waits_longer_each_time(
        tmp_path, monkeypatch, caplog):
    """A broken install (here: the workers' Python dies as it starts) is the machine's fault,
    not the files': no verdict, one warning a scan (not one a file), and the folders
    read again after waits that double, not every TAGS_AGAIN_S for ever. Once workers
    start again, a worker that dies on a file has that file read again after
    TAGS_AGAIN_S, however long the waits had grown."""
    from indexer import daemon, tagging
    from test_daemon import service_config
    monkeypatch.setattr(daemon, "TAGS_AGAIN_S", 0.2)
    monkeypatch.setattr(daemon, "TAGS_AGAIN_MAX_S", 0.8)
    root, db = tmp_path / "music", tmp_path / "library.db"
    root.mkdir()
    distinct_flacs(root / "anchor", 1, first=FILES)  # the root never empty: never unmounted
    service = daemon.Service(service_config(db, [root], **{"metadata.workers": 1}))
    thread = threading.Thread(target=service.run, daemon=True)
    caplog.set_level("INFO", logger="indexer")
    thread.start()
    try:
        wait_for(lambda: db.exists() and _reconciled(db), timeout=20, what="the first reconcile")
        monkeypatch.setenv("PYTHONIOENCODING", "no-such-codec")  # a worker dies as it starts
        distinct_flacs(root / "album", FILES)
        waits = lambda: [r.args[1] for r in caplog.records if "taken by no worker" in r.msg]
        wait_for(lambda: len(waits()) >= 5, timeout=30, what="five scans without tags")
        said = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"
                and "tags" in r.getMessage()]
        scans = len(waits())
        shutil.rmtree(root / "album")  # a scan that reads no tags: the waits stay long
        wait_for(lambda: _present(db) == 1, timeout=30, what="the album gone")
        monkeypatch.delenv("PYTHONIOENCODING")  # the install mended
        # Workers start again; one dies on a file: read again soon, not after the long wait
        monkeypatch.setattr(tagging, "READ_TAGS", "slow_stage:tags_dying_once")
        monkeypatch.setenv("SLOW_STAGE_ONCE", str(tmp_path / "died"))
        distinct_flacs(root / "other album", FILES - 1, first=FILES + 1)  # contents never seen
        shutil.copyfile(DATA / "tone.flac", root / "other album" / "dies once.flac")
        wait_for(lambda: _tagged(db) == FILES + 1, timeout=30, what="the other album's tags")
    finally:
        service.stop()
        thread.join(timeout=10)
    assert waits()[:5] == [0.2, 0.4, 0.8, 0.8, 0.8]
    assert len(said) == scans and all("no word on the files" in line for line in said), said
    soon = [r.args[1] for r in caplog.records if "got no verdict" in r.msg]
    assert (tmp_path / "died").exists() and soon == [0.2]


def _present(db: Path) -> int:
    with connect(db) as conn:
        return conn.execute("SELECT count(*) FROM files WHERE status = 'present'").fetchone()[0]


def _tagged(db: Path) -> int:
    with connect(db) as conn:
        return conn.execute("SELECT count(*) FROM files f JOIN media m ON m.file_id = f.id "
                            "WHERE f.tags_hash IS f.hash AND m.error IS NULL "
                            "AND f.status = 'present'").fetchone()[0]


def _reconciled(db: Path) -> bool:
    with connect(db) as conn:
        return conn.execute("SELECT 1 FROM scan_jobs WHERE kind = 'reconcile' AND "
                            "status = 'completed'").fetchone() is not None
