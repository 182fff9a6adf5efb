"""Videos and photos as catalogue rows: the probes' facts become `media` columns and
`streams` rows, the metadata stage's result for those kinds.

Called by metadata.read_tags in the worker processes, under the same rules as
tags: what raises here is that file's error, recorded on its row (metadata.py
decides which errors are a verdict). video.py, photo.py and names.py do the
reading, each with its library; this module only maps what they found.
"""

from __future__ import annotations

import json
from typing import Any

from . import names, photo, video
from .metadata import (MAX_DURATION_S, display, first, store_pictures, tag_columns, whole,
                       year_of)
from .records import MEDIA_COLUMNS, STREAM_COLUMNS, TagJob, Tags

# Container tags (FFmpeg's names, lower case: mov's `show`, `season_number`,
# `episode_sort`; Matroska's `DATE_RELEASED`, `SUMMARY`...) for each column, by preference.
SHOW_KEYS = ("show", "tvshow", "series")
SEASON_KEYS = ("season_number", "season")
EPISODE_KEYS = ("episode_sort", "episode_number", "episode")
DESCRIPTION_KEYS = ("description", "synopsis", "summary")
DATE_KEYS = ("date", "date_released", "year", "date_recorded")
# The picture type of a video's frame and a photo's own small copy in `file_artwork`
# (ID3's "other"): no embedded picture, so `has_embedded_art` stays 0 for them.
POSTER = 0


def read_video(job: TagJob) -> Tags:
    found = video.probe(job.path)
    flat = found.tags
    columns = video_columns(found, flat)
    columns.update(named(columns, job.text))
    pictures = [(data, "", 3) for data in found.pictures]
    columns["has_embedded_art"] = int(bool(pictures))
    if not pictures and job.thumbnails and job.art_dir:  # a frame, as its picture
        frame = _optional(video.poster, job.path, job.thumbnail_budget_s)
        if frame is not None:
            pictures = [(photo.jpeg(frame, max(job.thumbnails)), "image/jpeg", POSTER)]
    art = tuple(store_pictures(pictures, job.art_dir, job.thumbnails)) if job.art_dir else ()
    return Tags(job.text, job.hash, tuple(columns.get(c) for c in MEDIA_COLUMNS),
                json.dumps(flat, ensure_ascii=False, sort_keys=True), art,
                streams=tuple(found.streams))


def read_image(job: TagJob) -> Tags:
    columns = photo.probe(job.path)
    art = ()
    if job.thumbnails and job.art_dir:  # the photo made small, as its picture
        data = _optional(photo.preview, job.path, max(job.thumbnails), job.thumbnail_budget_s)
        if data is not None:
            art = tuple(store_pictures([(data, "image/jpeg", POSTER)], job.art_dir,
                                       job.thumbnails))
    return Tags(job.text, job.hash, tuple(columns.get(c) for c in MEDIA_COLUMNS), art=art)


def _optional(make: Any, *args: Any) -> Any:
    """A thumbnail's picture, or None when it cannot be made: the headers were read, and a
    frame that does not decode (a truncated file, a codec FFmpeg lacks) is no reason to
    lose them."""
    try:
        return make(*args)
    except Exception:
        return None


def video_columns(found: video.Probe, tags: dict[str, list[str]]) -> dict[str, Any]:
    """The `media` columns of a probed video: its tags (`tags`: as FFmpeg names them,
    lower case), the container, the main video stream's facts, the first default (else
    first) audio stream's."""
    columns = tag_columns(tags)
    columns["comment"] = display(tags.get("comment"))  # not the description, as in ASF
    columns["date"] = _first_of(tags, DATE_KEYS)
    columns["year"] = year_of(columns["date"])
    main = found.main
    audio = _main_audio(found.streams)
    streams = [dict(zip(STREAM_COLUMNS, row)) for row in found.streams]
    columns.update(
        container=found.container,
        duration=found.duration if found.duration and found.duration <= MAX_DURATION_S else None,
        bitrate=found.bitrate, chapters=found.chapters,
        show=_first_of(tags, SHOW_KEYS),
        season=whole(_first_of(tags, SEASON_KEYS)), episode=whole(_first_of(tags, EPISODE_KEYS)),
        description=_first_of(tags, DESCRIPTION_KEYS),
        codec=main.get("codec") or audio.get("codec"), bit_depth=main.get("bit_depth"),
        sample_rate=audio.get("sample_rate"), channels=audio.get("channels"),
        width=main.get("width"), height=main.get("height"),
        display_aspect_ratio=main.get("display_aspect_ratio"), frame_rate=main.get("frame_rate"),
        color_primaries=main.get("color_primaries"),
        color_transfer=main.get("color_transfer"), hdr=main.get("hdr"),
        audio_languages=_languages(streams, "audio"),
        subtitle_languages=_languages(streams, "subtitle"),
    )
    return columns


def named(columns: dict[str, Any], path: str) -> dict[str, Any]:
    """Show, season and episode, or a film's title and year, from the file and folder
    names (names.py), where the tags have neither; only what the tags lack."""
    has_episode = (columns["show"] and columns["season"] is not None
                   and columns["episode"] is not None)
    if has_episode or columns["year"] is not None:
        return {}
    guess = names.guess(path)
    if guess is None:
        return {}
    filled = {"show": guess.show, "season": guess.season, "episode": guess.episode,
              "title": guess.title, "year": guess.year}
    return {name: value for name, value in filled.items()
            if value is not None and columns.get(name) is None}


def _main_audio(rows: list[tuple]) -> dict[str, Any]:
    audio = [dict(zip(STREAM_COLUMNS, row)) for row in rows if row[1] == "audio"]
    return next((a for a in audio if a["is_default"]), audio[0] if audio else {})


def _languages(streams: list[dict], kind: str) -> str:
    """The language codes of the streams of a kind, as stored, in stream order, each once."""
    codes = dict.fromkeys(s["language"] for s in streams if s["type"] == kind and s["language"])
    return json.dumps(list(codes), ensure_ascii=False)


def _first_of(tags: dict[str, list[str]], keys: tuple[str, ...]) -> str | None:
    return next((first(tags[key]) for key in keys if tags.get(key) and first(tags[key])), None)
