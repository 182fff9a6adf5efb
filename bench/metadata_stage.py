"""The metadata stage alone: read the tags of every audio file under ROOT through the
same worker-process pool a scan uses, with N workers, and print {"files", "seconds"}.

    python bench/metadata_stage.py ROOT --workers 2

No catalogue, no hashing, no walk in the timing: the files are listed first.
"""

from __future__ import annotations

import argparse
import json
import os
import threading
import time

from needs import project_venv  # noqa: E402

project_venv("bench/metadata_stage.py")

from indexer.kinds import kind_of, taggable
from indexer.pipeline import ProcessPool, batches
from indexer.records import TagJob, Tags
from indexer.tagging import READ_TAGS


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("root")
    parser.add_argument("--workers", type=int, default=os.cpu_count())
    args = parser.parse_args()
    jobs = [TagJob(path, path, "bench") for path in audio_files(args.root)]
    results: list[Tags] = []
    lock = threading.Lock()

    def collect(found: list[Tags]) -> None:
        with lock:
            results.extend(found)

    started = time.perf_counter()
    pool = ProcessPool(READ_TAGS, collect, threading.Event(), workers=args.workers, timeout=60,
                       on_timeout=lambda job: None, on_crash=lambda job, why: None)
    for batch in batches(jobs, lambda job: 1, max_items=32):  # as tagging.Tagging does
        pool.submit(batch)
    pool.drain()
    pool.close()
    seconds = time.perf_counter() - started
    failed = sum(1 for tags in results if tags is None or tags.error)
    print(json.dumps({"files": len(jobs), "seconds": round(seconds, 3), "failed": failed}))


def audio_files(root: str) -> list[str]:
    found = []
    for folder, _, names in os.walk(root):
        found += [os.path.join(folder, name) for name in names
                  if taggable(kind_of(name), name)]
    return sorted(found)


if __name__ == "__main__":
    main()
