"""SIGKILL at random instants: the catalogue stays intact, and the next run converges to
exactly what a clean scan of the same tree gives.

Seeded and reproducible: INDEXER_CRASH_SEED=N reruns the same instants. Scans are
throttled (scan.max_read_mib_s) so that they last long enough for kills to land in
the middle of them: in the walk, in hashing, in tag reading, between commits.
"""

from __future__ import annotations

import os
import random
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import DATA, cli_env, connect, indexer, make_library, wait_for

SEED = int(os.environ.get("INDEXER_CRASH_SEED", "20261124"))
THROTTLE = {"INDEXER_SCAN_MAX_READ_MIB_S": "3", "INDEXER_SCAN_BATCH_SIZE": "5"}


def build(root: Path) -> None:
    make_library(root, albums=5, tracks=6)
    for n in range(12):  # something to read for a while
        (root / "Artist 0" / f"long {n}.flac").write_bytes(bytes([n]) * 250_000)


def catalogue(db: Path) -> dict[str, tuple]:
    """What must converge: every row's facts and every file's tags, by path."""
    with connect(db) as conn:
        rows = {r["path"]: (r["size"], r["mtime_ns"], r["hash"], r["kind"], r["status"])
                for r in conn.execute("SELECT * FROM files")}
        titles = {r["path"]: (r["title"], r["error"]) for r in conn.execute(
            "SELECT f.path, m.title, m.error FROM files f JOIN media m ON m.file_id = f.id")}
    return {path: (*facts, titles.get(path)) for path, facts in rows.items()}


def ids(db: Path) -> dict[str, int]:
    with connect(db) as conn:
        return {r["path"]: r["id"] for r in conn.execute("SELECT path, id FROM files")}


def assert_sound(db: Path) -> None:
    with connect(db) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        dupes = conn.execute("SELECT count(*) - count(DISTINCT path) FROM files").fetchone()[0]
        assert dupes == 0


def kill_after(cmd: list[str], env: dict, delay: float) -> None:
    process = subprocess.Popen(cmd, env=env, stdin=subprocess.DEVNULL,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        process.wait(timeout=delay)  # it may finish first: that is a trial too
    except subprocess.TimeoutExpired:
        process.send_signal(signal.SIGKILL)
        process.wait()


@pytest.fixture(scope="module")
def clean(tmp_path_factory):
    """The tree and what a clean, uninterrupted scan of it gives."""
    base = tmp_path_factory.mktemp("crash")
    root = base / "music"
    root.mkdir()
    build(root)
    db = base / "clean.db"
    indexer("scan", root, env=cli_env(base, INDEXER_DB=str(db)), check=True)
    return root, catalogue(db)


def scan_cmd(root: Path) -> list[str]:
    return [sys.executable, "-m", "indexer", "scan", str(root)]


@pytest.mark.parametrize("trial", range(10))
def test_a_full_scan_killed_at_any_instant_converges(clean, tmp_path, trial):
    root, expected = clean
    rng = random.Random(SEED * 100 + trial)
    db = tmp_path / "library.db"
    env = cli_env(tmp_path, INDEXER_DB=str(db), **THROTTLE)
    kill_after(scan_cmd(root), env, rng.uniform(0.05, 2.5))
    if db.exists():
        assert_sound(db)

    indexer("scan", root, env=cli_env(tmp_path, INDEXER_DB=str(db)), check=True)

    assert_sound(db)
    assert catalogue(db) == expected
    with connect(db) as conn:
        statuses = [r[0] for r in conn.execute("SELECT status FROM scan_jobs ORDER BY id")]
    assert statuses[-1] == "completed" and "running" not in statuses


@pytest.mark.parametrize("trial", range(10))
def test_an_incremental_scan_killed_at_any_instant_converges_and_keeps_ids(tmp_path, trial):
    rng = random.Random(SEED * 200 + trial)
    root = tmp_path / "music"
    root.mkdir()
    build(root)
    db = tmp_path / "library.db"
    indexer("scan", root, env=cli_env(tmp_path, INDEXER_DB=str(db)), check=True)
    before = ids(db)
    tracks = sorted(p for p in root.rglob("*") if p.is_file() and p.suffix != ".nfo")
    changed = rng.sample(tracks, 6)
    for path in changed[:3]:  # content edited
        with open(path, "ab") as handle:
            handle.write(b"edited")
    changed[3].rename(changed[3].with_name("renamed " + changed[3].name))
    changed[4].unlink()
    shutil.copyfile(DATA / "tone.ogg", root / "Artist 1" / "new.ogg")
    env = cli_env(tmp_path, INDEXER_DB=str(db), **THROTTLE)
    command = scan_cmd(root) + (["--rehash"] if trial % 2 else [])  # half re-read everything
    kill_after(command, env, rng.uniform(0.05, 2.0))
    assert_sound(db)

    indexer("scan", root, env=cli_env(tmp_path, INDEXER_DB=str(db)), check=True)

    assert_sound(db)
    clean_db = tmp_path / "clean.db"
    indexer("scan", root, env=cli_env(tmp_path, INDEXER_DB=str(clean_db)), check=True)
    missing = {p: v for p, v in catalogue(db).items() if v[4] == "missing"}
    assert {p: v for p, v in catalogue(db).items() if v[4] == "present"} == catalogue(clean_db)
    assert list(missing) == [str(changed[4])]
    after = ids(db)
    untouched = [str(p) for p in tracks if p not in changed[3:5]]
    assert {p: after[p] for p in untouched} == {p: before[p] for p in untouched}
    renamed = changed[3].with_name("renamed " + changed[3].name)
    assert after[str(renamed)] == before[str(changed[3])]  # the move kept its id


@pytest.mark.parametrize("trial", range(6))
def test_the_service_killed_while_applying_events_converges(tmp_path, trial):
    rng = random.Random(SEED * 300 + trial)
    root = tmp_path / "music"
    root.mkdir()
    build(root)
    db = tmp_path / "library.db"
    env = cli_env(tmp_path, INDEXER_DB=str(db), INDEXER_WATCH_DEBOUNCE_MS="50",
                  INDEXER_WATCH_SETTLE_SECONDS="0.2", INDEXER_SERVICE_LOW_PRIORITY="false",
                  **THROTTLE)
    service = subprocess.Popen([sys.executable, "-m", "indexer", "run", str(root)], env=env,
                               stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
    try:
        wait_for(lambda: _jobs_done(db) >= 1, timeout=30, what="the first reconcile")
        for n in range(8):  # events to apply: new tracks, a move, a delete
            shutil.copyfile(DATA / "tone.flac", root / "Artist 2" / f"event {n}.flac")
        next(root.rglob("*.ogg")).rename(root / "Artist 3" / "moved.ogg")
        next(root.rglob("*.m4a")).unlink()
        time.sleep(rng.uniform(0.05, 1.5))  # the random instant of the kill: the point here
        service.send_signal(signal.SIGKILL)
        service.wait()
    finally:
        if service.poll() is None:
            service.kill()
    assert_sound(db)

    indexer("scan", root, env=cli_env(tmp_path, INDEXER_DB=str(db)), check=True)

    assert_sound(db)
    clean_db = tmp_path / "clean.db"
    indexer("scan", root, env=cli_env(tmp_path, INDEXER_DB=str(clean_db)), check=True)
    assert {p: v for p, v in catalogue(db).items() if v[4] == "present"} == catalogue(clean_db)
    with connect(db) as conn:
        assert "running" not in {r[0] for r in conn.execute("SELECT status FROM scan_jobs")}


def _jobs_done(db: Path) -> int:
    try:
        with connect(db) as conn:
            return conn.execute("SELECT count(*) FROM scan_jobs WHERE status = 'completed'"
                                ).fetchone()[0]
    except (sqlite3.Error, OSError):
        return 0


def _when_the_catalogue_appears(root: Path, db: Path, env: dict) -> float:
    """Seconds from the start of `indexer scan` until its catalogue file exists."""
    process = subprocess.Popen(scan_cmd(root), env=env, stdin=subprocess.DEVNULL,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    started = time.monotonic()
    appeared = None
    while process.poll() is None and appeared is None:
        if db.exists() or any(p.name.startswith(db.name) for p in db.parent.glob("*")):
            appeared = time.monotonic() - started
    process.wait()
    return appeared or 0.15


def test_a_scan_killed_while_it_creates_the_catalogue_leaves_none_or_a_whole_one(tmp_path):
    """Killed while the catalogue is made (a new install's first scan, stopped at once):
    a reader finds no catalogue, or a whole one, never one it cannot open. The kills
    step through the milliseconds in which the catalogue is made, measured first."""
    root = tmp_path / "music"
    make_library(root, albums=1, tracks=1)
    probe = tmp_path / "probe" / "library.db"
    probe.parent.mkdir()
    appears = _when_the_catalogue_appears(root, probe, cli_env(tmp_path, INDEXER_DB=str(probe)))
    for trial in range(16):
        db = tmp_path / f"trial{trial}" / "library.db"
        env = cli_env(tmp_path, INDEXER_DB=str(db))
        delay = max(appears - 0.005 + trial * 0.002, 0.01)
        kill_after(scan_cmd(root), env, delay)
        status = indexer("status", env=env)
        assert status.returncode == 0 or "run `indexer scan` first" in status.stderr, \
            (delay, status.stderr)
        if db.exists():
            assert_sound(db)
    indexer("scan", root, env=env, check=True)  # the next run completes it
