"""Start-up of the commands scripts run most, `indexer status` and `indexer changes`, at a
git revision and at this tree, alternated, with the modules each imports.

    python bench/startup.py --base 4ed4d27 [--runs 20]

Each side is exported (`git archive`) and byte-compiled into a folder of its own, then
run with this venv's Python and PYTHONPATH to it, on a catalogue it made of a FLAC, an
MKV and a JPEG from tests/data and tests/videos.py.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
MEDIA_LIBRARIES = ("av", "PIL", "pillow_heif", "guessit", "mutagen")


def export(revision: str, dest: Path) -> None:
    dest.mkdir(parents=True)
    archive = subprocess.run(["git", "-C", str(REPO), "archive", revision], check=True,
                             capture_output=True).stdout
    subprocess.run(["tar", "-x", "-C", str(dest)], input=archive, check=True)
    subprocess.run([sys.executable, "-m", "compileall", "-q", str(dest / "indexer")], check=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--base", default="main")
    parser.add_argument("--runs", type=int, default=20)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="indexer-startup-"))
    try:
        sys.path.insert(0, str(REPO / "tests"))
        from videos import make_video
        lib = work / "lib"
        lib.mkdir()
        shutil.copyfile(REPO / "tests" / "data" / "tone.flac", lib / "tone.flac")
        shutil.copyfile(REPO / "tests" / "data" / "cover.jpg", lib / "photo.jpg")
        make_video(lib / "film.mkv")
        sides = {}
        for name, revision in ((f"base {args.base}", args.base), ("this tree", "HEAD")):
            tree = work / revision.replace("/", "-")
            if revision == "HEAD":
                shutil.copytree(REPO / "indexer", tree / "indexer")
                subprocess.run([sys.executable, "-m", "compileall", "-q", str(tree / "indexer")],
                               check=True)
            else:
                export(revision, tree)
            env = {**os.environ, "PYTHONPATH": str(tree), "PYTHONDONTWRITEBYTECODE": "1"}
            db = work / f"{tree.name}.db"
            subprocess.run([sys.executable, "-m", "indexer", "scan", str(lib), "--db", str(db)],
                           env=env, cwd=tree, check=True, capture_output=True)
            sides[name] = (env, db, tree)
        for command in ("status", "changes"):
            times: dict[str, list[float]] = {name: [] for name in sides}
            for _ in range(args.runs + 1):  # the first of each: warm-up
                for name, (env, db, tree) in sides.items():
                    started = time.perf_counter()
                    subprocess.run([sys.executable, "-m", "indexer", command, "--db", str(db)],
                                   env=env, cwd=tree, check=True, capture_output=True)
                    times[name].append(time.perf_counter() - started)
            for name, (env, db, tree) in sides.items():
                runs = times[name][1:]
                report = subprocess.run([sys.executable, "-X", "importtime", "-m", "indexer",
                                         command, "--db", str(db)], env=env, cwd=tree,
                                        capture_output=True, text=True).stderr
                modules = [line.rsplit("|", 1)[-1].strip() for line in report.splitlines()
                           if line.startswith("import time:") and "|" in line][1:]
                media = sorted({m.split(".")[0] for m in modules} & set(MEDIA_LIBRARIES))
                median = statistics.median(runs) * 1e3
                print(f"indexer {command:<8} {name:<16} median {median:5.0f} ms "
                      f"[{min(runs) * 1e3:.0f}-{max(runs) * 1e3:.0f}], {len(modules)} modules, "
                      f"media libraries {media}")
    finally:
        shutil.rmtree(work)


if __name__ == "__main__":
    main()
