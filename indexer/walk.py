"""Finding files: the root health check and one single-pass walk with os.scandir.

The walk reads folders and stats files; it never opens a file, never hashes,
never touches the database. It yields one `Listing` per folder, so that the
planner can compare a whole folder with the catalogue at once. Only regular
files are reported: FIFOs, sockets and devices are counted as skipped and
never opened; symbolic links are skipped unless `follow_symlinks` is set, and
then every folder is entered once (by device and inode), so loops end. What is
ignored is ignore.py's to say: the walk reads each folder's ignore files as it
lists it, and asks for each entry; a walk that starts below the root reads the
rules in effect there first, and does not enter a top that they ignore.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import os
import stat
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field

from . import ignore as ignoring
from .ignore import IGNORE_NAMES, Rules, Verdict
from .paths import db_text, printable
from .kinds import KIND_OF_EXTENSION
from .records import Problem, Seen, describe

log = logging.getLogger(__name__)


class RootUnusable(Exception):
    """A root that cannot be walked; the message says why, for the job and the log."""


def check_root(root: str) -> None:
    """Raise RootUnusable unless `root` is a folder we can list."""
    try:
        info = os.stat(root)
    except FileNotFoundError:
        raise RootUnusable(f"root {printable(root)} does not exist (not mounted?)") from None
    except OSError as error:
        raise RootUnusable(f"root {printable(root)} cannot be read: {error.strerror}") from None
    if not stat.S_ISDIR(info.st_mode):
        raise RootUnusable(f"root {printable(root)} is not a folder")
    try:
        with os.scandir(root) as entries:
            next(entries, None)
    except OSError as error:
        raise RootUnusable(f"root {printable(root)} cannot be listed: {error.strerror}") from None


def looks_unmounted(path: str) -> bool:
    """Whether a root is empty or cannot be listed (any more): an empty mount point, a
    disk unmounted or a root removed while it was scanned."""
    try:
        with os.scandir(path) as entries:
            return next(entries, None) is None
    except OSError:
        return True


@dataclass(slots=True)
class Listing:
    """One folder's files, and what the walk could not take from it."""

    dir: str
    text: str = ""  # `dir` as catalogue text
    files: list[Seen] = field(default_factory=list)
    skipped: int = 0
    problems: list[Problem] = field(default_factory=list)


@dataclass
class Walk:
    """A walk of the folders `tops` (a root, or folders inside it) and all below them.

    After iteration: `unlisted` holds a problem for each folder that could not
    be read (its contents are unknown, so nothing below it may be called
    missing), and
    `complete` says whether the walk reached its end rather than being stopped.
    """

    root: str
    tops: tuple[str, ...]
    kinds: tuple[str, ...]
    ignore: tuple[str, ...] = ()
    follow_symlinks: bool = False
    stop: threading.Event = field(default_factory=threading.Event)
    recursive: bool = True
    subfolders: list[str] = field(default_factory=list)  # not entered, when not recursive
    unlisted: list[Problem] = field(default_factory=list)
    complete: bool = False
    _known: dict = field(default_factory=dict, repr=False)  # rules above tops, by folder

    def __iter__(self) -> Iterator[Listing]:
        """Folders in ascending order of their catalogue text (`Listing.text`).

        That is the order of the catalogue's `dir` index, so the scan can read
        the rows of every folder with one query streamed beside the walk,
        instead of one query per folder. A heap of pending folders keeps it.
        """
        seen_dirs: set[tuple[int, int]] = set()
        order = itertools.count()  # (ties: never compare two folders' rules)
        pending = []
        for top in self.tops:
            rules = self._rules_above(top)
            if rules is not None:
                pending.append((db_text(top)[0], next(order), top, rules))
        heapq.heapify(pending)
        while pending:
            if self.stop.is_set():
                return
            text, _, folder, rules = heapq.heappop(pending)
            if self.follow_symlinks and not self._first_visit(folder, seen_dirs):
                continue
            subfolders: list[tuple[str, Rules]] = []
            listing = self._list(folder, rules, subfolders)
            if not self.recursive:
                self.subfolders += [sub for sub, _ in subfolders]
                subfolders = []
            for sub, inner in subfolders:
                heapq.heappush(pending, (db_text(sub)[0], next(order), sub, inner))
            if listing is not None:
                listing.text = text
                yield listing
        self.complete = True

    def _rules_above(self, top: str) -> Rules | None:
        """The rules `top`'s own listing starts from: those of the folder holding it (its
        own ignore files are read when it is listed). None: the rules there ignore it, or
        a folder above it, so a walk from the root would never list it: its rows are gone
        as those of a folder deleted."""
        if top == self.root:
            return Rules(self.root, ())  # (its files and library.ignore: see `_list`)
        try:
            above = ignoring.inside(self.root, self.ignore, os.path.dirname(top), self._known)
        except OSError as error:  # an ignore file on the way cannot be read
            self._unlisted(top, error)
            return None
        if isinstance(above, Verdict) or above.ignored(os.path.basename(top), True):
            log.debug("not walked, ignored: %s", printable(top))
            return None
        return above

    def _first_visit(self, folder: str, seen_dirs: set[tuple[int, int]]) -> bool:
        try:
            info = os.stat(folder)
        except OSError:
            return True  # let _list report it
        key = (info.st_dev, info.st_ino)
        if key in seen_dirs:
            log.info("not entering %s again: already visited (symlink loop?)", printable(folder))
            return False
        seen_dirs.add(key)
        return True

    def _list(self, folder: str, above: Rules, stack: list[tuple[str, Rules]]) -> Listing | None:
        # The hot loop of a rescan: one pass per entry, names bound locally.
        listing = Listing(folder)
        follow, kinds, root = self.follow_symlinks, self.kinds, self.root
        found, kind_of_extension = listing.files.append, KIND_OF_EXTENSION.get
        try:
            with os.scandir(folder) as listed:
                entries = list(listed)
            rules = self._enter(folder, above, entries)
        except OSError as error:  # unreadable, gone, or an ignore file that cannot be read
            self._unlisted(folder, error)
            return None
        ignored = rules.ignored
        for entry in entries:
            name = entry.name
            try:
                if name in IGNORE_NAMES:  # read above, never indexed nor entered
                    listing.skipped += 1
                elif entry.is_dir(follow_symlinks=follow):
                    if ignored(name, True):
                        listing.skipped += 1
                        log.debug("ignored: %s", printable(entry.path))
                    else:
                        stack.append((entry.path, rules))
                elif ignored(name, False):
                    listing.skipped += 1
                    log.debug("ignored: %s", printable(entry.path))
                elif entry.is_file(follow_symlinks=follow):
                    dot = name.rfind(".")
                    kind = kind_of_extension(name[dot + 1:].lower(), "other") if dot > 0 else "other"
                    if kind in kinds:
                        info = entry.stat(follow_symlinks=follow)
                        found(Seen(root, entry.path, info.st_size, info.st_mtime_ns,
                                   info.st_ino, info.st_dev, info.st_ctime_ns, kind))
                else:
                    listing.skipped += 1
                    log.debug("skipped, not a regular file: %s", printable(entry.path))
            except OSError as error:
                listing.problems.append(_problem(entry.path, error))
        return listing

    def _enter(self, folder: str, above: Rules, entries: list[os.DirEntry]) -> Rules:
        """The rules of `folder`'s entries: those above it, and its own ignore files."""
        names = [e.name for e in entries if e.name in IGNORE_NAMES]
        files = ignoring.read_ignore_files(folder, names) if names else {}
        if folder == self.root:
            return Rules.at_root(self.root, self.ignore, files)
        return above.enter(folder, files)

    def _unlisted(self, folder: str, error: OSError) -> None:
        problem = _problem(folder, error)
        self.unlisted.append(problem)
        log.warning("cannot list folder %s: %s", printable(folder), problem.error)


def _problem(path: str, error: OSError) -> Problem:
    if isinstance(error, FileNotFoundError):
        return Problem(path, "walk", "vanished while the folder was being read")
    return Problem(path, "walk", describe(error))
