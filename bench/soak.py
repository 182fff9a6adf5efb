"""Soak with faults: the service under churn for half an hour, a fault every few minutes.

    sudo .venv/bin/python bench/soak.py [--files 25000] [--minutes 30] [--seed 1]
        [--workdir /var/tmp/indexer-soak]

Runs `indexer run` with default settings on a root of real tracks (a loop-mounted
ext4 image) with its catalogue on a tmpfs, changes the library without pause, and
every `--churn` seconds injects one fault: SIGKILL of the service and a restart,
SIGKILL or SIGSTOP of a tag worker, the catalogue's disk full for a minute, the root
unmounted and remounted with changed content, an inotify burst of 100,000 events.
See fault_loop.py for what is checked. Prints each recovery, the service's resources
over time and the totals; writes everything to WORKDIR/soak.json. Not part of CI (a
seeded minute of the same loop is: tests/test_soak.py). Mounting needs root; without
it the full disk and the remount are left out.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
from pathlib import Path

from fault_loop import FAULTS, Report, Settings, Soak


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--files", type=int, default=25_000)
    parser.add_argument("--minutes", type=float, default=30)
    parser.add_argument("--churn", type=float, default=120, help="seconds between faults")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--faults", default=",".join(FAULTS))
    parser.add_argument("--workdir", type=Path, default=Path("/var/tmp/indexer-soak"))
    args = parser.parse_args()
    shutil.rmtree(args.workdir, ignore_errors=True)
    settings = Settings(workdir=args.workdir, files=args.files, minutes=args.minutes,
                        churn_s=args.churn, seed=args.seed, faults=tuple(args.faults.split(",")))
    report = Soak(settings).run()
    (args.workdir / "soak.json").write_text(json.dumps(report.as_dict(), indent=1))
    print_report(report, settings)
    sys.exit(0 if healthy(report) else 1)


def healthy(report: Report) -> bool:
    return (not report.harness_error and not report.service_died
            and report.rows_wrong_at_end == 0
            and report.ids_lost_at_end == 0
            and not report.idle_while_behind
            and all(r["converged_s"] is not None and r.get("ids_lost") == 0
                    for r in report.recoveries))


def print_report(report: Report, s: Settings) -> None:
    print(f"soak: {s.files:,} files, seed {s.seed}, {report.changes:,} changes by the user, "
          f"{len(report.recoveries)} faults")
    if report.harness_error:
        print(f"NOT A VALID RUN: {report.harness_error}")
    print(f"{'at min':>7}  {'fault':<13}{'converged s':>12}{'rows wrong':>11}{'ids lost':>9}  detail")
    for r in report.recoveries:
        detail = {k: v for k, v in r.items() if k not in
                  ("fault", "at_min", "converged_s", "rows_wrong", "ids_lost")}
        shown = "never" if r["converged_s"] is None else f"{r['converged_s']:.1f}"
        print(f"{r['at_min']:>7.1f}  {r['fault']:<13}{shown:>12}{r['rows_wrong']:>11}"
              f"{r.get('ids_lost', '-'):>9}  {json.dumps(detail)}")
    times = sorted(r["converged_s"] for r in report.recoveries if r["converged_s"] is not None)
    if times:
        p95 = times[min(len(times) - 1, round(0.95 * (len(times) - 1)))]
        print(f"time to converge after a fault: median {statistics.median(times):.1f} s, "
              f"p95 {p95:.1f} s, max {times[-1]:.1f} s "
              f"({len(times)} of {len(report.recoveries)} recovered)")
    print(f"status sampled {report.samples} times ({report.idle_samples} idle); said idle while "
          f"the catalogue had differed for over {s.behind_limit_s:g} s: "
          f"{len(report.idle_while_behind)} times")
    for bad in report.idle_while_behind[:5]:
        print(f"  {bad}")
    print(f"at the end: {report.rows_wrong_at_end} rows wrong, {report.ids_lost_at_end} ids lost, "
          f"{report.without_tags_at_end} tracks without their tags; log: "
          f"{report.overflows_logged} overflows, {report.errors_logged} error lines; the service "
          f"died by itself {report.service_died} times")
    for example in report.ids_lost_examples:
        print(f"  id lost: {example}")
    print(f"{'when':<22}{'pid':>8}{'RSS MiB':>9}{'fds':>6}{'threads':>9}{'children':>10}")
    for r in report.resources:
        print(f"{r['when']:<22}{r['pid']:>8}{r['rss_mib']:>9.1f}{r['fds']:>6}{r['threads']:>9}"
              f"{r['children']:>10}")


if __name__ == "__main__":
    main()
