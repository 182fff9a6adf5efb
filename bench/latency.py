"""The service's event latency and idle cost: how long from a file's close to its
committed catalogue row, and how much CPU the service takes doing nothing.

    python bench/latency.py [--trials 10] [--idle 60] [--workdir /tmp/indexer-latency]

It starts `indexer run` (defaults: debounce 1 s, settle 5 s) on a small library of
real tagged tracks, then for each trial copies one track, and then an album of 20
tracks at once, into the library, and polls a read-only connection every 5 ms
until the rows are committed. It prints p50, p95 and max beside the configured
debounce + settle, then the service's CPU time over `--idle` seconds of quiet
(from /proc/PID/stat) as a share of one core.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SAMPLES = REPO / "tests" / "data"
TRACKS = ["id3v24.mp3", "tone.flac", "tone.ogg", "tone.m4a", "tone.opus"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--trials", type=int, default=10)
    parser.add_argument("--idle", type=float, default=60.0, help="seconds of idle measured")
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/indexer-latency"))
    parser.add_argument("--indexer", default=str(Path(sys.executable).with_name("indexer")))
    args = parser.parse_args()
    shutil.rmtree(args.workdir, ignore_errors=True)
    root, db = args.workdir / "music", args.workdir / "library.db"
    make_library(root)
    config = args.workdir / "config.toml"
    config.write_text("")
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("INDEXER_")},
           "INDEXER_CONFIG": str(config), "INDEXER_DB": str(db)}
    service = subprocess.Popen([args.indexer, "run", str(root)], env=env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait(lambda: count(db) == 50, 120)
        single = [copy_and_time(root, db, f"single-{n}", 1) for n in range(args.trials)]
        album = [copy_and_time(root, db, f"album-{n}", 20) for n in range(args.trials)]
        idle = idle_cpu(service.pid, args.idle)
    finally:
        service.send_signal(signal.SIGTERM)
        service.wait(timeout=30)
    report(single, album, idle, args)


def make_library(root: Path) -> None:
    for n in range(50):
        folder = root / f"Artist {n % 5}" / f"Album {n % 10}"
        folder.mkdir(parents=True, exist_ok=True)
        sample = TRACKS[n % len(TRACKS)]
        shutil.copyfile(SAMPLES / sample, folder / f"{n:02d}{Path(sample).suffix}")
        with open(folder / f"{n:02d}{Path(sample).suffix}", "ab") as out:
            out.write(str(n).encode())  # distinct content


def copy_and_time(root: Path, db: Path, name: str, tracks: int) -> float:
    """Copy `tracks` files (complete, then closed) into a new folder: seconds until all are in."""
    staging = Path(tempfile.mkdtemp(dir=root.parent))
    for n in range(tracks):
        sample = TRACKS[n % len(TRACKS)]
        shutil.copyfile(SAMPLES / sample, staging / f"{n:02d}{Path(sample).suffix}")
        with open(staging / f"{n:02d}{Path(sample).suffix}", "ab") as out:
            out.write(f"{name}-{n}".encode())
    target = root / "incoming" / name
    target.parent.mkdir(exist_ok=True)
    expected = count(db) + tracks
    staging.rename(target)  # the files arrive complete, at once: the clock starts here
    started = time.monotonic()
    wait(lambda: count(db) >= expected, 60)
    return time.monotonic() - started


def count(db: Path) -> int:
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
            return conn.execute("SELECT count(*) FROM files WHERE status = 'present'").fetchone()[0]
    except sqlite3.Error:
        return 0


def wait(condition, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise SystemExit("latency: timed out waiting for the service")
        time.sleep(0.005)


def idle_cpu(pid: int, seconds: float) -> float:
    """The service's CPU time over `seconds` of quiet, as a share of one core."""
    time.sleep(10)  # let the last jobs end
    before, started = cpu_seconds(pid), time.monotonic()
    time.sleep(seconds)
    return (cpu_seconds(pid) - before) / (time.monotonic() - started)


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = int(fields[11]) + int(fields[12]) + int(fields[13]) + int(fields[14])
    return ticks / os.sysconf("SC_CLK_TCK")


def report(single: list[float], album: list[float], idle: float, args) -> None:
    budget = 1.0 + 5.0  # the defaults: watch.debounce_ms 1000, watch.settle_seconds 5
    print(f"event latency, {args.trials} trials each; debounce 1.0 s + settle 5.0 s = {budget:.1f} s")
    print(f"{'case':<28}{'p50 s':>8}{'p95 s':>8}{'max s':>8}   target p95 <= {budget + 0.5:.1f} s")
    for name, values in (("one file", single), ("album of 20 files", album)):
        ordered = sorted(values)
        p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
        print(f"{name:<28}{statistics.median(values):>8.2f}{p95:>8.2f}{max(values):>8.2f}"
              f"   {'met' if p95 <= budget + 0.5 else 'MISSED'}")
    print(f"idle CPU over {args.idle:.0f} s: {idle * 100:.2f}% of one core   target < 1%: "
          f"{'met' if idle < 0.01 else 'MISSED'}")
    print(json.dumps({"single": single, "album": album, "idle_share": idle}))


if __name__ == "__main__":
    main()
