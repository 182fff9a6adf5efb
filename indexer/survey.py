"""Surveying a part of a root: walk its folders and plan them against the catalogue.

This is the cheap half of a scan, the whole of a rescan that finds nothing
changed: list, stat, compare. A `Part` is a set of folders to walk and the
`dir` ranges of catalogue rows it answers for; parts of one root cover its
range without gaps, so a folder deleted from disk is in exactly one part and
its rows are called gone once. The scan surveys a root in its own thread, or
splits it into parts for worker processes (`survey_part`), which return what
they found in one answer each.
"""

from __future__ import annotations

import functools
import os
import threading
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import NamedTuple

from . import catalog, order, writers
from .hashing import FolderPlan, plan_folder
from .paths import db_text
from .records import Gone, Hashed, Problem, Seen, Stored, Tally, ToHash
from .walk import Listing, Walk


class Part(NamedTuple):
    root: str
    tops: tuple[str, ...]
    ranges: tuple[tuple[str, str], ...]  # [low, high) ranges of `dir` text
    recursive: bool = True


class Settings(NamedTuple):
    """What a survey needs of the configuration and the catalogue."""

    kinds: tuple[str, ...]
    ignore: tuple[str, ...]
    follow_symlinks: bool
    smart: bool
    tags: bool
    db_path: str | None  # None: the catalogue is empty, nothing to compare with
    # Files written to after this time (ns, by their ctime: see `still_written`) are
    # left for later, neither indexed nor called gone: a copy may still be running.
    # 0: none. `now_ns`: when the scan began.
    settled_before_ns: int = 0
    now_ns: int = 0
    # What the kernel said of files being complete (`Signals`, `complete_since`)
    signals: "Signals | None" = None


class Signals(NamedTuple):
    """The watcher's record (watch.Closes) of what the kernel said, for `complete_since`."""

    closed: Mapping[str, int]  # path -> when its writer closed it, or it was renamed in (ns)
    writing: frozenset[str]  # written to since the last close (or never closed)
    trees: Mapping[str, int]  # folder made or moved in while watched -> when its watch began
    # those of `trees` moved in whole, and those where a file has been closed since
    complete_trees: frozenset[str] = frozenset()
    hold_ns: int = 0  # else: how long their files must have held still (the debounce)


def complete_since(signals: Signals | None, path: str, now_ns: int, size: int = 1,
                   unwritten: Callable[[str], bool | None] | None = None) -> int | None:
    """Since when `path` is known complete if its ctime is not later (`still_written`).

    A file its writer closed, or that was renamed into place: since then. A file in a
    folder made or moved in while watched, written before its watch began (its own
    events were lost) and never since: since the watch began if the folder was moved
    in whole (written elsewhere), if a file written there since has been closed (the
    copy has moved on past it), or if the kernel says that no process holds it open
    for writing (`unwritten`: writers.unwritten, asked only here). If the kernel says
    a process does: unknown, as any file held open (the settle window decides). With
    no answer (a copy that ended before the watch began, or one stalled): once it has
    held still for `hold_ns`, if it is not empty (a copy that stalled before its first
    write). Else: unknown."""
    if signals is None:
        return None
    if path in signals.closed:
        return signals.closed[path]
    if path in signals.writing:
        return None
    folder = tree_holding(signals.trees, os.path.dirname(path))
    if folder is None:
        return None
    if folder in signals.complete_trees:
        return signals.trees[folder]
    answer = unwritten(path) if unwritten is not None else None
    if answer is not None:
        return signals.trees[folder] if answer else None
    return min(signals.trees[folder], now_ns - signals.hold_ns) if size else None


def tree_holding(trees: Mapping[str, int], folder: str) -> str | None:
    """The folder of `trees` that is `folder` or holds it, the nearest; None if none."""
    while folder not in trees:
        parent = os.path.dirname(folder)
        if parent == folder:
            return None
        folder = parent
    return folder


CLOCK_SKEW_NS = 1_000_000_000  # a ctime this far ahead of our clock is still "now"


def still_written(seen: Seen, settled_before_ns: int, now_ns: int,
                  closed_at_ns: int | None = None) -> bool:
    """Whether a file may still be being written: the one rule of settling.

    A file the kernel told us its writer closed (or that was renamed into place), at
    `closed_at_ns`, and whose ctime says no write came since, is complete: no wait.
    Otherwise, its ctime, which the kernel sets on every write and no program can set,
    falls in the settle window before now. Its mtime is not looked at: a file carries
    it from anywhere (a camera, an archive, `touch -d` a year ahead), and a file dated
    in the future would never settle. A ctime well ahead of our clock (another
    machine's clock, over a network) proves no write in progress either: that file is
    read, and the read's own held-still check guards it."""
    if closed_at_ns is not None and seen.ctime_ns <= closed_at_ns:
        return False
    return settled_before_ns < seen.ctime_ns <= now_ns + CLOCK_SKEW_NS


def whole(root: str) -> Part:
    """A root as one part: its folder and every folder below."""
    return tree(root, root)


def tree(root: str, folder: str) -> Part:
    """A folder and every folder below it."""
    return Part(root, (folder,), order.subtree(db_text(folder)[0]))


def folder_only(root: str, folder: str) -> Part:
    """One folder's own files, not the folders in it."""
    return Part(root, (folder,), (order.only(db_text(folder)[0]),), recursive=False)


def vanished(root: str, folder: str) -> Part:
    """A folder that is gone from disk, with all below it: its rows, and nothing to walk."""
    return Part(root, (), order.subtree(db_text(folder)[0]))


def merged(parts: list[Part]) -> list[Part]:
    """The parts of one root without overlaps, so each file is surveyed once: a tree (or
    a vanished folder, whose rows are all gone) covers every part at or below its
    folder; at one folder a tree goes first, then a folder's own files, then the folder
    vanished (a folder that is walked wins). Copies of a part count once.

    One sort and one pass: in the order of folders' names split at "/", every folder
    inside another comes right after it and the folders inside it, so one covering
    folder at a time is enough. (A storm of 20,000 places took 33 s with a pairwise
    test.)"""
    ordered = sorted(dict.fromkeys(parts), key=_by_place)
    kept: list[Part] = []
    cover = walked = None
    for part in ordered:
        place = _place(part)
        if cover is not None and order.within(place, cover) or not part.tops and place == walked:
            continue
        kept.append(part)
        if part.recursive:  # a tree, or a vanished folder: all below it is answered for
            cover = place
        if part.tops:
            walked = place
    return kept


def _place(part: Part) -> str:
    """The folder a part is about, as catalogue text."""
    return db_text(part.tops[0])[0] if part.tops else part.ranges[0][0]


def _by_place(part: Part) -> tuple:
    kind = 0 if part.recursive and part.tops else 1 if part.tops else 2
    return _place(part).split("/"), kind


def split(root: str, subfolders: list[str], parts: int) -> list[Part]:
    """The folders below a root in about `parts` parts (see `order.cuts`): their ranges
    cover all below the root, so rows of folders gone from disk fall in some part too."""
    by_text = {db_text(folder)[0]: folder for folder in subfolders}
    outer = order.below(db_text(root)[0])
    return [Part(root, tuple(by_text[text] for text in tops), (bounds,))
            for tops, bounds in order.cuts(by_text, outer, parts)]


class Survey:
    """Iterate to walk a part: (listing, plan) for each folder, in `dir` order.

    Afterwards `walk.complete` says whether it reached the end, `walk.unlisted`
    which folders could not be read, and `unvisited` the rows gone with the
    folders the walk never listed (deleted, or now ignored)."""

    def __init__(self, part: Part, settings: Settings, reader: catalog.Reader | None,
                 stop: threading.Event):
        self.part, self.settings, self.reader = part, settings, reader
        self.walk = Walk(part.root, part.tops, settings.kinds, settings.ignore,
                         settings.follow_symlinks, stop, recursive=part.recursive)
        self.unvisited: list[Gone] = []
        self.unsettled: dict[str, int] = {}  # folder -> the latest write (ns) of a file in it
        self.unsettled_files: set[tuple[int, int]] = set()  # their (device, inode)

    def __iter__(self) -> Iterator[tuple[Listing, FolderPlan]]:
        reader, settings = self.reader, self.settings
        rows = reader.rows_in(self.part.ranges) if reader else None
        plan_here = functools.partial(  # (the hot loop of a rescan: a call per folder)
            plan_folder, smart=settings.smart, tags=settings.tags,
            whole_row=reader.known if reader else _none, by_inode=self._twin if reader else _none)
        try:
            for listing in self.walk:
                folder_rows = rows.take(listing.text) if rows else {}
                unknown = [p.path for p in listing.problems]  # neither seen nor gone
                if settings.settled_before_ns:
                    unknown += self._leave_unsettled(listing)
                plan = plan_here(listing.files, folder_rows, unknown_paths=unknown)
                if plan.undecodable and self._one_per_text(listing, folder_rows):
                    plan = plan_here(listing.files, folder_rows, unknown_paths=unknown)
                yield listing, plan
            if self.walk.complete and rows:
                self.unvisited = outside(rows.finish(), self.walk.unlisted)
        finally:
            if rows:
                rows.close()

    def _one_per_text(self, listing: Listing, folder_rows: dict) -> bool:
        """Two names shown with the same catalogue text (a literal `\\xff` and the byte 0xFF)
        cannot both have a row: the one the row at that text is stays indexed (else the
        name that is valid UTF-8, else the first by its bytes); the other is recorded as
        a problem on every scan, so neither flips the row to and fro. True if there was
        such a pair (only a name holding a byte that is not UTF-8 can be one of them)."""
        by_text: dict[str, list[Seen]] = {}
        for seen in listing.files:
            by_text.setdefault(db_text(seen.path)[0], []).append(seen)
        clashes = {text: names for text, names in by_text.items() if len(names) > 1}
        if not clashes:
            return False
        losers = set()
        for text, names in clashes.items():
            row = folder_rows.get(text)
            owner = self.reader.known(row[7]).path_raw if row and self.reader else ...
            keep = min(names, key=lambda s: (db_text(s.path)[1] != owner,
                                             db_text(s.path)[1] is not None, os.fsencode(s.path)))
            losers.update(s.path for s in names if s is not keep)
        listing.files = [s for s in listing.files if s.path not in losers]
        listing.problems += [Problem(path, "walk", "another file's name is shown with the same "
                                     "text in the catalogue; not indexed (rename one of them)")
                             for path in sorted(losers)]
        return True

    def _twin(self, seen: Seen):
        return self.reader.row_by_inode(seen.device, seen.inode, seen.ctime_ns)

    def _leave_unsettled(self, listing: Listing) -> list[str]:
        """Take the files written to too recently out of the listing; their paths.

        A file renamed or moved whole is not being written: its ctime is new, but its
        mtime is old and a row elsewhere has its inode, size and mtime. It is taken
        now, so that a rename is one 'moved' change, not 'missing' then 'moved'."""
        limit, now, signals = (self.settings.settled_before_ns, self.settings.now_ns,
                               self.settings.signals)
        unsettled = [f for f in listing.files  # (a ctime before the window: settled, ask
                     if f.ctime_ns > limit  # nothing, the kernel least of all)
                     and still_written(f, limit, now, complete_since(signals, f.path, now, f.size,
                                                                     writers.unwritten))
                     and not self._moved_whole(f, limit)]
        if unsettled:
            left = {f.path for f in unsettled}
            listing.files = [f for f in listing.files if f.path not in left]
            self.unsettled[listing.dir] = max(f.ctime_ns for f in unsettled)
            self.unsettled_files.update((f.device, f.inode) for f in unsettled)
        return [f.path for f in unsettled]

    def _moved_whole(self, seen: Seen, limit: int) -> bool:
        if limit < seen.mtime_ns or self.reader is None:  # written to lately, by its mtime
            return False
        twin = self._twin(seen)
        return twin is not None and (twin.size, twin.mtime_ns) == (seen.size, seen.mtime_ns)


def outside(rows: list[Stored], unlisted: list[Problem]) -> list[Gone]:
    """Gone rows, except those in or below a folder that could not be listed."""
    unknown = [db_text(p.path)[0] for p in unlisted]
    return [Gone(row.id, row.path, row.device, row.inode) for row in rows
            if not any(order.within(row.dir, folder) for folder in unknown)]


def _none(*args: object) -> None:
    return None


class Surveyed(NamedTuple):
    """All a worker found in one part, in one answer."""

    tally: Tally
    problems: list[Problem]
    known: list[Hashed]
    retag: list[Hashed]
    to_hash: list[ToHash]
    gone: list[Gone]
    unlisted: list[Problem]
    complete: bool
    unsettled: dict[str, int]  # see Survey.unsettled: left for later, looked at again
    unsettled_files: set[tuple[int, int]]


def survey_part(job: tuple[Part, Settings]) -> Surveyed:
    """The worker's stage: survey one part with a read connection of its own."""
    part, settings = job
    conn = catalog.connect(Path(settings.db_path), readonly=True) if settings.db_path else None
    try:
        survey = Survey(part, settings, catalog.Reader(conn) if conn else None, threading.Event())
        found = unchanged = skipped = 0
        problems, known, retag, to_hash, gone = [], [], [], [], []
        for listing, plan in survey:
            found += len(listing.files)
            unchanged += plan.unchanged
            skipped += listing.skipped
            problems += listing.problems
            known += plan.known
            retag += plan.retag
            to_hash += plan.to_hash
            gone += plan.gone
        return Surveyed(Tally(found, unchanged, skipped), problems, known, retag, to_hash,
                        gone + survey.unvisited, survey.walk.unlisted, survey.walk.complete,
                        survey.unsettled, survey.unsettled_files)
    finally:
        if conn is not None:
            conn.close()
