"""What a video file's headers say, read with PyAV (the only module that imports `av`).

`probe(path)` opens a file with FFmpeg's demuxers and their default probe
window (no `probesize` or `analyzeduration` of our own: FFmpeg's 5 MB and 5 s
are already more than a container's header needs), and reads the container,
its tags, chapters and streams from what opening it read. A 1.6 GB film costs
1.5 to 4 MB of reads this way (docs/benchmarks.md), against the 200 MB to 1 GB
that `ffprobe -probesize 1G -analyzeduration 200M` reads.

One frame is decoded only where the headers cannot tell and it pays: a 10-bit
HEVC or AV1 stream that may be Dolby Vision (PQ, HLG or unspecified transfer,
no Dolby Vision codec tag) has its first frame decoded to look for Dolby
Vision's side data (PyAV 18 exposes no stream side data; 62 ms at 1080p,
400 ms for 4K HEVC, measured). Everything else is read from the headers.

A FIFO blocks `av.open` forever, whatever its timeout, and no signal interrupts
FFmpeg's C calls: a path is opened here without blocking and checked to be a
regular file first, then FFmpeg reads that same open file (/proc/self/fd), so
nothing can be swapped in between.
"""

from __future__ import annotations

import math
import os
import stat
import time
from fractions import Fraction
from typing import Any, NamedTuple

import av

from .records import STREAM_COLUMNS

# FFmpeg's names of AVColorTransferCharacteristic and AVColorPrimaries (libavutil/pixfmt.h);
# 2, "unspecified", is None here.
TRANSFERS = {1: "bt709", 4: "gamma22", 5: "gamma28", 6: "smpte170m", 7: "smpte240m", 8: "linear",
             9: "log100", 10: "log316", 11: "iec61966-2-4", 12: "bt1361e", 13: "iec61966-2-1",
             14: "bt2020-10", 15: "bt2020-12", 16: "smpte2084", 17: "smpte428", 18: "arib-std-b67"}
PRIMARIES = {1: "bt709", 4: "bt470m", 5: "bt470bg", 6: "smpte170m", 7: "smpte240m", 8: "film",
             9: "bt2020", 10: "smpte428", 11: "smpte431", 12: "smpte432", 22: "ebu3213"}
HDR_OF_TRANSFER = {"smpte2084": "HDR10", "arib-std-b67": "HLG"}
# Sample entries (MP4) and codec tags that are Dolby Vision streams.
DOLBY_VISION_TAGS = frozenset({"dvh1", "dvhe", "dva1", "dvav", "dav1", "dvc1"})
FIRST_FRAME_PACKETS = 16  # a first frame not decoded from these is not looked for further
MAX_PICTURE_BYTES = 32 << 20


class NotRegular(OSError):
    """The path is not a regular file (a FIFO, a device, a folder): not opened. An
    OSError: no verdict on the file, which the next scan's walk looks at again."""


class Probe(NamedTuple):
    container: str
    duration: float | None
    bitrate: int | None
    tags: dict[str, list[str]]
    chapters: int
    streams: list[tuple]  # STREAM_COLUMNS order
    main: dict[str, Any]  # the main video stream's facts, for the file's own columns
    pictures: list[bytes]  # attached pictures (an MP4's cover, an MKV's cover attachment)


def probe(path: str) -> Probe:
    """The container, tags, chapters and streams of the video at `path`. Raises what
    FFmpeg raises (`av.error.InvalidDataError` for what is not a video), or NotRegular."""
    with _opened(path) as container:
        return _read(container, path)


class _opened:
    """The video at `path`, opened by FFmpeg through a descriptor checked to be a regular
    file's (a FIFO would block av.open forever)."""

    def __init__(self, path: str):
        self.path = path

    def __enter__(self) -> Any:
        self.fd = os.open(self.path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
        try:
            if not stat.S_ISREG(os.fstat(self.fd).st_mode):
                raise NotRegular("not a regular file: not opened (a FIFO would block the reader)")
            self.container = av.open(f"/proc/self/fd/{self.fd}", metadata_errors="replace")
        except BaseException:
            os.close(self.fd)
            raise
        return self.container

    def __exit__(self, *exc: object) -> None:
        try:
            self.container.close()
        finally:
            os.close(self.fd)


POSTER_AT = 0.1  # of the duration: past the opening titles, before the plot


def poster(path: str, budget_s: float) -> Any | None:
    """A frame of the video as a PIL image (PyAV makes it), from a tenth of its length,
    or None if none was decoded within `budget_s` seconds (checked between packets: one
    4K HEVC frame takes 400 ms, measured)."""
    deadline = time.monotonic() + budget_s
    with _opened(path) as container:
        streams = [s for s in container.streams.video
                   if not s.disposition & av.stream.Disposition.attached_pic]
        if not streams or time.monotonic() >= deadline:
            return None
        stream = streams[0]
        if container.duration and container.duration > 0:
            try:
                container.seek(int(container.duration * POSTER_AT), backward=True)
            except av.error.FFmpegError:
                pass  # not seekable: the first frame will do
        for packet in container.demux(stream):
            if time.monotonic() >= deadline:
                return None
            for frame in packet.decode():
                return frame.to_image()
    return None


def _read(container: Any, path: str) -> Probe:
    pictures, streams, first_video = [], [], None
    for stream in container.streams:  # pictures first: a decode below reads packets on
        if stream.disposition & av.stream.Disposition.attached_pic:
            pictures.extend(_picture(container, stream))
        elif stream.type == "attachment":
            pictures.extend(_attachment(stream))
        else:
            streams.append(_stream_row(stream))
            if stream.type == "video" and first_video is None:
                first_video = stream, streams[-1]
    main = _main_video(container, *first_video) if first_video else {}
    return Probe(
        container=_container_name(container.format.name, path),
        duration=_seconds(container.duration, Fraction(1, av.time_base))
        or _longest(container.streams),
        bitrate=container.bit_rate or None,
        tags=_flat(container.metadata),
        chapters=len(container.chapters()),
        streams=streams, main=main, pictures=pictures)


def _container_name(names: str, path: str) -> str:
    """FFmpeg's demuxer name; of a demuxer with several ("matroska,webm",
    "mov,mp4,m4a,3gp,3g2,mj2"), the one the file's extension is, else the first."""
    choices = names.split(",")
    extension = path.rsplit(".", 1)[-1].lower()
    return extension if extension in choices else choices[0]


def _stream_row(stream: Any) -> tuple:
    context = stream.codec_context
    video, audio = stream.type == "video", stream.type == "audio"
    codec = context.codec.canonical_name if context is not None and context.codec else None
    pix_fmt = context.pix_fmt if video else None
    disposition = stream.disposition
    return (
        stream.index, stream.type, codec, stream.profile or None,
        _positive(context.width) if video else None, _positive(context.height) if video else None,
        _rate(stream) if video else None, _bits(pix_fmt, codec),
        pix_fmt, TRANSFERS.get(int(context.color_trc)) if video else None,
        _positive(context.channels) if audio else None,
        (context.layout.name or None) if audio else None,
        _positive(context.sample_rate) if audio else None,
        stream.language or None, stream.metadata.get("title") or None,
        int(bool(disposition & av.stream.Disposition.default)),
        int(bool(disposition & av.stream.Disposition.forced)),
    )


def _main_video(container: Any, stream: Any, row: tuple) -> dict[str, Any]:
    """The facts of the file's first video stream that the file's own row carries."""
    facts = dict(zip(STREAM_COLUMNS, row))
    context = stream.codec_context
    facts["display_aspect_ratio"] = _aspect(stream, facts["width"], facts["height"])
    facts["color_primaries"] = PRIMARIES.get(int(context.color_primaries))
    facts["hdr"] = _hdr(container, stream, facts)
    return facts


def _hdr(container: Any, stream: Any, facts: dict) -> str | None:
    """HDR10 (PQ transfer), HLG, or DolbyVision: by its codec tag, else, for a 10-bit HEVC
    or AV1 stream that may be one, by the side data of its first frame."""
    tag = (stream.codec_context.codec_tag or "").strip("\0").lower()
    if tag in DOLBY_VISION_TAGS:
        return "DolbyVision"
    transfer = facts["color_transfer"]
    if (facts["codec"] in ("hevc", "av1") and (facts["bit_depth"] or 0) >= 10
            and transfer in (None, "smpte2084", "arib-std-b67")
            and _dolby_vision_frame(container, stream)):
        return "DolbyVision"
    return HDR_OF_TRANSFER.get(transfer)


def _dolby_vision_frame(container: Any, stream: Any) -> bool:
    """Whether the stream's first frame carries Dolby Vision side data (an RPU)."""
    from av.sidedata.sidedata import Type
    wanted = {Type.DOVI_RPU_BUFFER, Type.DOVI_METADATA}
    try:
        for count, packet in enumerate(container.demux(stream)):
            for frame in packet.decode():
                return any(data.type in wanted for data in frame.side_data)
            if count >= FIRST_FRAME_PACKETS:
                return False
    except av.error.FFmpegError:
        return False  # a stream that cannot be decoded is not known to be Dolby Vision
    return False


def _picture(container: Any, stream: Any) -> list[bytes]:
    """An attached picture's bytes (FFmpeg queues its one packet when the file is opened)."""
    for packet in container.demux(stream):
        data = bytes(packet)
        return [data] if 0 < len(data) <= MAX_PICTURE_BYTES else []
    return []


def _attachment(stream: Any) -> list[bytes]:
    """A Matroska attachment that is a cover image (`cover.jpg`, `cover_land.png`, ...)."""
    name = str(stream.metadata.get("filename") or stream.name or "").lower()
    mimetype = str(stream.metadata.get("mimetype") or "")
    if not (name.startswith("cover") and mimetype.startswith("image/")):
        return []
    data = bytes(stream.data or b"")
    return [data] if 0 < len(data) <= MAX_PICTURE_BYTES else []


def _flat(metadata: dict) -> dict[str, list[str]]:
    """Container tags as the catalogue keeps every tag: lower-case keys, lists of text."""
    flat: dict[str, list[str]] = {}
    for key, value in metadata.items():
        text = str(value).replace("\0", "").strip()
        if text:
            flat.setdefault(key.lower(), []).append(text)
    return flat


def _rate(stream: Any) -> float | None:
    rate = stream.average_rate or stream.guessed_rate or stream.base_rate
    return round(float(rate), 3) if rate and 0 < rate < 10_000 else None


def _bits(pix_fmt: str | None, codec: str | None) -> int | None:
    """Bits per sample: of a video's pixel format; of PCM audio, by its codec's name."""
    if pix_fmt:
        try:
            return av.VideoFormat(pix_fmt).components[0].bits or None
        except (ValueError, IndexError):
            return None
    if codec and codec.startswith("pcm_"):
        digits = "".join(c for c in codec[5:] if c.isdigit())
        return int(digits) if digits else None
    return None


def _aspect(stream: Any, width: int | None, height: int | None) -> str | None:
    """"16:9": the display aspect ratio the stream declares, else that of its pixels."""
    ratio = stream.display_aspect_ratio
    if not ratio and width and height:
        ratio = Fraction(width, height)
    return f"{ratio.numerator}:{ratio.denominator}" if ratio else None


def _seconds(value: int | None, unit: Fraction) -> float | None:
    if value is None or value <= 0:
        return None
    seconds = float(value * unit)
    return seconds if math.isfinite(seconds) else None


def _longest(streams: Any) -> float | None:
    durations = [_seconds(s.duration, s.time_base) for s in streams if s.time_base]
    return max((d for d in durations if d), default=None)


def _positive(value: Any) -> int | None:
    return int(value) if isinstance(value, int) and value > 0 else None
