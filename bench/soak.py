"""Soak: the service under continuous churn for a long time; does anything grow?

    python bench/soak.py [--files 20000] [--minutes 10] [--workdir /tmp/indexer-soak]

Starts `indexer run` (default settings) on a library of small tracks, waits for the
first reconcile, then creates, renames, edits and deletes files without pause for
`--minutes`. It samples the service's RSS, open file descriptors and threads (from
/proc) at the start and the end, and every minute in between; afterwards it lets the
service settle and checks that the catalogue matches the disk. Not part of CI.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--files", type=int, default=20_000)
    parser.add_argument("--minutes", type=float, default=10)
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/indexer-soak"))
    parser.add_argument("--indexer", default=str(Path(sys.executable).with_name("indexer")))
    args = parser.parse_args()
    shutil.rmtree(args.workdir, ignore_errors=True)
    root, db = args.workdir / "music", args.workdir / "library.db"
    for n in range(args.files):
        folder = root / f"{n % 400:03d}"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"{n}.mp3").write_bytes(f"track {n}".encode())
    (args.workdir / "config.toml").write_text("")
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("INDEXER_")},
           "INDEXER_CONFIG": str(args.workdir / "config.toml"), "INDEXER_DB": str(db)}
    service = subprocess.Popen([args.indexer, "run", str(root)], env=env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait(lambda: present(db) == args.files, 300)
        first_seq = feed_top(db)
        samples = [sample(service.pid, "start", 0)]
        events = churn(root, service.pid, args.minutes * 60, samples)
        samples.append(sample(service.pid, "end", events))
        wait(lambda: matches(db, root), 300)
        settled = sample(service.pid, "settled", events)
    finally:
        service.send_signal(signal.SIGTERM)
        service.wait(timeout=60)
    report(samples + [settled], args, applied(db, first_seq))


def churn(root: Path, pid: int, seconds: float, samples: list[dict]) -> int:
    rng, made, events = random.Random(1), list(root.rglob("*.mp3")), 0
    started = last = time.monotonic()
    while time.monotonic() - started < seconds:
        action = rng.random()
        if action < 0.4:
            path = root / f"{rng.randrange(400):03d}" / f"new {events}.mp3"
            path.write_bytes(f"new {events}".encode())
            made.append(path)
        elif action < 0.6 and made:
            source = made.pop(rng.randrange(len(made)))
            target = source.with_name(f"renamed {events}.mp3")
            source.rename(target)
            made.append(target)
        elif action < 0.8 and made:
            with open(made[rng.randrange(len(made))], "ab") as out:
                out.write(b"edit")
        elif made:
            made.pop(rng.randrange(len(made))).unlink()
        events += 1
        time.sleep(0.005)  # a busy user, not a flood: about 150 changes a second
        if time.monotonic() - last >= 60:
            last = time.monotonic()
            samples.append(sample(pid, f"{(last - started) / 60:.0f} min", events))
    return events


def sample(pid: int, label: str, events: int) -> dict:
    status = dict(line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines())
    children = [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    return {"when": label, "events": events, "rss_mib": int(status["VmRSS"].split()[0]) / 1024,
            "fds": len(os.listdir(f"/proc/{pid}/fd")), "threads": int(status["Threads"]),
            "workers": len(children)}


def present(db: Path) -> int:
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
            return conn.execute("SELECT count(*) FROM files WHERE status = 'present'").fetchone()[0]
    except sqlite3.Error:
        return -1


def matches(db: Path, root: Path) -> bool:
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
        catalogued = {r[0] for r in conn.execute("SELECT path FROM files WHERE status = 'present'")}
    return catalogued == {str(p) for p in root.rglob("*.mp3")}


def feed_top(db: Path) -> int:
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
        return conn.execute("SELECT coalesce(max(seq), 0) FROM changes").fetchone()[0]


def applied(db: Path, after_seq: int) -> dict[str, int]:
    """What the service recorded during the churn: the change feed, and its scan jobs."""
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
        found = dict(conn.execute("SELECT kind, count(*) FROM changes WHERE seq > ? "
                                  "GROUP BY kind ORDER BY kind", (after_seq,)).fetchall())
        found["scan jobs"] = conn.execute("SELECT count(*) FROM scan_jobs").fetchone()[0]
    return found


def wait(condition, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise SystemExit("soak: timed out waiting for the service")
        time.sleep(0.5)


def report(samples: list[dict], args, feed: dict[str, int]) -> None:
    print(f"soak: {args.files:,} files, {args.minutes:g} minutes of churn; then the catalogue "
          "matched the disk")
    print(f"{'when':<10}{'events':>10}{'RSS MiB':>10}{'fds':>6}{'threads':>9}{'workers':>9}")
    for s in samples:
        print(f"{s['when']:<10}{s['events']:>10,}{s['rss_mib']:>10.1f}{s['fds']:>6}"
              f"{s['threads']:>9}{s['workers']:>9}")
    print("applied by the service (change feed rows during the churn): "
          + ", ".join(f"{kind} {count:,}" for kind, count in feed.items()))
    print(json.dumps(samples))


if __name__ == "__main__":
    main()
