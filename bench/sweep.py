"""The sizes sweep: what a scan costs per file, and in memory, as the library grows.

For each size (tracks, `--sizes 10000,50000,...`) a music library is made by
make_library; all are made first, so that making one never runs beside a
timed run. Per size, on a catalogue of its own:

  first full scan    parallel, fresh catalogue, `--full-runs` runs (default 1),
                     no scan as warm-up (at 1,000,000 tracks one costs minutes):
                     the files are read once instead, so the cache is warm
                     as for every other side (not with --cold)
  no-change rescan   on the catalogue the full scan made, against
                     `find ROOT -type f -printf '%s %T@ %i\\n'`, A B A B after a warm-up

One table across sizes; its rows go to WORKDIR/results-sizes-*.json (key
"sizes"), which bench/plot.py draws.
"""

from __future__ import annotations

import os
import statistics
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import make_library
from harness import Bench, Row, Side, fresh_db, remove_db, run_interleaved
from report import MIB, median_wall, rows_json, rows_text, samples_json, sides_of, spread, verdict
from scenarios import find_side

# Targets of the sweep: the no-change rescan against find at two sizes (tracks).
RESCAN_BOUNDS = {50_000: 2.0, 1_000_000: 2.5}
RSS_CAP_TRACKS, RSS_CAP_BYTES = 1_000_000, 400e6
# "Does not grow": the largest size's µs/file over the smallest's. Single runs on this
# shared machine vary by up to 30% (docs/benchmarks.md), so a ratio up to 1.2 counts as flat.
FLAT = 1.2


@dataclass
class Point:
    """One size of the sweep: its library and the three sides measured on it."""

    tracks: int
    root: Path
    facts: dict
    full: Side
    rescan: Side
    find: Side

    def row(self) -> dict:
        """The figures of this size, as the table shows them and the JSON keeps them."""
        files = self.full.samples[-1].summary["files_found"]
        full_s, rescan_s, find_s = (median_wall(s) for s in (self.full, self.rescan, self.find))
        return {
            "tracks": self.tracks, "files_on_disk": self.facts["files"], "files": files,
            "library_mib": self.facts["bytes"] / MIB,
            "full_scan_s": full_s, "full_us_per_file": full_s / files * 1e6,
            "full_files_per_s": files / full_s,
            "full_peak_rss_mib": max(s.peak_rss_mib for s in self.full.samples),
            "rescan_s": rescan_s, "rescan_us_per_file": rescan_s / files * 1e6,
            "rescan_peak_rss_mib": max(s.peak_rss_mib for s in self.rescan.samples),
            "rescan_bytes_read": max(s.summary["bytes_processed"] for s in self.rescan.samples),
            "find_s": find_s, "find_us_per_file": find_s / self.facts["files"] * 1e6,
            "rescan_vs_find": rescan_s / find_s,
        }


def make_libraries(workdir: Path, sizes: list[int], seed: int) -> list[tuple[int, Path, dict]]:
    made = []
    for tracks in sizes:
        root = workdir / f"music-{tracks}-s{seed}"
        made.append((tracks, root, make_library.ensure_library(root, files=tracks, seed=seed)))
    return made


def measure_size(bench: Bench, tracks: int, root: Path, facts: dict, full_runs: int,
                 extra_rows: Callable[[Path, dict], list[Row]]) -> tuple[Point, list[Row]]:
    """The first full scan, then the no-change rescan against find, on one library."""
    print(f"sizes: {tracks:,} tracks: first full scan", file=sys.stderr)
    db = bench.db(f"sizes-{tracks}")
    full = bench.scan(f"first full scan, {tracks:,} tracks", root, db, prepare=fresh_db(db))
    if not bench.cache.cold:
        read_through(root)
    run_interleaved([full], full_runs, warm_up=False)
    print(f"sizes: {tracks:,} tracks: no-change rescan vs find", file=sys.stderr)
    rescan = bench.scan(f"no-change rescan, {tracks:,} tracks", root, db)
    find = find_side(bench, root, facts["files"], f"find -printf, {tracks:,} tracks")
    run_interleaved([rescan, find], bench.runs)
    remove_db(db)
    return Point(tracks, root, facts, full, rescan, find), extra_rows(root, facts)


def read_through(root: Path) -> None:
    """Read every file once: the full scan's warm-up, at the cost of a read, not of a scan."""
    for folder, _, names in os.walk(root):
        for name in names:
            with open(os.path.join(folder, name), "rb", buffering=0) as handle:
                while handle.read(1 << 20):
                    pass


def sweep_table(points: list[Point]) -> str:
    lines = [f"{'tracks':>9} {'files':>9} {'full scan s':>11} {'µs/file':>8} {'files/s':>8} "
             f"{'peak RSS MiB':>12}   {'rescan s':<20} {'find s':<20} {'ratio':>6} "
             f"{'µs/file':>8} {'bytes read':>10}"]
    for point in points:
        row = point.row()
        lines.append(
            f"{row['tracks']:>9,} {row['files']:>9,} "
            f"{statistics.median(s.wall_s for s in point.full.samples):>11.2f} "
            f"{row['full_us_per_file']:>8,.0f} {row['full_files_per_s']:>8,.0f} "
            f"{row['full_peak_rss_mib']:>12.1f}   {spread([s.wall_s for s in point.rescan.samples]):<20} "
            f"{spread([s.wall_s for s in point.find.samples], '{:.3f}'):<20} "
            f"{row['rescan_vs_find']:>6.2f} {row['rescan_us_per_file']:>8,.1f} "
            f"{row['rescan_bytes_read']:>10,}")
    lines.append("(full scan: parallel, fresh catalogue, µs/file and files/s of the files it "
                 "catalogued; rescan: no change, ratio = rescan / find, µs/file likewise)")
    return "\n".join(lines)


def sweep_targets(rows: list[dict]) -> list[str]:
    """The sweep's targets, reported (never asserted); a size not swept is said so."""
    by_size = {row["tracks"]: row for row in rows}
    lines = [_rescan_target(by_size.get(size), size, bound) for size, bound in RESCAN_BOUNDS.items()]
    read = max(row["rescan_bytes_read"] for row in rows)
    lines.append(f"no-change rescans read 0 bytes at every size: {read:,} bytes -> {verdict(read == 0)}")
    cap = by_size.get(RSS_CAP_TRACKS)
    lines.append(f"peak RSS of the {RSS_CAP_TRACKS:,}-track full scan < 400 MB (381 MiB): " + (
        f"{cap['full_peak_rss_mib']:.1f} MiB -> {verdict(cap['full_peak_rss_mib'] * MIB < RSS_CAP_BYTES)}"
        if cap else f"not measured ({RSS_CAP_TRACKS} not in --sizes)"))
    if len(rows) >= 2:
        lines.append(_rss_growth(rows[-2], rows[-1]))
        for key, what in (("full_us_per_file", "full scan"), ("rescan_us_per_file", "no-change rescan")):
            lines.append(_flat(rows[0], rows[-1], key, what))
    return lines


def _rescan_target(row: dict | None, size: int, bound: float) -> str:
    what = f"no-change rescan <= {bound:g}x find at {size:,} tracks, 0 bytes read: "
    if row is None:
        return what + f"not measured ({size} not in --sizes)"
    r, read = row["rescan_vs_find"], row["rescan_bytes_read"]
    return what + f"{r:.3f}x, {read:,} bytes -> {verdict(r <= bound and read == 0)}"


def _rss_growth(smaller: dict, larger: dict) -> str:
    """Less than linear: the RSS grows by less than the library does (1M/200k: under 5x)."""
    grew = larger["full_peak_rss_mib"] / smaller["full_peak_rss_mib"]
    size = larger["tracks"] / smaller["tracks"]
    return (f"full-scan peak RSS grows less than linearly from {smaller['tracks']:,} to "
            f"{larger['tracks']:,} tracks: x{grew:.2f} for x{size:g} the tracks "
            f"-> {verdict(grew < size)}")


def _flat(smallest: dict, largest: dict, key: str, what: str) -> str:
    grew = largest[key] / smallest[key]
    return (f"time per file does not grow with the library ({what}): {largest[key]:,.1f} µs at "
            f"{largest['tracks']:,} tracks vs {smallest[key]:,.1f} µs at {smallest['tracks']:,}: "
            f"x{grew:.2f} -> {verdict(grew <= FLAT)} (<= {FLAT}x)")


def sweep_text(head: str, points: list[Point], beets: list[Row], notes: list[str], cold: bool) -> str:
    rows = [point.row() for point in points]
    parts = [head, sweep_table(points), "targets (reported, not asserted):\n" + "\n".join(
        "  " + line for line in sweep_targets(rows))]
    if beets or notes:
        parts.append("beets at the sizes it was run at\n\n" + rows_text(beets, notes, cold))
    return "\n\n".join(parts)


def sweep_json(text: str, points: list[Point], beets: list[Row], notes: list[str]) -> dict:
    sides = [side for p in points for side in (p.full, p.rescan, p.find)] + sides_of(beets)
    return {"kind": "sizes", "table": text, "sizes": [point.row() for point in points],
            "libraries": {p.tracks: {"root": str(p.root), "facts": p.facts} for p in points},
            "rows": rows_json(beets), "notes": notes, "sides": samples_json(sides)}
