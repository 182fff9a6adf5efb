"""Watching the roots (watchdog): every event only marks a place for the debouncer.

An event never starts work. A file event marks its folder (scanned without
its subfolders); a new folder marks its whole tree (files written before its
watch was armed are found that way); a deleted or moved-away folder marks its
range of catalogue rows, to be called gone once the scan has seen where
things moved. Events we cause ourselves (opening files to hash them) and
events for paths the ignore rules skip (`*.part` while a download runs) are
dropped: ignore.py decides, as for the walk. A change to an ignore file itself
(`.indexerignore`, `.ndignore`, `.plexignore`) marks its folder's whole tree,
so that what it now ignores is called missing and what it no longer ignores
is added.

The kernel says when a file is complete: its writer closed it (IN_CLOSE_WRITE)
or it was renamed into place (IN_MOVED_TO). `Closes` keeps those, and a scan
takes such a file at once, not after the settle window, if no write came
since (survey.still_written); a write after the close takes it off again.

Where inotify cannot work (NFS, SMB/CIFS, FUSE mounts such as rclone or sshfs,
found in the mount table) or `watch.backend = "polling"`, a root is polled:
rescanned every `poll_interval_s` by the smart-hash scan, cheaply. A root
that cannot get its inotify watches (the `fs.inotify.max_user_watches` limit)
falls back to polling with a warning that says how to raise the limit.
"""

from __future__ import annotations

import errno
import logging
import os
import re
import threading
import time
from collections.abc import Callable
from typing import NamedTuple

from watchdog.events import (DirCreatedEvent, DirDeletedEvent, DirMovedEvent, FileAttribEvent,
                             FileClosedEvent, FileCreatedEvent, FileDeletedEvent,
                             FileModifiedEvent, FileMovedEvent, FileSystemEvent,
                             FileSystemEventHandler)
from watchdog.observers.inotify import InotifyObserver

from . import writers
from .ignore import IGNORE_NAMES, explain
from .order import within
from .paths import printable
from .survey import Signals, tree_holding

log = logging.getLogger(__name__)

NETWORK_FILESYSTEMS = ("nfs", "nfs4", "cifs", "smb3", "smbfs", "9p", "afs", "ceph", "glusterfs",
                       "lustre", "davfs", "ncpfs", "sshfs")
# The events asked of the kernel: changes only. watchdog's default also asks for every
# open and every close without a write, which our own scans cause by the thousand (a
# folder listed, a file read): at 50,000 tracks a rescan of a root filled the inotify
# queue, and the overflow's rescan filled it again, round after round.
WATCHED_EVENTS = [FileCreatedEvent, FileModifiedEvent, FileAttribEvent, FileClosedEvent,
                  FileDeletedEvent, FileMovedEvent, DirCreatedEvent, DirDeletedEvent,
                  DirMovedEvent]
FIX_WATCH_LIMIT = ("raise it: `sysctl fs.inotify.max_user_watches=524288` (and the same line "
                   "in /etc/sysctl.d/90-indexer.conf to keep it; see systemd/)")


class Place(NamedTuple):
    """Where to look again: `how` is "folder" (its files), "tree" (it and all below),
    "gone" (it vanished: its rows) or "root" (the whole root)."""

    root: str
    folder: str
    how: str


def unescape_mount_field(field: bytes) -> str:
    """A field of the mount table as the path it names. The kernel writes a space, tab,
    newline and backslash in it as octal escapes (`\\040`, `\\011`, `\\012`, `\\134`): a
    backslash there always starts one, so every one is decoded. Bytes, then os.fsdecode:
    a path that is not UTF-8 comes out as the walk names it."""
    return os.fsdecode(re.sub(rb"\\([0-7]{3})", lambda m: bytes([int(m[1], 8) & 0xFF]), field))


def mounts(table: str = "/proc/self/mounts") -> list[tuple[str, str]]:
    """(mount point, file system type) of each line of the mount table, in its order."""
    found = []
    with open(table, "rb") as lines:
        for line in lines:
            fields = line.split()
            if len(fields) >= 3:
                found.append((unescape_mount_field(fields[1]), os.fsdecode(fields[2])))
    return found


def mount_type(path: str, table: str = "/proc/self/mounts") -> str:
    """The filesystem type of the mount holding `path` (the longest mount point prefix)."""
    best, kind = "", "unknown"
    try:
        for point, fstype in mounts(table):
            if within(path, point) and len(point) > len(best):
                best, kind = point, fstype
    except OSError:
        pass
    return kind


def is_mount_point(path: str, table: str = "/proc/self/mounts") -> bool:
    """Whether something is mounted on `path` (bind mounts too, which os.path.ismount
    misses when they come from the same file system)."""
    try:
        return any(point == path for point, _ in mounts(table))
    except OSError:
        return os.path.ismount(path)


def needs_polling(path: str) -> bool:
    kind = mount_type(path)
    return kind in NETWORK_FILESYSTEMS or kind.startswith("fuse")


def watched_inodes() -> set[int] | None:
    """Inode numbers of what this process's inotify watches watch (from /proc), or None
    where that is not told."""
    try:
        watched = set()
        for fd in os.listdir("/proc/self/fdinfo"):
            try:
                with open(f"/proc/self/fdinfo/{fd}") as info:
                    watched.update(int(field[4:], 16) for line in info
                                   if line.startswith("inotify wd:")
                                   for field in line.split() if field.startswith("ino:"))
            except (OSError, ValueError):
                continue
        return watched
    except OSError:
        return None


def folder_inodes(root: str) -> dict[int, str]:
    """The folders a recursive watch of `root` needs (itself included; no symlinks), by inode."""
    found, stack = {}, [root]
    while stack:
        folder = stack.pop()
        try:
            found[os.stat(folder, follow_symlinks=False).st_ino] = folder
            with os.scandir(folder) as entries:
                stack += [e.path for e in entries if e.is_dir(follow_symlinks=False)]
        except OSError:
            pass
    return found


def unwatched(folders: dict[int, str], watched: set[int]) -> list[str]:
    """Folders without a watch that still exist as they were (not removed meanwhile)."""
    left = []
    for inode, folder in folders.items():
        if inode not in watched:
            try:
                if os.stat(folder, follow_symlinks=False).st_ino == inode:
                    left.append(folder)
            except OSError:
                pass
    return left


class Closes:
    """What the kernel said of files being complete, when (ns, the clock of file
    times): for survey.complete_since. Fed from the watcher's thread, read by the
    scans'."""

    def __init__(self, clock: Callable[[], int] = time.time_ns):
        self.clock = clock
        self._closed: dict[str, int] = {}
        self._writing: dict[str, int] = {}
        self._reopened: dict[str, int] = {}  # written after a close: its closes prove nothing
        self._trees: dict[str, int] = {}
        self._complete_trees: set[str] = set()
        self._lock = threading.Lock()

    def closed(self, path: str) -> None:
        """Its writer closed it, or it was renamed into place."""
        with self._lock:
            self._writing.pop(path, None)
            if path not in self._reopened:
                self._closed[path] = self.clock()
            tree = tree_holding(self._trees, os.path.dirname(path))
            if tree is not None:
                self._complete_trees.add(tree)

    def written(self, path: str) -> None:
        """Written to: not known complete. Written after a close, by a writer that
        reopens the file: from now on, only the settle window tells."""
        with self._lock:
            if self._closed.pop(path, None) is not None or path in self._reopened:
                self._reopened[path] = self.clock()
            self._writing[path] = self.clock()

    def forget(self, path: str) -> None:
        """Created (its writes, if any, are events of their own) or gone."""
        with self._lock:
            self._closed.pop(path, None)
            self._writing.pop(path, None)

    def changed(self, path: str) -> None:
        """Its attributes changed (ctime moves on): still complete if it was."""
        with self._lock:
            if path in self._closed:
                self._closed[path] = self.clock()

    def armed(self, folder: str, moved_in: bool = False) -> None:
        """A folder made, or moved in whole: its watch begins now, and what it holds was
        written before (a folder moved in was written elsewhere: like a file renamed
        into place, complete; in one made here, a copy may have begun before the watch,
        and is known past those files once it closes another)."""
        with self._lock:
            self._trees[folder] = self.clock()
            self._complete_trees.discard(folder)
            if moved_in:
                self._complete_trees.add(folder)

    def armed_complete(self, folder: str) -> bool:
        """Whether `folder` is in a folder made or moved in while watched (lately) whose
        files from before its watch are known complete: moved in whole, or a copy there
        has closed a file since."""
        with self._lock:
            return tree_holding(self._trees, folder) in self._complete_trees

    def in_tree(self, folder: str) -> bool:
        """Whether `folder` is in a folder made or moved in while watched (lately)."""
        with self._lock:
            return tree_holding(self._trees, folder) is not None

    def recent(self, within_ns: int, hold_ns: int) -> Signals:
        """What was said in the last `within_ns` (what is older has settled anyway),
        forgetting the rest."""
        horizon = self.clock() - within_ns
        with self._lock:
            for said in (self._closed, self._writing, self._reopened, self._trees):
                for key in [key for key, at in said.items() if at < horizon]:
                    del said[key]
            self._complete_trees &= set(self._trees)
            return Signals(dict(self._closed), frozenset(self._writing), dict(self._trees),
                           frozenset(self._complete_trees), hold_ns)


class _Rules:
    """The ignore rules of one root's folders, read as events ask (ignore.py's `explain`)
    and forgotten when an event says they may have changed: an ignore file written or
    removed, a folder deleted or moved. A root's events come in order, so a path is
    judged by the rules its earlier events left. Unsure (an ignore file unreadable), an
    event is kept: the scan decides."""

    LIMIT = 4096  # folders remembered; past that, forgotten all at once

    def __init__(self, root: str, patterns: tuple[str, ...]):
        self.root, self.patterns = root, patterns
        self.known: dict = {}

    def ignored(self, path: str, is_dir: bool) -> bool:
        if len(self.known) > self.LIMIT:
            self.known.clear()
        try:
            return explain(self.root, self.patterns, path, is_dir, self.known).ignored
        except (OSError, ValueError):
            return False

    def forget(self, folder: str) -> None:
        for known in [k for k in self.known if within(k, folder)]:
            del self.known[known]

    def clear(self) -> None:
        self.known.clear()


class _Handler(FileSystemEventHandler):
    """Turns watchdog events for one root into places for the debouncer, and notes in
    `closes` the files the kernel says are complete."""

    def __init__(self, root: str, touch: Callable[..., None], ignore: tuple[str, ...],
                 closes: Closes | None = None):
        self.root, self.touch = root, touch
        self.rules = _Rules(root, ignore)
        self.closes = closes or Closes()

    def on_any_event(self, event: FileSystemEvent) -> None:
        complete = self.note(event)
        for place in self.places(event):
            self.touch(place, complete=complete and place.how in ("folder", "tree"))

    def note(self, event: FileSystemEvent) -> bool:
        """Record what the event says of a file's completeness; True if it completes one
        (or, a folder made, if what it holds can be known complete at once)."""
        src = os.fsdecode(event.src_path)
        if event.is_directory:
            if isinstance(event, DirCreatedEvent):
                self.closes.armed(src)
                # what a copy wrote there before the watch began is complete once no
                # writer holds it (survey.complete_since): look soon, if that can be asked
                return writers.usable()
            elif isinstance(event, DirMovedEvent) and event.dest_path:
                self.closes.armed(os.fsdecode(event.dest_path), moved_in=True)
                return True
            return False
        if isinstance(event, FileClosedEvent):
            self.closes.closed(src)
            return True
        if isinstance(event, FileMovedEvent):
            self.closes.forget(src)
            dest = os.fsdecode(event.dest_path)
            if dest:
                self.closes.closed(dest)
            return bool(dest)
        if isinstance(event, FileModifiedEvent):
            self.closes.written(src)
        elif isinstance(event, FileCreatedEvent):
            self.closes.forget(src)
            # watchdog says "created" of each file a folder made or moved in holds when
            # its watch begins: those are looked at with the folder (see DirCreatedEvent
            # above), not after the debounce. (Whether a file is complete is the
            # survey's to say, not this: one made there since is left until its close
            # or the settle window, survey.complete_since.)
            folder = os.path.dirname(src)
            return self.closes.armed_complete(folder) or (
                writers.usable() and self.closes.in_tree(folder))
        elif isinstance(event, FileDeletedEvent):
            self.closes.forget(src)
        elif event.event_type == "attrib":
            self.closes.changed(src)
        return False

    def places(self, event: FileSystemEvent) -> list[Place]:
        src = os.fsdecode(event.src_path)
        dest = os.fsdecode(getattr(event, "dest_path", "") or "")
        if isinstance(event, (FileCreatedEvent, FileModifiedEvent, FileClosedEvent,
                              FileDeletedEvent)) or event.event_type == "attrib" \
                and not event.is_directory:
            return self._file(src)
        if isinstance(event, FileMovedEvent):  # a temp file renamed into place counts
            return self._file(src) + self._file(dest)
        if isinstance(event, DirCreatedEvent):
            self.rules.forget(src)
            return [] if self._skip(src) else [Place(self.root, src, "tree")]
        if isinstance(event, DirDeletedEvent):
            self.rules.forget(src)
            return [self._gone(src)]
        if isinstance(event, DirMovedEvent):  # from or to outside the root: one side is ""
            self.rules.forget(src)
            self.rules.forget(dest)
            return ([self._gone(src)] if src else []) + (
                [] if not dest or self._skip(dest) else [Place(self.root, dest, "tree")])
        return []  # opened, closed without writing (our own reads), folder modified

    def _file(self, path: str) -> list[Place]:
        if not within(path, self.root) or path == self.root:
            return []
        if os.path.basename(path) in IGNORE_NAMES:  # the rules of its folder's tree changed
            folder = os.path.dirname(path)
            self.rules.forget(folder)
            return [] if self._skip(folder) else [Place(self.root, folder, "tree")]
        return [] if self.rules.ignored(path, False) else [self._folder(path)]

    def _skip(self, folder: str) -> bool:
        return not within(folder, self.root) or self.rules.ignored(folder, True)

    def _folder(self, path: str) -> Place:
        return Place(self.root, os.path.dirname(path), "folder")

    def _gone(self, path: str) -> Place:
        if path == self.root:  # the root itself: never "everything was deleted"
            return Place(self.root, self.root, "root")
        return Place(self.root, path, "gone")


class Watcher:
    """inotify watches on roots, or polling where they cannot work; `states` says which."""

    def __init__(self, touch: Callable[..., None], ignore: tuple[str, ...], backend: str = "auto"):
        self.touch, self.backend = touch, backend
        self.ignore = ignore
        self.closes = Closes()
        self.states: dict[str, str] = {}  # root -> "inotify", "polling", "offline"
        self._watches: dict[str, object] = {}
        self._handlers: dict[str, _Handler] = {}
        self._lock = threading.Lock()
        # full events: a file moved in from outside the roots is a move (complete), not a
        # creation (still being written)
        self._observer = InotifyObserver(generate_full_events=True)
        self._observer.start()
        _OverflowAlarm.install(self._overflowed)

    def reconfigure(self, ignore: tuple[str, ...], backend: str) -> None:
        """New ignore patterns or backend, for the roots armed from now on."""
        with self._lock:
            self.ignore, self.backend = ignore, backend

    def arm(self, root: str) -> str:
        """Watch a root; returns how it is watched: "inotify" or "polling"."""
        with self._lock:
            self.disarm(root)
            state = "polling" if self.backend == "polling" or (
                self.backend == "auto" and needs_polling(root)) else self._inotify(root)
            self.states[root] = state
            return state

    def _inotify(self, root: str) -> str:
        folders = folder_inodes(root)
        handler = _Handler(root, self.touch, self.ignore, self.closes)
        try:
            self._watches[root] = self._observer.schedule(handler, root, recursive=True,
                                                          event_filter=WATCHED_EVENTS)
            self._handlers[root] = handler
        except OSError as error:
            if error.errno == errno.ENOSPC:
                return self._over_limit(root)
            log.warning("cannot watch %s (%s): polling it instead", printable(root),
                        error.strerror or error)
            return "polling"
        # watchdog skips, silently, a folder below the root that it cannot watch: check.
        watched = watched_inodes()
        if watched is not None and unwatched(folders, watched):
            self.disarm(root)  # half-watched is worse than polled: give the watches back
            return self._over_limit(root)
        return "inotify"

    def _over_limit(self, root: str) -> str:
        log.warning("cannot watch every folder of %s: the inotify watch limit is reached; "
                    "polling it instead. To watch it live, %s", printable(root), FIX_WATCH_LIMIT)
        return "polling"

    def disarm(self, root: str) -> None:
        self._handlers.pop(root, None)
        watch = self._watches.pop(root, None)  # (callers hold the lock, or are arm itself)
        if watch is not None:
            try:
                self._observer.unschedule(watch)
            except (KeyError, OSError):  # its folder is gone, and the watch with it
                pass
        self.states.pop(root, None)

    def offline(self, root: str) -> None:
        with self._lock:
            self.disarm(root)
            self.states[root] = "offline"

    def stop(self) -> None:
        _OverflowAlarm.remove(self._overflowed)
        self._observer.stop()
        self._observer.join(timeout=5)

    def _overflowed(self) -> None:
        """The kernel dropped events: which roots is unknown, so each inotify root is rescanned."""
        for root, state in list(self.states.items()):
            if state == "inotify":
                handler = self._handlers.get(root)
                if handler is not None:  # an ignore file may have changed unheard
                    handler.rules.clear()
                log.warning("events were lost (inotify queue overflow): rescanning %s",
                            printable(root))
                self.touch(Place(root, root, "root"))


class _OverflowAlarm(logging.Handler):
    """watchdog rebuilds its watches after an inotify queue overflow, but only logs that
    events were lost. This hears that log line and calls back, so changes are not."""

    _callbacks: list[Callable[[], None]] = []
    _installed: "_OverflowAlarm | None" = None

    @classmethod
    def install(cls, callback: Callable[[], None]) -> None:
        cls._callbacks.append(callback)
        if cls._installed is None:
            cls._installed = cls(logging.WARNING)
            logging.getLogger("watchdog.observers.inotify_c").addHandler(cls._installed)

    @classmethod
    def remove(cls, callback: Callable[[], None]) -> None:
        if callback in cls._callbacks:
            cls._callbacks.remove(callback)

    def emit(self, record: logging.LogRecord) -> None:
        if "overflow" in record.getMessage().lower():
            for callback in list(self._callbacks):
                callback()
