"""Benchmark `indexer scan` against the machine's own limits and a peer, and print tables.

Every measured run is a whole separate process (start-up counts: a user pays
it too), timed from spawn to exit, with its CPU time and peak RSS (harness.py).
Each scenario pits our side against a reference: one untimed warm-up run of
every side first, then the sides in turn, A B A B, so drift on a shared machine
hits both alike. Medians are reported with [min-max].

For a music library (`--files N`, made by make_library.py; scenarios.py):
  full scan          fresh catalogue each run: parallel (ours) vs --sequential,
                     and with metadata on vs off
  metadata stage     the tags of every track read through the worker pool alone
  no-change rescan   populated catalogue vs `find ROOT -type f -printf ...` (the
                     floor for "did anything change?"); bytes read must be 0
  rescan 1% changed, moved, deleted
                     before each run a new 1% of the tracks retagged, moved inside
                     the root, or moved out of it (changes.py), vs the no-change
                     rescan after it; the table's new+changed, moved and missing
                     columns show each run found exactly the 1%; all put back
  beets (--beets)    `beet import` vs our first full scan, `beet update` vs our
                     no-change rescan (beets_peer.py), up to --beets-max-files
  MPD (--mpd)        MPD's first update, no-change update and update after 1%
                     retagged vs our scans; `indexer rescan` through `indexer run`
                     vs its update; an album copied in, until `indexer run` and
                     MPD's auto_update show it (mpd_peer.py); skipped, with a note,
                     when mpd or mpc is not installed
For a hash-bound library (`--large N` files of --min-mb to --max-mb MiB):
  full scan          parallel vs --sequential, and vs `xxhsum -H2` if installed
For music libraries of several sizes (`--sizes 10000,50000,...`; sweep.py):
  the first full scan (time per file, files/s, peak RSS) and the no-change rescan
  vs find, one table across sizes; bench/plot.py draws its results file
With --cold the page cache is dropped before every run (root only); the tables
say whether the runs were cold or warm.

    python bench/run.py --files 50000 --runs 3
    python bench/run.py --large 400 --runs 3 [--cold]
    python bench/run.py --sizes 10000,50000,200000,1000000 --runs 3
    python bench/run.py --files 10000 --beets [--only beets]
    python bench/run.py --files 10000 --mpd --only mpd --runs 5

Results go to stdout and, with every sample, to WORKDIR/results-*.json.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
# Siblings, not a package: bench/ is put on sys.path above.
import beets_peer  # noqa: E402
import make_library  # noqa: E402
import mpd_peer  # noqa: E402
import mpd_server  # noqa: E402
import report  # noqa: E402
import scenarios  # noqa: E402
import sweep  # noqa: E402
from harness import Bench, PageCache, Row, clean_env  # noqa: E402


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
    # Before the runs: the load and revision they met.
    head = report.header(report.library_line(root, facts), bench.runs, bench.cache.describe())
    report.report(bench, head, root, facts, rows(), tag)


def bench_music(bench: Bench, args: argparse.Namespace, beets: beets_peer.Beets | None,
                mpd: mpd_server.Mpd | None) -> None:
    root = args.workdir / f"music-{args.files}-s{args.seed}"
    facts = make_library.ensure_library(root, files=args.files, seed=args.seed)
    chosen = tuple(args.only.split(",")) if args.only else scenarios.DEFAULT_SCENARIOS
    chosen += tuple(name for name, on in (("beets", beets), ("mpd", args.mpd))
                    if on and name not in chosen)
    peers = {}
    if beets:
        peers["beets"] = lambda: beets_peer.beets_rows(bench, beets, root, facts)
    if mpd:
        peers["mpd"] = lambda: mpd_peer.mpd_rows(bench, mpd, root, facts, args.seed,
                                                 args.mpd_trials, args.mpd_depth)
    elif "mpd" in chosen:
        bench.note(mpd_peer.missing_note())
    bench_library(bench, root, facts,
                  lambda: scenarios.music_rows(bench, root, facts, args.seed, chosen, peers),
                  f"files{args.files}")


def bench_large(bench: Bench, args: argparse.Namespace) -> None:
    root = args.workdir / f"large-{args.large}-{args.min_mb:g}-{args.max_mb:g}-s{args.seed}"
    facts = make_library.ensure_library(root, large=args.large, min_mb=args.min_mb,
                                        max_mb=args.max_mb, seed=args.seed)
    bench_library(bench, root, facts, lambda: scenarios.large_rows(bench, root, facts),
                  f"large{args.large}")


def bench_sizes(bench: Bench, args: argparse.Namespace, beets: beets_peer.Beets | None) -> None:
    libraries = sweep.make_libraries(args.workdir, args.sizes, args.seed)
    os.sync()  # as in bench_library: no write-back under the timed runs
    head = report.header(f"music libraries of {', '.join(f'{n:,}' for n in args.sizes)} tracks "
                         f"(seed {args.seed}) in {args.workdir}; first full scan: "
                         f"{args.full_runs} run(s), no warm-up scan", args.runs, bench.cache.describe())
    points, beets_rows = [], []
    for tracks, root, facts in libraries:
        peer = (lambda r, f: beets_peer.beets_rows(bench, beets, r, f)) if beets else lambda r, f: []
        point, rows = sweep.measure_size(bench, tracks, root, facts, args.full_runs, peer)
        points.append(point)
        beets_rows += rows
    notes = bench.take_notes()
    text = sweep.sweep_text(head, points, beets_rows, notes, bench.cache.cold)
    print(text)
    out = report.write_results(bench, "sizes", sweep.sweep_json(text, points, beets_rows, notes))
    print(f"\n(all samples in {out}; draw it with: python bench/plot.py {out})")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    first, rest = __doc__.split("\n\n", 1)
    parser = argparse.ArgumentParser(description=first, epilog=rest,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    what = parser.add_argument_group("libraries (one or more)")
    what.add_argument("--files", type=int, metavar="N", help="a music library of N tracks")
    what.add_argument("--large", type=int, metavar="N", help="a hash-bound library of N files")
    what.add_argument("--sizes", metavar="N,N,...", type=_sizes,
                      help="a sweep over music libraries of these many tracks, e.g. "
                           "10000,50000,200000,1000000; making one takes about 17 s and 400 MiB "
                           "of disk per 50,000 tracks (1,000,000: about 6 min, 8 GiB)")
    parser.add_argument("--min-mb", type=float, default=5,
                        help="smallest large file, MiB (default %(default)s)")
    parser.add_argument("--max-mb", type=float, default=50,
                        help="largest large file, MiB (default %(default)s)")
    parser.add_argument("--runs", type=int, default=3,
                        help="timed runs per side, after one warm-up (default %(default)s)")
    parser.add_argument("--full-runs", type=int, default=1,
                        help="timed first full scans per size of --sizes (default %(default)s)")
    parser.add_argument("--seed", type=int, default=1, help="of the libraries (default %(default)s)")
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/indexer-bench"),
                        help="libraries, catalogues, beets and results (default %(default)s)")
    parser.add_argument("--indexer", help="the indexer command (default: the venv's)")
    parser.add_argument("--only", metavar="LIST",
                        help=f"music scenarios to run (--files), of {','.join(scenarios.SCENARIOS)} "
                             f"(default: {','.join(scenarios.DEFAULT_SCENARIOS)}, and beets with --beets)")
    parser.add_argument("--cold", action="store_true",
                        help="drop the page cache before every timed run (needs root; "
                             "if it cannot, the runs are warm and the tables say so)")
    parser.add_argument("--beets", action="store_true",
                        help="also run beets (installed into WORKDIR/beets-venv) as a peer on "
                             "--files and --sizes libraries")
    parser.add_argument("--beets-max-files", type=int, default=10_000, metavar="N",
                        help="skip beets on libraries of more tracks: it imports about 100 files/s "
                             "(default %(default)s)")
    parser.add_argument("--mpd", action="store_true",
                        help="also run MPD (Debian packages mpd and mpc) as a peer on --files "
                             "libraries; skipped with a note when it is not installed")
    parser.add_argument("--mpd-trials", type=int, default=10, metavar="N",
                        help="albums copied in for the live MPD row (default %(default)s)")
    parser.add_argument("--mpd-depth", type=int, metavar="N",
                        help="MPD's auto_update_depth for the live row (default: MPD's, no limit)")
    args = parser.parse_args(argv)
    if not (args.files or args.large or args.sizes) or args.runs < 1 or args.full_runs < 1:
        parser.error("give --files N, --large N and/or --sizes LIST, and --runs, --full-runs >= 1")
    unknown = set(args.only.split(",")) - set(scenarios.SCENARIOS) if args.only else set()
    if unknown:
        parser.error(f"unknown scenarios in --only: {','.join(sorted(unknown))}")
    return args


def _sizes(text: str) -> list[int]:
    sizes = sorted({int(part) for part in text.split(",") if part.strip()})
    if not sizes or sizes[0] < 1:
        raise argparse.ArgumentTypeError("a comma-separated list of positive track counts")
    return sizes


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    args.workdir.mkdir(parents=True, exist_ok=True)
    bench = Bench(args.workdir, find_indexer(args.indexer), args.runs, clean_env(args.workdir),
                  PageCache(args.cold))
    wants_beets = args.beets or "beets" in (args.only or "").split(",")
    # Installed before anything is timed: a failed install stops the bench at once.
    beets = beets_peer.ensure_beets(args.workdir, args.beets_max_files) if wants_beets else None
    args.mpd = args.mpd or "mpd" in (args.only or "").split(",")
    mpd = mpd_server.find_mpd() if args.mpd else None
    if args.files:
        bench_music(bench, args, beets, mpd)
    elif args.mpd:
        print("bench: --mpd runs on a --files library only", file=sys.stderr)
    if args.large:
        bench_large(bench, args)
    if args.sizes:
        bench_sizes(bench, args, beets)
    shutil.rmtree(args.workdir / "db", ignore_errors=True)


if __name__ == "__main__":
    main()
