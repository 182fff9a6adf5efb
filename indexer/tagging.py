"""The front of the metadata stage: which files need their tags read, and how.

A file's tags are read only when its content changed: the catalogue keeps,
per file, the hash of the content whose tags it holds (`files.tags_hash`), so
a file only touched or moved keeps its tags unparsed. A file with the same
content as one already read (a copy) gets that file's tags without a parse.
The rest go to the parsing pool: worker processes in parallel mode (tag
parsing is pure Python: 2 processes ran 1.9x faster than one here, 2 threads
1.6x slower), the calling thread in sequential mode. Either way the walk and
the hashing go on while tags are read; the pool's bounded queue is the only
brake, so memory stays flat.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable
from pathlib import Path

from .catalog import Lookups
from .config import MetadataConfig
from .kinds import is_cover, taggable
from .media_rows import UNAVAILABLE
from .paths import db_text, printable
from .pipeline import Inline, ProcessPool, batches, named, with_alarm
from .records import CopyTags, Hashed, TagJob, Tags, Tally

log = logging.getLogger(__name__)

READ_TAGS = "indexer.metadata:read_tags"


class Tagging:
    """Decides, for hashed files, whether their tags need reading; queues the work."""

    def __init__(self, settings: MetadataConfig, db_path: Path, put_all: Callable[[list], None],
                 stop: threading.Event, *, parallel: bool, again: bool = False):
        """`again` (`scan --rehash`): read the tags of every file offered, even those the
        catalogue holds for its content (a failure recorded, a better parser since)."""
        self.settings, self.put_all, self.stop, self.parallel = settings, put_all, stop, parallel
        self.again = again
        self.art_dir = str(db_path.parent / "artwork") if settings.artwork else None
        self.sources = Lookups(db_path)
        # A scan that began with no media rows knows each content that can have one:
        # those it offered itself. Asking the catalogue for every other was a quarter
        # of the hashing threads' time in a first scan.
        self.offered = Offered() if not again and not self.sources.any_media() else None
        self._pool: ProcessPool | Inline | None = None
        self._lock = threading.Lock()

    def offer(self, files: Iterable[Hashed]) -> None:
        """Queue tag reading for those of `files` whose tags are not in the catalogue."""
        copies, jobs = [], []
        for item in files:
            seen = item.seen
            cover = is_cover(seen.kind, seen.path)
            if not (cover or taggable(seen.kind, seen.path)):
                continue
            if item.row is not None and item.row.tags_hash == item.hash and not self.again:
                continue
            text = db_text(seen.path)[0]
            source = None if cover or self.again else self._source(item.hash)
            if source is not None:
                copies.append(CopyTags(text, item.hash, source))
            else:
                jobs.append(TagJob(seen.path, text, item.hash, cover, self.art_dir,
                                   self.settings.thumbnails, self.settings.thumbnail_budget_s))
        if copies or jobs:
            self.put_all([Tally(tags_queued=len(jobs)), *copies])
        # Batches small enough to spread a folder over the workers, big enough that
        # results reach the writer's thread a few dozen at a time.
        for batch in batches(jobs, lambda job: 1, max_items=32):
            self._driver().submit(batch)

    def _source(self, digest: str) -> int | None:
        """A file whose tags this content may copy, by the catalogue."""
        if self.offered is not None and not self.offered.add(digest):
            return None  # offered for the first time: no row of the catalogue has it
        return self.sources.tag_source(digest)

    def drain(self) -> None:
        if self._pool is not None:
            self._pool.drain()

    def close(self) -> None:
        try:
            if self._pool is not None:
                self._pool.close()
                if getattr(self._pool, "replaced", 0):
                    log.info("replaced %d tag-reading workers that hung or died", self._pool.replaced)
        finally:
            self.sources.close()

    def _driver(self) -> ProcessPool | Inline:
        with self._lock:  # offered from several hashing threads; the pool starts once
            if self._pool is None:
                self._pool = self._start()
            return self._pool

    def _start(self) -> ProcessPool | Inline:
        timeout = self.settings.timeout_s
        if self.parallel:
            return ProcessPool(READ_TAGS, self.put_all, self.stop, workers=self.settings.workers,
                               timeout=timeout, on_timeout=self._timed_out, on_crash=_crashed,
                               on_unplaced=_unplaced,
                               name="tags")
        return Inline(with_alarm(named(READ_TAGS), timeout, self._timed_out), self.put_all, self.stop)

    def _timed_out(self, job: TagJob) -> Tags:
        log.warning("%s: reading its tags took over %g s: stopped", printable(job.text),
                    self.settings.timeout_s)
        return Tags(job.text, job.hash, cover=job.is_cover, final=False,
                    error=f"TimeoutError: reading the tags took over {self.settings.timeout_s:g} s")


class Offered:
    """The contents offered for their tags so far, as a Bloom filter: fixed memory
    (1 MiB), and never a false "not offered" (about 3% false "offered" at 1,000,000
    contents, each only a catalogue lookup more)."""

    BITS = 1 << 23
    PROBES = 3

    def __init__(self):
        self._bits = bytearray(self.BITS >> 3)
        self._lock = threading.Lock()  # (offered from several hashing threads)

    def add(self, digest: str) -> bool:
        """Record `digest`; whether it may have been offered before."""
        first, step = hash(digest), hash((digest, 1)) | 1
        seen = True
        with self._lock:
            for probe in range(self.PROBES):
                at = (first + probe * step) % self.BITS
                byte, bit = at >> 3, 1 << (at & 7)
                if not self._bits[byte] & bit:
                    seen = False
                    self._bits[byte] |= bit
        return seen


def _unplaced(job: TagJob, reason: str) -> Tags:
    """No worker read it (none could start, or one stopped before its first item): no
    word on the file at all, however often (media_rows: never a verdict)."""
    return Tags(job.text, job.hash, error=f"{UNAVAILABLE} {reason}", cover=job.is_cover,
                final=False)


def _crashed(job: TagJob, reason: str) -> Tags:
    return Tags(job.text, job.hash, error=f"WorkerCrash: {reason}", cover=job.is_cover, final=False)
