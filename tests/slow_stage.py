"""Stages for the process pool's time-limit and crash tests: each fails on one item, as a
parser might on a hostile file, and answers at once for the others.

The pool's workers import it by name ("slow_stage:hang_on"), so it lives at the top
of tests/, which is on their path.
"""

from __future__ import annotations

import ctypes
import os
import threading
import time


def hang_on(item: str) -> str:
    """"hang" blocks forever (only the pool's time limit ends it); others echo."""
    if item == "hang":
        threading.Event().wait()
    return f"read {item}"


def dies_on(item: str) -> str:
    """"die" ends the worker at once, as a crash in C code or the out-of-memory killer
    would; "grip" hangs in C without letting go of the GIL; "slow" takes 0.3 s; "die
    twice" ends this worker, and the next one as it starts (`$SLOW_STAGE_MARKER`);
    others echo."""
    if item == "die":
        os._exit(3)
    if item == "grip":
        gripping_sleep(3600)
    if item == "slow":
        time.sleep(0.3)
    if item == "die twice":
        open(os.environ["SLOW_STAGE_MARKER"], "w").close()
        os._exit(3)
    return f"read {item}"


if os.path.exists(os.environ.get("SLOW_STAGE_MARKER", "/nonexistent")):  # a worker starting
    os.remove(os.environ["SLOW_STAGE_MARKER"])
    os._exit(7)


def prints_on(item: str) -> str:
    """"print" writes to fd 1 as a C library's warning would, "frame" what looks like
    the start of a result there; others echo."""
    if item == "print":
        os.write(1, b"warning: something odd\n")
    if item == "frame":
        os.write(1, (4).to_bytes(8, "little") + b"junk")
    return f"read {item}"


def slow_in_c(item: str) -> str:
    """Each item takes 0.3 s in C code that keeps the GIL: nothing else in the worker
    runs meanwhile."""
    gripping_sleep(0.3)
    return f"read {item}"


def gripping_sleep(seconds: float) -> None:
    """Sleep in C without letting go of the GIL (a PyDLL call keeps it)."""
    ctypes.PyDLL(None).usleep(int(seconds * 1_000_000))


def limits(item: str) -> tuple[int, int]:
    """The worker's own memory limit and out-of-memory score."""
    import resource
    with open("/proc/self/oom_score_adj") as score:
        return resource.getrlimit(resource.RLIMIT_AS)[0], int(score.read())


def tags_dying_once(job):
    """The tag stage, but a file named "dies once.flac" ends its worker the first time it
    is read (`$SLOW_STAGE_ONCE`, a path: made then), as a parser crashing on a file
    might once; then, and for every other file, the real stage."""
    from indexer.metadata import read_tags
    if os.path.basename(job.text) == "dies once.flac":
        marker = os.environ["SLOW_STAGE_ONCE"]
        if not os.path.exists(marker):
            open(marker, "w").close()
            os._exit(9)
    return read_tags(job)
