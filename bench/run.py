"""Benchmark `indexer scan` against the machine's own limits, and print one table.

Every measured run is a whole separate process (start-up counts: a user pays
it too), timed from spawn to exit. Its CPU time is its own rusage (`os.wait4`,
children included); its peak RSS is GNU time's %M where /usr/bin/time exists
(see `measure` for why not ru_maxrss), the largest single process, not a sum.
Each scenario pits our side against a reference: one untimed warm-up run of
every side first (warm page cache), then the sides in turn, A B A B, so drift
on a shared machine hits both alike. Medians are reported with [min-max].

Scenarios, for a music library (`--files N`, made by make_library.py):
  full scan          fresh catalogue each run: parallel (ours) vs --sequential,
                     and with metadata on vs off (metadata.enabled = false)
  metadata stage     the tags of every track read through the worker pool alone
                     (bench/metadata_stage.py): N workers vs 1
  no-change rescan   populated catalogue vs `find ROOT -type f -printf ...` (the
                     floor for "did anything change?"); bytes read must be 0
  rescan 1% changed  a new 1% of the tracks retagged before each run vs the
                     no-change rescan; the tracks are restored afterwards
and for a hash-bound library (`--large N` files of --min-mb to --max-mb MiB):
  full scan          parallel vs --sequential, and vs `xxhsum -H2` if installed

    python bench/run.py --files 50000 --runs 3
    python bench/run.py --large 400 --runs 3

Results go to stdout and, with every sample, to WORKDIR/results-*.json.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import make_library  # noqa: E402  (a sibling script, not a package)

REPO = Path(__file__).resolve().parent.parent
MIB = 1024 * 1024
CHANGED_FRACTION = 0.01
# Scenario names that the targets refer to.
FULL, NO_CHANGE, LARGE_FULL = ("full scan: parallel vs --sequential", "no-change rescan vs find",
                               "hash-bound full scan: parallel vs --sequential")
METADATA_ON, METADATA_STAGE = ("full scan: metadata on vs off", "metadata stage: N workers vs 1")


# --- one measured process


@dataclass
class Sample:
    wall_s: float
    cpu_s: float  # user + system
    peak_rss_mib: float
    rss_exact: bool  # False: an upper bound that may be this bench's own size (see measure)
    summary: dict | None = None  # `indexer scan --json` output, for indexer runs


# exec() keeps the parent's high-water RSS in the child's ru_maxrss, so os.wait4 on a
# child of this (large) Python process reports at least our own peak: `find` showed
# 300 MB under a 300 MB parent. GNU time forks the command from its own tiny process
# and reports the command's true peak; without it the wait4 figure is kept, marked.
GNU_TIME = "/usr/bin/time" if os.access("/usr/bin/time", os.X_OK) else None


def measure(cmd: list[str], env: dict[str, str], *, json_out: bool) -> Sample:
    """Run `cmd` to its end: wall time, CPU time (its own rusage, via wait4), peak RSS."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err, \
            tempfile.NamedTemporaryFile("r") as rss:
        launch = [GNU_TIME, "-f", "%M", "-o", rss.name, *cmd] if GNU_TIME else cmd
        started = time.perf_counter()
        proc = subprocess.Popen(launch, env=env, stdin=subprocess.DEVNULL,
                                stdout=out if json_out else subprocess.DEVNULL, stderr=err)
        # Popen.wait() would reap the child and lose its rusage: wait4 instead.
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - started
        proc.returncode = os.waitstatus_to_exitcode(status)
        if proc.returncode != 0:
            err.seek(0)
            raise SystemExit(f"bench: {' '.join(cmd[:3])}... exited {proc.returncode}:\n"
                             f"{err.read().decode(errors='replace')[-2000:]}")
        out.seek(0)
        summary = json.loads(out.read()) if json_out else None
        peak_kib = int(rss.read().split()[-1]) if GNU_TIME else usage.ru_maxrss  # KiB on Linux
    return Sample(wall, usage.ru_utime + usage.ru_stime, peak_kib / 1024, bool(GNU_TIME), summary)


# --- sides and scenarios


@dataclass(eq=False)  # compared by identity: a side is one object
class Side:
    """One command under test; `prepare(i)` runs untimed before its i-th run (0 = warm-up)."""

    name: str
    cmd: list[str]
    env: dict[str, str]
    prepare: Callable[[int], None] = lambda i: None
    is_indexer: bool = True  # an `indexer scan --json`, whose summary is checked and reported
    # For the other commands: the files they visit and the bytes they read, if any (for rates).
    files: int | None = None
    bytes_read: int | None = None
    samples: list[Sample] = field(default_factory=list)

    def run(self, i: int) -> Sample:
        self.prepare(i)
        sample = measure(self.cmd, self.env, json_out=self.is_indexer)
        if self.is_indexer:
            _check_scan(self.name, sample.summary)
        return sample


def _check_scan(name: str, summary: dict) -> None:
    if summary["status"] != "completed" or summary["errors"]:
        raise SystemExit(f"bench: {name}: the scan did not complete cleanly: {summary}")


def run_interleaved(sides: list[Side], runs: int) -> None:
    """A warm-up of each side, then `runs` rounds of A B (C...)."""
    for side in sides:
        side.run(0)
    for i in range(1, runs + 1):
        for side in sides:
            side.samples.append(side.run(i))
        print(f"  round {i}/{runs}: " + ", ".join(
            f"{s.name} {s.samples[-1].wall_s:.2f} s" for s in sides), file=sys.stderr)


@dataclass
class Row:
    """One line of the main table: ours against a reference; ratio = num / den (median walls)."""

    scenario: str
    ours: Side
    reference: Side
    ratio_name: str
    ours_is_numerator: bool


# --- the commands under test, and the environment they get


@dataclass
class Bench:
    workdir: Path
    indexer: str
    runs: int
    env: dict[str, str]

    def db(self, name: str) -> Path:
        return self.workdir / "db" / name / "catalogue.db"

    def scan(self, name: str, root: Path, db: Path, *extra: str, prepare=None,
             env: dict[str, str] | None = None) -> Side:
        return Side(name, [self.indexer, "scan", str(root), "--db", str(db), "--json", *extra],
                    {**self.env, **(env or {})}, prepare or (lambda i: None))

    def reference(self, name: str, cmd: list[str], *, files: int | None = None,
                  bytes_read: int | None = None) -> Side:
        return Side(name, cmd, self.env, is_indexer=False, files=files, bytes_read=bytes_read)


def clean_env(workdir: Path) -> dict[str, str]:
    """This environment without INDEXER_* settings, and an empty config file."""
    config = workdir / "empty-config.toml"
    config.write_text("")
    env = {k: v for k, v in os.environ.items() if not k.startswith("INDEXER_")}
    env["INDEXER_CONFIG"] = str(config)
    return env


def remove_db(db: Path) -> None:
    for suffix in ("", "-wal", "-shm", ".lock"):
        db.with_name(db.name + suffix).unlink(missing_ok=True)


def fresh_db(db: Path) -> Callable[[int], None]:
    return lambda i: remove_db(db)


# --- the 1% change


class Retagger:
    """Before run i, retag the i-th disjoint slice of the tracks; `restore()` undoes all.

    A retag keeps size and inode (mutagen writes into the tag padding), so only
    the mtime tells the scan: the cheap check must catch that. Restoring puts
    back the bytes and the mtime, so the library is as made for the next bench.
    """

    def __init__(self, root: Path, fraction: float, seed: int):
        tracks = sorted(str(p) for p in root.rglob("*")
                        if p.suffix[1:] in make_library.FORMATS and p.is_file())
        random.Random(seed).shuffle(tracks)
        self.size = max(1, round(len(tracks) * fraction))
        self.slices = [tracks[k:k + self.size] for k in range(0, len(tracks), self.size)]
        self.saved: dict[str, tuple[bytes, int, int]] = {}

    def prepare(self, i: int) -> None:
        for path in self.slices[i % len(self.slices)]:
            if path not in self.saved:
                info = os.stat(path)
                self.saved[path] = (Path(path).read_bytes(), info.st_atime_ns, info.st_mtime_ns)
            make_library.retag(path, f" (edit {i})")

    def restore(self) -> None:
        for path, (data, atime_ns, mtime_ns) in self.saved.items():
            with open(path, "r+b") as handle:  # in place: the inode stays
                handle.write(data)
                handle.truncate()
            os.utime(path, ns=(atime_ns, mtime_ns))
        self.saved.clear()


# --- scenarios


SCENARIOS = ("full", "metadata", "rescan")


def music_rows(bench: Bench, root: Path, facts: dict, seed: int,
               scenarios: tuple[str, ...] = SCENARIOS) -> list[Row]:
    rows = full_scan_rows(bench, root) if "full" in scenarios else []
    if "metadata" in scenarios:
        rows += metadata_stage_rows(bench, root, facts)
    if "rescan" in scenarios:
        db = bench.db("rescan")
        remove_db(db)
        bench.scan("populate", root, db).run(0)  # set-up, not a result
        rows += no_change_rows(bench, root, db, facts)
        rows += changed_rows(bench, root, db, seed)
        remove_db(db)
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


def no_change_rows(bench: Bench, root: Path, db: Path, facts: dict) -> list[Row]:
    print("no-change rescan vs find", file=sys.stderr)
    rescan = bench.scan("no-change rescan", root, db)
    find = bench.reference("find -printf", ["find", str(root), "-type", "f", "-printf", "%s %T@ %i\n"],
                           files=facts["files"])
    # Not a scan: what any `indexer` command costs before it does anything (Python, imports).
    startup = bench.reference("indexer config (start-up)", [bench.indexer, "config", "--json"])
    run_interleaved([rescan, find, startup], bench.runs)
    return [Row(NO_CHANGE, rescan, find, "indexer/find", True),
            Row("no-change rescan vs indexer start-up", rescan, startup, "scan/start-up", True)]


def changed_rows(bench: Bench, root: Path, db: Path, seed: int) -> list[Row]:
    """Each changed run sees a fresh 1% retagged; the scan after it sees nothing new."""
    print("rescan with 1% changed vs no-change rescan", file=sys.stderr)
    retagger = Retagger(root, CHANGED_FRACTION, seed)
    changed = bench.scan(f"rescan, {retagger.size} retagged", root, db, prepare=retagger.prepare)
    unchanged = bench.scan("no-change rescan (again)", root, db)
    try:
        run_interleaved([changed, unchanged], bench.runs)
    finally:
        retagger.restore()
    return [Row("rescan 1% changed vs no-change", changed, unchanged, "changed/none", True)]


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
        rows.append(Row("hash-bound full scan: parallel vs xxhsum", par, xxh, "indexer/xxhsum", True))
    else:
        print("xxhsum not installed (apt-get install xxhash): no hashing reference", file=sys.stderr)
    print("hash-bound full scan: " + " vs ".join(s.name for s in sides), file=sys.stderr)
    run_interleaved(sides, bench.runs)
    for db in (par_db, seq_db):
        remove_db(db)
    return rows


# --- reporting


def spread(values: list[float], fmt: str = "{:.2f}") -> str:
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
    lines = [f"{'side (medians; RSS: max)':<32} {'wall s':>7} {'files/s':>9} {'MiB/s':>8} "
             f"{'CPU s':>7} {'peak RSS MiB':>12} {'bytes read':>14} {'new+changed':>11}"]
    for side in sides:
        samples = side.samples
        wall = statistics.median(s.wall_s for s in samples)
        files, read, changed = _work(side)
        lines.append(
            f"{side.name:<32} {wall:>7.2f} {_rate(files, wall):>9} {_rate(read, wall, MIB):>8} "
            f"{statistics.median(s.cpu_s for s in samples):>7.2f} "
            f"{max(s.peak_rss_mib for s in samples):>12.1f} {_num(read):>14} {_num(changed):>11}")
    return "\n".join(lines)


def _work(side: Side) -> tuple[int | None, int | None, int | None]:
    """(files visited, bytes read, files new or changed) of one run, the last."""
    if not side.is_indexer:
        return side.files, side.bytes_read, None
    last = side.samples[-1].summary
    return last["files_found"], last["bytes_processed"], last["added"] + last["modified"]


def _rate(amount: int | None, seconds: float, unit: int = 1) -> str:
    return "-" if amount is None else f"{amount / unit / seconds:,.0f}"


def _num(amount: int | None) -> str:
    return "-" if amount is None else f"{amount:,}"


def targets(rows: list[Row]) -> list[str]:
    """The project's targets, reported (never asserted): a noisy machine may miss one."""
    found = []
    for row in rows:
        r = ratio(row)
        if row.scenario == NO_CHANGE:
            read = max(s.summary["bytes_processed"] for s in row.ours.samples)
            ok = r <= 3 and read == 0
            found.append(f"no-change rescan within 3x find, 0 bytes read: {r:.3f}x, {read} bytes "
                         f"-> {'met' if ok else 'MISSED'}")
        elif row.scenario == FULL:
            rss = max(s.peak_rss_mib for side in (row.ours, row.reference) for s in side.samples)
            files = row.ours.samples[0].summary["files_found"]
            found.append(f"peak RSS of a full scan of {files:,} files under 150 MB (143 MiB): "
                         f"{rss:.1f} MiB -> {'met' if rss * MIB < 150e6 else 'MISSED'}")
        elif row.scenario == METADATA_STAGE:
            found.append(f"metadata stage with N workers >= 1.7x faster than with 1: {r:.3f}x "
                         f"-> {'met' if r >= 1.7 else 'MISSED'}")
        elif row.scenario == METADATA_ON:
            rate = statistics.median(s.summary["files_per_s"] for s in row.ours.samples)
            found.append(f"full scan with metadata >= 4,000 files/s: {rate:,.0f} files/s "
                         f"-> {'met' if rate >= 4000 else 'MISSED'}")
        elif row.scenario == LARGE_FULL:
            found.append(f"hash-bound full scan parallel >= 1.5x faster than sequential: {r:.3f}x "
                         f"-> {'met' if r >= 1.5 else 'MISSED'}")
    return found


def header(library: Path, facts: dict, runs: int) -> str:
    loads = " ".join(f"{x:.2f}" for x in os.getloadavg())
    return (f"indexer bench, {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC; "
            f"{os.cpu_count()} CPUs, {_mem_gib():.0f} GiB, Python {platform.python_version()}, "
            f"indexer {_revision()}; load average at start {loads}\n"
            f"library {library}: {facts['files']:,} files, {facts['bytes'] / MIB:,.1f} MiB; "
            f"{runs} timed runs per side after one warm-up, medians [min-max]; peak RSS "
            + ("by GNU time (%M)" if GNU_TIME else "by os.wait4: an upper bound, includes the bench's own"))


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


def report(bench: Bench, head: str, library: Path, facts: dict, rows: list[Row], tag: str) -> None:
    sides = list(dict.fromkeys(side for row in rows for side in (row.ours, row.reference)))
    text = "\n\n".join([head, main_table(rows),
                        side_table(sides),
                        "targets (reported, not asserted):\n" + "\n".join(
                            "  " + line for line in targets(rows))])
    print(text)
    out = bench.workdir / f"results-{tag}-{datetime.now():%Y%m%d-%H%M%S}.json"
    out.write_text(json.dumps({
        "table": text, "library": str(library), "library_facts": facts,
        "rows": [{"scenario": r.scenario, "ours": r.ours.name, "reference": r.reference.name,
                  "ratio": ratio(r), "ratio_name": r.ratio_name} for r in rows],
        "sides": {s.name: {"cmd": s.cmd, "samples": [asdict(x) for x in s.samples]} for s in sides},
    }, indent=1) + "\n")
    print(f"\n(all samples in {out})")


# --- main


def find_indexer(given: str | None) -> str:
    beside = Path(sys.executable).parent / "indexer"
    found = given or (str(beside) if beside.exists() else shutil.which("indexer"))
    if not found:
        raise SystemExit("bench: no `indexer` command; run with the project's venv or --indexer")
    return found


def bench_library(bench: Bench, root: Path, facts: dict, rows: Callable[[], list[Row]],
                  tag: str) -> None:
    # A library just made leaves gigabytes of dirty pages; their write-back would
    # run under the first timed runs (measured: 2.0 s instead of 1.1 s).
    os.sync()
    head = header(root, facts, bench.runs)  # before the runs: the load and revision they met
    report(bench, head, root, facts, rows(), tag)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--files", type=int, metavar="N", help="a music library of N tracks")
    parser.add_argument("--large", type=int, metavar="N", help="a hash-bound library of N files")
    parser.add_argument("--min-mb", type=float, default=5, help="smallest large file, MiB")
    parser.add_argument("--max-mb", type=float, default=50, help="largest large file, MiB")
    parser.add_argument("--runs", type=int, default=3, help="timed runs per side")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/indexer-bench"))
    parser.add_argument("--indexer", help="the indexer command (default: the venv's)")
    parser.add_argument("--only", metavar="LIST",
                        help=f"music scenarios to run, of {','.join(SCENARIOS)} (default: all)")
    args = parser.parse_args(argv)
    if not (args.files or args.large) or args.runs < 1:
        parser.error("give --files N and/or --large N, and --runs >= 1")
    args.workdir.mkdir(parents=True, exist_ok=True)
    bench = Bench(args.workdir, find_indexer(args.indexer), args.runs, clean_env(args.workdir))
    if args.files:
        root = args.workdir / f"music-{args.files}-s{args.seed}"
        facts = make_library.ensure_library(root, files=args.files, seed=args.seed)
        scenarios = tuple(args.only.split(",")) if args.only else SCENARIOS
        bench_library(bench, root, facts,
                      lambda: music_rows(bench, root, facts, args.seed, scenarios),
                      f"files{args.files}")
    if args.large:
        root = args.workdir / f"large-{args.large}-{args.min_mb:g}-{args.max_mb:g}-s{args.seed}"
        facts = make_library.ensure_library(root, large=args.large, min_mb=args.min_mb,
                                            max_mb=args.max_mb, seed=args.seed)
        bench_library(bench, root, facts, lambda: large_rows(bench, root, facts),
                      f"large{args.large}")
    shutil.rmtree(args.workdir / "db", ignore_errors=True)


if __name__ == "__main__":
    main()
