"""The plain values that flow between the stages of a scan.

A walk produces `Seen` files; the planner compares them with `Known` rows and
decides what each needs; the hashing stage turns a file into `Hashed`, or into a
`FileFailure` when it could not be read, or `Unstable` when it changed while it
was read. The writer consumes all of them. None of these types knows about
threads, SQL or the terminal. The per-file ones are named tuples: one or two
are made per file per scan, and a frozen dataclass took several times longer
to build (and to define, at start-up).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import NamedTuple


class Seen(NamedTuple):
    """A regular file found by the walk, with the stat figures the walk took.

    `path` is the path as the OS gives it (undecodable bytes as surrogates);
    `kind` is the media kind chosen from its extension.
    """

    root: str
    path: str
    size: int
    mtime_ns: int
    inode: int
    device: int
    ctime_ns: int
    kind: str


class Stored(NamedTuple):
    """The little a rescan reads of every row, streamed beside the walk.

    The field order is the planner's fast path: `Stored[1:6]` and `Seen[2:7]`
    are both (size, mtime_ns, inode, device, ctime_ns), so "unchanged" is one
    tuple comparison plus `ready` (hashed, no error, present). The planner
    reads the whole row, `Known`, only for the few files that are not
    unchanged. A row without a ctime yet (from schema 2) has None here, so it
    takes the slow path once, which records its ctime.
    """

    path: str
    size: int
    mtime_ns: int
    inode: int
    device: int
    ctime_ns: int | None
    ready: bool
    id: int
    present: bool
    dir: str
    tags_done: bool = False


class Known(NamedTuple):
    """What the catalogue holds for one path: the whole row the planner needs."""

    path: str
    size: int
    mtime_ns: int
    inode: int
    device: int
    ready: bool
    id: int
    hash: str | None
    status: str
    has_error: bool = False
    tags_hash: str | None = None
    ctime_ns: int | None = None  # None: not recorded yet (a row from schema 2)
    path_raw: bytes | None = None


class ToHash(NamedTuple):
    """A file that must be read: new, changed, or never hashed.

    `row` is the catalogue row at the same path, if any.
    """

    seen: Seen
    row: Known | None = None


class Hashed(NamedTuple):
    """A file whose content hash is known, read or (for a rename) inherited.

    `hold`: which row it is cannot be told before the whole scan has been seen
    (it may be a file renamed or moved from a place not walked yet): the writer
    keeps it until `Settle`, and its tags are looked at after that (identity.py).
    """

    seen: Seen
    hash: str
    row: Known | None = None
    bytes_read: int = 0
    hold: bool = False


class FileFailure(NamedTuple):
    """A file that could not be read; `vanished` when it was gone by then."""

    seen: Seen
    error: str
    row: Known | None = None
    vanished: bool = False


def describe(error: BaseException) -> str:
    """The text of a per-file error, for its row and the log: `Type: reason`.

    The one place errors become text, so no row ever says only `error: `. An
    OSError gives its strerror (`Permission denied`, no errno or path). A type
    named only `error` or `Error` (each mutagen format's, struct's) is named with
    its module: `mutagen.flac.error`. An exception with no message at all (real
    WAV files make mutagen raise `error(error(OSError()))`) says so, and names the
    exceptions it came from."""
    reason = _reason(error)
    if reason:
        return f"{_type_name(error)}: {reason}"
    causes = [f"{_type_name(e)}: {_reason(e)}" if _reason(e) else _type_name(e)
              for e in _causes(error)]
    return f"{_type_name(error)}: no reason given" + (f" (from {', from '.join(causes)})"
                                                       if causes else "")


def _reason(error: BaseException) -> str:
    return (getattr(error, "strerror", None) or str(error)).strip()


def _type_name(error: BaseException) -> str:
    kind = type(error)
    if kind.__name__.lower() != "error":
        return kind.__name__
    module = ".".join(part for part in kind.__module__.split(".") if not part.startswith("_"))
    return f"{module}.{kind.__name__}"


def _causes(error: BaseException) -> list[BaseException]:
    """What `error` came from: its cause, context, or an exception it was made of."""
    causes: list[BaseException] = []
    while len(causes) < 5:
        wrapped = error.args[0] if error.args and isinstance(error.args[0], BaseException) else None
        error = error.__cause__ or wrapped or error.__context__
        if error is None or error in causes:
            return causes
        causes.append(error)
    return causes


class Unstable(NamedTuple):
    """A file whose size or times changed while it was read: retry, never record."""

    item: ToHash
    bytes_read: int = 0


class Gone(NamedTuple):
    """A catalogue row whose file was not found where the walk looked."""

    id: int
    path: str
    device: int = 0
    inode: int = 0


class Settle(NamedTuple):
    """The end of a scan's walks, for the writer: which row each held file is
    (identity.py), then the rows gone, `gone`, from walks that completed under
    roots that looked mounted, `roots`. With `drop` (a cancelled scan) the held
    files are let go, for the next scan to place."""

    gone: tuple[Gone, ...] = ()
    roots: tuple[str, ...] = ()
    drop: bool = False


class Problem(NamedTuple):
    """Something with no file row to carry it: an unreadable folder, a vanished file."""

    path: str
    stage: str
    error: str


class Tally(NamedTuple):
    """Counts settled outside the writer: found, unchanged, skipped, tags queued."""

    found: int = 0
    unchanged: int = 0
    skipped: int = 0
    tags_queued: int = 0


class TagJob(NamedTuple):
    """A file whose tags must be read: by path, for the content with `hash`.

    `is_cover` marks a folder image (cover.jpg...) to put in the artwork
    cache; `art_dir` is that cache (None: pictures are not kept). `thumbnails`:
    their sizes, and of a photo's or video's own picture, made within
    `thumbnail_budget_s` seconds.
    """

    path: str
    text: str
    hash: str
    is_cover: bool = False
    art_dir: str | None = None
    thumbnails: tuple[int, ...] = ()
    thumbnail_budget_s: float = 2.0


MEDIA_COLUMNS = (
    "title", "artist", "artists", "album", "album_artist", "track_no", "track_total", "disc_no",
    "disc_total", "year", "date", "genre", "composer", "compilation", "comment",
    "mb_recording_id", "mb_release_id", "mb_artist_id", "mb_release_group_id",
    "rg_track_gain", "rg_track_peak", "rg_album_gain", "rg_album_peak",
    "duration", "bitrate", "sample_rate", "bit_depth", "channels", "codec", "has_embedded_art",
    # videos (schema 7): the container, names, and the main video stream's facts
    "container", "show", "season", "episode", "description", "chapters", "width", "height",
    "display_aspect_ratio", "frame_rate", "color_primaries", "color_transfer", "hdr",
    "audio_languages", "subtitle_languages",
    # photos (schema 7; `width` and `height` above): EXIF
    "taken_at", "camera_make", "camera_model", "lens", "orientation", "latitude", "longitude",
    "iso", "exposure_s", "f_number", "focal_length_mm",
)


# The `streams` table's columns after `file_id`, in order (docs/schema.md): video.py
# makes each stream's row in this order.
STREAM_COLUMNS = ("idx", "type", "codec", "profile", "width", "height", "frame_rate", "bit_depth",
                  "pix_fmt", "color_transfer", "channels", "channel_layout", "sample_rate",
                  "language", "title", "is_default", "is_forced")


class Tags(NamedTuple):
    """What reading a file's tags gave: catalogue columns, every tag as JSON, pictures.

    `values` are the `media` columns in `MEDIA_COLUMNS` order: a tuple, not a dict,
    because a result crosses a pipe from its worker, and the names made it twice
    the size. `error` is set (and `values` empty) when the file could not be parsed.
    `streams`: a video's streams, each a tuple in STREAM_COLUMNS order.
    """

    text: str
    hash: str
    values: tuple = ()
    tags_json: str | None = None
    art: tuple = ()
    error: str | None = None
    cover: bool = False  # the result for a folder image: artwork only, no media row
    final: bool = True  # False when its worker died: no verdict, read it again next scan
    streams: tuple = ()


class CopyTags(NamedTuple):
    """Tags for a file whose content is already in the catalogue: copied, not parsed."""

    text: str
    hash: str
    source_file_id: int


HashResult = Hashed | FileFailure | Unstable


@dataclass(slots=True)
class Counters:
    """The totals of one scan job, as stored on its `scan_jobs` row."""

    files_found: int = 0
    files_processed: int = 0
    bytes_processed: int = 0
    added: int = 0
    modified: int = 0
    moved: int = 0
    missing: int = 0
    restored: int = 0
    unchanged: int = 0
    skipped: int = 0
    errors: int = 0
    metadata_queued: int = 0
    metadata_extracted: int = 0
    metadata_copied: int = 0
    metadata_failed: int = 0


@dataclass(frozen=True, slots=True)
class Progress:
    """A snapshot of a running scan, handed to progress callbacks."""

    job_id: int
    counters: Counters
    walk_done: bool
    started: float
    now: float = field(default_factory=time.monotonic)

    @property
    def elapsed(self) -> float:
        return max(self.now - self.started, 1e-9)

    @property
    def percent(self) -> float:
        """Share of the files found so far whose handling has finished."""
        found = self.counters.files_found
        return 100.0 * self.counters.files_processed / found if found else 0.0

    @property
    def rate(self) -> float:
        return self.counters.files_processed / self.elapsed

    @property
    def eta(self) -> float | None:
        """Seconds left, once the walk is done and the total is known."""
        if not self.walk_done or self.rate <= 0:
            return None
        left = self.counters.files_found - self.counters.files_processed
        return max(left, 0) / self.rate
