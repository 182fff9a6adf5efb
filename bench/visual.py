"""Videos and photos: how fast a scan reads them, and how little of each film it reads.

On a library made by make_visual.py (WORKDIR/visual-V-P-s1: V small videos, P
photos, two films of --film-gb GiB), in this order, each printed as a table and
saved with every sample to WORKDIR/results-visual-*.json:

  full scan by kind   `indexer scan --json` of the videos alone, the photos alone, and
                      both with the music library of --music tracks (make_library.py),
                      fresh catalogue each run, `--workers 2` and 2 tag workers:
                      wall time, files/s (of the kind: videos/s, photos/s)
  metadata stage      the videos, then the photos, read through the scan's worker pool
                      alone (2 workers), each item's bytes read counted by its worker
                      (/proc/self/io rchar, before and after): files/s, bytes per file
  ffprobe             `ffprobe -show_format -show_streams` per video, 2 at a time, on
                      the same videos in the same run (if installed: apt-get install ffmpeg)
  films               bytes read to probe each film: ours (the worker's rchar), ffprobe
                      with its defaults, and ffprobe as Jellyfin runs it (-probesize 1G
                      -analyzeduration 200M), counted by strace (apt-get install strace)
  names               guessit's cost per name, and names.guess's (with its fast paths),
                      on the library's video paths

    python bench/visual.py --videos 2000 --photos 10000 --music 50000 --film-gb 1 --runs 3
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import make_library  # noqa: E402
import make_visual  # noqa: E402
from harness import clean_env, measure, remove_db  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--videos", type=int, default=2000)
    parser.add_argument("--photos", type=int, default=10000)
    parser.add_argument("--music", type=int, default=0, help="tracks in the mixed scan")
    parser.add_argument("--film-gb", type=float, default=1.0)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/indexer-bench"))
    parser.add_argument("--keep-films", action="store_true",
                        help="keep the films (2 x --film-gb GiB) for the next run")
    args = parser.parse_args()
    indexer = str(Path(sys.executable).parent / "indexer")
    lib = args.workdir / f"visual-{args.videos}-{args.photos}-s1"
    made = time.perf_counter()
    facts = make_visual.ensure(lib, args.videos, args.photos, args.film_gb)
    print(f"library {lib}: {facts['videos']['files']:,} videos "
          f"({facts['videos']['bytes'] / 1e6:,.1f} MB), {facts['photos']['files']:,} photos "
          f"({facts['photos']['bytes'] / 1e6:,.1f} MB), films {len(facts['films'])} "
          f"(ready in {time.perf_counter() - made:.0f} s)", flush=True)
    results = {"library": facts, "runs": args.runs}
    results["scans"] = full_scans(indexer, args, lib)
    results["stage"] = {kind: stage(lib / folder) for kind, folder in
                        (("videos", "videos"), ("photos", "photos"))}
    print_stage(results["stage"])
    results["ffprobe"] = ffprobe_all(lib / "videos")
    results["films"] = films(facts["films"])
    results["names"] = names_cost(lib / "videos")
    out = args.workdir / f"results-visual-{time.strftime('%Y%m%d-%H%M%S')}.json"
    out.write_text(json.dumps(results, indent=1))
    print(f"\nresults: {out}")
    if not args.keep_films:  # the marker then says no films: the next run makes them again
        shutil.rmtree(lib / "films", ignore_errors=True)
        facts["params"]["film_gb"], facts["films"] = 0, []
        (lib / make_visual.MARKER).write_text(json.dumps(facts))


def full_scans(indexer: str, args: argparse.Namespace, lib: Path) -> dict:
    env = {**clean_env(args.workdir), "INDEXER_SCAN_WORKERS": "2", "INDEXER_METADATA_WORKERS": "2"}
    roots = {"videos": [lib / "videos"], "photos": [lib / "photos"]}
    if args.music:
        music = args.workdir / f"music-{args.music}-s1"
        make_library.ensure_library(music, files=args.music, seed=1)
        roots["mixed"] = [lib / "videos", lib / "photos", music]
    os.sync()
    found = {}
    print("\nfull scan, fresh catalogue, 2 hash and 2 tag workers (medians [min-max]):")
    for name, paths in roots.items():
        db = args.workdir / f"visual-{name}.db"
        samples = []
        for run in range(args.runs + 1):  # the first: warm-up, not counted
            remove_db(db)
            sample = measure([indexer, "scan", *map(str, paths), "--db", str(db), "--json"],
                             env, json_out=True)
            if run:
                samples.append(sample)
        remove_db(db)
        walls = [s.wall_s for s in samples]
        summary = samples[-1].summary
        files = summary["files_processed"]
        found[name] = {"files": files, "wall_s": walls, "errors": summary["errors"],
                       "tags_failed": summary["metadata_failed"],
                       "peak_rss_mib": max(s.peak_rss_mib for s in samples)}
        median = statistics.median(walls)
        print(f"  {name:<7} {files:>7,} files  {median:6.2f} s [{min(walls):.2f}-{max(walls):.2f}]"
              f"  {files / median:>7,.0f} files/s  (tags failed: {summary['metadata_failed']})",
              flush=True)
    return found


STAGE = """
import json, os, sys, threading, time
sys.path.insert(0, {bench!r})
from indexer.kinds import kind_of, taggable
from indexer.pipeline import ProcessPool, batches
from indexer.records import TagJob
root = sys.argv[1]
paths = sorted(os.path.join(d, n) for d, _, ns in os.walk(root) for n in ns
               if taggable(kind_of(n), n))
jobs = [TagJob(p, p, str(i)) for i, p in enumerate(paths)]
results, lock = [], threading.Lock()
def collect(found):
    with lock:
        results.extend(found)
started = time.perf_counter()
pool = ProcessPool("visual_stage:read_counting", collect, threading.Event(), workers=2,
                   timeout=60, on_timeout=lambda job: None, on_crash=lambda job, why: None)
for batch in batches(jobs, lambda job: 1, max_items=32):
    pool.submit(batch)
pool.drain()
pool.close()
seconds = time.perf_counter() - started
read = sorted(r[1] for r in results if r)
print(json.dumps({{"files": len(jobs), "seconds": seconds, "failed": sum(1 for r in results
                  if not r or r[0]), "bytes_median": read[len(read) // 2] if read else 0,
                  "bytes_max": read[-1] if read else 0, "bytes_total": sum(read)}}))
"""


def stage(root: Path) -> dict:
    """The metadata stage alone on `root`, in a process of its own (as a scan's)."""
    script = STAGE.format(bench=str(Path(__file__).resolve().parent))
    runs = [json.loads(subprocess.run([sys.executable, "-c", script, str(root)], check=True,
                                      capture_output=True, text=True).stdout) for _ in range(3)]
    best = sorted(runs, key=lambda r: r["seconds"])[1]  # the median of 3
    best["files_per_s"] = best["files"] / best["seconds"]
    return best


def print_stage(found: dict) -> None:
    print("\nmetadata stage alone, 2 worker processes (median of 3):")
    for kind, r in found.items():
        print(f"  {kind:<7} {r['files']:>7,} files  {r['seconds']:6.2f} s  "
              f"{r['files_per_s']:>7,.0f} files/s  read per file: median "
              f"{r['bytes_median'] / 1e3:,.1f} KB, max {r['bytes_max'] / 1e3:,.1f} KB"
              f"  (failed {r['failed']})", flush=True)


def ffprobe_all(root: Path) -> dict | None:
    if not shutil.which("ffprobe"):
        print("\nffprobe: not installed (apt-get install ffmpeg); skipped")
        return None
    paths = sorted(str(p) for p in root.rglob("*") if p.is_file())
    started = time.perf_counter()
    threads = [threading.Thread(target=_ffprobe_each, args=(paths[i::2],)) for i in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    seconds = time.perf_counter() - started
    version = subprocess.run(["ffprobe", "-version"], capture_output=True, text=True).stdout
    found = {"files": len(paths), "seconds": seconds, "files_per_s": len(paths) / seconds,
             "version": version.split("\n")[0]}
    print(f"\nffprobe -show_format -show_streams, one process per video, 2 at a time "
          f"({found['version']}):\n  videos  {len(paths):>7,} files  {seconds:6.2f} s  "
          f"{found['files_per_s']:>7,.0f} files/s", flush=True)
    return found


def _ffprobe_each(paths: list[str]) -> None:
    for path in paths:
        subprocess.run(["ffprobe", "-v", "error", "-show_format", "-show_streams", "-of", "json",
                        path], capture_output=True, check=False)


def films(paths: list[str]) -> list[dict]:
    if not paths:
        return []
    print("\nbytes read to probe a film (ours: the probe's rchar; ffprobe: strace's reads):")
    found = []
    for path in paths:
        row = {"path": path, "size": os.path.getsize(path), "ours": _our_read(path)}
        if shutil.which("ffprobe") and shutil.which("strace"):
            row["ffprobe"] = _strace_read(["ffprobe", "-v", "error", "-show_format",
                                           "-show_streams", path])
            row["ffprobe_jellyfin"] = _strace_read([
                "ffprobe", "-v", "error", "-probesize", "1G", "-analyzeduration", "200M",
                "-show_format", "-show_streams", path])
        found.append(row)
        print(f"  {Path(path).name} ({row['size'] / (1 << 30):.2f} GiB): ours "
              f"{row['ours']['bytes'] / 1e6:.2f} MB in {row['ours']['ms']:.0f} ms"
              + (f"; ffprobe {row['ffprobe'] / 1e6:.2f} MB; ffprobe -probesize 1G "
                 f"-analyzeduration 200M {row['ffprobe_jellyfin'] / 1e6:.1f} MB"
                 if "ffprobe" in row else ""), flush=True)
    return found


OURS = """
import json, sys, time
from indexer.metadata import read_tags
from indexer.records import TagJob
def rchar():
    with open("/proc/self/io") as io:
        return next(int(l.split()[1]) for l in io if l.startswith("rchar:"))
from indexer import names, probing  # loaded before counting, as in a worker that read one
names.guess("/warm/Show/Season 01/Show.S01E01.mkv")
job = TagJob(sys.argv[1], sys.argv[1], "bench")
before, started = rchar(), time.perf_counter()
tags = read_tags(job)
print(json.dumps({"bytes": rchar() - before, "ms": (time.perf_counter() - started) * 1e3,
                  "error": tags.error}))
"""


def _our_read(path: str) -> dict:
    runs = [json.loads(subprocess.run([sys.executable, "-c", OURS, path], check=True,
                                      capture_output=True, text=True).stdout) for _ in range(3)]
    return sorted(runs, key=lambda r: r["ms"])[1]


def _strace_read(cmd: list[str]) -> int:
    """Bytes the command read from files (read and pread64 return values), by strace."""
    log = Path("/tmp") / f"visual-strace-{os.getpid()}.log"
    subprocess.run(["strace", "-f", "-qq", "-e", "trace=read,pread64", "-o", str(log), *cmd],
                   capture_output=True, check=False)
    total = sum(int(m.group(1)) for m in re.finditer(r"= (\d+)$", log.read_text(), re.MULTILINE))
    log.unlink()
    return total


def names_cost(root: Path) -> dict:
    script = """
import json, sys, time
from guessit import guessit
from indexer import names
paths = sys.argv[1:]
guessit("warm up.mkv")
started = time.perf_counter()
for path in paths:
    guessit("/".join(path.rsplit("/", 3)[-3:]))
direct = time.perf_counter() - started
started = time.perf_counter()
found = [names.guess(path) for path in paths]
ours = time.perf_counter() - started
print(json.dumps({"names": len(paths), "guessit_ms": direct / len(paths) * 1e3,
                  "guess_ms": ours / len(paths) * 1e3,
                  "named": sum(1 for f in found if f is not None)}))
"""
    paths = sorted(str(p) for p in root.rglob("*") if p.is_file())
    found = json.loads(subprocess.run([sys.executable, "-c", script, *paths], check=True,
                                      capture_output=True, text=True).stdout)
    print(f"\nnames of {found['names']:,} videos: guessit {found['guessit_ms']:.2f} ms a name; "
          f"names.guess {found['guess_ms']:.3f} ms a name ({found['named']:,} named)")
    return found


if __name__ == "__main__":
    main()
