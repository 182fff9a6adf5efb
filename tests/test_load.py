"""Under load: a media server reading while a 50,000-file scan writes; a library churning
while it is scanned and watched."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest
import xxhash

from conftest import cli_env, connect, files, indexer, wait_for
from test_daemon import service_config

READER = r"""
import json, sqlite3, sys, os
db, stop = sys.argv[1], sys.argv[2]
seen = {"reads": 0, "locked": 0, "disagreed": 0}
while not os.path.exists(db + "-wal") and not os.path.exists(stop):
    pass  # the scan has not created the catalogue yet
conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, isolation_level=None, timeout=0.1)
while not os.path.exists(stop):
    try:
        conn.execute("BEGIN")  # one snapshot for the three reads
        job = conn.execute("SELECT added FROM scan_jobs ORDER BY id DESC LIMIT 1").fetchone()
        rows = conn.execute("SELECT count(*) FROM files").fetchone()[0]
        feed = conn.execute("SELECT count(*) FROM changes WHERE kind = 'added'").fetchone()[0]
        conn.execute("COMMIT")
        seen["reads"] += 1
        if job is not None and not (job[0] == rows == feed):
            seen["disagreed"] += 1
    except sqlite3.OperationalError as error:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        if "locked" in str(error) or "busy" in str(error):
            seen["locked"] += 1
        # "no such table": the catalogue is being created; try again
print(json.dumps(seen))
"""


def test_a_reader_during_a_50000_file_scan_is_never_locked_out_and_sees_consistent_totals(
        tmp_path):
    root = tmp_path / "pictures"
    for folder in range(100):
        (root / f"{folder:03d}").mkdir(parents=True)
        for n in range(500):
            (root / f"{folder:03d}" / f"{n:03d}.jpg").write_bytes(f"{folder}/{n}".encode())
    db, stop = tmp_path / "library.db", tmp_path / "stop"
    reader = subprocess.Popen([sys.executable, "-c", READER, str(db), str(stop)],
                              stdout=subprocess.PIPE, text=True)
    try:
        result = indexer("scan", root, "--json", env=cli_env(tmp_path, INDEXER_DB=str(db)),
                         timeout=300, check=True)
    finally:
        stop.touch()
        out, _ = reader.communicate(timeout=30)
    seen = json.loads(out)
    assert json.loads(result.stdout)["added"] == 50_000
    assert seen["reads"] > 50 and seen["locked"] == 0 and seen["disagreed"] == 0


@pytest.mark.parametrize("leases", [False, True], ids=["no answer", "the kernel answers"])
def test_a_library_churning_while_scanned_and_watched_ends_exactly_as_the_disk(tmp_path, leases):
    """Also where the kernel says whether a file is still open (writers.py: asked once
    SIGIO is ignored, as `indexer run` has it): the folders made during the churn are
    then looked at early and their files taken on its word."""
    before = signal.signal(signal.SIGIO, signal.SIG_IGN if leases else signal.SIG_DFL)
    try:
        churned_while_watched(tmp_path)
    finally:
        signal.signal(signal.SIGIO, before)


def churned_while_watched(tmp_path: Path) -> None:
    from indexer.daemon import Request, Service
    root = tmp_path / "music"
    root.mkdir()
    rng = random.Random(7)
    for n in range(500):
        (root / f"{n % 10}").mkdir(exist_ok=True)
        (root / f"{n % 10}" / f"{n}.mp3").write_bytes(f"song {n}".encode())
    for n in range(20):  # 10 MB read at 1 MiB/s: the first reconcile lasts while the churn
        # runs, however loaded the machine (10 s; the churn takes 1 to 4)
        (root / "big").mkdir(exist_ok=True)
        (root / "big" / f"{n}.flac").write_bytes(bytes([n]) * 500_000)
    db = tmp_path / "library.db"
    service = Service(service_config(db, [root], **{"scan.max_read_mib_s": 1}))
    thread = threading.Thread(target=service.run, daemon=True)
    thread.start()
    try:
        wait_for(lambda: service.current is not None, timeout=20, what="a scan under way")
        churn(root, rng, 2000)  # while the first reconcile reads, slowly
        assert service.current is not None  # it did
        quiet = tmp_path / "quiet.flag"
        service.request(Request("rescan", frozenset([str(root)]),
                                replies=[lambda answer: answer["event"] == "done" and quiet.touch()]))
        wait_for(quiet.exists, timeout=120, what="the reconcile after the churn")
        wait_for(lambda: len(service.debouncer) == 0 and service.current is None
                 and catalogue_matches(db, root), timeout=60, what="the catalogue to match")
    finally:
        service.stop()
        thread.join(timeout=10)


def churn(root: Path, rng: random.Random, operations: int) -> None:
    """Create, rename and delete files, at random, as a busy user would."""
    made = [p for p in root.rglob("*.mp3")]
    for n in range(operations):
        action = rng.random()
        if action < 0.5 or not made:
            path = root / f"{rng.randrange(12)}" / f"new {n}.mp3"
            path.parent.mkdir(exist_ok=True)
            path.write_bytes(f"new {n}".encode())
            made.append(path)
        elif action < 0.75:
            source = made.pop(rng.randrange(len(made)))
            target = root / f"{rng.randrange(12)}" / f"renamed {n}.mp3"
            target.parent.mkdir(exist_ok=True)
            source.rename(target)
            made.append(target)
        else:
            made.pop(rng.randrange(len(made))).unlink()


def catalogue_matches(db: Path, root: Path) -> bool:
    on_disk = {str(p): xxhash.xxh3_128(p.read_bytes()).hexdigest()
               for p in root.rglob("*") if p.suffix in (".mp3", ".flac")}
    try:
        present = {p: r["hash"] for p, r in files(db, "present").items()}
    except Exception:
        return False
    return present == on_disk
