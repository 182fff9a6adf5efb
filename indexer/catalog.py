"""The SQLite catalogue: opening it, the single-writer lock, and the reads scans need.

Every connection runs in WAL mode with a busy timeout, so a media server can
read while we write. Only one process writes: `open_for_writing` takes an
exclusive lock on `<db>.lock` (released by the kernel even after SIGKILL), and
any job its predecessor left "running" is marked "interrupted". Within that
process one thread owns the write connection (see writer.py); readers open
their own connections.

The `-wal` and `-shm` files stay beside the catalogue for good (see
`close_keeping_wal`): a reader who may not write in the catalogue's folder (a
media server in the service's group) can open it read-only only while they
exist, and SQLite deletes them when the last connection closes.
"""

from __future__ import annotations

import fcntl
import logging
import time
import itertools
import json
import operator
import os
import sqlite3
import threading
from collections.abc import Callable, Iterator
from typing import TypeVar
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path

from . import schema
from .ownership import group_name, owner_name, user_name
from .order import below, only
from .records import Known, Stored

BUSY_TIMEOUT_S = 10.0
log = logging.getLogger(__name__)
T = TypeVar("T")


def retrying(call: Callable[[], T], *, stop: threading.Event | None = None,
             give_up_after: float = 600.0) -> T:
    """`call()`, again and again while another process holds the catalogue's write lock
    for longer than the busy timeout: waits that double up to 30 s, said once in the log.
    A batch is never dropped for it; after `give_up_after` seconds the error stands."""
    delay, waited, told = 0.25, 0.0, False
    while True:
        try:
            return call()
        except sqlite3.OperationalError as error:
            if "locked" not in str(error) and "busy" not in str(error) or waited >= give_up_after:
                raise
            if not told:
                log.warning("the catalogue is locked by another process: waiting for it "
                            "(up to %g s)", give_up_after)
                told = True
        if stop is not None and stop.wait(delay):
            raise sqlite3.OperationalError("stopped while the catalogue was locked")
        if stop is None:
            time.sleep(delay)
        waited += delay
        delay = min(delay * 2, 30.0)


def free_bytes(folder: Path | str) -> int:
    """Bytes free for us on the file system holding `folder` (0 if it cannot be told)."""
    try:
        info = os.statvfs(folder)
    except OSError:
        return 0
    return info.f_bavail * info.f_frsize


class CatalogError(RuntimeError):
    """A fatal problem with the catalogue file; the message names the path."""


class CatalogBusy(CatalogError):
    """Another process holds the writer lock."""


def utc_now() -> str:
    """The one timestamp form of the catalogue: ISO 8601 UTC, milliseconds, 'Z'."""
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def connect(path: Path, *, synchronous: str = "full", readonly: bool = False,
            busy_timeout_s: float = BUSY_TIMEOUT_S) -> sqlite3.Connection:
    """A connection in autocommit mode: callers open transactions explicitly."""
    if os.path.isdir(path):
        raise CatalogError(f"{path} is a folder, not a catalogue: give the catalogue's file, "
                           f"e.g. --db {path / 'library.db'}")
    if readonly:
        if not _exists(path):
            raise CatalogError(f"no catalogue at {path} yet: run `indexer scan` first")
        _refuse_if_unreadable(path)
        uri = f"file:{_quote_uri(path)}?mode=ro"
        conn = sqlite3.connect(uri, uri=True, isolation_level=None,
                               timeout=busy_timeout_s, check_same_thread=False)
        try:
            conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
        except sqlite3.DatabaseError as error:
            conn.close()
            raise CatalogError(f"cannot read the catalogue {path}: {error}" + (
                " (is it indexer's catalogue?)" if "not a database" in str(error) else
                f"; this user ({user_name()}) must read it and its -wal and -shm beside it: "
                "`indexer doctor` shows which it may not")) from None
    else:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(path, isolation_level=None, timeout=busy_timeout_s,
                                   check_same_thread=False)
            conn.execute("PRAGMA journal_mode = WAL")
        except (OSError, sqlite3.Error) as error:
            raise CatalogError(f"cannot open the catalogue {path}: {error}") from None
    try:
        return _configure(conn, synchronous, busy_timeout_s)
    except sqlite3.Error as error:
        conn.close()
        raise CatalogError(f"cannot use the catalogue {path}: {error}") from None


def _exists(path: Path) -> bool:
    try:
        return path.exists()
    except PermissionError:  # a folder this user may not enter
        group = group_name(path.parent.stat().st_gid)
        raise CatalogError(f"cannot read the catalogue {path}: {user_name()} may not enter its "
                           f"folder (its readers are the members of the group {group})") from None


def _refuse_if_unreadable(path: Path) -> None:
    if os.access(path, os.R_OK):
        return
    info = path.stat()
    owner = owner_name(path)
    group = f", readable by the group {group_name(info.st_gid)}" if info.st_mode & 0o040 else ""
    raise CatalogError(f"cannot read the catalogue {path}: it is {owner}'s (mode "
                       f"{info.st_mode & 0o777:04o}{group}), and this user ({user_name()}) may not read it; "
                       f"run this as {owner}, or as a member of the group that reads it "
                       "(README, \"Running it as a service\")")


def _configure(conn: sqlite3.Connection, synchronous: str, busy_timeout_s: float
               ) -> sqlite3.Connection:
    conn.execute(f"PRAGMA busy_timeout = {int(busy_timeout_s * 1000)}")
    conn.execute(f"PRAGMA synchronous = {synchronous.upper()}")
    return conn


def _quote_uri(path: Path) -> str:
    from urllib.parse import quote
    return quote(str(path.absolute()))


class WriterLock:
    """An exclusive `flock` on `<db>.lock`, holding the pid of its owner and, for a
    running service, the path of its control socket (see control.py)."""

    def __init__(self, db_path: Path):
        self.path = db_path.with_name(db_path.name + ".lock")
        self._fd: int | None = None

    def acquire(self) -> None:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        except PermissionError:
            raise CatalogError(not_yours(self.path.with_suffix(""))) from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            owner = os.pread(fd, 32, 0).decode(errors="replace").split("\n")[0].strip() or "unknown"
            os.close(fd)
            raise CatalogBusy(
                f"the catalogue {self.path.with_suffix('')} is being written by another indexer "
                f"process (pid {owner}); only one may write at a time"
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self._fd = fd

    def announce(self, control_socket: Path) -> None:
        """Say where the service that holds the lock takes requests."""
        text = f"{os.getpid()}\n{control_socket}\n".encode()
        os.ftruncate(self._fd, 0)
        os.pwrite(self._fd, text, 0)

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


@contextmanager
def open_for_writing(path: Path, synchronous: str = "full", lock: WriterLock | None = None,
                     busy_timeout_s: float = BUSY_TIMEOUT_S) -> Iterator[sqlite3.Connection]:
    """Lock, migrate and tidy the catalogue; yields the connection the writer will own."""
    lock = lock or WriterLock(path)
    lock.acquire()
    try:
        if not path.exists():
            _create(path, synchronous)
        conn = connect(path, synchronous=synchronous, busy_timeout_s=busy_timeout_s)
        try:
            try:
                retrying(lambda: schema.migrate(conn))
                retrying(lambda: conn.execute(
                    "UPDATE scan_jobs SET status = 'interrupted', finished_at = ?, "
                    "message = coalesce(message || char(10), '') || 'the indexer stopped "
                    "before this job ended' WHERE status = 'running'", (utc_now(),)))
            except sqlite3.Error as error:
                hint = "; free some space on its disk" if "full" in str(error) else ""
                raise CatalogError(f"cannot prepare the catalogue {path}: {error}{hint}") from None
            if synchronous == "normal":
                retrying(lambda: _past_lost_changes(conn))
            _say_what_it_cannot_write(path)
            yield conn
        finally:
            close_keeping_wal(conn, path)
    finally:
        lock.release()


SEQ_GAP = 1 << 32  # more changes than a power cut can lose (docs/schema.md, "Durability")


def _past_lost_changes(conn: sqlite3.Connection) -> None:
    """With synchronous = normal, a power cut can lose the last commits, after readers
    saw their changes; the changes that redo them must not take the numbers again. So
    the feed's numbering moves SEQ_GAP on, in a commit synced to disk, before this writer
    writes anything: whatever it then loses lies below what the next writer starts at."""
    conn.execute("PRAGMA synchronous = FULL")
    try:
        conn.execute("BEGIN IMMEDIATE")
        if not conn.execute("UPDATE sqlite_sequence SET seq = seq + ? WHERE name = 'changes'",
                            (SEQ_GAP,)).rowcount:
            conn.execute("INSERT INTO sqlite_sequence (name, seq) VALUES ('changes', ?)",
                         (SEQ_GAP,))
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
    finally:
        conn.execute("PRAGMA synchronous = NORMAL")


def close_keeping_wal(conn: sqlite3.Connection, path: Path) -> None:
    """Close the write connection, its work checkpointed into the file, leaving `-wal`
    and `-shm` beside it, so that readers without write access to the folder can
    open the catalogue whenever no writer runs.

    SQLite deletes both files when the last connection to a WAL database closes,
    and a reader that may not create them cannot open the file then ("attempt to
    write a readonly database"); with them there, it can, read-only (SQLite 3.22
    and later). The one switch that keeps them, SQLITE_FCNTL_PERSIST_WAL, needs
    sqlite3_file_control, which Python's sqlite3 does not have; going back to a
    rollback journal on close needs the file to ourselves, which a media server
    holding it open refuses. So a read-only connection of ours holds the file while
    the write connection closes, and closes last. SQLite deletes the two files only
    after a checkpoint on close that holds an exclusive lock on the file
    (sqlite3WalClose, wal.c): the writer's close cannot take that lock while ours
    holds a shared one, and a read-only connection may not checkpoint. A writer
    killed leaves them too. The checkpoint here waits for no reader: what it could
    not copy stays in the `-wal`, where readers find it.
    """
    keeper = None
    try:
        keeper = sqlite3.connect(f"file:{_quote_uri(path)}?mode=ro", uri=True,
                                 isolation_level=None, check_same_thread=False)
        keeper.execute("SELECT count(*) FROM sqlite_master").fetchall()  # it holds the file
    except sqlite3.Error as error:  # then closing may delete them: the next writer makes them
        log.debug("cannot hold %s open while its writer closes: %s", path, error)
    try:
        conn.execute("PRAGMA busy_timeout = 0")
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()
    except sqlite3.Error as error:  # the disk failed or is full: the -wal keeps the work
        log.debug("no checkpoint on closing %s: %s", path, error)
    finally:
        conn.close()
        if keeper is not None:
            keeper.close()


def refuse_if_read_only(path: Path) -> None:
    """Raise `not_yours` when this user can write nothing in the catalogue's folder (root
    can: it becomes the folder's owner, see ownership.py)."""
    from .ownership import folder_of
    if os.geteuid() != 0 and not os.access(folder_of(path), os.W_OK | os.X_OK):
        raise CatalogError(not_yours(path))


def not_yours(path: Path) -> str:
    """Why this user may not write the catalogue at `path`, and what to do instead."""
    owner = owner_name(path if path.exists() else path.parent)
    return (f"cannot write the catalogue {path}: it belongs to {owner}, and this user "
            f"({user_name()}) may only read it; ask the service (`indexer rescan`, once it "
            f"runs), or run this as {owner if owner == 'root' else owner + ' or root'}")


def _say_what_it_cannot_write(path: Path) -> None:
    """One error line at the start of a writer when folders beside the catalogue are not
    writable by it (root made them): each cover to be stored there would fail."""
    from .ownership import unwritable_folders
    stuck = unwritable_folders(path)
    if stuck:
        from .ownership import fix_command
        log.error("%s beside the catalogue not writable by this user, e.g. %s: covers to "
                  "be stored there fail; fix: %s", _count(len(stuck), "folder"), stuck[0],
                  fix_command(path))


def _count(number: int, noun: str) -> str:
    return f"{number:,} {noun}" + ("" if number == 1 else "s")


def _create(path: Path, synchronous: str) -> None:
    """A new catalogue, built whole under a temporary name and renamed into place: a
    kill while it is made leaves no half-made file (its hot journal made every reader
    fail with "attempt to write a readonly database" until a writer opened it)."""
    partial = path.with_name(f"{path.name}.new-{os.getpid()}")
    for name in os.listdir(path.parent):  # left by a creator killed before
        if name.startswith(f"{path.name}.new-"):
            os.unlink(path.parent / name)
    conn = connect(partial, synchronous=synchronous)
    try:
        retrying(lambda: schema.migrate(conn))
        # Born in WAL mode: the writer that opens it next changes nothing in its header.
        # Switching a rollback-journal file to WAL there wrote a journal, and a kill in
        # that moment left a hot one: every read-only reader failed ("attempt to write
        # a readonly database"). Until that writer opens it (and makes the -shm), only
        # readers who may write in the folder can open it: a kill in those milliseconds
        # of a first scan costs readers without that right until the next writer.
    except sqlite3.Error as error:
        raise CatalogError(f"cannot create the catalogue {path}: {error}") from None
    finally:
        conn.close()
    os.replace(partial, path)
    folder = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(folder)  # the rename itself survives a power cut
    finally:
        os.close(folder)


_KNOWN = """
SELECT path, size, mtime_ns, inode, device,
       hash IS NOT NULL AND error IS NULL AND status = 'present', id, hash, status,
       error IS NOT NULL, tags_hash, ctime_ns, path_raw
FROM files """


class Reader:
    """The queries a scan makes while it walks, on a connection of its own."""

    def __init__(self, conn: sqlite3.Connection):
        self.conn = conn

    def rows_in(self, ranges: tuple[tuple[str, str], ...]) -> "FolderRows":
        return FolderRows(self.conn, ranges)

    def known(self, row_id: int) -> Known:
        return Known._make(self.conn.execute(_KNOWN + "WHERE id = ?", (row_id,)).fetchone())

    def row_by_inode(self, device: int, inode: int, ctime_ns: int) -> Known | None:
        """A row with this device and inode, the one with this ctime first (see identity.py:
        an old row may carry an inode number that a newer file reused)."""
        row = self.conn.execute(
            _KNOWN + "WHERE device = ? AND inode = ? AND hash IS NOT NULL "
            "ORDER BY ctime_ns IS ? DESC, id DESC LIMIT 1", (device, inode, ctime_ns)).fetchone()
        return Known._make(row) if row else None

    def renumber_sample(self, root: str, device: int, limit: int = 64) -> list[tuple]:
        """Rows of a root none of whose rows has `device`, the root's device now (so
        never on a scan of a root whose disk kept its number: one lookup in the inode
        index): (id, path, path_raw, device, inode, size, ctime_ns) of up to `limit`
        present rows spread over the ids, so over the folders too (the first folders
        alone may all have been renamed while the disk was away). Each row is read at
        most once."""
        if self.conn.execute("SELECT 1 FROM files WHERE device = ? AND root = ? LIMIT 1",
                             (device, root)).fetchone():
            return []
        low, high = self.conn.execute("SELECT min(id), max(id) FROM files").fetchone()
        if low is None:
            return []
        found, after = [], -1
        for start in range(low, high + 1, max(1, (high - low) // limit)):
            row = self.conn.execute(
                "SELECT id, path, path_raw, device, inode, size, ctime_ns FROM files "
                "WHERE id >= ? AND root = ? AND status = 'present' ORDER BY id LIMIT 1",
                (max(start, after + 1), root)).fetchone()
            if row is None:
                break
            found.append(row)
            after = row[0]
        return found[:limit]

    def present_count_under(self, top_text: str) -> int:
        return sum(self.conn.execute(
            "SELECT count(*) FROM files WHERE status = 'present' AND dir >= ? AND dir < ?",
            bounds).fetchone()[0] for bounds in (only(top_text), below(top_text)))

    def count_below(self, top_text: str) -> int:
        """Rows in the folders below `top_text`: from the index alone, so cheap."""
        return self.conn.execute("SELECT count(*) FROM files WHERE dir >= ? AND dir < ?",
                                 below(top_text)).fetchone()[0]

    def is_empty(self) -> bool:
        return self.conn.execute("SELECT NOT EXISTS (SELECT 1 FROM files)").fetchone()[0] == 1


class FolderRows:
    """The rows of some `dir` ranges, streamed in `dir` order beside a walk in that order.

    One query a range for a whole rescan instead of one per folder (a third of a
    no-change rescan went into those), grouped by folder in C by `groupby`.
    `take(dir)` returns that folder's rows, shaped like `Stored`; present rows
    of folders the walk never listed pile up in `unvisited`.
    """

    _ROWS = ("SELECT path, size, mtime_ns, inode, device, ctime_ns, "
             "hash IS NOT NULL AND error IS NULL AND status = 'present', id, "
             "status = 'present', dir, tags_hash IS hash FROM files "
             "WHERE dir >= ? AND dir < ? ORDER BY dir")

    def __init__(self, conn: sqlite3.Connection, ranges: tuple[tuple[str, str], ...]):
        # One cursor a [low, high) range, each read in index order and opened when the
        # one before is done: an OR of ranges made SQLite sort every row in a temporary
        # B-tree before returning the first. The ranges are disjoint (order.py), so in
        # their order the rows come in `dir` order, the walk's.
        self._conn, self._cursor = conn, None
        cursors = (self._open(bounds) for bounds in sorted(ranges))
        self._folders = itertools.groupby(itertools.chain.from_iterable(cursors),
                                          key=operator.itemgetter(9))
        self._next = next(self._folders, None)
        self.unvisited: list[Stored] = []

    def _open(self, bounds: tuple[str, str]) -> sqlite3.Cursor:
        if self._cursor is not None:
            self._cursor.close()
        self._cursor = self._conn.execute(self._ROWS, bounds)
        return self._cursor

    def take(self, dir_text: str) -> dict[str, tuple]:
        folder = self._next
        while folder is not None and folder[0] < dir_text:
            self.unvisited += (Stored._make(row) for row in folder[1] if row[8])
            folder = next(self._folders, None)
        if folder is None or folder[0] != dir_text:
            self._next = folder
            return {}
        rows = {row[0]: row for row in folder[1]}  # before the next group ends this one
        self._next = next(self._folders, None)
        return rows

    def finish(self) -> list[Stored]:
        """Every present row the walk did not reach, once it has ended."""
        self.take("\U0010ffff")  # past every real folder
        return self.unvisited

    def close(self) -> None:
        """End the read: an open cursor would hold back WAL checkpoints."""
        if self._cursor is not None:
            self._cursor.close()


def job_row(conn: sqlite3.Connection, job_id: int) -> dict:
    conn.row_factory = sqlite3.Row
    try:
        row = conn.execute("SELECT * FROM scan_jobs WHERE id = ?", (job_id,)).fetchone()
    finally:
        conn.row_factory = None
    result = dict(row) if row else {}
    if result:
        result["roots"] = json.loads(result["roots"])
    return result


def _dicts(cursor: sqlite3.Cursor) -> Iterator[dict]:
    names = [d[0] for d in cursor.description]
    for row in cursor:
        yield dict(zip(names, row))


def status_report(conn: sqlite3.Connection, recent: int = 5) -> dict:
    """Running and recent jobs, and totals by kind and status: `indexer status`."""
    jobs = list(_dicts(conn.execute(
        "SELECT * FROM scan_jobs WHERE status = 'running' OR id IN "
        "(SELECT id FROM scan_jobs ORDER BY id DESC LIMIT ?) ORDER BY id DESC", (recent,))))
    for job in jobs:
        job["roots"] = json.loads(job["roots"])
    totals: dict[str, dict[str, int]] = {}
    for kind, status, count in conn.execute(
            "SELECT kind, status, count(*) FROM files GROUP BY kind, status ORDER BY kind, status"):
        totals.setdefault(kind, {"present": 0, "missing": 0})[status] = count
    errors = conn.execute("SELECT count(*) FROM files WHERE error IS NOT NULL").fetchone()[0]
    last_change = conn.execute("SELECT coalesce(max(seq), 0) FROM changes").fetchone()[0]
    return {"schema_version": schema.version(conn), "jobs": jobs, "files": totals,
            "files_with_errors": errors, "last_change_seq": last_change}


FILE_COLUMNS = ("id, root, path, path_raw, dir, size, mtime_ns, inode, device, hash, kind, status, "
                "first_seen, updated_at, missing_since, error")


def iter_files(conn: sqlite3.Connection, *, missing: bool = False, errors: bool = False,
               limit: int | None = None, kind: str | None = None) -> Iterator[dict]:
    """Catalogue rows in path order, streamed: present ones, or the missing, or those whose
    file or tags could not be read (`error` then says which, tags errors prefixed 'tags:');
    with `kind`, only files of that kind (audio, video, image, other)."""
    where = "f.status = 'missing'" if missing else "f.status = 'present'"
    if errors:
        where += " AND (f.error IS NOT NULL OR m.error IS NOT NULL)"
    if kind is not None:
        where += " AND f.kind = :kind"
    columns = ", ".join(f"f.{c}" for c in FILE_COLUMNS.split(", ") if c != "error")
    columns += ", coalesce(f.error, 'tags: ' || m.error) AS error"
    yield from _dicts(conn.execute(
        f"SELECT {columns} FROM files f LEFT JOIN media m ON m.file_id = f.id "
        f"WHERE {where} ORDER BY f.path LIMIT :limit",
        {"kind": kind, "limit": -1 if limit is None else limit}))


def walk_problems(conn: sqlite3.Connection) -> Iterator[dict]:
    """What the last scan of each root could not list or stat (an unreadable folder, a
    file that cannot be looked at): no file row holds these. Shaped as `iter_files` rows,
    of kind 'folder' or 'path'. Scans of the service's events (kind 'watch') cover parts
    of roots; the nightly reconcile brings their problems here."""
    latest: dict[str, int] = {}
    for job, roots in conn.execute(
            "SELECT id, roots FROM scan_jobs WHERE status = 'completed' AND kind NOT IN "
            "('watch', 'purge') ORDER BY id"):
        latest.update((root, job) for root in json.loads(roots or "[]"))
    jobs = sorted(set(latest.values()))
    if not jobs:
        return
    found = conn.execute(
        f"SELECT DISTINCT path, error FROM scan_errors WHERE stage = 'walk' AND job_id IN "
        f"({', '.join('?' * len(jobs))}) ORDER BY path", jobs)
    columns = [c.strip() for c in FILE_COLUMNS.split(",")]
    for path, error in found:
        row = dict.fromkeys(columns)
        kind = "folder" if os.path.isdir(path) else "path"
        yield {**row, "path": path, "kind": kind, "status": "error", "error": error}


def file_record(conn: sqlite3.Connection, path_text: str) -> dict | None:
    """One file's row, its `media` row (or None), its streams (a video's) and its
    pictures: `indexer show`."""
    row = next(_dicts(conn.execute(f"SELECT {FILE_COLUMNS} FROM files WHERE path = ?",
                                   (path_text,))), None)
    if row is None:
        return None
    media = next(_dicts(conn.execute("SELECT * FROM media WHERE file_id = ?", (row["id"],))), None)
    if media is not None:  # JSON in the catalogue, JSON values here
        for name in ("tags", "artists"):
            media[name] = json.loads(media[name]) if media[name] else None
    art = list(_dicts(conn.execute(
        "SELECT a.*, 'embedded' AS source, fa.picture_type FROM file_artwork fa "
        "JOIN artwork a ON a.hash = fa.artwork_hash WHERE fa.file_id = ? "
        "UNION ALL SELECT a.*, 'folder', 3 FROM folder_artwork d "
        "JOIN artwork a ON a.hash = d.artwork_hash JOIN files i ON i.id = d.image_file_id "
        "WHERE d.dir = ? AND i.status = 'present' AND i.tags_hash IS i.hash",
        (row["id"], row["dir"]))))
    streams = list(_dicts(conn.execute(
        "SELECT * FROM streams WHERE file_id = ? ORDER BY idx", (row["id"],))))
    for stream in streams:
        del stream["file_id"]
    return {"file": row, "media": media, "streams": streams, "artwork": art}


class Lookups:
    """Questions the hashing threads ask of the catalogue as files are read: is there a
    file whose tags are already read for this content (a copy needs no parse), may this
    file be a row elsewhere (identity.py: the writer holds it)?

    Asked from several threads (the hashing pool's); each gets its own read
    connection. Only committed rows are seen, which is all either needs: a copy's
    source, or a row a file may be, was in the catalogue before this scan.
    """

    def __init__(self, db_path: Path):
        self.db_path = db_path
        self._local = threading.local()
        self._connections: list[sqlite3.Connection] = []
        self._lock = threading.Lock()

    def _conn(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._local.conn = connect(self.db_path, readonly=True)
            with self._lock:
                self._connections.append(conn)
        return conn

    def any_media(self) -> bool:
        return self._conn().execute("SELECT 1 FROM media LIMIT 1").fetchone() is not None

    def tag_source(self, digest: str) -> int | None:
        row = self._conn().execute("SELECT file_id FROM media WHERE content_hash = ? AND "
                                   "error IS NULL LIMIT 1", (digest,)).fetchone()
        return row[0] if row else None

    def may_be_elsewhere(self, device: int, inode: int, size: int, digest: str,
                         path_row: int | None) -> bool:
        """Whether a row other than `path_row` has this device and inode, or this content."""
        conn = self._conn()
        return any(conn.execute(sql + " AND id IS NOT ? LIMIT 1", (*key, path_row)).fetchone()
                   for sql, key in (("SELECT 1 FROM files WHERE device = ? AND inode = ?",
                                     (device, inode)),
                                    ("SELECT 1 FROM files WHERE hash = ? AND size = ?",
                                     (digest, size))))

    def close(self) -> None:
        with self._lock:
            for conn in self._connections:
                conn.close()
            self._connections.clear()
