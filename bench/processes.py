"""CPU and peak memory of a command, process by process: the main process apart from
the workers it starts (issue 17, target 5).

    python bench/processes.py [--every 0.05] -- COMMAND [ARG ...]

Every `--every` seconds it reads /proc for the command and each of its descendants:
CPU (utime + stime of every thread, /proc/PID/task/TID/stat) and the peak RSS the
kernel keeps (VmHWM, /proc/PID/status). A process is shown by its role: the main
process, or a worker by the stage on its command line (`python -m indexer.worker
indexer.metadata:read_tags`); workers of one role are shown together (CPU summed, peak
RSS the largest of them, and how many there were). A process seen last just before it
ended is counted as it was then: a short process can end between two looks, and its
last figures are lost, so the CPU of short workers is a lower bound.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from dataclasses import dataclass

TICK = os.sysconf("SC_CLK_TCK")


@dataclass
class Seen:
    role: str
    cpu_s: float = 0.0
    peak_kib: int = 0


def role_of(pid: int, main: int) -> str:
    if pid == main:
        return "main process"
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as handle:
            words = handle.read().split(b"\0")
    except OSError:
        return "worker"
    text = [w.decode(errors="replace") for w in words if w]
    if "indexer.worker" in text:
        return f"worker {text[text.index('indexer.worker') + 1].split(':')[-1]}"
    return f"child {os.path.basename(text[0]) if text else '?'}"


def descendants(pid: int) -> list[int]:
    found, todo = [], [pid]
    while todo:
        here = todo.pop()
        found.append(here)
        try:
            for task in os.listdir(f"/proc/{here}/task"):
                with open(f"/proc/{here}/task/{task}/children") as handle:
                    todo += [int(child) for child in handle.read().split()]
        except OSError:
            pass
    return found


def look(pid: int, seen: dict[int, Seen], main: int) -> None:
    try:
        cpu = 0
        for task in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{task}/stat") as handle:
                fields = handle.read().rsplit(")", 1)[1].split()
            cpu += int(fields[11]) + int(fields[12])
        with open(f"/proc/{pid}/status") as handle:
            peak = next(int(line.split()[1]) for line in handle if line.startswith("VmHWM:"))
    except (OSError, StopIteration, ValueError):
        return
    entry = seen.setdefault(pid, Seen(role_of(pid, main)))
    entry.cpu_s, entry.peak_kib = max(entry.cpu_s, cpu / TICK), max(entry.peak_kib, peak)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--every", type=float, default=0.05)
    parser.add_argument("command", nargs=argparse.REMAINDER)
    args = parser.parse_args()
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        parser.error("no command given")
    started = time.perf_counter()
    proc = subprocess.Popen(command)
    seen: dict[int, Seen] = {}
    while proc.poll() is None:
        for pid in descendants(proc.pid):
            look(pid, seen, proc.pid)
        time.sleep(args.every)
    wall = time.perf_counter() - started
    roles: dict[str, list[Seen]] = {}
    for entry in seen.values():
        roles.setdefault(entry.role, []).append(entry)
    total = sum(entry.cpu_s for entry in seen.values())
    print(f"exit {proc.returncode}; wall {wall:.2f} s; CPU {total:.2f} s seen "
          f"({total / wall:.2f} cores busy)", file=sys.stderr)
    print(f"{'role':40} {'processes':>9} {'CPU s':>8} {'peak RSS MiB':>13}", file=sys.stderr)
    for role, entries in sorted(roles.items(), key=lambda item: item[0] != "main process"):
        print(f"{role:40} {len(entries):9} {sum(e.cpu_s for e in entries):8.2f} "
              f"{max(e.peak_kib for e in entries) / 1024:13.1f}", file=sys.stderr)
    sys.exit(proc.returncode)


if __name__ == "__main__":
    main()
