"""The tables, the targets and the results file of a bench of one library.

The main table gives each scenario's median wall times [min-max] and the ratio
of the medians; the side table gives each command's rates, CPU, peak RSS and,
for scans, what the scan found (from `indexer scan --json`). Targets are the
project's, reported and never asserted: this machine is shared and noisy.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import statistics
import subprocess
from dataclasses import asdict
from datetime import datetime, timezone
from pathlib import Path

import beets_peer
import mpd_peer
from harness import GNU_TIME, Bench, Row, Side
from scenarios import (CHANGED, DELETED, FULL, LARGE_FULL, LARGE_XXHSUM, METADATA_ON,
                       METADATA_STAGE, MOVED, NO_CHANGE, SLICE_COUNTS)

REPO = Path(__file__).resolve().parent.parent
MIB = 1024 * 1024


def spread(values: list[float], fmt: str = "{:.2f}") -> str:
    """median [min-max]; a single value alone."""
    if len(values) == 1:
        return fmt.format(values[0])
    return f"{fmt.format(statistics.median(values))} [{fmt.format(min(values))}-{fmt.format(max(values))}]"


def median_wall(side: Side) -> float:
    return statistics.median(s.wall_s for s in side.samples)


def ratio(row: Row) -> float:
    ours, ref = median_wall(row.ours), median_wall(row.reference)
    return ours / ref if row.ours_is_numerator else ref / ours


def main_table(rows: list[Row]) -> str:
    lines = [f"{'scenario':<48} {'ours, s':<22} {'reference, s':<22} ratio"]
    for row in rows:
        ours = spread([s.wall_s for s in row.ours.samples])
        ref = spread([s.wall_s for s in row.reference.samples])
        lines.append(f"{row.scenario:<48} {ours:<22} {ref:<22} {ratio(row):.2f} {row.ratio_name}")
    return "\n".join(lines)


def side_table(sides: list[Side]) -> str:
    """Per side: rates from the median wall time (files the walk found, bytes it read)."""
    lines = [f"{'side (medians; RSS: max)':<40} {'wall s':>7} {'files/s':>9} {'MiB/s':>8} "
             f"{'CPU s':>7} {'peak RSS MiB':>12} {'bytes read':>14} {'new+changed':>11} "
             f"{'moved':>7} {'missing':>7}"]
    for side in sides:
        samples = side.samples
        wall = statistics.median(s.wall_s for s in samples)
        files, read = _work(side)
        found = [_found(side, keys) for keys in (("added", "modified"), ("moved",), ("missing",))]
        lines.append(
            f"{side.name:<40} {wall:>7.2f} {_rate(files, wall):>9} {_rate(read, wall, MIB):>8} "
            f"{statistics.median(s.cpu_s for s in samples):>7.2f} "
            f"{max(s.peak_rss_mib for s in samples):>12.1f} {_num(read):>14} {found[0]:>11} "
            f"{found[1]:>7} {found[2]:>7}")
    return "\n".join(lines)


def _work(side: Side) -> tuple[int | None, int | None]:
    """(files visited, bytes read) of one run, the last."""
    if not side.is_indexer:
        return side.files, side.bytes_read
    last = side.samples[-1].summary
    return last["files_found"], last["bytes_processed"]


def found_counts(side: Side, keys: tuple[str, ...]) -> list[int]:
    """What each timed run of a scan found, summed over `keys` of its summary."""
    return [sum(s.summary[key] for key in keys) for s in side.samples]


def _found(side: Side, keys: tuple[str, ...]) -> str:
    """The count if every run found the same, else min-max: the table shows a run that differs."""
    if not side.is_indexer:
        return "-"
    counts = found_counts(side, keys)
    low, high = min(counts), max(counts)
    return f"{low:,}" if low == high else f"{low:,}-{high:,}"


def _rate(amount: int | None, seconds: float, unit: int = 1) -> str:
    return "-" if amount is None else f"{amount / unit / seconds:,.0f}"


def _num(amount: int | None) -> str:
    return "-" if amount is None else f"{amount:,}"


def verdict(ok: bool) -> str:
    return "met" if ok else "MISSED"


def targets(rows: list[Row], cold: bool) -> list[str]:
    """The project's targets, reported (never asserted): a noisy machine may miss one."""
    found = []
    for row in rows:
        r = ratio(row)
        if row.scenario == NO_CHANGE:
            read = max(s.summary["bytes_processed"] for s in row.ours.samples)
            found.append(f"no-change rescan within 2x find, 0 bytes read: {r:.3f}x, {read} bytes "
                         f"-> {verdict(r <= 2 and read == 0)}")
        elif row.scenario == FULL:
            rss = max(s.peak_rss_mib for side in (row.ours, row.reference) for s in side.samples)
            files = row.ours.samples[0].summary["files_found"]
            found.append(f"peak RSS of a full scan of {files:,} files under 150 MB (143 MiB): "
                         f"{rss:.1f} MiB -> {verdict(rss * MIB < 150e6)}")
            if cold:
                found.append(f"cold cache full scan (music library): parallel >= 1.5x faster "
                             f"than sequential: {r:.3f}x -> {verdict(r >= 1.5)}")
        elif row.scenario == METADATA_STAGE:
            found.append(f"metadata stage with N workers >= 1.7x faster than with 1: {r:.3f}x "
                         f"-> {verdict(r >= 1.7)}")
        elif row.scenario == METADATA_ON:
            rate = statistics.median(s.summary["files_per_s"] for s in row.ours.samples)
            found.append(f"full scan with metadata >= 4,000 files/s: {rate:,.0f} files/s "
                         f"-> {verdict(rate >= 4000)}")
        elif row.scenario == LARGE_FULL:
            found.append(f"{'cold cache ' if cold else ''}hash-bound full scan parallel >= 1.5x "
                         f"faster than sequential: {r:.3f}x -> {verdict(r >= 1.5)}")
        elif row.scenario == LARGE_XXHSUM:
            found.append(f"hashing large files at >= 0.8x xxhsum's throughput: {1 / r:.2f}x "
                         f"-> {verdict(1 / r >= 0.8)}")
        elif row.scenario in (CHANGED, MOVED, DELETED):
            found.append(_slice_target(row))
            if row.scenario == CHANGED:
                found.append(_changed_target(row, rows))
        elif row.scenario == beets_peer.IMPORT:
            found.append(f"first full scan >= 20x faster than beets' import: {r:.1f}x "
                         f"-> {verdict(r >= 20)}")
        elif row.scenario in mpd_peer.SCENARIOS and row.scenario != mpd_peer.FIND:
            found.append(mpd_peer.target(row, r))
        elif row.scenario == beets_peer.UPDATE:
            found.append(f"no-change rescan >= 10x faster than `beet update`: {r:.1f}x "
                         f"-> {verdict(r >= 10)}")
    return found


def _slice_target(row: Row) -> str:
    """Every timed run of a 1% scenario found exactly one slice, and the run after it nothing."""
    keys, expected = SLICE_COUNTS[row.scenario], row.slice_size
    counts, after = found_counts(row.ours, keys), found_counts(row.reference, keys)
    what = "+".join(keys)
    return (f"{row.scenario.split(' vs ')[0]}: each run found exactly {expected:,} {what}, the "
            f"rescan after it 0: {_listed(counts)}; {_listed(after)} -> "
            f"{verdict(set(counts) == {expected} and set(after) == {0})}")


def _changed_target(row: Row, rows: list[Row]) -> str:
    """A rescan with 1% retagged within 1.5x a no-change rescan plus the work of reading
    just those files: their tags at the metadata stage's rate in this same run (its
    files/s over its whole process, start-up included), their bytes at xxhsum's 7 GB/s."""
    stage = next((r for r in rows if r.scenario == METADATA_STAGE), None)
    if stage is None:
        return "rescan 1% changed within 1.5x no-change + reading those files: needs the metadata scenario"
    changed, unchanged = median_wall(row.ours), median_wall(row.reference)
    work = row.slice_size / (stage.ours.files / median_wall(stage.ours))
    work += max(s.summary["bytes_processed"] for s in row.ours.samples) / 7e9
    bound = 1.5 * unchanged + work
    return (f"rescan 1% changed within 1.5x no-change + reading those files: {changed:.2f} s "
            f"against 1.5 x {unchanged:.2f} + {work:.2f} = {bound:.2f} s -> {verdict(changed <= bound)}")


def _listed(counts: list[int]) -> str:
    return ", ".join(f"{c:,}" for c in counts)


def header(library: str, runs: int, cache: str) -> str:
    """Two lines: the machine and the code under test; the library and how it was measured."""
    loads = " ".join(f"{x:.2f}" for x in os.getloadavg())
    return (f"indexer bench, {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC; "
            f"{os.cpu_count()} CPUs, {_mem_gib():.0f} GiB, Python {platform.python_version()}, "
            f"indexer {_revision()}; load average at start {loads}\n"
            f"{library}; {runs} timed runs per side after one warm-up, medians [min-max]; "
            f"{cache}; peak RSS "
            + ("by GNU time (%M)" if GNU_TIME else "by os.wait4: an upper bound, includes the bench's own"))


def library_line(library: Path, facts: dict) -> str:
    return f"library {library}: {facts['files']:,} files, {facts['bytes'] / MIB:,.1f} MiB"


def _mem_gib() -> float:
    with open("/proc/meminfo") as handle:
        return int(handle.readline().split()[1]) / 1024 / 1024


def _revision() -> str:
    def git(*args: str) -> str:
        return subprocess.run(["git", "-C", str(REPO), *args], capture_output=True,
                              text=True).stdout.strip()
    diff = git("diff", "HEAD", "--", "indexer")
    # The code under test may be mid-edit: name the uncommitted state by a hash of its diff.
    dirty = f" + uncommitted indexer/ diff {hashlib.sha1(diff.encode()).hexdigest()[:8]}" if diff else ""
    return (git("rev-parse", "--short", "HEAD") or "unknown") + dirty


def rows_text(rows: list[Row], notes: list[str], cold: bool) -> str:
    """The main table, the side table, the notes and the targets of some rows."""
    parts = [main_table(rows), side_table(sides_of(rows))] if rows else []
    if notes:
        parts.append("notes:\n" + "\n".join("  " + note for note in notes))
    lines = targets(rows, cold)
    if lines:
        parts.append("targets (reported, not asserted):\n" + "\n".join("  " + t for t in lines))
    return "\n\n".join(parts)


def sides_of(rows: list[Row]) -> list[Side]:
    return list(dict.fromkeys(side for row in rows for side in (row.ours, row.reference)))


def samples_json(sides: list[Side]) -> dict:
    """Every sample of every side, by the side's name (which must be unique to be found)."""
    named = {s.name: {"cmd": s.cmd, "samples": [asdict(x) for x in s.samples]} for s in sides}
    if len(named) != len(sides):
        raise SystemExit(f"bench: two sides share a name: {sorted(s.name for s in sides)}")
    return named


def rows_json(rows: list[Row]) -> list[dict]:
    return [{"scenario": r.scenario, "ours": r.ours.name, "reference": r.reference.name,
             "ratio": ratio(r), "ratio_name": r.ratio_name} for r in rows]


def write_results(bench: Bench, tag: str, results: dict) -> Path:
    out = bench.workdir / f"results-{tag}-{datetime.now():%Y%m%d-%H%M%S}.json"
    out.write_text(json.dumps({**results, "cache": bench.cache.describe()}, indent=1) + "\n")
    return out


def report(bench: Bench, head: str, library: Path, facts: dict, rows: list[Row], tag: str) -> None:
    notes = bench.take_notes()
    text = head + "\n\n" + rows_text(rows, notes, bench.cache.cold)
    print(text)
    out = write_results(bench, tag, {
        "table": text, "library": str(library), "library_facts": facts, "notes": notes,
        "rows": rows_json(rows), "sides": samples_json(sides_of(rows))})
    print(f"\n(all samples in {out})")
