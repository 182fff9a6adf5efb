"""The service's event latency and idle cost: how long from a file's close to its
committed catalogue row, and to a media server's request; and how much CPU the
service takes doing nothing.

    python bench/latency.py [--trials 10] [--idle 60] [--push-delay 2] [--workdir ...]

It starts `indexer run` (defaults: debounce 1 s, closed quiet 0.2 s, settle 5 s) on a
small library of real tagged tracks, with one `[[notify]]` webhook target served by
this script (`push.delay_s` = `--push-delay`). Each trial copies, as `cp` does
(written, then closed): one track into an existing folder; an album of 20 tracks as
a new folder; and, once, 500 tracks in 25 new folders; and an album moved in whole
(renamed from outside the root). From the copy's end (its last close) it polls a
read-only connection every 5 ms until the rows are committed, then until their tags
are in, and notes when the webhook has been told of every file. It prints p50, p95
and max, and the push's lag behind the committed row; then the service's CPU time
over `--idle` seconds of quiet (from /proc/PID/stat) as a share of one core.
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
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
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
    parser.add_argument("--push-delay", type=float, default=2.0, help="push.delay_s")
    parser.add_argument("--track-kib", type=int, default=4096,
                        help="size of each track copied in one file and album cases (a real "
                        "track: 4 to 10 MiB); the 500-file case copies the small samples")
    args = parser.parse_args()
    shutil.rmtree(args.workdir, ignore_errors=True)
    root, db = args.workdir / "music", args.workdir / "library.db"
    make_library(root)
    hook = Webhook()
    config = args.workdir / "config.toml"
    config.write_text(f"[push]\ndelay_s = {args.push_delay}\n\n[[notify]]\nname = \"bench\"\n"
                      f"type = \"webhook\"\nurl = \"{hook.url}\"\n")
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("INDEXER_")},
           "INDEXER_CONFIG": str(config), "INDEXER_DB": str(db)}
    service = subprocess.Popen([args.indexer, "run", str(root)], env=env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait(lambda: count(db) == 50, 120)
        cases = {
            "one file, existing folder": [copy_and_time(
                root, db, hook, f"single-{n}", 1, 1, "into", args.track_kib)
                for n in range(args.trials)],
            "album of 20, new folder": [copy_and_time(
                root, db, hook, f"album-{n}", 20, 1, "copy", args.track_kib)
                for n in range(args.trials)],
            "album of 20 small files, new folder": [copy_and_time(
                root, db, hook, f"small-{n}", 20, 1, "copy", 0) for n in range(args.trials)],
            "album of 20, moved in": [copy_and_time(
                root, db, hook, f"moved-{n}", 20, 1, "move", args.track_kib)
                for n in range(args.trials)],
            "500 small files in 25 folders": [copy_and_time(root, db, hook, "many", 20, 25, "copy", 0)],
        }
        idle = idle_cpu(service.pid, args.idle)
    finally:
        service.send_signal(signal.SIGTERM)
        service.wait(timeout=30)
    report(cases, idle, args)


def make_library(root: Path) -> None:
    for n in range(50):
        folder = root / f"Artist {n % 5}" / f"Album {n % 10}"
        folder.mkdir(parents=True, exist_ok=True)
        sample = TRACKS[n % len(TRACKS)]
        shutil.copyfile(SAMPLES / sample, folder / f"{n:02d}{Path(sample).suffix}")
        with open(folder / f"{n:02d}{Path(sample).suffix}", "ab") as out:
            out.write(str(n).encode())  # distinct content


class Webhook:
    """A webhook receiver on 127.0.0.1: when it was first told of each path."""

    def __init__(self):
        self.told: dict[str, float] = {}
        told = self.told

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                now = time.monotonic()
                for change in body["changes"]:
                    told.setdefault(change["path"], now)
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args):
                pass

        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{server.server_address[1]}/"


def copy_and_time(root: Path, db: Path, hook: Webhook, name: str, tracks: int, folders: int,
                  how: str, track_kib: int) -> tuple[float, float, float]:
    """Copy `folders` x `tracks` files into the library: "into" an existing folder, as a
    "copy" of new folders (each file written, then closed), or "move"d in whole from
    outside the root. Seconds from the end of it until all are in the catalogue, until
    their tags are, and until the webhook was told of all."""
    staging = Path(tempfile.mkdtemp(dir=root.parent)) / name
    for f in range(folders):
        folder = staging / f"CD{f}" if folders > 1 else staging
        folder.mkdir(parents=True)
        for n in range(tracks):
            sample = TRACKS[n % len(TRACKS)]
            track = folder / f"{name} {n:02d}{Path(sample).suffix}"
            shutil.copyfile(SAMPLES / sample, track)
            with open(track, "ab") as out:  # distinct content, then audio-sized
                out.write(f"{name}-{f}-{n}".encode())
                out.write(os.urandom(max(0, track_kib * 1024 - track.stat().st_size)))
    target = root / "Artist 0" / "Album 0" if how == "into" else root / "incoming" / name
    target.parent.mkdir(exist_ok=True)
    expected = count(db) + tracks * folders
    sources = sorted(p for p in staging.rglob("*") if p.is_file())
    paths = [str(target / p.relative_to(staging)) for p in sources]
    if how == "into":
        for source, path in zip(sources, paths):
            shutil.copyfile(source, path)
    elif how == "copy":
        shutil.copytree(staging, target, copy_function=shutil.copyfile)
    else:
        staging.rename(target)
    started = time.monotonic()  # the last close (or the rename): the clock starts here
    wait(lambda: count(db) >= expected, 120)
    committed = time.monotonic() - started
    wait(lambda: tagged(db, paths), 120)
    tags = time.monotonic() - started
    wait(lambda: all(p in hook.told for p in paths), 120)
    return committed, tags, max(hook.told[p] for p in paths) - started


def tagged(db: Path, paths: list[str]) -> bool:
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
        found = conn.execute(
            "SELECT count(*) FROM media m JOIN files f ON f.id = m.file_id WHERE f.path IN "
            f"({', '.join('?' * len(paths))}) AND m.content_hash = f.hash", paths).fetchone()[0]
    return found == len(paths)


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


def p95(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]


def report(cases: dict[str, list[tuple[float, float, float]]], idle: float, args) -> None:
    print(f"event latency from the copy's end, {args.trials} trials each (500 files: 1); "
          f"defaults: debounce 1.0 s, closed quiet 0.2 s, settle 5.0 s; "
          f"push.delay_s {args.push_delay:g} s; tracks of {args.track_kib:,} KiB (small: "
          "the 7 to 30 KiB samples)")
    print(f"{'case':<56}{'p50 s':>8}{'p95 s':>8}{'max s':>8}   target")
    for name, trials in cases.items():
        rows = ((f"{name}: committed row", [c for c, _, _ in trials], None),
                (f"{name}: tags in", [t for _, t, _ in trials], 1.0),
                (f"{name}: webhook told", [p for _, _, p in trials], None),
                (f"{name}: push after the row", [p - c for c, _, p in trials], 1.0))
        for label, values, target in rows:
            verdict = "" if target is None or "500" in name else (
                f"p95 <= {target:.1f} s: {'met' if p95(values) <= target else 'MISSED'}")
            print(f"{label:<56}{statistics.median(values):>8.2f}{p95(values):>8.2f}"
                  f"{max(values):>8.2f}   {verdict}")
    print(f"idle CPU over {args.idle:.0f} s: {idle * 100:.2f}% of one core   target < 1%: "
          f"{'met' if idle < 0.01 else 'MISSED'}")
    print(json.dumps({"cases": cases, "idle_share": idle}))


if __name__ == "__main__":
    main()
