"""The scenarios: which sides run against which, on which library, in what order.

For a music library (`--files N`), in groups that `--only` picks from:
  full      fresh catalogue each run: parallel (ours) vs --sequential, and with
            metadata on vs off (metadata.enabled = false)
  metadata  the tags of every track read through the worker pool alone
            (bench/metadata_stage.py): N workers vs 1
  rescan    a populated catalogue: the no-change rescan vs `find` and vs start-up;
            then 1% retagged, 1% moved, 1% deleted (changes.py), each run against
            the no-change rescan run after it
  beets     beets as a peer (beets_peer.py), with --beets
  mpd       MPD as a peer (mpd_peer.py), with --mpd
For a hash-bound library (`--large N`): parallel vs --sequential, and vs `xxhsum -H2`.
"""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Callable
from pathlib import Path

import changes
from harness import Bench, Row, Side, fresh_db, remove_db, run_interleaved

REPO = Path(__file__).resolve().parent.parent
CHANGED_FRACTION = 0.01
FIND_PRINTF = "%s %T@ %i\n"  # what a "did anything change?" needs: size, mtime, inode

# Scenario names that the targets refer to.
FULL, NO_CHANGE, LARGE_FULL = ("full scan: parallel vs --sequential", "no-change rescan vs find",
                               "hash-bound full scan: parallel vs --sequential")
METADATA_ON, METADATA_STAGE = ("full scan: metadata on vs off", "metadata stage: N workers vs 1")
CHANGED, MOVED, DELETED = ("rescan 1% changed vs no-change", "rescan 1% moved vs no-change",
                           "rescan 1% deleted vs no-change")
# Which summary count each 1% scenario must find exactly one slice of.
LARGE_XXHSUM = "hash-bound full scan: parallel vs xxhsum"
SLICE_COUNTS = {CHANGED: ("added", "modified"), MOVED: ("moved",), DELETED: ("missing",)}

SCENARIOS = ("full", "metadata", "rescan", "beets", "mpd")
DEFAULT_SCENARIOS = ("full", "metadata", "rescan")


def music_rows(bench: Bench, root: Path, facts: dict, seed: int, scenarios: tuple[str, ...],
               peers: dict[str, Callable[[], list[Row]]] | None = None) -> list[Row]:
    """Our scenarios, then each peer's (beets, mpd) that `scenarios` names."""
    rows = full_scan_rows(bench, root) if "full" in scenarios else []
    if "metadata" in scenarios:
        rows += metadata_stage_rows(bench, root, facts)
    if "rescan" in scenarios:
        rows += rescan_rows(bench, root, facts, seed)
    for name, peer_rows in (peers or {}).items():
        if name in scenarios:
            rows += peer_rows()
    return rows


def full_scan_rows(bench: Bench, root: Path) -> list[Row]:
    print("full scan: parallel vs sequential vs metadata off", file=sys.stderr)
    dbs = [bench.db(name) for name in ("full-parallel", "full-sequential", "full-no-metadata")]
    par = bench.scan("full scan, parallel", root, dbs[0], prepare=fresh_db(dbs[0]))
    seq = bench.scan("full scan, sequential", root, dbs[1], "--sequential",
                     prepare=fresh_db(dbs[1]))
    bare = bench.scan("full scan, metadata off", root, dbs[2], prepare=fresh_db(dbs[2]),
                      env={"INDEXER_METADATA_ENABLED": "false"})
    run_interleaved([par, seq, bare], bench.runs)
    for db in dbs:
        remove_db(db)
    return [Row(FULL, par, seq, "seq/par", False),
            Row(METADATA_ON, par, bare, "on/off", True)]


def metadata_stage_rows(bench: Bench, root: Path, facts: dict) -> list[Row]:
    workers = os.cpu_count() or 1
    print(f"metadata stage: {workers} workers vs 1", file=sys.stderr)
    stage = [sys.executable, str(REPO / "bench" / "metadata_stage.py"), str(root), "--workers"]
    many = bench.reference(f"metadata stage, {workers} workers", [*stage, str(workers)],
                           files=facts["params"]["tracks"])
    one = bench.reference("metadata stage, 1 worker", [*stage, "1"], files=facts["params"]["tracks"])
    run_interleaved([many, one], bench.runs)
    return [Row(METADATA_STAGE, many, one, "1/N", False)]


def rescan_rows(bench: Bench, root: Path, facts: dict, seed: int) -> list[Row]:
    """All on one populated catalogue: no change, then 1% retagged, moved, deleted."""
    db = bench.db("rescan")
    remove_db(db)
    bench.scan("populate", root, db).run(0)  # set-up, not a result
    rows = no_change_rows(bench, root, db, facts)
    rows += changed_rows(bench, root, db, seed)
    rows += slice_rows(bench, root, db, MOVED, "moved", changes.mover(root, CHANGED_FRACTION, seed))
    rows += slice_rows(bench, root, db, DELETED, "deleted",
                       changes.deleter(root, CHANGED_FRACTION, seed, bench.workdir))
    remove_db(db)
    return rows


def find_side(bench: Bench, root: Path, files: int, name: str = "find -printf") -> Side:
    return bench.reference(name, ["find", str(root), "-type", "f", "-printf", FIND_PRINTF],
                           files=files)


def no_change_rows(bench: Bench, root: Path, db: Path, facts: dict) -> list[Row]:
    print("no-change rescan vs find", file=sys.stderr)
    rescan = bench.scan("no-change rescan", root, db)
    find = find_side(bench, root, facts["files"])
    # Not a scan: what any `indexer` command costs before it does anything (Python, imports).
    startup = bench.reference("indexer config (start-up)", [bench.indexer, "config", "--json"])
    run_interleaved([rescan, find, startup], bench.runs)
    return [Row(NO_CHANGE, rescan, find, "indexer/find", True),
            Row("no-change rescan vs indexer start-up", rescan, startup, "scan/start-up", True)]


def changed_rows(bench: Bench, root: Path, db: Path, seed: int) -> list[Row]:
    """Each changed run sees a fresh 1% retagged; the scan after it sees nothing new."""
    print("rescan with 1% changed vs no-change rescan", file=sys.stderr)
    retagger = changes.Retagger(root, CHANGED_FRACTION, seed)
    changed = bench.scan(f"rescan, {retagger.size} retagged", root, db, prepare=retagger.prepare)
    unchanged = bench.scan("no-change rescan (again)", root, db)
    try:
        run_interleaved([changed, unchanged], bench.runs)
    finally:
        retagger.restore()
    return [Row(CHANGED, changed, unchanged, "changed/none", True, retagger.size)]


def slice_rows(bench: Bench, root: Path, db: Path, scenario: str, verb: str,
               renamer: changes.Renamer) -> list[Row]:
    """Each run sees a fresh 1% moved (or deleted); the scan after it sees nothing new.

    The warm-up's scan also takes in whatever the scenario before left (the
    restored tracks of the one before): only the timed runs must find exactly 1%.
    """
    print(f"rescan with 1% {verb} vs no-change rescan", file=sys.stderr)
    changed = bench.scan(f"rescan, {renamer.size} {verb}", root, db, prepare=renamer.prepare)
    unchanged = bench.scan(f"no-change rescan (after {verb})", root, db)
    try:
        run_interleaved([changed, unchanged], bench.runs)
    finally:
        renamer.restore()
    return [Row(scenario, changed, unchanged, f"{verb}/none", True, renamer.size)]


def large_rows(bench: Bench, root: Path, facts: dict) -> list[Row]:
    par_db, seq_db = bench.db("large-parallel"), bench.db("large-sequential")
    # The files are named .flac but hold random bytes: no tags to read. This measures
    # reading and hashing, so tag reading is off on both sides.
    no_tags = {"INDEXER_METADATA_ENABLED": "false"}
    par = bench.scan("large full scan, parallel", root, par_db, prepare=fresh_db(par_db),
                     env=no_tags)
    seq = bench.scan("large full scan, sequential", root, seq_db, "--sequential",
                     prepare=fresh_db(seq_db), env=no_tags)
    sides = [par, seq]
    rows = [Row(LARGE_FULL, par, seq, "seq/par", False)]
    if shutil.which("xxhsum"):
        files = sorted(str(p) for p in root.rglob("*.flac"))
        xxh = bench.reference("xxhsum -H2", ["xxhsum", "-H2", *files], files=len(files),
                              bytes_read=facts["bytes"])
        sides.append(xxh)
        rows.append(Row(LARGE_XXHSUM, par, xxh, "indexer/xxhsum", True))
    else:
        print("xxhsum not installed (apt-get install xxhash): no hashing reference", file=sys.stderr)
    print("hash-bound full scan: " + " vs ".join(s.name for s in sides), file=sys.stderr)
    run_interleaved(sides, bench.runs)
    for db in (par_db, seq_db):
        remove_db(db)
    return rows
