"""The story of a scan, in order: check roots, walk, plan, hash, write, mark missing.

One pass: each folder is listed once, compared with the catalogue's rows for
that folder in one query, and only new or changed files are read. Results go
to the single writer as they come. Files that no longer exist are called
missing only at the end, and only under a root whose walk completed, was not
stopped, passed the health check and found media: a vanished or unmounted
root is a warning, never "everything was deleted".
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import queue
import sqlite3
import threading
import time
from pathlib import Path
from collections.abc import Callable
from dataclasses import dataclass, field

from .catalog import Lookups, Reader
from .config import LibraryConfig, MetadataConfig, ScanConfig
from .hashing import Hasher
from .paths import absolute, db_text, os_path, printable
from .pipeline import Inline, ProcessPool, ThreadPool, WriterThread, batches
from .records import (Counters, Gone, Hashed, Problem, Progress, Settle, Tally, ToHash, Unstable,
                      describe)
from .tagging import Tagging
from .order import only, within
from .survey import (Part, Settings as SurveySettings, Signals, Survey, Surveyed, merged, split,
                     whole)
from .walk import RootUnusable, check_root, looks_unmounted
from .writer import Writer, WriterFailed

log = logging.getLogger(__name__)

RETRY_DELAY_S = 1.0  # before re-reading files that changed while read: let a copy move on
SURVEY = "indexer.survey:survey_part"


@dataclass(frozen=True)
class ScanResult:
    job_id: int
    status: str  # completed, cancelled, failed
    counters: Counters
    duration_s: float
    roots: tuple[str, ...]
    warnings: dict[str, list[str]] = field(default_factory=dict)
    message: str | None = None
    # folders with files still being written -> their latest write, ns since the epoch
    unsettled: dict[str, int] = field(default_factory=dict)
    # roots that looked unusable or unmounted: nothing of them was marked missing
    guarded: tuple[str, ...] = ()
    # folders of files whose tag reading got no verdict (a worker died or hung): retry them
    unread: tuple[str, ...] = ()
    # of those, the folders of files no worker could take (none could start)
    unavailable: tuple[str, ...] = ()
    parsed: bool = False  # a worker (or, sequential, this process) parsed some file's tags

    def summary(self) -> dict:
        """The `indexer scan --json` object (documented in the README)."""
        c = self.counters
        return {
            "job_id": self.job_id, "status": self.status,
            "added": c.added, "modified": c.modified, "moved": c.moved, "missing": c.missing,
            "restored": c.restored, "unchanged": c.unchanged, "skipped": c.skipped,
            "errors": c.errors, "files_found": c.files_found,
            "files_processed": c.files_processed, "bytes_processed": c.bytes_processed,
            "metadata_queued": c.metadata_queued, "metadata_extracted": c.metadata_extracted,
            "metadata_copied": c.metadata_copied, "metadata_failed": c.metadata_failed,
            "duration_s": round(self.duration_s, 3),
            "files_per_s": round(c.files_processed / self.duration_s, 1) if self.duration_s else 0.0,
            "warnings": self.warnings,
        }


def nest_free(roots: list[str]) -> list[str]:
    """The roots in order, without repeats or roots inside other roots: a file is walked once."""
    chosen: list[str] = []
    for root in roots:
        inside = any(within(root, other) for other in roots if other != root)
        if inside:
            log.warning("root %s is inside another root: walked as part of it", printable(root))
        elif root not in chosen:
            chosen.append(root)
    return chosen


class Scan:
    """One scan job over some roots. `run()` once; `stop` cancels it from any thread."""

    def __init__(self, write_conn: sqlite3.Connection, read_conn: sqlite3.Connection,
                 library: LibraryConfig, settings: ScanConfig, *, roots: list[str] | None = None,
                 metadata: MetadataConfig | None = None, db_path: Path | None = None,
                 rehash: bool = False, stop: threading.Event | None = None,
                 on_progress: Callable[[Progress], None] | None = None,
                 parts: dict[str, list[Part]] | None = None, settle_s: float = 0.0,
                 signals: Signals | None = None, kind: str | None = None,
                 online: tuple[str, ...] = ()):
        """`parts`: scan only these parts of these roots (the daemon's folder scans)
        instead of whole roots; `settle_s`: leave files written to in the last
        `settle_s` seconds for later (see `unsettled` in the result) but those the
        kernel said are complete (`signals`: survey.complete_since); `online`: other
        roots known to be mounted (the service's), where a row whose path is gone is
        vacated too (identity.py): a file moved from one of them here keeps its id."""
        self.library, self.settings, self.rehash = library, settings, rehash
        self.metadata, self.db_path = metadata, db_path
        self.parts = {root: merged(found) for root, found in (parts or {}).items()}
        self.settle_s, self.kind, self.online = settle_s, kind, online
        self.signals = signals
        chosen = list(self.parts) if parts else list(roots if roots is not None else library.roots)
        self.roots = nest_free([absolute(root) for root in chosen])
        self.unsettled: dict[str, int] = {}
        self._unsettled_files: set[tuple[int, int]] = set()  # (device, inode)
        self.stop = stop or threading.Event()
        self.reader = Reader(read_conn)
        self.writer = Writer(write_conn, batch_size=settings.batch_size, on_progress=on_progress)
        self.writer.stop = self.stop
        self.warnings: dict[str, list[str]] = {}
        self.guarded: set[str] = set()
        self._gone: dict[str, list[Gone]] = {}
        self._found: dict[str, int] = {}
        self._retry: list[ToHash] = []
        self._retry_lock = threading.Lock()
        self._tagging: Tagging | None = None
        self._lookups: Lookups | None = None  # while moves are possible: see `_hold`

    def run(self) -> ScanResult:
        """Run the job; never raises for the job's own failures, foreseen or not: they are
        its status `failed` and its message, on its row, in the log and in the result."""
        started = time.monotonic()
        try:
            catalogue_empty = self.reader.is_empty()
            kind = self.kind or ("full" if catalogue_empty or self.rehash else "incremental")
            mode = "parallel" if self.settings.parallel else "sequential"
            job_id = self.writer.start_job(kind, mode, self.roots)
        except sqlite3.Error as error:  # locked past every retry, the disk full, ...
            message = f"could not start a scan job in the catalogue: {error}"
            log.error("%s", message)
            return ScanResult(0, "failed", self.writer.counters, time.monotonic() - started,
                              tuple(self.roots), self.warnings, message)
        log.debug("scan job %d (%s, %s) of %s", job_id, kind, mode, ", ".join(map(printable, self.roots)))
        status, message = self._run_job(catalogue_empty)
        try:
            self.writer.finish(status, message)
        except WriterFailed as error:
            status, message = "failed", str(error)
            self._record_failure(message)
        return ScanResult(job_id, status, self.writer.counters, time.monotonic() - started,
                          tuple(self.roots), self.warnings, message, dict(self.unsettled),
                          tuple(sorted(self.guarded)), tuple(sorted(self.writer.unread)),
                          tuple(sorted(self.writer.unavailable)), self.writer.parsed)

    def _run_job(self, catalogue_empty: bool) -> tuple[str, str | None]:
        usable = [root for root in self.roots if self._healthy(root)]
        if not usable:
            return "failed", self._message() or "no root to scan"
        try:
            for root in usable if not catalogue_empty else ():
                self._renumber(root)
            self._walk_and_hash(usable, catalogue_empty)
            if self.stop.is_set():
                return "cancelled", self._message("cancelled; run the scan again to finish")
            return "completed", self._message()
        except WriterFailed as error:
            return "failed", str(error)
        except Exception as error:  # unforeseen: this job fails, whoever runs it goes on
            log.exception("scan job %d failed", self.writer.job_id)
            return "failed", self._message(f"failed: {describe(error)}")

    def _renumber(self, root: str) -> None:
        """A root's disk back under another device number: its rows take the new one
        (identity.device_now), so that rule 1 knows its files by their inodes again.
        Only a root none of whose rows has the root's device number asks the disk."""
        from .identity import Candidate, device_now
        try:
            device = os.stat(root).st_dev
        except OSError:
            return
        devices: dict[int, int] = {}
        for row_id, path, raw, old, inode, size, ctime_ns in self.reader.renumber_sample(
                root, device):
            try:
                st = os.lstat(os_path(path, raw))
            except OSError:
                continue
            new = device_now(Candidate(row_id, path, old, inode, size, None, ctime_ns, False),
                             st.st_dev, st.st_ino, st.st_size, st.st_ctime_ns)
            if new is not None:
                devices.setdefault(old, new)
        if devices:
            log.info("root %s is back under another device number (%s): its rows renumbered",
                     printable(root), ", ".join(f"{o} -> {n}" for o, n in devices.items()))
            self.writer.renumber(root, devices)

    def _walk_and_hash(self, roots: list[str], catalogue_empty: bool) -> None:
        hasher = Hasher(self.settings.hash_buffer_kib, follow_symlinks=self.library.follow_symlinks,
                        max_read_mib_s=self.settings.max_read_mib_s, stop=self.stop)
        sink = WriterThread(self.writer) if self.settings.parallel else None
        put_all = sink.put_all if sink else self._put_each
        if self.metadata and self.metadata.enabled and self.db_path:
            self._tagging = Tagging(self.metadata, self.db_path, put_all, self.stop,
                                    parallel=self.settings.parallel, again=self.rehash)
            self.writer.art_dir = self._tagging.art_dir
        if not catalogue_empty and self.db_path:
            self._lookups = Lookups(self.db_path)
        if sink:
            pool = ThreadPool(hasher, self._route(put_all), self.stop,
                              workers=self.settings.workers, name="hash")
        else:
            pool = Inline(hasher, self._route(put_all), self.stop)
        with contextlib.ExitStack() as ending:  # each closed whatever the others raise
            if sink:  # closed last: the writer is this thread's again only after
                ending.callback(sink.close)
            if self._lookups:
                ending.callback(self._lookups.close)
            if self._tagging:  # (its worker processes, even after a failed scan)
                ending.callback(self._tagging.close)
            ending.callback(pool.close)
            complete = {root: self._survey_root(root, pool, put_all, catalogue_empty)
                        for root in roots}
            self.writer.walk_done = True  # the total is known: progress can show an ETA
            pool.drain()
            self._retry_unstable(hasher, put_all)
            self._settle(complete, put_all, sink)
            if self._tagging:
                self._tagging.drain()

    def _offer_tags(self, results: list) -> None:
        """Tags for hashed files; a held file's wait until it is placed (see `_settle`)."""
        if self._tagging:
            self._tagging.offer(r for r in results if isinstance(r, Hashed) and not r.hold)

    def _hold(self, result):
        """A hashed file whose row is in question, if some row elsewhere may be it: held by
        the writer until the walks are done (identity.py). Other files are written now."""
        if self._lookups is None or not isinstance(result, Hashed) or result.hold:
            return result
        from .birth import birth_ns  # (only a rescan that read files asks)
        from .identity import in_question
        seen, row = result.seen, result.row
        if not in_question(seen, row, lambda: birth_ns(seen.path, seen.inode)):
            return result
        if self._lookups.may_be_elsewhere(seen.device, seen.inode, seen.size, result.hash,
                                          row.id if row is not None else None):
            return result._replace(hold=True)
        return result

    def _put_each(self, items: list) -> None:
        for item in items:
            self.writer.put(item)

    def _route(self, put_all: Callable[[list], None]) -> Callable[[list], None]:
        """The hash stage's sink: a file that changed while read is kept for one retry."""
        def route(results: list) -> None:
            settled = [self._hold(r) for r in results if not isinstance(r, Unstable)]
            if len(settled) < len(results):
                with self._retry_lock:
                    self._retry += [r.item for r in results if isinstance(r, Unstable)]
            if settled:
                put_all(settled)  # the file rows first: tags are applied to them
                self._offer_tags(settled)
        return route

    def _survey_root(self, root: str, pool, put_all, catalogue_empty: bool) -> bool:
        """Walk one root and plan every folder; True if the walk reached its end."""
        now = time.time_ns()
        settled = now - int(self.settle_s * 1e9) if self.settle_s else 0
        settings = SurveySettings(
            self.library.kinds, self.library.ignore, self.library.follow_symlinks,
            smart=self.settings.smart_hash and not self.rehash, tags=self._tagging is not None,
            db_path=None if catalogue_empty else str(self.db_path), settled_before_ns=settled,
            now_ns=now, signals=self.signals if settled else None)
        self._found[root], self._gone[root] = 0, []
        outbox = _Outbox(put_all, self._offer_tags)
        try:
            if root in self.parts:
                return all([self._survey_here(part, settings, pool, outbox)
                            for part in self.parts[root]])
            if self._worth_workers(root, settings):
                return self._survey_in_workers(root, settings, pool, outbox)
            return self._survey_here(whole(root), settings, pool, outbox)
        finally:
            outbox.flush()

    def _worth_workers(self, root: str, settings: SurveySettings) -> bool:
        """Worker processes pay for their start-up only on a large rescan; a first
        scan walks here, so hashing starts with the first folder."""
        return (self.settings.parallel and self.settings.workers > 1
                and settings.db_path is not None and self.db_path is not None
                and self.reader.count_below(db_text(root)[0]) >= self.settings.survey_workers_from)

    def _survey_here(self, part: Part, settings: SurveySettings, pool, outbox: "_Outbox") -> Survey:
        reader = self.reader if settings.db_path is not None else None
        survey = Survey(part, settings, reader, self.stop)
        for listing, plan in survey:
            self._take(part.root, Tally(len(listing.files), plan.unchanged, listing.skipped),
                       listing.problems, plan.known, plan.retag, plan.to_hash, plan.gone,
                       pool, outbox)
        outbox.add(*survey.walk.unlisted)
        self._gone[part.root] += survey.unvisited
        self._left_for_later(survey.unsettled, survey.unsettled_files)
        return survey.walk.complete

    def _survey_in_workers(self, root: str, settings: SurveySettings, pool, outbox) -> bool:
        """The root's own folder here, the folders below it in parts, in worker processes
        (on 2 cores a rescan of 50,000 unchanged files took about half as long)."""
        text = db_text(root)[0]
        top = Survey(Part(root, (root,), (only(text),), recursive=False), settings,
                     self.reader, self.stop)
        for listing, plan in top:
            self._take(root, Tally(len(listing.files), plan.unchanged, listing.skipped),
                       listing.problems, plan.known, plan.retag, plan.to_hash, plan.gone,
                       pool, outbox)
        outbox.add(*top.walk.unlisted)
        self._left_for_later(top.unsettled, top.unsettled_files)
        if not top.walk.complete:
            return False
        parts = split(root, top.walk.subfolders, self.settings.workers * 8)
        answers: queue.Queue = queue.Queue()
        workers = ProcessPool(SURVEY, answers.put, self.stop, workers=self.settings.workers,
                              timeout=math.inf, on_timeout=_part_failed, on_crash=_part_failed,
                              name="survey")
        try:
            for part in parts:
                workers.submit([(part, settings)])
            return self._absorb(root, len(parts), answers, pool, outbox)
        finally:
            workers.close()

    def _absorb(self, root: str, expected: int, answers: queue.Queue, pool, outbox) -> bool:
        complete = True
        while expected and not self.stop.is_set():
            try:
                found: list[Surveyed] = answers.get(timeout=0.1)
            except queue.Empty:
                continue
            for part in found:
                expected -= 1
                self._take(root, part.tally, part.problems, part.known, part.retag,
                           part.to_hash, part.gone, pool, outbox)
                outbox.add(*part.unlisted)
                self._left_for_later(part.unsettled, part.unsettled_files)
                complete &= part.complete
        return complete and not expected

    def _take(self, root: str, tally: Tally, problems: list, known: list, retag: list,
              to_hash: list, gone: list, pool, outbox: "_Outbox") -> None:
        """What the survey of some folders found: rows to write, files to read, files
        whose tags were never read (unchanged: not the writer's, only the tag stage's)."""
        self._found[root] += tally.found
        outbox.add(tally, *problems, *known)
        outbox.tag_only += retag
        if to_hash:  # counted as found before any of them is counted as processed
            outbox.flush()
        for batch in batches(to_hash, _size):
            pool.submit(batch)
        self._gone[root] += gone

    def _retry_unstable(self, stage, put_all) -> None:
        """Read once more, in this thread, the files that changed while they were read."""
        with self._retry_lock:
            retry, self._retry = self._retry, []
        if not retry or self.stop.wait(RETRY_DELAY_S):
            return
        log.info("re-reading %d files that changed while they were read", len(retry))
        # Unstable again: the writer records it as an error, nothing is indexed.
        results = [self._hold(result) for item in retry if (result := stage(item)) is not None]
        put_all(results)
        self._offer_tags(results)

    def _left_for_later(self, folders: dict[str, int], files: set[tuple[int, int]]) -> None:
        self.unsettled.update(folders)
        self._unsettled_files |= files

    def _settle(self, complete: dict[str, bool], put_all, sink) -> None:
        """The walks are done: the writer places the files it held, marks missing the rows
        gone under roots that look mounted, then the placed files' tags are looked at."""
        stopped = self.stop.is_set()
        mounted = [] if stopped else [root for root, done in complete.items()
                                      if done and self._looks_mounted(root)]
        gone = tuple(self._gone_now(g) for root in mounted for g in self._gone.get(root, ()))
        gone = tuple(g for g in gone if g is not None)
        also = [root for root in self.online if root not in complete and not looks_unmounted(root)]
        put_all([Settle(gone, tuple(mounted + also), drop=stopped)])
        if sink is not None:
            sink.drain()  # the writer has placed them: `resolved` is ours to read
        resolved, self.writer.resolved = self.writer.resolved, []
        self._offer_tags(resolved)
        for folder in self.writer.unplaced:  # held files of a root that looked unmounted
            # (and may be back already): their folders are looked at again, like a copy's
            self.unsettled[folder] = max(self.unsettled.get(folder, 0), time.time_ns())

    def _gone_now(self, gone: Gone) -> Gone | None:
        """A row whose inode is a file left for later (a folder renamed while copies into
        it run) is that file, most likely: not missing now. Its folder is looked at again
        with the file's, once settled, where identity.py tells whether it is that file."""
        if (gone.device, gone.inode) not in self._unsettled_files:
            return gone
        folder = os.path.dirname(gone.path)
        self.unsettled[folder] = max(self.unsettled.get(folder, 0), time.time_ns())
        return None

    def _looks_mounted(self, root: str) -> bool:
        """Whether the rows the walk of `root` found gone may be called missing: not when
        the root looks like an empty mount point (a disk not mounted)."""
        gone = self._gone.get(root)
        if root in self.parts:  # a partial scan: the root itself must look mounted
            if gone and looks_unmounted(root):
                self._warn(root, f"root {printable(root)} is empty or gone: nothing marked "
                           "missing (not mounted?)")
                self.guarded.add(root)
                return False
        elif self._found.get(root, 0) == 0 and not any(
                within(folder, root) for folder in self.unsettled):  # (files still copied in)
            present = self.reader.present_count_under(db_text(root)[0])
            if present:
                self._warn(root, f"root {printable(root)} has no media files but the catalogue "
                           f"holds {present} for it: nothing marked missing (not mounted?)")
                self.guarded.add(root)
                return False
        return True

    def _healthy(self, root: str) -> bool:
        try:
            check_root(root)
            return True
        except RootUnusable as problem:
            self._warn(root, f"{problem}: skipped, nothing marked missing")
            self.guarded.add(root)
            return False

    def _warn(self, root: str, text: str) -> None:
        log.warning("%s", text)
        self.warnings.setdefault(root, []).append(text)

    def _message(self, extra: str | None = None) -> str | None:
        lines = [w for texts in self.warnings.values() for w in texts]
        if extra:
            lines.append(extra)
        return "\n".join(lines) or None

    def _record_failure(self, message: str) -> None:
        try:
            self.writer.finish("failed", message)
        except WriterFailed as error:  # the next start marks the job interrupted
            log.debug("%s", error)


def _part_failed(job: tuple[Part, SurveySettings], reason: str | None = None) -> Surveyed:
    """A part whose worker died: its folders are unknown, so its root's walk is incomplete."""
    part = job[0]
    problem = Problem(part.tops[0], "walk", f"a survey worker failed: {reason or 'timed out'}")
    return Surveyed(Tally(), [problem], [], [], [], [], [], complete=False, unsettled={},
                    unsettled_files=set())


class _Outbox:
    """Results for the writer, handed over every few folders rather than one by one:
    each hand-off to the writer's thread wakes it and costs the walk the GIL. Once
    handed over, `then` gets them too (the tags stage: after the rows it tags)."""

    EVERY = 256

    def __init__(self, put_all: Callable[[list], None], then: Callable[[list], None]):
        self.put_all, self.then = put_all, then
        self.items: list = []
        self.tag_only: list[Hashed] = []  # for `then` alone: rows the writer need not touch
        self.tally = Tally()

    def add(self, *items: object) -> None:
        for item in items:
            if isinstance(item, Tally):
                self.tally = Tally(*(a + b for a, b in zip(self.tally, item)))
            else:
                self.items.append(item)
        if len(self.items) + len(self.tag_only) + self.tally.found >= self.EVERY:
            self.flush()

    def flush(self) -> None:
        items, tally, tag_only = self.items, self.tally, self.tag_only
        self.items, self.tally, self.tag_only = [], Tally(), []
        if items or tally.found or tally.skipped:
            self.put_all([tally, *items])
        if items or tag_only:
            self.then(items + tag_only)


def _size(item: ToHash) -> int:
    return item.seen.size
