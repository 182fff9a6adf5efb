"""Identity: which catalogue row a file on disk is. One pure function, `match`, decides.

A scan holds back every file whose row it cannot tell from its path alone:
a file at a path without a row, or at a path whose row had another inode
(the writer's "held" files, see `pending`). When the walks are done, `match`
pairs these files (`Arrival`) with the rows they may be (`Candidate`), by
these rules, in this order (docs/identity.md says the same for media servers):

1. **The same file by its inode.** A vacated row with the same device and
   inode, if the file is provably the one the row saw: its ctime equals the
   row's (nothing happened to it since), or it was born (statx birth time)
   no later than the row's ctime. A file born after the row last saw its
   inode's file is another file that reused the inode number. Where the file
   system keeps no birth time, the same content is required.
2. **The same place.** A file at the path of a row that rule 1 gave to no
   other file is that row's file: edited, replaced atomically, restored.
3. **The same content.** A file still without a row takes a vacated row with
   the same size and hash: copied, then its original deleted. Among identical
   files, a row with the same name goes first, then the same folder, then
   path order, so the outcome never depends on the order of the walk.
4. Otherwise it is a new file.

Rule 1 asks for the device number too, which a disk can change between two
mounts: a scan first looks whether a root's disk is back under another number
(`device_now`), and gives its rows the new one.

A row is vacated when its place no longer holds its file: it is missing, or
the scan found it gone, or another file now stands at its path, or its path
is gone under a root this scan found mounted. Never matched: a present row of
a root the scan did not find mounted (offline), a row whose file is still
where it was. A row at the path of a file that rule 1 or 3 gave another row,
and that no file took, is displaced: its file was overwritten or deleted, and
the path now names another file (the writer marks it missing, then purges
it, so that path stays unique).
"""

from __future__ import annotations

import os
from collections import defaultdict
from collections.abc import Callable, Iterable
from typing import NamedTuple

from .records import Known, Seen


def in_question(seen: Seen, row: Known | None,
                born: Callable[[], int | None] = lambda: None) -> bool:
    """Whether a file's row cannot be told from its path alone (rule 1 comes before
    rule 2): it has none, or the row at its path saw another inode, or the same inode
    number but the file was born (`born()`, asked only then) after the row last saw it:
    the number was freed and given to a new file, perhaps one renamed here since."""
    if row is None or row.inode != seen.inode:
        return True
    if row.ctime_ns is None or seen.ctime_ns == row.ctime_ns:
        return False
    birth = born()
    return birth is not None and birth > row.ctime_ns


class Arrival(NamedTuple):
    """A file whose row is in question; `path_row` is the id of the row at its path."""

    path: str  # catalogue text
    device: int
    inode: int
    size: int
    hash: str
    ctime_ns: int
    btime_ns: int | None  # None: the file system does not say (or the file went)
    path_row: int | None = None


class Candidate(NamedTuple):
    """A row an arrival may be: found by device and inode, or by size and hash."""

    id: int
    path: str
    device: int
    inode: int
    size: int
    hash: str | None
    ctime_ns: int | None  # None: not recorded (a row from schema 2)
    vacated: bool


class Verdict(NamedTuple):
    rows: dict[int, int]  # arrival index -> the row it is; absent: a new file
    displaced: list[int]  # rows whose path another file took, and that no file is


def match(arrivals: list[Arrival], candidates: Iterable[Candidate]) -> Verdict:
    """Pair arrivals with rows by the module's rules; each row at most once."""
    usable = {c.id: c for c in candidates if c.vacated}
    rows: dict[int, int] = {}
    taken: set[int] = set()

    def assign(pairs: list[tuple]) -> None:
        for *_, index, row_id in sorted(pairs):
            if index not in rows and row_id not in taken:
                rows[index] = row_id
                taken.add(row_id)

    assign(_by_inode(arrivals, usable.values()))
    for index, arrival in enumerate(arrivals):  # rule 2: the same place
        if index not in rows and arrival.path_row is not None and arrival.path_row not in taken:
            rows[index] = arrival.path_row
            taken.add(arrival.path_row)
    assign(_by_content(arrivals, [c for c in usable.values() if c.id not in taken], rows))
    displaced = sorted({a.path_row for a in arrivals
                        if a.path_row is not None and a.path_row not in taken})
    return Verdict(rows, displaced)


def same_file(arrival: Arrival, row: Candidate) -> int | None:
    """How sure it is that a file with the row's device and inode is the row's file:
    0 (its ctime is the row's), 1 (born before the row's ctime), 2 (same content, no
    birth time to tell), or None (another file that reused the inode number)."""
    if row.ctime_ns is not None and arrival.ctime_ns == row.ctime_ns:
        return 0
    if arrival.btime_ns is not None and row.ctime_ns is not None:
        return 1 if arrival.btime_ns <= row.ctime_ns else None
    return 2 if arrival.hash == row.hash else None


def device_now(row: Candidate, st_dev: int, st_ino: int, st_size: int,
               st_ctime_ns: int) -> int | None:
    """The device number the row's file has now, if the file at the row's path (its
    lstat: `st_*`) is the row's file, untouched, on a disk back under another number (an
    image mounted again on another loop device, a USB disk plugged in again, a network
    file system mounted again): the same inode, size and ctime, to the nanosecond (no
    program can set a ctime). None: the same number, or no such proof.
    Rule 1 knows files by device and inode: without this, a file moved and edited while
    its disk was away would be a new file when the disk is back."""
    if st_dev == row.device or row.ctime_ns is None:
        return None
    same = (st_ino, st_size, st_ctime_ns) == (row.inode, row.size, row.ctime_ns)
    return st_dev if same else None


def _by_inode(arrivals: list[Arrival], rows: Iterable[Candidate]) -> list[tuple]:
    by_inode: dict[tuple[int, int], list[Candidate]] = defaultdict(list)
    for row in rows:
        by_inode[row.device, row.inode].append(row)
    pairs = []
    for index, arrival in enumerate(arrivals):
        for row in by_inode.get((arrival.device, arrival.inode), ()):
            sure = same_file(arrival, row)
            if sure is not None and row.id != arrival.path_row:
                pairs.append((sure, _likeness(arrival, row), -(row.ctime_ns or 0), row.path,
                              arrival.path, index, row.id))
    return pairs


def _by_content(arrivals: list[Arrival], rows: list[Candidate], matched: dict) -> list[tuple]:
    by_content: dict[tuple[int, str], list[Candidate]] = defaultdict(list)
    for row in rows:
        if row.hash is not None:
            by_content[row.size, row.hash].append(row)
    return [(_likeness(arrival, row), row.path, arrival.path, index, row.id)
            for index, arrival in enumerate(arrivals) if index not in matched
            for row in by_content.get((arrival.size, arrival.hash), ())]


def _likeness(arrival: Arrival, row: Candidate) -> int:
    """0: the same name; 1: the same folder; 2: neither."""
    if os.path.basename(arrival.path) == os.path.basename(row.path):
        return 0
    return 1 if os.path.dirname(arrival.path) == os.path.dirname(row.path) else 2
