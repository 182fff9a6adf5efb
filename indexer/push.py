"""Telling media servers of each change: the feed, read after a durable cursor per target.

Each `[[notify]]` target has a `Delivery`, run by the service in a thread of its
own, so a slow or dead target delays nobody (not the scans: they never wait on
a delivery; not the other targets). A round of a delivery:

1. reads the changes after the target's cursor (`push_cursors`), in one snapshot,
   with what it takes to tell whether each is ready: its job has finished, and
   an audio or video file's tags are in (a later `tagged` change). Both are
   waited for at most `push.tags_wait_s`;
2. sends at once if the service has no work left (no scan, request or waiting
   place: nothing more is coming) and every change is settled; else waits until
   the feed has had no new change for `push.delay_s` (at most five times that),
   so that a burst becomes one request per folder (the copy of an album, scanned
   in one job or in several close together, is one request);
3. takes the ready prefix (never a later change before an earlier one), keeps the
   kinds of file the target wants, rewrites the paths, and has the target's
   adapter (targets.py) turn them into requests;
4. sends each request, retrying with a backoff that doubles up to
   `push.backoff_max_s`, then moves the cursor past the prefix.

So a change is delivered at least once and in order: a crash between sending
and saving the cursor sends it again, which every target takes without harm (a
folder scanned twice). The cursor is written through a connection of its own,
not the service's writer: a cursor write is one row in a transaction of its
own, which waits a few milliseconds for a scan's batch, where going through the
service's loop would wait for the end of a scan that may last an hour.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import threading
import time
from dataclasses import dataclass, replace
from typing import Callable

from . import catalog
from .config import Config, PushConfig
from .kinds import kind_of, taggable
from .push_config import Target
from .targets import Adapter, Request, TargetError, adapter_for

log = logging.getLogger(__name__)

POLL_S = 1.0  # how often a delivery looks at the feed unwoken (the service wakes it after
# each job; this catches a long job's batches and the end of a wait for tags)
HOLDING_S = 0.2  # how often it looks while it holds changes back
IDLE_GRACE_S = 0.1  # the service idle this long: its work has ended, not paused between steps
READ_MAX = 50_000  # changes read per round: a burst is one round, so one request per folder
FIRST_BACKOFF_S = 1.0
HOLD_AT_MOST = 5  # a feed that keeps growing is sent after 5 x delay_s all the same


@dataclass(frozen=True)
class Change:
    """A row of `changes` as docs/schema.md gives it, with `file_kind`, the kind of file."""
    seq: int
    kind: str
    file_id: int
    path: str
    old_path: str | None
    at: str
    job_id: int | None
    file_kind: str

    def row(self) -> dict:
        """As the webhook and the command receive it."""
        return {"seq": self.seq, "kind": self.kind, "file_id": self.file_id, "path": self.path,
                "old_path": self.old_path, "at": self.at, "job_id": self.job_id}


@dataclass(frozen=True)
class Pending:
    change: Change
    settled: bool  # its job finished, and its tags are in if it waits for them


FEED = """
SELECT c.seq, c.kind, c.file_id, c.path, c.old_path, c.at, c.job_id, f.kind,
       c.job_id IS NULL OR coalesce(j.status, '') <> 'running',
       f.status = 'present' AND f.hash IS NOT NULL AND f.tags_hash IS f.hash
       OR EXISTS (SELECT 1 FROM changes t WHERE t.file_id = c.file_id AND t.kind = 'tagged'
                  AND t.seq > c.seq)
FROM changes c LEFT JOIN files f ON f.id = c.file_id LEFT JOIN scan_jobs j ON j.id = c.job_id
WHERE c.seq > ? ORDER BY c.seq LIMIT ?
"""


def read_feed(conn: sqlite3.Connection, after: int, tags: bool,
              limit: int = READ_MAX) -> list[Pending]:
    """The changes after `after`, each with whether it is settled, in one snapshot."""
    conn.execute("BEGIN")
    try:
        rows = conn.execute(FEED, (after, limit)).fetchall()
    finally:
        conn.execute("COMMIT")
    found = []
    for seq, kind, file_id, path, old_path, at, job_id, file_kind, done, tagged in rows:
        change = Change(seq, kind, file_id, path, old_path, at, job_id,
                        file_kind or kind_of(path))
        waits = tags and kind in ("added", "modified", "restored") and taggable(
            change.file_kind, path)
        found.append(Pending(change, bool(done) and (not waits or bool(tagged))))
    return found


def ready_prefix(pending: list[Pending], seen_at: dict[int, float], now: float,
                 limit_s: float) -> list[Change]:
    """The longest prefix of changes that are settled or have waited `limit_s`: the
    changes after the first one still waiting wait too, so the order holds."""
    ready = []
    for item in pending:
        if not item.settled and now - seen_at.get(item.change.seq, now) < limit_s:
            break
        ready.append(item.change)
    return ready


def rewritten(path: str | None, rules: tuple[tuple[str, str], ...]) -> str | None:
    """The path as the media server sees it: the first rule whose prefix it is under."""
    if path is None:
        return None
    for old, new in rules:
        base = old.rstrip("/")
        if path == old or path.startswith(base + "/"):
            return new.rstrip("/") + path[len(base):] or "/"
    return path


@dataclass(frozen=True)
class Folder:
    """A folder that changed, as the media server sees it."""
    path: str
    how: str  # "Created" (files came), "Modified" (files changed) or "Deleted" (files went)
    kinds: frozenset[str]  # the kinds of the files that changed in it
    scan: str  # the folder to scan: it, or the nearest folder above still there


HOW = {"added": "Created", "restored": "Created", "moved": "Created", "modified": "Modified",
       "missing": "Deleted", "purged": "Deleted"}
RANK = ("Deleted", "Modified", "Created")  # a folder where files came and went: Created


def folders(changes: list[Change], rules: tuple[tuple[str, str], ...]) -> list[Folder]:
    """The folders the changes touched, each once, in the order first touched; a move
    touches the folder it left too. `tagged` changes touch none: the file's own change
    waited for them (see `ready_prefix`)."""
    found: dict[str, tuple[str, set[str]]] = {}
    for change in changes:
        if change.kind not in HOW:
            continue
        marks = [(os.path.dirname(change.path), HOW[change.kind])]
        if change.kind == "moved" and change.old_path:
            marks.insert(0, (os.path.dirname(change.old_path), "Deleted"))
        for folder, how in marks:
            before, kinds = found.get(folder, ("Deleted", set()))
            found[folder] = (max(before, how, key=RANK.index), kinds | {change.file_kind})
    return [Folder(rewritten(folder, rules), how, frozenset(kinds),
                   rewritten(_still_there(folder), rules))
            for folder, (how, kinds) in found.items()]


def _still_there(folder: str) -> str:
    while folder != "/" and not os.path.isdir(folder):
        folder = os.path.dirname(folder)
    return folder


def for_target(changes: list[Change], rules: tuple[tuple[str, str], ...]) -> list[Change]:
    """The changes with their paths as the media server sees them."""
    return [replace(c, path=rewritten(c.path, rules), old_path=rewritten(c.old_path, rules))
            for c in changes]


class Cursors:
    """`push_cursors`, through a connection of this class's own (see the module's docstring)."""

    def __init__(self, db_path, synchronous: str, busy_timeout_s: float, stop: threading.Event):
        self._conn = catalog.connect(db_path, synchronous=synchronous,
                                     busy_timeout_s=busy_timeout_s)
        self._lock = threading.Lock()
        self._stop = stop

    def start(self, names: list[str]) -> dict[str, int]:
        """Every target's cursor; a new target starts at the end of the feed."""
        def run() -> dict[str, int]:
            with self._lock:
                self._conn.execute("BEGIN IMMEDIATE")
                try:
                    top = self._conn.execute("SELECT coalesce(max(seq), 0) FROM changes").fetchone()[0]
                    for name in names:
                        self._conn.execute("INSERT OR IGNORE INTO push_cursors (target, seq) "
                                           "VALUES (?, ?)", (name, top))
                    found = dict(self._conn.execute("SELECT target, seq FROM push_cursors"))
                    self._conn.execute("COMMIT")
                except BaseException:
                    self._conn.execute("ROLLBACK")
                    raise
            return {name: found[name] for name in names}
        return catalog.retrying(run, stop=self._stop)

    def save(self, name: str, seq: int, delivered: bool) -> None:
        sql = ("UPDATE push_cursors SET seq = ?, delivered_at = ? WHERE target = ?" if delivered
               else "UPDATE push_cursors SET seq = ? WHERE target = ?")
        args = (seq, catalog.utc_now(), name) if delivered else (seq, name)

        def run() -> None:
            with self._lock:
                self._conn.execute(sql, args)  # autocommit: one statement, one transaction
        catalog.retrying(run, stop=self._stop)

    def close(self) -> None:
        self._conn.close()


class Delivery:
    """One target's thread: rounds of read, wait, send, advance (see the module's docstring)."""

    def __init__(self, target: Target, settings: PushConfig, cursor: int, cursors: Cursors,
                 config: Config, stop: threading.Event, idle: Callable[[], float]):
        self.target, self.settings, self.cursor = target, settings, cursor
        self._cursors, self._config, self._stop, self._idle = cursors, config, stop, idle
        self.wake = threading.Event()
        self._tags = config.metadata.enabled
        self._seen_at: dict[int, float] = {}  # seq -> when this delivery first saw it
        self._top, self._grew_at = 0, 0.0  # the last seq seen, and when it was first seen
        self._adapter: Adapter | None = None
        self._failures = 0
        self.last_delivery: str | None = None
        self.last_error: str | None = None

    @property
    def name(self) -> str:
        return self.target.name

    def run(self) -> None:
        """The thread's body. Each round is an exception boundary: an error nobody foresaw
        is logged and shown in status, and the round is tried again after the backoff."""
        conn = catalog.connect(self._config.database.path, readonly=True)
        try:
            while not self._stop.is_set():
                try:
                    self._round(conn)
                except (TargetError, OSError) as error:  # Plex's sections, while planning
                    self._failed(str(error))
                except Exception as error:
                    log.exception("push to %s: a round failed", self.name)
                    self._failed(f"{type(error).__name__}: {error}")
        finally:
            conn.close()

    def _round(self, conn: sqlite3.Connection) -> None:
        adapter = self._adapter_now()
        if adapter is None:
            return
        hold = adapter.hold_s()
        if hold > 0:  # (Navidrome: at most one scan per min_interval_s)
            self._stop.wait(hold)
            return
        pending = read_feed(conn, self.cursor, self._tags)
        if not pending:
            self._sleep(POLL_S)
            return
        now = time.monotonic()
        for item in pending:
            self._seen_at.setdefault(item.change.seq, now)
        if pending[-1].change.seq != self._top:
            self._top, self._grew_at = pending[-1].change.seq, now
        settled = all(item.settled for item in pending)
        if not (settled and self._idle() >= IDLE_GRACE_S) and self._hold(
                now - self._grew_at, now - self._seen_at[pending[0].change.seq], len(pending)):
            self._sleep(HOLDING_S)
            return
        ready = ready_prefix(pending, self._seen_at, now, self.settings.tags_wait_s)
        if not ready:
            self._sleep(HOLDING_S)
            return
        self._deliver(adapter, ready)

    def _sleep(self, seconds: float) -> None:
        """Until the service wakes this delivery (a job ended), or `seconds` pass."""
        self.wake.wait(seconds)
        self.wake.clear()

    def _hold(self, quiet_s: float, waited_s: float, count: int) -> bool:
        """Wait while the feed still grows: until it has been quiet for delay_s, at most
        HOLD_AT_MOST times delay_s after the first change, and never past a full read.
        (Not asked when the service has no work left and every change is settled: then
        nothing more is coming, and the changes go at once.)"""
        delay = self.settings.delay_s
        return quiet_s < delay and waited_s < HOLD_AT_MOST * delay and count < READ_MAX

    def _adapter_now(self) -> Adapter | None:
        if self._adapter is None:
            try:
                self._adapter = adapter_for(self.target, self.settings, self._config)
            except (OSError, TargetError) as error:  # a token file not readable, ...
                self._failed(str(error))
                return None
        return self._adapter

    def _deliver(self, adapter: Adapter, ready: list[Change]) -> None:
        kept = [c for c in ready if c.file_kind in self.target.kinds]
        requests = adapter.requests(for_target(kept, self.target.rewrite),
                                    folders(kept, self.target.rewrite)) if kept else []
        for request in requests:
            if not self._send(request):
                return  # stopping: the cursor stays, the rest is sent at the next start
        self.cursor = ready[-1].seq
        self._cursors.save(self.name, self.cursor, delivered=bool(requests))
        if requests:
            self.last_delivery = catalog.utc_now()
            log.debug("push to %s: %d changes in %d requests, up to seq %d", self.name,
                      len(kept), len(requests), self.cursor)
        for seq in [s for s in self._seen_at if s <= self.cursor]:
            del self._seen_at[seq]

    def _send(self, request: Request) -> bool:
        """Send until it is taken; False if the service stops first."""
        while not self._stop.is_set():
            try:
                request.send()
            except (TargetError, OSError) as error:
                self._failed(f"{request.what}: {error}")
                continue
            if self._failures:
                log.info("push to %s works again", self.name)
            self._failures, self.last_error = 0, None
            return True
        return False

    def _failed(self, message: str) -> None:
        """Said once per outage in the log (then at debug), kept for status; then a pause
        that doubles up to backoff_max_s."""
        self._failures += 1
        pause = min(FIRST_BACKOFF_S * 2 ** (self._failures - 1), self.settings.backoff_max_s)
        self.last_error = f"{catalog.utc_now()} {message}"
        level = logging.WARNING if self._failures == 1 else logging.DEBUG
        log.log(level, "push to %s failed (%s): trying again in %g s, and on", self.name,
                message, pause)
        self._stop.wait(pause)

    def status(self, conn: sqlite3.Connection | None) -> dict:
        pending = None
        if conn is not None:
            pending = conn.execute("SELECT count(*) FROM changes WHERE seq > ?",
                                   (self.cursor,)).fetchone()[0]
        return {"name": self.name, "type": self.target.type, "cursor": self.cursor,
                "pending": pending, "last_delivery": self.last_delivery,
                "last_error": self.last_error}


class Pusher:
    """Every target's delivery; the service starts their threads and asks their status."""

    def __init__(self, config: Config, stop: threading.Event,
                 idle: Callable[[], float] = lambda: 0.0):
        """`idle()`: for how long the service has had no work (0 while it has some)."""
        self.config, self._idle = config, idle
        self.deliveries: list[Delivery] = []
        self._cursors: Cursors | None = None
        self._stop = stop

    def start(self) -> list[Delivery]:
        """Read (or begin) every cursor: before the service's first scan, so that a new
        target is told of what that scan finds."""
        targets = self.config.push.targets
        if not targets:
            return []
        db = self.config.database
        self._cursors = Cursors(db.path, db.synchronous, db.busy_timeout_s, self._stop)
        cursors = self._cursors.start([t.name for t in targets])
        self.deliveries = [Delivery(t, self.config.push, cursors[t.name], self._cursors,
                                    self.config, self._stop, self._idle) for t in targets]
        return self.deliveries

    def wake(self) -> None:
        """New changes may be in the feed (a job ended), or the service stops."""
        for delivery in self.deliveries:
            delivery.wake.set()

    def status(self) -> list[dict]:
        if not self.deliveries:
            return []
        conn = catalog.connect(self.config.database.path, readonly=True)
        try:
            return [d.status(conn) for d in self.deliveries]
        finally:
            conn.close()

    def close(self) -> None:
        if self._cursors is not None:
            self._cursors.close()
