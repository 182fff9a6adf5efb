"""The service: one loop runs every scan; watchers, the scheduler and the control socket only ask.

`Service.run()` holds the catalogue's writer lock for its whole life. It
reconciles every root first (an incremental scan), then waits for requests:
places the debouncer hands on (from inotify events), polls of roots that
cannot be watched, the periodic reconcile (apscheduler, only here), and
`indexer rescan` over the control socket. Requests that arrive while a scan
runs are merged into the next one, so a storm of events is one scan, and
two reconciles are never run at once.

A root that disappears, or whose device changes under it (a disk unmounted,
leaving the empty mount point), goes offline: nothing of it is called
missing. It is checked every `poll_interval_s`, and reconciled when it is
back. SIGTERM and SIGINT stop the current scan within seconds with what it
did committed; SIGHUP reloads the configuration.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import queue
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from . import catalog, config as config_module
from .config import Config
from .control import ControlServer, socket_path
from .debounce import Debouncer
from .notify import Notifier
from .order import within
from .paths import absolute, printable
from .priority import lower_priority
from .push import Pusher
from .records import Progress
from .scan import Scan, ScanResult
from .survey import Part, folder_only, tree, vanished, whole
from .walk import RootUnusable, check_root
from .watch import Place, Watcher, is_mount_point

log = logging.getLogger(__name__)

TICK_S = 1.0  # how often the root monitor looks at roots, and the loop at its queue
OFFLINE_LOOK_S = 2.0  # an offline root is looked at this often: a remounted disk is back soon
ROOM_MARGIN = 1 << 20  # room is back: this much more free than when the disk was full
# or, at the latest, try again this long after: the room may have come back before the
# failure was seen (the free space then measured is not "full", and may never grow)
ROOM_RETRY_S = 30.0
LOOP_BACKOFF_S = 300.0  # the longest pause after turns of the loop that failed
RETRY_FAILED_S = (60.0, 3600.0)  # a failed scan's reconcile: first after, at most after
TAGS_AGAIN_S = 10.0  # tags that got no verdict (a worker died) are read again after this
TAGS_AGAIN_MAX_S = 3600.0  # ... and, while they keep getting none, at most this long after


@dataclass
class Request:
    kind: str  # "watch", "poll", "reconcile", "rescan"
    roots: frozenset[str] = frozenset()  # whole roots
    places: tuple[Place, ...] = ()
    rehash: bool = False
    replies: list[Callable[[dict], None]] = field(default_factory=list)


class Service:
    def __init__(self, config: Config, *, reload: Callable[[], Config] | None = None):
        self.config = config
        self._reload_config = reload
        self.stop_event = threading.Event()
        self._reload = threading.Event()
        self._requests: queue.Queue[Request] = queue.Queue()
        # work on the catalogue other than scans (a purge): run between scans, in turn
        self._actions: queue.Queue[Callable[[Any], None]] = queue.Queue()
        self.debouncer = Debouncer(config.watch.debounce_s, config.watch.max_wait_s,
                                   quick=config.watch.closed_quiet_s)
        self.notifier = Notifier()
        self.roots: list[str] = list(config.library.roots)
        self.current: dict[str, Any] | None = None  # the running job's progress
        self.last_reconcile: str | None = None
        self._identity: dict[str, tuple[int, int]] = {}  # the root's (device, inode) when armed
        self._mounted: dict[str, bool] = {}  # was the root ever a mount point
        self._unsure: set[str] = set()  # roots whose last reconcile marked nothing missing
        self._polled: dict[str, float] = {}
        self._roots_lock = threading.Lock()  # the root monitor, and `indexer rescan`
        self._alive = time.monotonic()
        self._failures, self._retry_at = 0, None
        self._unavailable_in_a_row = 0  # scans in a row where no tag worker could start
        self._unavailable_places: set[Place] = set()  # folders waiting for a worker
        self.watcher: Watcher | None = None
        self.died = False  # a helper thread died: the service stops and `run` returns 1
        self._scheduler = None
        self.waiting_for_room: str | None = None  # the catalogue's folder, on a full disk
        self._room_at = 0  # bytes free there when it was found full
        self._room_since = 0.0  # when it was
        self._room_said = False  # the error was logged: once, until a scan succeeds
        self.pusher = Pusher(config, self.stop_event, self.idle_s)  # tells media servers
        self._busy, self._busy_until = False, time.monotonic()  # see `idle_s`

    # --- asking (any thread)

    def request(self, request: Request) -> None:
        self._requests.put(request)

    def stop(self) -> None:
        self.stop_event.set()

    def reload(self) -> None:
        self._reload.set()

    # --- the life of the service

    def run(self) -> int:
        """Serve until stopped. A catalogue on a full disk is waited for, not crashed on:
        under systemd a crash would restart every few seconds, to fail again."""
        while not self.stop_event.is_set():
            try:
                return self._run()
            except catalog.CatalogError as error:
                if "full" not in str(error):
                    raise
                self._wait_for_room(str(error))
                while self.waiting_for_room and not self.stop_event.wait(TICK_S):
                    self._room_back()
        return 0

    def _run(self) -> int:
        db = self.config.database
        lock = catalog.WriterLock(db.path)
        with catalog.open_for_writing(db.path, db.synchronous, lock=lock,
                                     busy_timeout_s=db.busy_timeout_s) as write_conn:
            read_conn = catalog.connect(db.path, synchronous=db.synchronous)
            if self.config.service.low_priority:
                lower_priority()
            control = ControlServer(socket_path(), self._handle_control)
            lock.announce(control.path)
            threads, scheduler = [], None
            try:
                self.watcher = Watcher(self.debouncer.touch, self.config.library.ignore,
                                       self.config.watch.backend)
                for root in self.roots:
                    self._arm(root)
                scheduler = self._start_scheduler()
                threads = [self._thread(self._pump_places, "debounce"),
                           self._thread(self._monitor_roots, "roots"),
                           self._thread(self._ping_watchdog, "watchdog")]
                threads += [self._thread(delivery.run, f"push {delivery.name}")
                            for delivery in self.pusher.start()]
                self.request(Request("reconcile", frozenset(self.roots)))
                self.notifier.send(READY=1, STATUS=f"watching {len(self.roots)} roots")
                log.info("watching %s", ", ".join(f"{printable(r)} ({self.watcher.states[r]})"
                                                   for r in self.roots))
                self._loop(write_conn, read_conn)
            finally:
                self.notifier.send(STOPPING=1)
                self.stop_event.set()
                self.pusher.wake()
                if scheduler is not None:
                    scheduler.shutdown(wait=False)
                if self.watcher is not None:
                    self.watcher.stop()
                for thread in threads:
                    thread.join(timeout=5)
                self.pusher.close()
                control.close()
                read_conn.close()
        return 1 if self.died else 0

    def _loop(self, write_conn, read_conn) -> None:
        """The service's one loop. Each turn is an exception boundary: an error nobody
        foresaw fails that turn (a scan's own failures are its job's, see scan.py), is
        logged with its traceback, and the loop goes on after a pause that doubles up to
        LOOP_BACKOFF_S, then reconciles: the turn may have dropped what it saw."""
        failures = 0
        while not self.stop_event.is_set():
            self._alive = time.monotonic()
            try:
                self._turn(write_conn, read_conn)
                failures = 0
            except Exception as error:
                failures += 1
                pause = min(2 ** failures, LOOP_BACKOFF_S)
                log.exception("the service's loop failed (%s: %s): going on in %g s",
                              type(error).__name__, error, pause)
                if write_conn.in_transaction:
                    write_conn.execute("ROLLBACK")
                self.stop_event.wait(pause)
                self.request(Request("reconcile", frozenset(self.roots)))

    def _turn(self, write_conn, read_conn) -> None:
        if self._reload.is_set():
            self._apply_reload()
        if self.waiting_for_room:  # a scan would fail at once: the requests wait (merged,
            self.stop_event.wait(TICK_S)  # then, with the reconcile that room brings back)
            return
        while not self._actions.empty():
            self._actions.get_nowait()(write_conn)
            self.pusher.wake()
        request = self._gather()
        if request is None:
            return
        try:
            self._serve(request, write_conn, read_conn)
        finally:
            self._busy, self._busy_until = False, time.monotonic()
            self.pusher.wake()

    def idle_s(self) -> float:
        """For how long the service has had no work: no scan running (with what follows
        it: folders deferred until they settle), no request queued, no place waiting in
        the debouncer; 0 while it has some. Push deliveries send at once when it is idle."""
        if self._busy or not self._requests.empty() or len(self.debouncer):
            return 0.0
        return time.monotonic() - self._busy_until

    def _gather(self) -> Request | None:
        """The next request, with every other one waiting merged into it."""
        try:
            first = self._requests.get(timeout=TICK_S)
        except queue.Empty:
            return None
        self._busy = True  # (from here: `idle_s` must not see a request taken as none)
        merged = Request(first.kind, first.roots, first.places, first.rehash, list(first.replies))
        while True:
            try:
                more = self._requests.get_nowait()
            except queue.Empty:
                return merged
            rank = ("watch", "poll", "reconcile", "rescan")
            merged.kind = max(merged.kind, more.kind, key=rank.index)
            merged.roots |= more.roots
            merged.places += more.places
            merged.rehash |= more.rehash
            merged.replies += more.replies

    def _serve(self, request: Request, write_conn, read_conn) -> None:
        roots = {r for r in request.roots if self._online(r)}
        parts: dict[str, list[Part]] = {}
        for place in request.places:
            if place.root in roots or not self._online(place.root):
                continue
            if place.how == "root" or place.root in self._unsure:  # see `_after_scan`
                roots.add(place.root)
            else:
                parts.setdefault(place.root, []).append(_part(place))
        for root in roots:
            parts.pop(root, None)
        results = []
        if roots:
            results.append(self._scan(write_conn, read_conn, request, roots=sorted(roots)))
        if parts and not self.stop_event.is_set():
            results.append(self._scan(write_conn, read_conn, request, parts=parts))
        for reply in request.replies:
            reply({"event": "done", "jobs": [r.summary() for r in results]})

    def _scan(self, write_conn, read_conn, request: Request, **target: Any) -> ScanResult:
        cfg = self.config
        kind = "watch" if request.kind in ("watch", "poll") else request.kind
        began = self.debouncer.clock()  # (before the watcher's record is read, below)
        job = Scan(write_conn, read_conn, cfg.library, cfg.scan, metadata=cfg.metadata,
                   db_path=cfg.database.path, rehash=request.rehash, stop=self.stop_event,
                   on_progress=self._progress(request.replies), settle_s=cfg.watch.settle_s,
                   signals=self.watcher.closes.recent(int(cfg.watch.settle_s * 1e9),
                                                      int(cfg.watch.debounce_s * 1e9))
                   if self.watcher else None, kind=kind, online=tuple(r for r in self.roots if self.watcher.states.get(r)
                                           in ("inotify", "polling")), **target)
        result = job.run()
        self.current = None
        _log_job(result, kind, target)
        self._after_failure(result)
        self._after_scan(result, target.get("roots") or ())
        if kind in ("reconcile", "rescan") and result.status == "completed":
            self.last_reconcile = catalog.utc_now()
        for folder, written in result.unsettled.items():  # a copy still running:
            root = next((r for r in self.roots if within(folder, r)), None)
            if root:  # look again once it has held still for settle_s (never later), or
                # for the debounce in a folder made while watched (survey.complete_since)
                wait = cfg.watch.debounce_s if self.watcher and self.watcher.closes.in_tree(
                    folder) else cfg.watch.settle_s
                left = written / 1e9 + wait - time.time()
                self.debouncer.defer(Place(root, folder, "folder"), min(max(left, 0.05), wait),
                                     since=began)
        self._read_again(result)
        if not self.waiting_for_room:
            self.notifier.send(STATUS=f"idle; last job #{result.job_id} {result.status}")
        return result

    def _read_again(self, result: ScanResult) -> None:
        """Tags that got no verdict (a worker killed or stuck, memory short) are read
        again soon, not at the next reconcile: the folder is looked at after
        TAGS_AGAIN_S, or sooner on an event (its changes never wait for that). A second
        failure alike is a verdict (media_rows.py), so that ends. Files no worker could
        take (none could start: a broken install, `ulimit -u`), which is never a
        verdict, wait twice as long after each scan in a row that found no worker, up
        to TAGS_AGAIN_MAX_S, and TAGS_AGAIN_S again once a worker takes files."""
        if result.parsed and self._unavailable_in_a_row:  # workers start again
            self._unavailable_in_a_row = 0
            for place in self._unavailable_places:
                self.debouncer.later(place, TAGS_AGAIN_S)
            self._unavailable_places.clear()
        unavailable = set(result.unavailable)
        crashed = [folder for folder in result.unread if folder not in unavailable]
        if crashed:
            self._look_again(crashed, TAGS_AGAIN_S)
            log.info("tags of files in %d folders got no verdict: read again in %g s",
                     len(crashed), TAGS_AGAIN_S)
        if unavailable:
            wait = min(TAGS_AGAIN_S * 2 ** self._unavailable_in_a_row, TAGS_AGAIN_MAX_S)
            self._unavailable_in_a_row += 1
            self._unavailable_places |= self._look_again(unavailable, wait)
            log.info("tags of files in %d folders taken by no worker (none could start): "
                     "read again in %g s", len(unavailable), wait)

    def _look_again(self, folders: Iterable[str], seconds: float) -> set[Place]:
        """Look at these folders (or the nearest folder above that exists) in `seconds`."""
        places = set()
        for folder in folders:
            root = next((r for r in self.roots if within(folder, r)), None)
            while root and folder != root and not os.path.isdir(folder):
                folder = os.path.dirname(folder)  # a name shown, not the name on disk
            if root:
                place = Place(root, folder, "folder")
                self.debouncer.later(place, seconds)
                places.add(place)
        return places

    def _after_scan(self, result: ScanResult, whole: list[str]) -> None:
        """A root that looked unmounted had nothing marked missing: until a scan of it
        whole succeeds, any event under it brings a scan of the whole root (a disk whose
        files are being copied back, where a folder deleted meanwhile has no event)."""
        for root in result.guarded:
            if root not in self._unsure:
                log.warning("root %s is not reconciled (it looked unmounted): its next event "
                            "brings a scan of the whole root", printable(root))
            self._unsure.add(root)
        if result.status == "completed":  # and conclusive: nothing in it left for later
            left = {root for root in whole for folder in result.unsettled if within(folder, root)}
            self._unsure -= set(whole) - set(result.guarded) - left

    def _after_failure(self, result: ScanResult) -> None:
        """A failed scan (a full disk, a lock held for too long) dropped what it saw:
        reconcile again later, waiting longer after each failure, until one succeeds.
        On a full disk, once there is room again (looked at every second)."""
        if result.status != "failed":
            self._failures = 0
            self._room_said = False
            return
        if result.message and "full" in result.message:
            self._wait_for_room(f"scan job {result.job_id} failed: {result.message}"
                                if result.job_id else result.message)
            return
        first, most = RETRY_FAILED_S
        wait = min(first * 2 ** self._failures, most)
        self._failures += 1
        self._retry_at = time.monotonic() + wait
        log.error("scan job %d failed (%s): reconciling again in %g s", result.job_id,
                  result.message, wait)

    def _wait_for_room(self, why: str) -> None:
        folder = str(self.config.database.path.parent)
        if self.waiting_for_room is None and not self._room_said:
            log.error("%s: waiting for room on %s (looked at every %g s)", why, folder, TICK_S)
            self._room_said = True
        self.waiting_for_room, self._room_at = folder, catalog.free_bytes(folder)
        self._room_since = time.monotonic()
        self.notifier.send(STATUS=f"waiting for room on {folder}")

    def _room_back(self) -> bool:
        """True, and a reconcile asked for, once there is room on the catalogue's disk, or
        ROOM_RETRY_S after it was found full (a reconcile that fails for want of room
        again brings the wait back, without a second error line)."""
        room = catalog.free_bytes(self.waiting_for_room) >= self._room_at + ROOM_MARGIN
        if not room and time.monotonic() - self._room_since < ROOM_RETRY_S:
            return False
        log.info("there is room on %s again: reconciling" if room else
                 "trying again whether there is room on %s: reconciling", self.waiting_for_room)
        self.waiting_for_room = None
        self.request(Request("reconcile", frozenset(self.roots)))
        return True

    def _progress(self, replies: list[Callable[[dict], None]]) -> Callable[[Progress], None]:
        def show(p: Progress) -> None:
            self._alive = time.monotonic()
            c = p.counters
            self.current = {"job_id": p.job_id, "files_found": c.files_found,
                            "files_processed": c.files_processed, "percent": round(p.percent, 1),
                            "walk_done": p.walk_done}
            for reply in replies:
                reply({"event": "progress", **self.current})
            self.notifier.send(STATUS=f"job #{p.job_id}: {c.files_processed:,} of "
                                      f"{c.files_found:,} files ({p.percent:.0f}%)")
        return show

    # --- roots: watched, polled, offline

    def _arm(self, root: str) -> None:
        if not self._usable(root):
            self.watcher.offline(root)
            log.warning("root %s is offline (missing, unreadable or unmounted): nothing of it is "
                        "marked missing; checking again every %g s", printable(root),
                        self.config.watch.poll_interval_s)
            return
        info = os.stat(root)
        self._identity[root] = (info.st_dev, info.st_ino)
        self._mounted[root] = self._mounted.get(root, False) or is_mount_point(root)
        self._polled[root] = time.monotonic()
        if self.watcher.arm(root) == "polling":
            log.info("root %s is polled every %g s (a network or FUSE mount, or "
                     "watch.backend = \"polling\")", printable(root),
                     self.config.watch.poll_interval_s)

    def _usable(self, root: str) -> bool:
        """The root is there, readable, and still a mount point if it ever was one (an
        unmounted disk leaves its empty mount point, which is not the disk come back)."""
        try:
            check_root(root)
        except RootUnusable:
            return False
        return not self._mounted.get(root) or is_mount_point(root)

    def _same(self, root: str) -> bool:
        """Whether the root is still the folder that was armed: the same device and inode.
        Not so when a disk was mounted on it (even a bind mount from the same disk) or
        when it is a symbolic link pointed elsewhere; its watches then watch nothing."""
        try:
            info = os.stat(root)
        except OSError:
            return False
        return self._identity.get(root) in (None, (info.st_dev, info.st_ino))

    def _online(self, root: str) -> bool:
        if self.watcher is None or self.watcher.states.get(root) == "offline":
            return False
        if self._usable(root):
            return True
        log.warning("root %s went offline (gone, or its disk unmounted): nothing of it is marked "
                    "missing", printable(root))
        self.watcher.offline(root)
        return False

    def _monitor_roots(self) -> None:
        """Polls the roots that cannot be watched, and brings offline ones back."""
        while not self.stop_event.wait(TICK_S):
            if self._retry_at is not None and time.monotonic() >= self._retry_at:
                self._retry_at = None
                self.request(Request("reconcile", frozenset(self.roots)))
            if self.waiting_for_room:
                self._room_back()
            interval = self.config.watch.poll_interval_s
            for root in list(self.roots):
                self._look_at(root, interval)

    def _back_now(self, root: str) -> bool:
        """For `indexer rescan`: a root offline is looked at now, not at its next poll;
        True if it is online (again)."""
        with self._roots_lock:
            if self.watcher.states.get(root) != "offline":
                return True
            self._polled[root] = time.monotonic()
            if not self._usable(root):
                return False
            log.info("root %s is back: watching and reconciling it", printable(root))
            self._arm(root)
            return True

    def _look_at(self, root: str, interval: float) -> None:
        with self._roots_lock:
            self._look_at_now(root, interval)

    def _look_at_now(self, root: str, interval: float) -> None:
        state = self.watcher.states.get(root)
        since = time.monotonic() - self._polled.get(root, 0)
        due = since >= interval
        if state in ("inotify", "polling") and not self._usable(root):
            self._online(root)  # says so, and takes it offline
        elif state in ("inotify", "polling") and not self._same(root):
            log.warning("root %s is another folder now (a disk mounted on it, or its link "
                        "pointed elsewhere): watching it anew and reconciling it", printable(root))
            self._arm(root)
            self.request(Request("reconcile", frozenset([root])))
        elif state == "polling" and due:
            self._polled[root] = time.monotonic()
            self.request(Request("poll", frozenset([root])))
        elif state == "offline" and since >= min(interval, OFFLINE_LOOK_S):
            self._polled[root] = time.monotonic()
            if self._usable(root):
                log.info("root %s is back: watching and reconciling it", printable(root))
                self._arm(root)
                self.request(Request("reconcile", frozenset([root])))

    def _pump_places(self) -> None:
        while not self.stop_event.is_set():
            self.debouncer.wait(TICK_S)
            places = self.debouncer.due()
            if places:
                self.request(Request("watch", places=tuple(places)))

    # --- the scheduler, the watchdog, the control socket, reloading

    def _start_scheduler(self):
        from apscheduler.schedulers.background import BackgroundScheduler
        scheduler = BackgroundScheduler(daemon=True)
        scheduler.add_job(lambda: self.request(Request("reconcile", frozenset(self.roots))),
                          self._reconcile_trigger(), id="reconcile", coalesce=True,
                          max_instances=1, misfire_grace_time=3600)
        scheduler.start()
        self._scheduler = scheduler
        return scheduler

    def _reconcile_trigger(self):
        from apscheduler.triggers.cron import CronTrigger
        from apscheduler.triggers.interval import IntervalTrigger
        service = self.config.service
        if service.reconcile_interval_s:
            return IntervalTrigger(seconds=service.reconcile_interval_s, jitter=60)
        trigger = CronTrigger.from_crontab(service.reconcile_cron)
        trigger.jitter = 300  # not every server on the stroke of 4
        return trigger

    def _ping_watchdog(self) -> None:
        interval = self.notifier.watchdog_interval()
        if interval is None:
            return
        while not self.stop_event.wait(interval):
            if time.monotonic() - self._alive < 4 * interval:  # the loop is not stuck
                self.notifier.send(WATCHDOG=1)

    def _handle_control(self, message: dict, send: Callable[[dict], None]) -> None:
        if message["cmd"] == "status":
            send({"event": "status", **self.status()})
            return
        if message["cmd"] == "purge":
            self._purge(message["ids"], send)
            return
        roots = frozenset(absolute(r) for r in message.get("roots") or self.roots)
        unknown = sorted(roots - set(self.roots))
        if unknown:
            send({"event": "error", "error": f"not a root of this service: {', '.join(unknown)}"})
            return
        offline = sorted(root for root in roots if not self._back_now(root))
        done = threading.Event()

        def reply(answer: dict) -> None:
            send({**answer, "offline": offline} if answer["event"] == "done" else answer)
            if answer["event"] == "done":
                done.set()
        self.request(Request("rescan", roots - set(offline), rehash=message.get("full", False),
                             replies=[reply]))
        while not done.wait(TICK_S):  # the connection stays open until the scan ends
            if self.stop_event.is_set():
                send({"event": "error", "error": "the service is stopping"})
                return

    def _purge(self, ids: list[int], send: Callable[[dict], None]) -> None:
        """Purge in the service's own loop: it holds the only write connection."""
        from .purge import Doomed, purge
        done = threading.Event()

        def action(write_conn) -> None:
            try:
                art_dir = str(self.config.database.path.parent / "artwork")
                send({"event": "done", "purged": purge(write_conn, [Doomed(i, "", "") for i in ids],
                                                       art_dir, stop=self.stop_event)})
            except Exception as error:  # the catalogue locked past every retry, ...
                log.error("purge failed: %s: %s", type(error).__name__, error)
                send({"event": "error", "error": f"nothing purged: {error}"})
            finally:
                done.set()
        self._actions.put(action)
        self._requests.put(Request("watch"))  # wakes the loop; an empty request does nothing
        while not done.wait(TICK_S):
            if self.stop_event.is_set():
                send({"event": "error", "error": "the service is stopping"})
                return

    def status(self) -> dict:
        return {"service": {"pid": os.getpid(), "roots": {r: (self.watcher.states.get(r, "?")
                                                            if self.watcher else "?")
                                                        for r in self.roots},
                            "queued": self._requests.qsize(), "pending_places": len(self.debouncer),
                            "unreconciled": sorted(self._unsure),
                            "waiting_for_room": self.waiting_for_room,
                            "current": self.current, "last_reconcile": self.last_reconcile,
                            "push": self.pusher.status()}}

    def _apply_reload(self) -> None:
        self._reload.clear()
        if self._reload_config is None:
            return
        try:
            fresh = self._reload_config()
        except config_module.ConfigError as error:
            log.error("configuration not reloaded: %s", error)
            return
        old, changed = self.config, _changed_keys(self.config, fresh)
        for key in sorted(changed & NEEDS_RESTART):
            log.warning("%s changed: it takes effect when the service restarts", key)
        # (the catalogue stays the one open; scans read scan.* and metadata.* as they start)
        self.config = dataclasses.replace(fresh, database=old.database)
        self.debouncer.quiet = fresh.watch.debounce_s
        self.debouncer.max_wait = max(fresh.watch.max_wait_s, fresh.watch.debounce_s)
        self.debouncer.quick = min(fresh.watch.closed_quiet_s, fresh.watch.debounce_s)
        if changed & {"reconcile.cron", "reconcile.interval"} and self._scheduler is not None:
            self._scheduler.reschedule_job("reconcile", trigger=self._reconcile_trigger())
        self._rearm(fresh, rewatch=bool(changed & {"library.ignore", "watch.backend",
                                                    "library.follow_symlinks"}))
        log.info("configuration reloaded%s", f": {', '.join(sorted(changed))}" if changed else
                 " (nothing changed)")
        if "service.log_level" in changed:  # (last: the line above is said at the old level)
            logging.getLogger("indexer").setLevel(fresh.service.log_level.upper())

    def _rearm(self, fresh: Config, rewatch: bool) -> None:
        """Watch the roots the configuration names now, the way it says."""
        added = [r for r in fresh.library.roots if r not in self.roots]
        for root in [r for r in self.roots if r not in fresh.library.roots]:
            self.watcher.disarm(root)
            log.info("no longer watching %s", printable(root))
        kept = [r for r in self.roots if r in fresh.library.roots]
        self.roots = list(fresh.library.roots)
        if rewatch:
            self.watcher.reconfigure(fresh.library.ignore, fresh.watch.backend)
        for root in added + (kept if rewatch else []):
            self._arm(root)
        if added or rewatch:  # new roots, or files the old ignore list left out
            self.request(Request("reconcile", frozenset(added + (kept if rewatch else []))))

    def _thread(self, target: Callable[[], None], name: str) -> threading.Thread:
        """A helper thread of the service. If it dies, the service stops, loudly, and
        `run` returns 1: under systemd (Restart=on-failure) it starts again whole,
        rather than going on without, say, its root monitor."""
        def guarded() -> None:
            try:
                target()
            except BaseException as error:
                log.critical("the service's %s thread died (%s: %s): stopping, to be "
                             "restarted", name, type(error).__name__, error, exc_info=True)
                self.died = True
                self.stop_event.set()
        thread = threading.Thread(target=guarded, name=name, daemon=True)
        thread.start()
        return thread


CHANGE_KINDS = ("added", "modified", "moved", "missing", "restored")
# Keys a reload cannot apply to a running service (the catalogue is open, priority only
# goes down): said in the log, applied at the next start. Every other key is applied.
NEEDS_RESTART = {"database.path", "database.synchronous", "database.busy_timeout_s",
                 "service.low_priority", "notify", "push.delay_s", "push.tags_wait_s",
                 "push.backoff_max_s", "push.batch_size", "push.timeout_s"}


def _changed_keys(old: Config, new: Config) -> set[str]:
    return {key for key, value in new.values.items() if old.values.get(key) != value}


def _log_job(result: ScanResult, kind: str, target: dict) -> None:
    """One info line per job that changed something, and for every reconcile (the one at
    start-up says what the service found): `+15 added, 52 moved in /srv/music (0.4 s)`."""
    c = result.counters
    changed = ", ".join(f"{getattr(c, k):,} {k}" for k in CHANGE_KINDS if getattr(c, k))
    if not changed and kind == "watch" and result.status == "completed":
        return
    where = ", ".join(printable(r) for r in target.get("roots") or ()) or ", ".join(
        printable(p.tops[0] if p.tops else p.ranges[0][0])
        for parts in target.get("parts", {}).values() for p in parts[:3])
    tail = f"; {c.errors:,} errors" if c.errors else ""
    state = "" if result.status == "completed" else f" ({result.status})"
    log.info("%s job #%d%s: %s in %s (%.1f s, %s files%s)", kind, result.job_id, state,
             changed or "nothing changed", where, result.duration_s, f"{c.files_found:,}", tail)


def _part(place: Place) -> Part:
    """What to scan for a place, as it is now: events are old news by the time a scan
    runs (a folder written to and then moved away is gone; a deleted one may be back)."""
    if place.how == "root":
        return whole(place.root)
    if not os.path.isdir(place.folder):
        return vanished(place.root, place.folder)
    if place.how == "folder":
        return folder_only(place.root, place.folder)
    return tree(place.root, place.folder)
