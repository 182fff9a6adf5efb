"""The fault loop of bench/soak.py, seeded and short: the real service, under a user
changing the library, through each fault (killed and restarted, a tag worker killed and
one stopped, the catalogue's disk full, the root unmounted and remounted with changes, an
inotify overflow) ends equal to the disk with every id kept, and never says idle while
it is behind. INDEXER_SOAK_SEED=N replays a run."""

from __future__ import annotations

import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))

from fault_loop import FAULTS, Settings, Soak  # noqa: E402

SEED = int(os.environ.get("INDEXER_SOAK_SEED", "20261126"))


def test_the_service_through_every_fault_ends_equal_to_the_disk_and_never_idle_behind(
        tmp_path):
    root = os.geteuid() == 0
    settings = Settings(workdir=tmp_path, files=300, seed=SEED, minutes=0, churn_s=2,
                        fault_s=3, burst_events=20_000, debounce_ms=200, settle_s=0.5,
                        tag_timeout_s=2, converge_s=30, restart_s=0.3, sample_s=0.5,
                        queue_events=256 if root else 0, fail_fast=True)

    report = Soak(settings).run()

    assert (report.harness_error, report.service_died) == ("", 0)

    done = [r["fault"] for r in report.recoveries]
    assert sorted(done) == sorted(f for f in FAULTS if root or f not in ("full-disk", "remount"))
    for recovery in report.recoveries:  # each fault recovered from, each id kept
        assert (recovery["fault"], recovery["rows_wrong"], recovery.get("ids_lost")) == (
            recovery["fault"], 0, 0), f"seed {SEED}: {recovery}"
    assert [r.get("worker") for r in report.recoveries if r["fault"] == "stop-worker"] == [
        "stopped, then ended by the service"]
    assert report.idle_while_behind == [], f"seed {SEED}"
    assert (report.rows_wrong_at_end, report.ids_lost_at_end, report.without_tags_at_end) == (
        0, 0, 0), f"seed {SEED}: {report.ids_lost_examples}"
    assert report.changes > 100 and report.samples > 10
    if root:
        assert report.overflows_logged > 0  # the burst did overflow the queue
        assert [r["said_waiting_for_room"] for r in report.recoveries
                if r["fault"] == "full-disk"] == [True]
