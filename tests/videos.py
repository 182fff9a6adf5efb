"""Real video files for the tests, made with PyAV's bundled encoders (libx264, libx265,
libvpx, mpeg4, aac, libopus, mp2) in a few milliseconds each: what each file holds is
what the test that made it asserts."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
from av.stream import Disposition

SRT = "1\n00:00:00,000 --> 00:00:00,400\nHello\n\n"


def _picture(width: int, height: int, pix_fmt: str, shade: int) -> av.VideoFrame:
    frame = av.VideoFrame(width, height, pix_fmt)
    for plane in frame.planes:
        plane.update(bytes([shade % 256]) * plane.buffer_size)
    return frame


def _sound(stream, index: int) -> av.AudioFrame:
    context = stream.codec_context
    samples = context.frame_size or 1024
    frame = av.AudioFrame(format=context.format.name, layout=context.layout.name, samples=samples)
    for plane in frame.planes:
        plane.update(bytes(plane.buffer_size))
    frame.sample_rate, frame.pts = context.sample_rate, index * samples
    return frame


def make_video(path: Path, *, codec: str = "libx264", size: tuple[int, int] = (64, 48),
               rate: int = 25, frames: int = 10, pix_fmt: str = "yuv420p",
               audio: tuple[tuple[str, str, str | None, bool], ...] = (),
               subtitles: tuple[tuple[str | None, bool, bool], ...] = (),
               tags: dict[str, str] | None = None, color: dict[str, int] | None = None,
               options: dict[str, str] | None = None, codec_tag: str | None = None,
               chapters: int = 0, attachment: tuple[str, str, bytes] | None = None,
               title: str | None = None) -> Path:
    """A video of `frames` frames; `audio`: (codec, layout, language, default) per stream;
    `subtitles`: (language, default, forced) per SubRip stream; `color`: the codec
    context's color_trc, color_primaries, colorspace numbers."""
    path.parent.mkdir(parents=True, exist_ok=True)
    srt = None
    with av.open(str(path), "w") as out:
        out.metadata.update(tags or {})
        if title:
            out.metadata["title"] = title
        video = out.add_stream(codec, rate=rate, options=options or {})
        video.width, video.height, video.pix_fmt = size[0], size[1], pix_fmt
        if codec_tag:
            video.codec_context.codec_tag = codec_tag
        for name, value in (color or {}).items():
            setattr(video.codec_context, name, value)
        sounds = []
        for name, layout, language, default in audio:
            sound = out.add_stream(name, rate=48000, layout=layout)
            if language:
                sound.metadata["language"] = language
            sound.disposition = Disposition.default if default else Disposition(0)
            sounds.append(sound)
        texts = []
        for language, default, forced in subtitles:
            if srt is None:
                sub_file = path.with_suffix(".srt.tmp")
                sub_file.write_text(SRT)
                srt = av.open(str(sub_file), format="srt")
            text = out.add_stream_from_template(srt.streams[0])
            if language:
                text.metadata["language"] = language
            text.disposition = Disposition((Disposition.default if default else 0)
                                           | (Disposition.forced if forced else 0))
            texts.append(text)
        if attachment:
            out.add_attachment(*attachment)
        if chapters:
            out.set_chapters([{"id": i + 1, "start": i, "end": i + 1,
                               "time_base": Fraction(frames, rate * chapters),
                               "metadata": {"title": f"Chapter {i + 1}"}} for i in range(chapters)])
        for index in range(frames):
            frame = _picture(*size, pix_fmt, index * 9 + 16)
            frame.pts = index
            out.mux(video.encode(frame))
        out.mux(video.encode())
        for sound in sounds:
            samples = sound.codec_context.frame_size or 1024
            for index in range(max(1, frames * 48000 // rate // samples)):
                out.mux(sound.encode(_sound(sound, index)))
            out.mux(sound.encode())
        if srt is not None:
            packets = [p for p in srt.demux() if p.dts is not None]
            for text in texts:
                for packet in packets:
                    packet.stream = text
                    out.mux(packet)
            srt.close()
            sub_file.unlink()
    return path
