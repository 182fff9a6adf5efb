"""Smart hashing: the cheap "did it change?" check, and reading a file into its hash.

`plan_folder` is pure: it compares what the walk saw in one folder with the
catalogue's rows for that folder and says which files must be read. Only then
does `Hasher` open a file, and it trusts what it read only if the file held
still: size, mtime and ctime are the same after the last byte as before the
first, otherwise the result is `Unstable` and nothing is recorded.

xxh3-128 is the hash (about 8 GB/s on one core here). Buffers come from
`mmap`, page-aligned: an unaligned `bytearray` hashed about 4x slower, and
python-xxhash releases the GIL only for chunks over 64 KiB, so the buffer is
at least that (1 MiB by default; see docs/benchmarks.md).
"""

from __future__ import annotations

import mmap
import os
import stat
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import xxhash

from .kinds import is_cover, taggable
from .paths import db_text
from .records import (FileFailure, Gone, Hashed, HashResult, Known, Seen, Stored, ToHash,
                      Unstable, describe)


def needs_reading(seen: Seen, row: Known) -> bool:
    """Whether a file's content may differ from its row's hash (the smart-hash rule).

    The ctime counts too: a tagger that keeps the mtime ("preserve timestamps",
    `touch -r`) still changes the ctime, which no program can set. So do a
    rename, a chmod and a new hard link: those files are read again (restic
    decides the same way). A file renamed with its folder keeps its ctime."""
    return (
        row.hash is None
        or row.has_error
        or seen.size != row.size
        or seen.mtime_ns != row.mtime_ns
        or seen.inode != row.inode
        or row.ctime_ns is not None and seen.ctime_ns != row.ctime_ns
    )


@dataclass(slots=True)
class FolderPlan:
    unchanged: int = 0
    to_hash: list[ToHash] = field(default_factory=list)
    known: list[Hashed] = field(default_factory=list)  # content known without reading
    gone: list[Gone] = field(default_factory=list)
    retag: list[Hashed] = field(default_factory=list)  # unchanged, but tags never read
    undecodable: bool = False  # a path holds bytes that are not UTF-8 (see survey.py)


def plan_folder(
    files: Iterable[Seen],
    rows: dict[str, Stored],
    *,
    smart: bool = True,
    tags: bool = False,
    unknown_paths: Iterable[str] = (),
    whole_row: Callable[[int], Known] = lambda row_id: None,
    by_inode: Callable[[Seen], Known | None] = lambda seen: None,
) -> FolderPlan:
    """Decide, for one folder, what must be read, written, or called gone.

    `rows` are the catalogue rows of the folder by path text; `whole_row`
    reads a row in full, needed only for files that are not unchanged.
    `unknown_paths` are entries the walk could not stat: neither seen nor
    gone. `by_inode` finds a row elsewhere with the same device and inode: a
    file renamed with its size and mtime intact keeps its hash without a read.
    With `tags`, an unchanged file whose tags were never read is in `retag`.
    """
    plan = FolderPlan()
    rows = dict(rows)  # what is left at the end was not seen
    for path in unknown_paths:
        rows.pop(db_text(path)[0], None)
    for seen in files:
        if seen.path.isascii():
            text = seen.path
        else:
            text, raw = db_text(seen.path)
            plan.undecodable = plan.undecodable or raw is not None
        row = rows.pop(text, None)
        if row is None:
            _plan_new(plan, seen, by_inode(seen), smart)
        elif smart and row[6] and row[1:6] == seen[2:7]:  # Stored.ready; the stat figures
            plan.unchanged += 1
            if tags and not row[10] and wants_tags(seen):  # Stored.tags_done
                known = whole_row(row[7])
                plan.retag.append(Hashed(seen, known.hash, known))
        else:
            _plan_known(plan, seen, whole_row(Stored._make(row).id), smart)
    plan.gone = [Gone(row.id, row.path, row.device, row.inode)
                 for row in map(Stored._make, rows.values()) if row.present]
    return plan


def wants_tags(seen: Seen) -> bool:
    return taggable(seen.kind, seen.path) or is_cover(seen.kind, seen.path)


def _plan_known(plan: FolderPlan, seen: Seen, row: Known, smart: bool) -> None:
    if not smart or needs_reading(seen, row):
        plan.to_hash.append(ToHash(seen, row))
    elif row.status == "missing" or seen.device != row.device or row.ctime_ns is None:
        plan.known.append(Hashed(seen, row.hash, row))  # restored, remounted, or no ctime yet
    else:
        plan.unchanged += 1


def _plan_new(plan: FolderPlan, seen: Seen, twin: Known | None, smart: bool) -> None:
    """A path without a row: a file moved here with its stat figures intact (the same
    inode, size, mtime and ctime as a row elsewhere: nothing touched it, so its
    content is the row's) needs no read; which row it is, the writer decides."""
    if (smart and twin is not None and twin.hash and twin.ctime_ns == seen.ctime_ns
            and (twin.size, twin.mtime_ns) == (seen.size, seen.mtime_ns)):
        plan.known.append(Hashed(seen, twin.hash, hold=True))
    else:
        plan.to_hash.append(ToHash(seen))


class RateLimit:
    """A shared cap on bytes read per second, so a scan cannot hog the disk."""

    def __init__(self, bytes_per_s: float):
        self.rate = bytes_per_s
        self._lock = threading.Lock()
        self._next = time.monotonic()

    def take(self, n: int, stop: threading.Event) -> None:
        with self._lock:
            now = time.monotonic()
            start = max(self._next, now)
            self._next = start + n / self.rate
        wait = start - now
        while wait > 0 and not stop.is_set():  # sleep in slices: a stop must not wait
            stop.wait(min(wait, 0.1))
            wait = start - time.monotonic()


_OPEN_FLAGS = os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC  # O_NONBLOCK: a FIFO never hangs an open


class Hasher:
    """The hashing stage: `hasher(item)` reads one file; thread-safe, one buffer per thread."""

    def __init__(self, buffer_kib: int = 1024, *, follow_symlinks: bool = False,
                 max_read_mib_s: float = 0, stop: threading.Event | None = None):
        self.buffer_size = buffer_kib * 1024
        self.flags = _OPEN_FLAGS | (0 if follow_symlinks else os.O_NOFOLLOW)
        self.limit = RateLimit(max_read_mib_s * 1024 * 1024) if max_read_mib_s else None
        self.stop = stop or threading.Event()
        self._local = threading.local()

    def _buffer(self) -> mmap.mmap:
        buffer = getattr(self._local, "buffer", None)
        if buffer is None:
            buffer = self._local.buffer = mmap.mmap(-1, self.buffer_size)
        return buffer

    def __call__(self, item: ToHash) -> HashResult | None:
        """Hash one file; None when the scan was stopped while reading it."""
        seen = item.seen
        try:
            fd = _open(seen.path, self.flags)
        except FileNotFoundError:
            return FileFailure(seen, "vanished before it could be read", item.row, vanished=True)
        except OSError as error:
            return FileFailure(seen, describe(error), item.row)
        try:
            return self._read(fd, item)
        except OSError as error:
            return FileFailure(seen, describe(error), item.row)
        finally:
            os.close(fd)

    def _read(self, fd: int, item: ToHash) -> HashResult | None:
        before = os.fstat(fd)
        if not stat.S_ISREG(before.st_mode):
            return FileFailure(item.seen, "not a regular file any more", item.row)
        seen = _restat(item.seen, before)
        digest, total = xxhash.xxh3_128(), 0
        buffer = self._buffer()
        view = memoryview(buffer)
        try:
            while n := os.readv(fd, (buffer,)):
                digest.update(view[:n])
                total += n
                if self.limit:
                    self.limit.take(n, self.stop)
                if self.stop.is_set():
                    return None
        finally:
            view.release()
        after = os.fstat(fd)
        if total != before.st_size or _moment(after) != _moment(before):
            return Unstable(ToHash(seen, item.row), total)
        return Hashed(seen, digest.hexdigest(), item.row, bytes_read=total)


def _open(path: str, flags: int) -> int:
    try:
        return os.open(path, flags | os.O_NOATIME)  # reading must not even touch atime
    except PermissionError:  # O_NOATIME is only for the file's owner
        return os.open(path, flags)


def _moment(info: os.stat_result) -> tuple[int, int, int]:
    return info.st_size, info.st_mtime_ns, info.st_ctime_ns


def _restat(seen: Seen, info: os.stat_result) -> Seen:
    """The walk's figures, replaced by the open file's if it changed in between."""
    if (seen.size, seen.mtime_ns, seen.inode, seen.ctime_ns) == (
            info.st_size, info.st_mtime_ns, info.st_ino, info.st_ctime_ns):
        return seen
    return seen._replace(size=info.st_size, mtime_ns=info.st_mtime_ns, inode=info.st_ino,
                         device=info.st_dev, ctime_ns=info.st_ctime_ns)
