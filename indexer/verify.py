"""Verify: compare the catalogue with the disk, and write nothing.

Each root is walked exactly as a scan walks it (the same `Walk`, kinds, ignore
patterns and symlink rule), folder by folder in catalogue order, and each
folder is compared with its present rows, read with one query. What differs
is a `Finding`, yielded as it is found:

    gone        a present row whose file no longer exists
    excluded    a present row whose file exists but is not one a scan indexes
                (ignored, a kind not configured, a symlink not followed, not a
                regular file): the next scan marks it missing
    unindexed   a media file a scan would index, with no present row at its path
    changed     size or mtime differ from the row's
    content     (with `read`) same size and mtime, but the bytes hash differently
    unreadable  a file that could not be stat'ed or read, with the reason

Rows of folders the walk never reached (a folder deleted whole) are found at
the end of each root by one streamed query over the root's `dir` ranges; only
the set of visited folders is kept in memory.

The guards are a scan's: a root that fails the health check, or in which the
walk finds no media file while the catalogue holds present rows for it (an
empty mount point), is a warning, never every file gone; the rows of a
folder that could not be listed are unknown, not gone.

With `read`, every file whose size and mtime agree is read again by a scan's
`Hasher` (under the same `scan.max_read_mib_s` cap) and its hash compared.

The catalogue is opened read-only and no file is created beside it (see
`ReadOnly`), so this works for a user who may only read the catalogue, and
while the service writes it.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import stat
import threading
import time
from collections.abc import Generator, Iterator
from pathlib import Path
from typing import NamedTuple
from urllib.parse import quote

from . import catalog
from .config import LibraryConfig
from .hashing import Hasher
from .kinds import kind_of
from .paths import db_text, os_path, printable
from .records import FileFailure, Hashed, Problem, Seen, ToHash, Unstable, describe
from .scan import nest_free
from .ignore import IGNORE_NAMES, explain
from .walk import Listing, RootUnusable, Walk, check_root

log = logging.getLogger(__name__)

KINDS = ("gone", "excluded", "unindexed", "changed", "content", "unreadable")


class Change(NamedTuple):
    """One figure that differs between the row and the file."""

    what: str  # "size", "mtime_ns" or "hash"
    old: int | str | None
    new: int | str | None


class Finding(NamedTuple):
    """One discrepancy. `path` is the catalogue's text form; `raw` the exact bytes
    when the name is not valid UTF-8."""

    kind: str  # one of KINDS
    path: str
    raw: bytes | None = None
    changes: tuple[Change, ...] = ()
    reason: str | None = None


class Summary(NamedTuple):
    counts: dict[str, int]  # every kind, 0 when it did not occur
    roots: tuple[str, ...]  # the roots verified
    warnings: dict[str, list[str]]  # root -> why it (or part of it) was not verified
    files: int  # media files on disk compared with their rows
    bytes_read: int
    cancelled: bool
    duration_s: float

    @property
    def status(self) -> str:
        if self.cancelled:
            return "cancelled"
        if not self.roots:
            return "unverified"
        return "differ" if any(self.counts.values()) else "agree"


class _Row(NamedTuple):
    path: str
    path_raw: bytes | None
    size: int
    mtime_ns: int
    hash: str | None


_FOLDER_ROWS = ("SELECT path, path_raw, size, mtime_ns, hash FROM files "
                "WHERE dir = ? AND status = 'present'")
_RANGE_ROWS = ("SELECT dir, path, path_raw, size, mtime_ns, hash FROM files "
               "WHERE status = 'present' AND dir >= ? AND dir < ?")


class ReadOnly:
    """The catalogue opened so that reading it creates and changes no file beside it.

    A read-only SQLite connection to a WAL database creates the -wal and -shm
    files when they are missing and it may (left behind, owned by whoever ran
    verify: a root-owned -shm locks the service's own user out of its
    catalogue), and fails when it may not ("attempt to write a readonly
    database": a user who may only read). Writers leave them in place when they
    close (catalog.close_keeping_wal), so they are missing only beside a
    catalogue that no writer has opened since an older indexer or another
    program closed it: then the file alone is read, as immutable: no lock, no
    -wal, no -shm. Should a writer start meanwhile and checkpoint into
    the file, what was read may not hold together: `changed()` tells.
    """

    def __init__(self, path: Path):
        self.path = path
        beside = [path.with_name(path.name + suffix) for suffix in ("-wal", "-shm")]
        if all(p.exists() for p in beside):  # a writer has it open: read beside it
            self._stamp, self.conn = None, catalog.connect(path, readonly=True)
        else:
            self._stamp = _stamp(path)
            self.conn = _connect_immutable(path)
        try:
            self.conn.execute("SELECT count(*) FROM files").fetchone()
        except sqlite3.Error as error:
            self.conn.close()
            raise catalog.CatalogError(f"cannot read the catalogue {path}: {error}") from None

    def changed(self) -> bool:
        """Whether the file read as immutable was written since it was opened."""
        return self._stamp is not None and _stamp(self.path) != self._stamp

    def close(self) -> None:
        self.conn.close()


def _connect_immutable(path: Path) -> sqlite3.Connection:
    log.debug("no writer has %s open: reading the file alone, as immutable", path)
    try:
        return sqlite3.connect(f"file:{quote(str(path.absolute()))}?mode=ro&immutable=1",
                               uri=True, isolation_level=None, check_same_thread=False)
    except sqlite3.Error as error:
        raise catalog.CatalogError(f"cannot read the catalogue {path}: {error}") from None


def _stamp(path: Path) -> tuple[int, int, int]:
    try:
        info = path.stat()
    except FileNotFoundError:
        raise catalog.CatalogError(f"no catalogue at {path} yet: run `indexer scan` first") \
            from None
    return info.st_ino, info.st_size, info.st_mtime_ns


def catalogue_roots(conn: sqlite3.Connection) -> list[str]:
    """The roots the catalogue holds files for, when none are given or configured."""
    return [root for (root,) in conn.execute("SELECT DISTINCT root FROM files ORDER BY root")]


class Verify:
    """A comparison of some roots with the catalogue: iterate it for the findings, then
    `summary()`. `stop` (set it from a signal handler or another thread) ends it early."""

    def __init__(self, db_path: Path, roots: list[str], library: LibraryConfig, *,
                 read: bool = False, buffer_kib: int = 1024, max_read_mib_s: float = 0,
                 stop: threading.Event | None = None):
        """`roots`: the folders to verify; none: every root the catalogue holds files for."""
        self.catalogue = ReadOnly(db_path)
        self.conn, self.library, self.read = self.catalogue.conn, library, read
        roots = roots or catalogue_roots(self.conn)
        self.roots = nest_free([os.path.abspath(root) for root in roots])
        self.stop = stop or threading.Event()
        self.hasher = Hasher(buffer_kib, follow_symlinks=library.follow_symlinks,
                             max_read_mib_s=max_read_mib_s, stop=self.stop)
        self._root_now = ""  # the root being verified, and the ignore rules read in it
        self._rules: dict = {}
        self.counts = dict.fromkeys(KINDS, 0)
        self.verified: list[str] = []
        self.warnings: dict[str, list[str]] = {}
        self.files = self.bytes_read = 0
        self._started = time.monotonic()

    def __iter__(self) -> Iterator[Finding]:
        try:
            for root in self.roots:
                if self.stop.is_set():
                    break
                for finding in self._root(root):
                    self.counts[finding.kind] += 1
                    yield finding
        finally:
            self.catalogue.close()
        if self.catalogue.changed():
            self.verified.clear()
            self._warn(str(self.catalogue.path), "the catalogue was written while verify read "
                       "it (the service started?): verify again")

    def summary(self) -> Summary:
        return Summary(dict(self.counts), tuple(self.verified), self.warnings, self.files,
                       self.bytes_read, self.stop.is_set(), time.monotonic() - self._started)

    def _root(self, root: str) -> Iterator[Finding]:
        self._root_now, self._rules = root, {}
        try:
            check_root(root)
        except RootUnusable as problem:
            self._warn(root, f"{problem}: offline, not verified")
            return
        walk = Walk(root, (root,), self.library.kinds, self.library.ignore,
                    self.library.follow_symlinks, stop=self.stop)
        visited: set[str] = set()
        held: list[Finding] = []
        found = yield from self._walked(walk, visited, held)
        if self.stop.is_set() or not walk.complete:
            return
        unlisted = self._unlisted(root, walk.unlisted)
        if not found and self._looks_unmounted(root):
            return
        self.verified.append(root)
        yield from held
        yield from self._unvisited(root, visited, unlisted)

    def _walked(self, walk: Walk, visited: set[str], held: list[Finding]
                ) -> Generator[Finding, None, int]:
        """The findings of every folder the walk lists; returns how many media files it
        found. Gone rows wait in `held` until it finds one: a root with none looks
        unmounted, and then none of them is gone."""
        found = 0
        for listing in walk:
            visited.add(listing.text)
            found += len(listing.files)
            if found and held:
                yield from held
                held.clear()
            for finding in self._folder(listing):
                if finding.kind == "gone" and not found:
                    held.append(finding)
                else:
                    yield finding
            if self.stop.is_set():
                break
        return found

    def _unlisted(self, root: str, problems: list[Problem]) -> list[str]:
        """Folders the walk could not list (it has logged them): their rows are unknown."""
        for problem in problems:
            self.warnings.setdefault(root, []).append(
                f"cannot list folder {printable(problem.path)}: {problem.error}: "
                "its files were not verified")
        return [db_text(problem.path)[0] for problem in problems]

    def _looks_unmounted(self, root: str) -> bool:
        """No media file under a root the catalogue holds files for: a scan's guard."""
        present = catalog.Reader(self.conn).present_count_under(db_text(root)[0])
        if present:
            self._warn(root, f"root {printable(root)} has no media files but the catalogue "
                       f"holds {present} for it (not mounted?): offline, not verified")
        return bool(present)

    def _folder(self, listing: Listing) -> Iterator[Finding]:
        """Compare one folder of the walk with its present rows."""
        rows = {row.path: row for row in map(_Row._make, self.conn.execute(
            _FOLDER_ROWS, (listing.text,)).fetchall())}
        for problem in listing.problems:  # could not even be stat'ed: neither seen nor gone
            text, raw = db_text(problem.path)
            rows.pop(text, None)
            yield Finding("unreadable", text, raw, reason=problem.error)
        for seen in listing.files:
            self.files += 1
            text, raw = db_text(seen.path)
            row = rows.pop(text, None)
            if row is None:
                yield Finding("unindexed", text, raw)
            elif changes := _stat_changes(seen, row):
                yield Finding("changed", text, raw, changes)
            elif self.read:
                finding = self._read(seen, row, text, raw)
                if self.stop.is_set():
                    return
                if finding is not None:
                    yield finding
        for row in rows.values():  # present rows the walk did not see here
            yield self._unmatched(row)

    def _read(self, seen: Seen, row: _Row, text: str, raw: bytes | None) -> Finding | None:
        """Hash a file whose size and mtime agree with its row; a finding if it differs."""
        result = self.hasher(ToHash(seen))
        if isinstance(result, Hashed):
            self.bytes_read += result.bytes_read
            if changes := _stat_changes(result.seen, row):  # changed since the walk saw it
                return Finding("changed", text, raw, changes)
            if row.hash is not None and result.hash != row.hash:
                return Finding("content", text, raw, (Change("hash", row.hash, result.hash),))
            return None
        if isinstance(result, FileFailure):
            if result.vanished:
                return Finding("gone", text, raw)
            return Finding("unreadable", text, raw, reason=result.error)
        if isinstance(result, Unstable):
            self.bytes_read += result.bytes_read
            return Finding("unreadable", text, raw,
                           reason="it changed while it was read (being written?): verify again")
        return None  # stopped while reading

    def _unmatched(self, row: _Row) -> Finding:
        """A present row the walk did not find: gone, or there but not one a scan indexes."""
        path = os_path(row.path, row.path_raw)
        try:
            info = os.lstat(path)
        except (FileNotFoundError, NotADirectoryError):
            return Finding("gone", row.path, row.path_raw)
        except OSError as error:
            return Finding("unreadable", row.path, row.path_raw,
                           reason=describe(error))
        return Finding("excluded", row.path, row.path_raw, reason=self._why_excluded(path, info))

    def _why_excluded(self, path: str, info: os.stat_result) -> str:
        if stat.S_ISLNK(info.st_mode) and not self.library.follow_symlinks:
            return "now a symbolic link, not followed (library.follow_symlinks)"
        if not stat.S_ISLNK(info.st_mode) and not stat.S_ISREG(info.st_mode):
            return "not a regular file any more"
        name = os.path.basename(path)
        if name in IGNORE_NAMES:
            return "an ignore file: read for its rules, never indexed"
        try:
            verdict = explain(self._root_now, self.library.ignore, path, False, self._rules)
        except OSError as error:
            return f"what is ignored there is unknown: {describe(error)}"
        if verdict.ignored:
            return str(verdict)
        if kind_of(name) not in self.library.kinds:
            return f"its kind ({kind_of(name)}) is not in library.kinds"
        return "in a folder a scan does not enter (a symbolic link, not followed)"

    def _unvisited(self, root: str, visited: set[str], unlisted: list[str]) -> Iterator[Finding]:
        """Present rows of the root's folders the walk never listed, streamed."""
        top = db_text(root)[0]
        prefixes = tuple(u.rstrip("/") + "/" for u in unlisted)
        for bounds in (catalog.only(top), catalog.below(top)):
            cursor = self.conn.execute(_RANGE_ROWS, bounds)
            try:
                for folder, *values in cursor:
                    if self.stop.is_set():
                        return
                    if folder in visited or folder in unlisted or folder.startswith(prefixes):
                        continue
                    yield self._unmatched(_Row(*values))
            finally:
                cursor.close()  # an open read would hold back the writer's checkpoints

    def _warn(self, root: str, text: str) -> None:
        log.warning("%s", text)
        self.warnings.setdefault(root, []).append(text)


def _stat_changes(seen: Seen, row: _Row) -> tuple[Change, ...]:
    """The stat figures that differ between a file and its row: size, then mtime."""
    changes = []
    if seen.size != row.size:
        changes.append(Change("size", row.size, seen.size))
    if seen.mtime_ns != row.mtime_ns:
        changes.append(Change("mtime_ns", row.mtime_ns, seen.mtime_ns))
    return tuple(changes)
