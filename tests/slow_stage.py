"""A stage for the process pool's time-limit tests: it hangs on one item, as a parser
might on a hostile file, and answers at once for the others.

The pool's workers import it by name ("slow_stage:hang_on"), so it lives at the top
of tests/, which is on their path.
"""

from __future__ import annotations

import threading


def hang_on(item: str) -> str:
    """"hang" blocks forever (only the pool's time limit ends it); others echo."""
    if item == "hang":
        threading.Event().wait()
    return f"read {item}"


def limits(item: str) -> tuple[int, int]:
    """The worker's own memory limit and out-of-memory score."""
    import resource
    with open("/proc/self/oom_score_adj") as score:
        return resource.getrlimit(resource.RLIMIT_AS)[0], int(score.read())
