"""The one writer: every change to the catalogue goes through here, in batches.

The writer owns the write connection and applies results in arrival order
inside an open transaction, committing it after `batch_size` writes or
`max_delay` seconds, whichever comes first. The job row's totals are updated
in the same transaction as the rows they count, so a reader never sees totals
that disagree with the rows. If a commit fails, the batch is rolled back and
the writer refuses all further work: half a story is never written.

Identity is applied here too, not decided: a file whose row is in question
(`Hashed.hold`: new at its path, or another inode than its path's row) is
held until the scan's walks are done (`Settle`); then identity.py says which
row each held file is, and placing.py in which order rows change paths. Rows
the walks found gone are marked missing then, once no held file took them.
"""

from __future__ import annotations

import json
import logging
import os
import sqlite3
import threading
import time
from collections.abc import Callable

from . import media_rows
from .catalog import retrying, utc_now
from .kinds import is_cover
from .paths import db_text, printable
from .records import (CopyTags, Counters, FileFailure, Hashed, Known, Problem, Progress, Seen,
                      Settle, Tags, Tally, Unstable)

log = logging.getLogger(__name__)

_COLUMNS = ("root, path, path_raw, dir, size, mtime_ns, inode, device, ctime_ns, hash, kind, "
            "status, first_seen, updated_at, missing_since, error")
# Positional, for `executemany`: a first scan writes its new rows in runs. The
# names of its values (first_seen and updated_at are both `now`), for `_values`:
_ROW_NAMES = ("root", "path", "path_raw", "dir", "size", "mtime_ns", "inode", "device", "ctime_ns",
              "hash", "kind", "now", "now", "error")
_UPSERT = f"""
INSERT INTO files ({_COLUMNS})
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'present', ?, ?, NULL, ?)
ON CONFLICT (path) DO UPDATE SET
    size = excluded.size, mtime_ns = excluded.mtime_ns, inode = excluded.inode,
    device = excluded.device, ctime_ns = excluded.ctime_ns, hash = excluded.hash,
    status = 'present', missing_since = NULL, updated_at = excluded.updated_at,
    error = excluded.error
WHERE files.path_raw IS excluded.path_raw
"""
_UPDATE_AT_PATH = """
UPDATE files SET size = :size, mtime_ns = :mtime_ns, inode = :inode, device = :device,
    ctime_ns = :ctime_ns, hash = :hash, status = 'present', missing_since = NULL,
    updated_at = :now, error = :error
WHERE id = :id AND path = :path
"""
# A file that could not be read keeps its hash only if its stat figures did not change
# (but its ctime: making a file unreadable, a chmod, changes that).
_FAILED_AT_PATH = """
UPDATE files SET hash = CASE WHEN size = :size AND mtime_ns = :mtime_ns AND inode = :inode
                             THEN hash END,
    size = :size, mtime_ns = :mtime_ns, inode = :inode, device = :device, ctime_ns = :ctime_ns,
    status = 'present', missing_since = NULL, updated_at = :now, error = :error
WHERE id = :id AND path = :path
"""
# A held file given its row (identity.py): at a new path, or at its own.
_PLACE = """
UPDATE files SET root = :root, path = :path, path_raw = :path_raw, dir = :dir, size = :size,
    mtime_ns = :mtime_ns, inode = :inode, device = :device, ctime_ns = :ctime_ns, hash = :hash,
    kind = :kind, status = 'present', missing_since = NULL, updated_at = :now, error = NULL
WHERE id = :id
"""
_GONE = """
UPDATE files SET status = 'missing', missing_since = :now, updated_at = :now
WHERE id = :id AND path = :path AND status = 'present'
"""
_COVER_FOLDER = "UPDATE folder_artwork SET dir = ? WHERE image_file_id = ?"
_NOT_A_COVER = "DELETE FROM folder_artwork WHERE image_file_id = ?"
_JOB_TOTALS = """
UPDATE scan_jobs SET files_found = :files_found, files_processed = :files_processed,
    bytes_processed = :bytes_processed, progress = :progress, added = :added,
    modified = :modified, moved = :moved, missing = :missing, restored = :restored,
    unchanged = :unchanged, skipped = :skipped, errors = :errors,
    metadata_queued = :metadata_queued, metadata_extracted = :metadata_extracted,
    metadata_copied = :metadata_copied, metadata_failed = :metadata_failed
WHERE id = :job_id
"""


_FILE_ROWS = (Hashed, FileFailure, Unstable)


class WriterFailed(RuntimeError):
    """A batch could not be committed; the writer takes no more work."""


class Writer:
    """Applies scan results to the catalogue in batched transactions. One thread only."""

    def __init__(self, conn: sqlite3.Connection, *, batch_size: int = 50, max_delay: float = 0.5,
                 on_progress: Callable[[Progress], None] | None = None, report_every: float = 0.25):
        self.conn = conn
        self.batch_size = batch_size
        self.max_delay = max_delay
        self.on_progress = on_progress
        self.report_every = report_every
        self.counters = Counters()
        self.job_id = 0
        self.walk_done = False
        self.art_dir: str | None = None
        self.stop: threading.Event | None = None  # ends a wait for a locked catalogue
        self.failed: BaseException | None = None
        self._pending = 0
        self._new: list[tuple] = []  # upserts of paths without a row, written in runs
        self._dirty = False
        self._batch_started = 0.0
        self._held: list[Hashed] = []  # files whose row is in question, until `Settle`
        self.resolved: list[Hashed] = []  # held files once placed: for the tag stage
        self.unread: set[str] = set()  # folders of files whose tags got no verdict
        self.unavailable: set[str] = set()  # of those, where no worker could take a file
        self.parsed = False  # some file's tags had a parser's word (a worker took it)
        self.unplaced: set[str] = set()  # folders of held files left out: their root looked
        # unmounted at the end of the walks (placing.gather), to be looked at again
        self._last_seq = 0
        self._started = time.monotonic()
        self._last_report = 0.0
        self._last_job_write = 0.0
        self._now = utc_now()

    # --- the job

    def start_job(self, kind: str, mode: str, roots: list[str]) -> int:
        now = utc_now()
        self._last_seq = self.conn.execute(
            "SELECT coalesce(max(seq), 0) FROM changes").fetchone()[0]
        cursor = retrying(lambda: self.conn.execute(
            "INSERT INTO scan_jobs (kind, mode, roots, status, pid, started_at) "
            "VALUES (?, ?, ?, 'running', ?, ?)", (kind, mode, json.dumps(roots), os.getpid(), now)),
            stop=self.stop)
        self.job_id = cursor.lastrowid
        self._started = self._last_job_write = time.monotonic()
        return self.job_id

    def finish(self, status: str, message: str | None = None) -> None:
        """Commit what is pending and close the job with its final totals.

        After a failed batch only the status is recorded: the totals counted
        work that was rolled back.
        """
        if self.failed is None:
            self.flush()
        try:
            self._in_transaction()
            if self.failed is None:
                self._write_totals()
            self.conn.execute(
                "UPDATE scan_jobs SET status = ?, finished_at = ?, message = ? WHERE id = ?",
                (status, utc_now(), message, self.job_id))
            self.conn.execute("COMMIT")
        except sqlite3.Error as error:
            if self.conn.in_transaction:
                self.conn.execute("ROLLBACK")
            raise WriterFailed(f"{self._explain(error)} (ending scan job {self.job_id})") from error
        self._report(force=True)

    def renumber(self, root: str, devices: dict[int, int]) -> None:
        """A disk back under another device number (identity.device_now): the root's rows
        of each old number take the new one, committed at once, before the walks, so the
        hashing threads' lookups (`catalog.Lookups`) see them too."""
        try:
            self._in_transaction()
            for old, new in devices.items():
                self.conn.execute("UPDATE files SET device = ? WHERE device = ? AND root = ?",
                                  (new, old, root))
        except sqlite3.Error as error:
            self._fail(error)
        self.flush()

    # --- results

    def put(self, item: object) -> None:
        """Apply one result; commits when the batch is full or old enough."""
        if self.failed is not None:
            raise WriterFailed(f"the catalogue writer stopped after an error: {self.failed}")
        if isinstance(item, Tally):
            self._tally(item)
        else:
            self._in_transaction()
            self._apply(item)
            # A batch is `batch_size` file rows; a file's tags ride along with the rows
            # (counting them too doubled the commits, each an fsync, of a first scan).
            self._pending += isinstance(item, _FILE_ROWS)
        self._dirty = True
        self.tick()

    def tick(self) -> None:
        """Flush by count or by age, and report progress; call when idle too.

        With nothing to write (a rescan of an unchanged library), the job row
        still gets its totals about once a second, for `indexer status`.
        """
        now = time.monotonic()
        open_batch = self.conn.in_transaction
        due = open_batch and (self._pending >= self.batch_size
                              or now - self._batch_started >= self.max_delay)
        if due or (self._dirty and now - self._last_job_write >= 1.0):
            self.flush()
        self._report()

    def flush(self) -> None:
        """Commit the open batch with the job's totals."""
        if self.failed is not None or not (self.conn.in_transaction or self._dirty):
            return
        try:
            self._in_transaction()
            self._write_new()
            self._count_changes()
            self._write_totals()
            self.conn.execute("COMMIT")
        except sqlite3.Error as error:
            self._fail(error)
        self._pending = 0
        self._dirty = False
        self._last_job_write = time.monotonic()
        self._report(force=True)

    def _fail(self, error: BaseException) -> None:
        self.failed = error
        self._new.clear()
        try:
            self.conn.execute("ROLLBACK")
        except sqlite3.Error:
            pass
        raise WriterFailed(self._explain(error)) from error

    def _explain(self, error: BaseException) -> str:
        """One line: which catalogue, what went wrong, and the fix where there is one."""
        path = self.conn.execute("PRAGMA database_list").fetchone()[2]
        text = f"could not write to the catalogue {path}: {error}"
        if "full" in str(error):
            text += "; free some space on its disk, and run again: nothing is lost"
        return text

    def _in_transaction(self) -> None:
        if not self.conn.in_transaction:
            retrying(lambda: self.conn.execute("BEGIN IMMEDIATE"), stop=self.stop)
            self._now = utc_now()  # one time stamp per batch: when it commits, near enough
            self._batch_started = time.monotonic()

    def _apply(self, item: object) -> None:
        try:
            if not isinstance(item, (Hashed, FileFailure)):
                self._write_new()  # keep the feed in arrival order
            if isinstance(item, Hashed):
                self._hashed(item)
            elif isinstance(item, FileFailure):
                self._failure(item)
            elif isinstance(item, Settle):
                self._settle(item)
            elif isinstance(item, Unstable):
                self._unstable(item)
            elif isinstance(item, Problem):
                self._problem(item)
            elif isinstance(item, Tags):
                self._tags(item)
            elif isinstance(item, CopyTags):
                if media_rows.copy_tags(self.conn, item, self._now) == "copied":
                    self.counters.metadata_copied += 1
            else:
                raise TypeError(f"the writer cannot apply {item!r}")
        except sqlite3.Error as error:
            self._fail(error)

    def _tally(self, tally: Tally) -> None:
        c = self.counters
        c.files_found += tally.found
        c.unchanged += tally.unchanged
        c.files_processed += tally.unchanged
        c.skipped += tally.skipped
        c.metadata_queued += tally.tags_queued

    def _hashed(self, item: Hashed) -> None:
        c, row = self.counters, item.row
        c.files_processed += 1
        c.bytes_processed += item.bytes_read
        if row is not None and row.status == "present" and row.hash == item.hash:
            c.unchanged += 1
        if item.hold:
            self._held.append(item)
            return
        if row is not None and self._execute(
                _UPDATE_AT_PATH, self._values(item.seen, item.hash, None) | {"id": row.id}).rowcount:
            return
        self._new.append(self._row(item.seen, item.hash, None))

    def _tags(self, tags: Tags) -> None:
        applied = media_rows.apply_tags(self.conn, tags, self._now, self.art_dir)
        if applied is None:
            return  # the file changed or went while it was parsed: the next scan reads it
        folder, final = applied
        unavailable = tags.error is not None and tags.error.startswith(media_rows.UNAVAILABLE)
        self.parsed = self.parsed or not unavailable
        first_unavailable = unavailable and not self.unavailable
        if not final:
            self.unread.add(folder)
        if unavailable:
            self.unavailable.add(folder)
        if tags.error is None:
            self.counters.metadata_extracted += 1
            return
        self.counters.metadata_failed += 1
        if not unavailable:
            log.warning("%s: cannot read its tags: %s", printable(tags.text), tags.error)
        elif first_unavailable:  # the machine's, not the files': said once a job
            log.warning("tags not read, no word on the files (a later scan reads them): %s",
                        tags.error.removeprefix(media_rows.UNAVAILABLE).strip())

    def _failure(self, item: FileFailure) -> None:
        self.counters.files_processed += 1
        self.counters.errors += 1
        log.warning("%s: %s", printable(item.seen.path), item.error)
        if item.vanished:
            self._problem(Problem(item.seen.path, "hash", item.error), count=False)
            return
        if item.row is not None:
            values = self._values(item.seen, None, item.error) | {"id": item.row.id}
            if self._execute(_FAILED_AT_PATH, values).rowcount:
                return
        self._new.append(self._row(item.seen, None, item.error))

    def _unstable(self, item: Unstable) -> None:
        """A file that kept changing while read, twice: not recorded, retried next scan."""
        self.counters.files_processed += 1
        self.counters.errors += 1
        error = "changed while it was being read (still being written?); will retry"
        log.warning("%s: %s", printable(item.item.seen.path), error)
        if item.item.row is not None:
            self._execute("UPDATE files SET error = ? WHERE id = ?", (error, item.item.row.id))
        self._problem(Problem(item.item.seen.path, "hash", error), count=False)

    def _problem(self, problem: Problem, count: bool = True) -> None:
        if count:
            self.counters.errors += 1
            log.warning("%s: %s", printable(problem.path), problem.error)
        self._execute(
            "INSERT INTO scan_errors (job_id, path, stage, error, at) VALUES (?, ?, ?, ?, ?)",
            (self.job_id, db_text(problem.path)[0], problem.stage, problem.error, self._now))

    def _values(self, seen: Seen, digest: str | None, error: str | None) -> dict:
        """`_row` by name, for the statements that update a row in place."""
        return dict(zip(_ROW_NAMES, self._row(seen, digest, error)))

    def _row(self, seen: Seen, digest: str | None, error: str | None) -> tuple:
        """A file row's values in `_UPSERT`'s order."""
        text, raw = db_text(seen.path)
        return (seen.root, text, raw, db_text(os.path.dirname(seen.path))[0], seen.size,
                seen.mtime_ns, seen.inode, seen.device, seen.ctime_ns, digest, seen.kind,
                self._now, self._now, error)

    def _execute(self, sql: str, params) -> sqlite3.Cursor:
        """Any write but a new row's: the new rows queued before it go first."""
        self._write_new()
        return self.conn.execute(sql, params)

    def _write_new(self) -> None:
        """Upsert the queued rows of paths without a row in one `executemany`.

        Row by row, the statement's call cost was a third of the writer's time in a
        first scan (bench/writer.py: see docs/benchmarks.md).
        """
        if not self._new:
            return
        rows, self._new = self._new, []
        if self.conn.executemany(_UPSERT, rows).rowcount == len(rows):
            return
        for row in rows:  # rare: a name shown with the same text as another's
            stored = self.conn.execute("SELECT path_raw FROM files WHERE path = ?", row[1:2])
            if stored.fetchone()[0] != row[2]:
                self._problem(Problem(row[1], "write",
                                      "another file's name is shown with the same text; not indexed"))

    # --- identity

    def _settle(self, settle: Settle) -> None:
        """Place the held files (identity.py), mark missing what no file took, then write
        the rows of the new files; the placed ones go to `resolved`, for their tags."""
        held, self._held = self._held, []
        if settle.drop:  # a cancelled scan: the next one places them
            return
        if held:
            self._place_held(held, settle)
        for gone in settle.gone:  # (a row a held file took has its path no more: untouched)
            self.conn.execute(_GONE, {"id": gone.id, "path": gone.path, "now": self._now})

    def _place_held(self, held: list[Hashed], settle: Settle) -> None:
        from . import identity, placing  # (only a scan that held files needs them)
        from .purge import forget
        gathered = placing.gather(self.conn, held, (g.id for g in settle.gone), settle.roots)
        self.unplaced.update(os.path.dirname(item.seen.path) for item in gathered.unmounted)
        held = gathered.placed
        verdict = identity.match(gathered.arrivals, gathered.candidates)
        for row_id in verdict.displaced:
            self.conn.execute(_GONE, {"id": row_id, "path": gathered.rows[row_id].path,
                                      "now": self._now})
            forget(self.conn, row_id)
        self._place(held, verdict.rows, gathered.rows)
        for index, item in enumerate(held):
            if index not in verdict.rows:
                self._new.append(self._row(item.seen, item.hash, None))
                self.resolved.append(item._replace(hold=False))

    def _place(self, held: list[Hashed], chosen: dict[int, int], rows: dict) -> None:
        """Give each placed file its row, path changes in an order that keeps paths unique."""
        target = {row_id: held[index] for index, row_id in chosen.items()}
        moves = {row_id: (rows[row_id].path, db_text(item.seen.path)[0])
                 for row_id, item in target.items()}
        from .placing import MOVING, move_order
        for row_id, path in move_order(moves):
            if path.startswith(MOVING):
                self.conn.execute("UPDATE files SET path = ? WHERE id = ?", (path, row_id))
            else:
                self._put_in_place(row_id, target.pop(row_id), rows[row_id])
        for row_id, item in target.items():  # those at their own path
            self._put_in_place(row_id, item, rows[row_id])

    def _put_in_place(self, row_id: int, item: Hashed, was) -> None:
        self.conn.execute(_PLACE, self._values(item.seen, item.hash, None) | {"id": row_id})
        row = was.known()
        if item.seen.kind == "image":
            row = self._cover_moved(row_id, item.seen, row)
        self.resolved.append(item._replace(row=row, hold=False))

    def _cover_moved(self, row_id: int, seen: Seen, row: Known) -> Known:
        """A folder image that moved is its new folder's cover, or, by its new name, a photo
        whose headers are read; an image renamed to a cover's name has its picture read."""
        if not is_cover(seen.kind, seen.path):
            if self.conn.execute(_NOT_A_COVER, (row_id,)).rowcount:
                return row._replace(tags_hash=None)
            return row
        folder = db_text(os.path.dirname(seen.path))[0]
        if self.conn.execute(_COVER_FOLDER, (folder, row_id)).rowcount:
            return row
        return row._replace(tags_hash=None)

    # --- totals

    def _count_changes(self) -> None:
        """Count this batch's changes from the feed itself, so the totals match it."""
        rows = self.conn.execute(
            "SELECT kind, count(*), max(seq) FROM changes WHERE seq > ? GROUP BY kind",
            (self._last_seq,)).fetchall()
        for kind, count, top in rows:
            if kind not in ("purged", "tagged"):  # purged: a displaced row, counted as
                # missing just before; tagged: counted as metadata_extracted, or copied
                setattr(self.counters, kind, getattr(self.counters, kind) + count)
            self._last_seq = max(self._last_seq, top)

    def _write_totals(self) -> None:
        c = self.counters
        progress = 100.0 * c.files_processed / c.files_found if c.files_found else 0.0
        self.conn.execute(_JOB_TOTALS, {**_asdict(c), "progress": round(min(progress, 100.0), 2),
                                        "job_id": self.job_id})

    def _report(self, force: bool = False) -> None:
        now = time.monotonic()
        if self.on_progress is None or (not force and now - self._last_report < self.report_every):
            return
        self._last_report = now
        snapshot = Counters(**_asdict(self.counters))
        self.on_progress(Progress(self.job_id, snapshot, self.walk_done, self._started, now))


def _asdict(counters: Counters) -> dict:
    return {name: getattr(counters, name) for name in Counters.__slots__}
