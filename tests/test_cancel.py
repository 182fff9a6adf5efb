"""Ctrl-C and SIGTERM stop a scan within 2 seconds, keep what was done, and the next
scan completes it."""

from __future__ import annotations

import signal
import sqlite3
import subprocess
import sys
import time

import pytest

from conftest import cli_env, connect, files, make_library, wait_for
from test_scan import catalogue_rows, expected_rows


def running_job(db):
    if not db.exists():
        return None
    try:
        with connect(db) as conn:
            return conn.execute("SELECT * FROM scan_jobs WHERE status = 'running' AND "
                                "files_processed >= 3").fetchone()
    except sqlite3.OperationalError:  # the schema is being created
        return None


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_a_signal_mid_scan_cancels_it_and_the_next_scan_completes_it(tmp_path, signum):
    root = tmp_path / "music"
    root.mkdir()
    make_library(root, albums=4, tracks=6)
    for n in range(30):  # big enough to still be reading when the signal comes
        (root / f"Artist 0/big {n}.flac").write_bytes(bytes([n]) * 400_000)
    db = tmp_path / "library.db"
    # The read cap makes the scan last ~10 s, so the signal lands mid-scan every time.
    env = cli_env(tmp_path, INDEXER_DB=str(db), INDEXER_SCAN_MAX_READ_MIB_S="1",
                  INDEXER_SCAN_BATCH_SIZE="2")
    child = subprocess.Popen([sys.executable, "-m", "indexer", "scan", str(root), "--json"],
                             env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        wait_for(lambda: running_job(db), timeout=20, what="the scan to make progress")
        child.send_signal(signum)
        signalled = time.monotonic()
        out, err = child.communicate(timeout=10)
        stopped_after = time.monotonic() - signalled
    finally:
        child.kill()

    assert child.returncode == 130, err
    assert stopped_after < 2.0
    with connect(db) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        job = conn.execute("SELECT * FROM scan_jobs").fetchone()
        rows = conn.execute("SELECT count(*) FROM files").fetchone()[0]
    assert job["status"] == "cancelled"
    assert 0 < job["added"] == rows < len(expected_rows(root))
    assert '"status": "cancelled"' in out

    result = subprocess.run([sys.executable, "-m", "indexer", "scan", str(root)],
                            env=cli_env(tmp_path, INDEXER_DB=str(db)), capture_output=True,
                            timeout=60)
    assert result.returncode == 0, result.stderr
    assert catalogue_rows(db) == expected_rows(root)
    assert len(files(db)) == 24 + 4 + 30
