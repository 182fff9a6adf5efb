"""Measured processes, the sides that run them, and the A B A B order they run in.

A side is one command under test. Every run of it is a whole separate process
(start-up counts: a user pays it too), timed from spawn to exit. Its CPU time is
its own rusage (`os.wait4`, children included); its peak RSS is GNU time's %M
where /usr/bin/time exists (see `measure` for why not ru_maxrss), the largest
single process, not a sum. Sides are compared by running each once untimed
(a warm-up), then all in turn, A B A B, so drift on a shared machine hits both
alike. With `--cold` the page cache is dropped before every run of every side.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

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


# --- the page cache, for --cold

DROP_CACHES = "/proc/sys/vm/drop_caches"


class PageCache:
    """Drops the kernel's caches before each run when `--cold` asks and the kernel lets us.

    Cold means a scan reads folders, inodes and bytes from the disk, as the first
    scan after a boot does. Dropping needs root and a writable /proc/sys (a
    container's is often read-only). It is tried once at start; if it fails the
    runs are warm, said once on stderr and in every table's header (`describe`).
    """

    def __init__(self, cold: bool):
        self.asked = cold
        self.cold = cold
        self.why_warm = ""
        if cold:
            self.drop()  # find out now, before any header is written

    def drop(self) -> None:
        if not self.cold:
            return
        os.sync()  # dirty pages are not dropped: write them back first
        why = _drop_caches()
        if why:
            self.cold, self.why_warm = False, why
            print(f"bench: --cold: the page cache could not be dropped ({why}); the runs are warm",
                  file=sys.stderr)

    def describe(self) -> str:
        if self.cold:
            return "cold cache (dropped before every run)"
        if self.asked:
            return f"warm cache: --cold asked, but the page cache could not be dropped ({self.why_warm})"
        return "warm cache"


def _drop_caches() -> str | None:
    """Drop the page cache, dentries and inodes; None if done, else why not."""
    if os.geteuid() != 0:
        return "not root"
    try:
        with open(DROP_CACHES, "w") as handle:
            handle.write("3\n")
    except OSError as error:
        return f"writing {DROP_CACHES}: {error.strerror or error}"
    return None


# --- sides


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
    cache: PageCache | None = None
    samples: list[Sample] = field(default_factory=list)

    def run(self, i: int) -> Sample:
        self.prepare(i)
        if self.cache:
            self.cache.drop()  # after prepare: what it wrote is on disk, not in the cache
        sample = measure(self.cmd, self.env, json_out=self.is_indexer)
        if self.is_indexer:
            _check_scan(self.name, sample.summary)
        return sample


def _check_scan(name: str, summary: dict) -> None:
    if summary["status"] != "completed" or summary["errors"]:
        raise SystemExit(f"bench: {name}: the scan did not complete cleanly: {summary}")


def run_interleaved(sides: list[Side], runs: int, *, warm_up: bool = True) -> None:
    """A warm-up of each side, then `runs` rounds of A B (C...)."""
    if warm_up:
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
    slice_size: int = 0  # for a 1% change: the files each run of ours must find changed


# --- the commands under test, and the environment they get


@dataclass
class Bench:
    workdir: Path
    indexer: str
    runs: int
    env: dict[str, str]
    cache: PageCache
    notes: list[str] = field(default_factory=list)  # said on stderr now, and under the tables

    def db(self, name: str) -> Path:
        return self.workdir / "db" / name / "catalogue.db"

    def scan(self, name: str, root: Path, db: Path, *extra: str, prepare=None,
             env: dict[str, str] | None = None) -> Side:
        return Side(name, [self.indexer, "scan", str(root), "--db", str(db), "--json", *extra],
                    {**self.env, **(env or {})}, prepare or (lambda i: None), cache=self.cache)

    def reference(self, name: str, cmd: list[str], *, files: int | None = None,
                  bytes_read: int | None = None, env: dict[str, str] | None = None,
                  prepare=None) -> Side:
        return Side(name, cmd, {**self.env, **(env or {})}, prepare or (lambda i: None),
                    is_indexer=False, files=files, bytes_read=bytes_read, cache=self.cache)

    def note(self, text: str) -> None:
        print(f"bench: {text}", file=sys.stderr)
        self.notes.append(text)

    def take_notes(self) -> list[str]:
        """The notes since the last report, for this one."""
        taken, self.notes = self.notes, []
        return taken


def clean_env(workdir: Path) -> dict[str, str]:
    """This environment without INDEXER_* settings, and an empty config file."""
    config = workdir / "empty-config.toml"
    config.write_text("")
    # PYTHONDONTWRITEBYTECODE (set in some shells and CI images) would make every
    # process compile the project's modules from source, about 0.1 s a start here,
    # which no installed copy pays: the warm-up run writes them instead.
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("INDEXER_") and k != "PYTHONDONTWRITEBYTECODE"}
    env["INDEXER_CONFIG"] = str(config)
    return env


def remove_db(db: Path) -> None:
    for suffix in ("", "-wal", "-shm", ".lock"):
        db.with_name(db.name + suffix).unlink(missing_ok=True)


def fresh_db(db: Path) -> Callable[[int], None]:
    return lambda i: remove_db(db)
