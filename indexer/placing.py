"""Placing held files: the catalogue's side of identity.py, for the writer.

At the end of a scan the writer has the files it held back (their row was in
question) and the rows the walks found gone. Here it gathers the rows those
files may be (`gather`), with whether each row's place is vacated, lets
`identity.match` decide, and orders the path changes so that no two rows
ever hold one path (`move_order`: files that swapped names go through a
'moving:' path, which the feed's trigger knows).
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterable
from typing import NamedTuple

from .birth import birth_ns
from .identity import Arrival, Candidate
from .order import within
from .paths import db_text, os_path
from .records import Hashed, Known, Seen

_COLUMNS = ("id, path, path_raw, root, device, inode, size, hash, ctime_ns, status, tags_hash, "
            "mtime_ns, error IS NOT NULL")
_BY_INODE = f"SELECT {_COLUMNS} FROM files WHERE device = ? AND inode = ?"
_BY_CONTENT = f"SELECT {_COLUMNS} FROM files WHERE hash = ? AND size = ?"
_BY_ID = f"SELECT {_COLUMNS} FROM files WHERE id = ?"
MOVING = "moving:"  # see the trigger files_changed in schema.py


class Row(NamedTuple):
    id: int
    path: str
    path_raw: bytes | None
    root: str
    device: int
    inode: int
    size: int
    hash: str | None
    ctime_ns: int | None
    status: str
    tags_hash: str | None
    mtime_ns: int
    has_error: bool

    def known(self) -> Known:
        ready = self.hash is not None and not self.has_error and self.status == "present"
        return Known(self.path, self.size, self.mtime_ns, self.inode, self.device, ready, self.id,
                     self.hash, self.status, self.has_error, self.tags_hash, self.ctime_ns)


class Gathered(NamedTuple):
    arrivals: list[Arrival]
    candidates: list[Candidate]
    rows: dict[int, Row]  # every row named above, by id
    placed: list[Hashed]  # the held files the arrivals are, in their order
    unmounted: list[Hashed]  # held files of roots the scan did not find mounted: left out


def gather(conn: sqlite3.Connection, held: list[Hashed], gone: Iterable[int],
           roots: Iterable[str]) -> Gathered:
    """The held files as arrivals, and every row any of them may be. A held file whose
    path no longer holds it (renamed again since it was seen: a scan can even see one file
    at two paths) is left out, neither placed nor taken for a new file: the scan of where
    it went places it, with its own row. So is a held file under a root that the scan did
    not find mounted (`roots`): none of that root's rows is vacated, so which row the file
    is cannot be told, even if its disk is back by now (unmounted as the walks ended, and
    mounted again before the writer got here); the scan of the root once back places it."""
    rows: dict[int, Row] = {}
    by_content: dict[tuple[str, int], list[Row]] = {}
    path_rows = {item.row.id for item in held if item.row is not None}
    gone, roots = set(gone), tuple(roots)
    arrivals, placed, unmounted = [], [], []
    for item in held:
        seen = item.seen
        if not any(within(seen.root, root) for root in roots):
            unmounted.append(item)
            continue
        if not _still_at(seen):
            continue
        twins = _fetch(conn, _BY_INODE, (seen.device, seen.inode))
        key = (item.hash, seen.size)
        if key not in by_content:
            by_content[key] = _fetch(conn, _BY_CONTENT, key)
        own = _fetch(conn, _BY_ID, (item.row.id,)) if item.row is not None else []
        rows.update((row.id, row) for row in twins + by_content[key] + own)
        others = [t for t in twins if t.id not in (item.row.id if item.row else None,)]
        born = birth_ns(seen.path, seen.inode) if any(
            t.ctime_ns != seen.ctime_ns for t in others) else None
        arrivals.append(Arrival(db_text(seen.path)[0], seen.device, seen.inode, seen.size,
                                item.hash, seen.ctime_ns, born,
                                item.row.id if item.row is not None else None))
        placed.append(item)
    candidates = [_candidate(row, row.id in gone or row.id in path_rows or _vanished(row, roots))
                  for row in rows.values()]
    return Gathered(arrivals, candidates, rows, placed, unmounted)


def _still_at(seen: Seen) -> bool:
    try:
        info = os.lstat(seen.path)
    except OSError:
        return False
    return (info.st_dev, info.st_ino) == (seen.device, seen.inode)


def _fetch(conn: sqlite3.Connection, sql: str, params: tuple) -> list[Row]:
    return [Row._make(found) for found in conn.execute(sql, params)]


def _candidate(row: Row, vacated: bool) -> Candidate:
    return Candidate(row.id, row.path, row.device, row.inode, row.size, row.hash, row.ctime_ns,
                     vacated or row.status == "missing")


def _vanished(row: Row, roots: tuple[str, ...]) -> bool:
    """A present row outside what the scan walked, whose path is gone, under a root the
    scan found mounted (under an unmounted root every path is gone: proof of nothing)."""
    return (row.status == "present" and any(within(row.root, root) for root in roots)
            and not os.path.lexists(os_path(row.path, row.path_raw)))


def move_order(moves: dict[int, tuple[str, str]]) -> list[tuple[int, str]]:
    """The steps (row id, path to give it) that take each row from its path to its
    target (`moves`: id -> (from, to)) without two rows holding one path at any step.

    A row waits while its target is held by a row still to move; rows that only
    wait on each other (a cycle: files that swapped names) are broken by giving one
    of them `MOVING` + its path first. Paths of rows not in `moves` are taken to be
    free (the caller has moved or removed whatever held them)."""
    holder = {source: row_id for row_id, (source, _) in moves.items()}
    where = {row_id: source for row_id, (source, _) in moves.items()}
    waiting = {row_id: target for row_id, (source, target) in moves.items() if source != target}
    steps: list[tuple[int, str]] = []
    while waiting:
        ready = [row_id for row_id, target in sorted(waiting.items())
                 if holder.get(target, row_id) == row_id]
        if not ready:  # only rows waiting on each other: files that swapped names
            row_id = min(waiting)
            _step(steps, holder, where, row_id, MOVING + where[row_id])
            continue
        for row_id in ready:
            _step(steps, holder, where, row_id, waiting.pop(row_id))
    return steps


def _step(steps: list, holder: dict, where: dict, row_id: int, path: str) -> None:
    holder.pop(where[row_id], None)
    holder[path] = row_id
    where[row_id] = path
    steps.append((row_id, path))
