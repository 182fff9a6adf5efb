"""The debouncer: many events about a place become one scan of it, in time.

Watchers only `touch` places (a folder, a folder tree, a root); nothing is
scanned from an event directly. A place is handed on once it has been quiet
for `quiet` seconds, or at the latest `max_wait` seconds after its first
event, so a folder under constant change still gets its turn. When its last
event says a file is complete (its writer closed it), the short `quick`
window is enough, and a wait for a copy to settle is off. A place can be
deferred to a later time (a file still being copied: look again once it has
held still, not before), or asked for later (tags to read again: then, or
sooner if an event comes). The clock is a parameter: tests drive it by hand.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Hashable
from dataclasses import dataclass


@dataclass
class _Pending:
    first: float | None  # its first and last event; None: none yet (see `later`)
    last: float | None
    not_before: float = 0.0
    by: float = math.inf  # due then at the latest, events or not
    quick: bool = False  # its last event said a file is complete
    completed: float = -math.inf  # when an event last said so


class Debouncer:
    def __init__(self, quiet: float, max_wait: float, clock: Callable[[], float] = time.monotonic,
                 quick: float | None = None):
        self.quiet, self.max_wait, self.clock = quiet, max(max_wait, quiet), clock
        self.quick = quiet if quick is None else min(quick, quiet)
        self._pending: dict[Hashable, _Pending] = {}
        self._changed = threading.Condition()

    def touch(self, place: Hashable, complete: bool = False) -> None:
        """An event about `place`: (re)start its quiet window. `complete`: the event
        says a file there is whole (closed by its writer): the short window, and no
        more waiting for a copy to settle (a file still open there is left again)."""
        now = self.clock()
        with self._changed:
            pending = self._pending.get(place)
            if pending is None:
                pending = self._pending[place] = _Pending(now, now)
            else:
                pending.first = now if pending.first is None else pending.first
                pending.last = now
            pending.quick = complete
            if complete:
                pending.not_before = 0.0
                pending.completed = now
            self._changed.notify_all()

    def defer(self, place: Hashable, seconds: float, since: float | None = None) -> None:
        """Look at `place` again in `seconds`, not before (events still count). Not if an
        event has said a file there is complete since `since` (when the scan that asks
        began): what that scan saw being written is older news."""
        now = self.clock()
        with self._changed:
            known = self._pending.get(place)
            if since is not None and known is not None and known.completed >= since:
                return
            pending = self._pending.setdefault(place, _Pending(now, now))
            pending.not_before = max(pending.not_before, now + seconds)
            self._changed.notify_all()

    def later(self, place: Hashable, seconds: float) -> None:
        """Look at `place` in `seconds` at the latest; an event brings it sooner, as ever."""
        now = self.clock()
        with self._changed:
            pending = self._pending.setdefault(place, _Pending(None, None))
            pending.by = min(pending.by, now + seconds)
            self._changed.notify_all()

    def due(self) -> list[Hashable]:
        """The places whose time has come, removed from the pending set."""
        now = self.clock()
        with self._changed:
            ready = [place for place, p in self._pending.items() if self._due_at(p) <= now]
            for place in ready:
                del self._pending[place]
            return ready

    def wait(self, timeout: float) -> None:
        """Sleep until a place may be due, something is touched, or `timeout` passes."""
        with self._changed:
            soonest = min((self._due_at(p) for p in self._pending.values()), default=None)
            if soonest is not None:
                timeout = min(timeout, max(soonest - self.clock(), 0.0))
            if timeout > 0:
                self._changed.wait(timeout)

    def __len__(self) -> int:
        with self._changed:
            return len(self._pending)

    def _due_at(self, pending: _Pending) -> float:
        quiet = self.quick if pending.quick else self.quiet
        events = (math.inf if pending.first is None else
                  min(pending.last + quiet, pending.first + self.max_wait))
        return max(min(events, pending.by), pending.not_before)
