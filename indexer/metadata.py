"""Tags and stream properties, read with mutagen (the only module that imports it).

`read_tags(job)` is a plain function of one file: it never raises. Whatever a
parser throws on a broken file (not only MutagenError: real files make it
raise ZeroDivisionError, struct.error and more) becomes the `error` of the
result, with its type. Each tag family (ID3, Vorbis comments, MP4 atoms, ASF,
APEv2, RIFF INFO) is first flattened to lower-case keys with lists of text,
then one table picks the catalogue's columns from those keys; the flat dict
itself is kept as JSON, so nothing is lost.
"""

from __future__ import annotations

import base64
import importlib
import json
import math
import re
from collections.abc import Iterable
from typing import Any

import mutagen

from . import artwork, riff
from .kinds import kind_of
from .records import MEDIA_COLUMNS, TagJob, Tags, describe

MAX_DURATION_S = 30 * 24 * 3600  # longer is garbage, not an audiobook

# canonical key -> column, for text columns; numbers are parsed below
TEXT_COLUMNS = {
    "title": "title", "artist": "artist", "album": "album", "albumartist": "album_artist",
    "genre": "genre", "composer": "composer", "comment": "comment",
    "musicbrainz_trackid": "mb_recording_id", "musicbrainz_albumid": "mb_release_id",
    "musicbrainz_artistid": "mb_artist_id", "musicbrainz_releasegroupid": "mb_release_group_id",
}
# family-specific keys (lower case) -> canonical key
ALIASES = {
    # ID3
    "tit2": "title", "tpe1": "artist", "talb": "album", "tpe2": "albumartist",
    "trck": "tracknumber", "tpos": "discnumber", "tdrc": "date", "tyer": "year", "tcon": "genre",
    "tcom": "composer", "tcmp": "compilation",
    "ufid:http://musicbrainz.org": "musicbrainz_trackid",
    "txxx:musicbrainz album id": "musicbrainz_albumid",
    "txxx:musicbrainz artist id": "musicbrainz_artistid",
    "txxx:musicbrainz release group id": "musicbrainz_releasegroupid",
    # MP4 atoms
    "©nam": "title", "©art": "artist", "©alb": "album", "aart": "albumartist",
    "trkn": "tracknumber", "disk": "discnumber", "©day": "date", "©gen": "genre",
    "©wrt": "composer", "cpil": "compilation", "©cmt": "comment",
    "----:com.apple.itunes:musicbrainz track id": "musicbrainz_trackid",
    "----:com.apple.itunes:musicbrainz album id": "musicbrainz_albumid",
    "----:com.apple.itunes:musicbrainz artist id": "musicbrainz_artistid",
    "----:com.apple.itunes:musicbrainz release group id": "musicbrainz_releasegroupid",
    # ASF
    "author": "artist", "wm/albumtitle": "album", "wm/albumartist": "albumartist",
    "wm/tracknumber": "tracknumber", "wm/partofset": "discnumber", "wm/year": "date",
    "wm/genre": "genre", "wm/composer": "composer", "wm/iscompilation": "compilation",
    "description": "comment", "musicbrainz/track id": "musicbrainz_trackid",
    "musicbrainz/album id": "musicbrainz_albumid", "musicbrainz/artist id": "musicbrainz_artistid",
    "musicbrainz/release group id": "musicbrainz_releasegroupid",
    # Vorbis comments and APEv2 spellings
    "album artist": "albumartist", "album_artist": "albumartist", "track": "tracknumber",
    "disc": "discnumber", "totaltracks": "tracktotal", "totaldiscs": "disctotal",
    # RIFF INFO
    "inam": "title", "iart": "artist", "iprd": "album", "icrd": "date", "ignr": "genre",
    "icmt": "comment", "itrk": "tracknumber", "iprt": "tracknumber", "imus": "composer",
}
CODECS = {
    "MP3": None, "FLAC": "flac", "OggVorbis": "vorbis", "OggOpus": "opus", "OggSpeex": "speex",
    "OggFLAC": "flac", "OggTheora": "theora", "WAVE": "pcm", "AIFF": "pcm", "MonkeysAudio": "ape",
    "WavPack": "wavpack", "Musepack": "musepack", "TrueAudio": "tta", "OptimFROG": "optimfrog",
    "DSF": "dsd", "DSDIFF": "dsd", "SMF": "midi", "AAC": "aac", "AC3": "ac3", "TAK": "tak",
}


def read_tags(job: TagJob) -> Tags:
    """Read one file's tags, stream properties and embedded pictures; never raises."""
    try:
        if job.is_cover:
            return _folder_cover(job)
        kind = kind_of(job.path)
        if kind in ("video", "image"):
            from . import probing  # PyAV, Pillow, guessit: loaded by the workers that need them
            return probing.read_video(job) if kind == "video" else probing.read_image(job)
        parsed = _parse(job.path)
        if parsed is None:
            return Tags(job.text, job.hash,
                        error="not a recognised audio file (mutagen found no format)")
        tagged_pictures: list = []
        flat = {**_extra_tags(parsed, job.path), **flatten(parsed.tags, tagged_pictures)}
        pictures = [p for p in _pictures(parsed, tagged_pictures) if _kept(p)]
        art = tuple(store_pictures(pictures, job.art_dir, job.thumbnails)) if job.art_dir else ()
        columns = {**tag_columns(flat), **stream_columns(parsed),
                   "has_embedded_art": int(bool(pictures))}
        return Tags(job.text, job.hash, tuple(columns.get(c) for c in MEDIA_COLUMNS),
                    json.dumps(flat, ensure_ascii=False, sort_keys=True), art)
    except Exception as error:  # a parser's bug on a hostile file is this file's error, not ours
        text = _without_path(describe(error), job.path)[:500]
        # The disk or the cache failed, not the file's bytes (mutagen wraps OSError):
        # no verdict, so it is read again next scan.
        return failed(job, text, final=not _environmental(error))


def _environmental(error: BaseException) -> bool:
    return isinstance(error, OSError) or isinstance(error.__cause__, OSError)


def _without_path(message: str, path: str) -> str:
    """mutagen and Pillow name the file in their errors, FFmpeg the descriptor it read
    (video.py); the verdict is about the content, which a renamed or copied file keeps
    (with its tags): the name would go stale."""
    message = re.sub(r"'/proc/self/fd/\d+'", "the file", message)
    return message.replace(repr(path), "the file").replace(path, "the file")


# The class for each extension, tried first: mutagen.File asks ~25 classes to score the
# header, a sixth of its time on small files. A misnamed file falls back to that guess.
CLASS_OF_EXTENSION = {
    "mp3": "mp3:MP3", "mp2": "mp3:MP3", "flac": "flac:FLAC", "ogg": "oggvorbis:OggVorbis",
    "opus": "oggopus:OggOpus", "spx": "oggspeex:OggSpeex", "oga": "oggflac:OggFLAC",
    "m4a": "mp4:MP4", "m4b": "mp4:MP4", "m4p": "mp4:MP4", "mp4": "mp4:MP4", "m4v": "mp4:MP4",
    "mov": "mp4:MP4", "3gp": "mp4:MP4", "3g2": "mp4:MP4", "wma": "asf:ASF", "asf": "asf:ASF",
    "wav": "wave:WAVE", "aif": "aiff:AIFF", "aiff": "aiff:AIFF", "aifc": "aiff:AIFF",
    "ape": "monkeysaudio:MonkeysAudio", "wv": "wavpack:WavPack", "mpc": "musepack:Musepack",
    "tta": "trueaudio:TrueAudio", "ofr": "optimfrog:OptimFROG", "ofs": "optimfrog:OptimFROG",
    "dsf": "dsf:DSF", "dff": "dsdiff:DSDIFF", "mid": "smf:SMF", "midi": "smf:SMF",
    "aac": "aac:AAC", "adts": "aac:AAC", "ac3": "ac3:AC3",
}


def _parse(path: str) -> Any:
    """mutagen's reading of a file, by the class its extension names if that works.

    That also reads an ADTS `.aac` with an ID3 tag in front, which mutagen's own
    guess takes for MP3."""
    name = CLASS_OF_EXTENSION.get(path.rsplit(".", 1)[-1].lower())
    if name is not None:
        module, _, kind = name.partition(":")
        try:
            return getattr(importlib.import_module(f"mutagen.{module}"), kind)(path)
        except mutagen.MutagenError:
            pass  # misnamed, or broken: let mutagen guess, and report its error
    return mutagen.File(path)


def _extra_tags(parsed: Any, path: str) -> dict[str, list[str]]:
    """Tags mutagen's class for the file does not read: RIFF INFO in WAV, an APEv2 tag on
    MP3 or TrueAudio (foobar2000, mp3gain, ffmpeg's tta muxer write them), ID3 before AAC.
    The format's own tags win over these where both have a key."""
    kind = type(parsed).__name__
    if kind == "WAVE":
        return riff.info_tags(path)
    if kind in ("MP3", "TrueAudio"):
        from mutagen.apev2 import APEv2, APENoHeaderError
        try:
            return flatten(APEv2(path))
        except APENoHeaderError:
            return {}
    if kind == "AAC" and parsed.tags is None:
        from mutagen.id3 import ID3, ID3NoHeaderError
        try:
            return flatten(ID3(path))
        except ID3NoHeaderError:
            return {}
    return {}


def failed(job: TagJob, error: str, final: bool = True) -> Tags:
    return Tags(job.text, job.hash, error=error, cover=job.is_cover, final=final)


def _folder_cover(job: TagJob) -> Tags:
    with open(job.path, "rb") as handle:
        data = handle.read(artwork.MAX_IMAGE_BYTES + 1)
    if len(data) > artwork.MAX_IMAGE_BYTES:
        return failed(job, f"cover image over {artwork.MAX_IMAGE_BYTES >> 20} MiB: not stored")
    art = (artwork.store(data, job.art_dir, source="folder", thumbnails=job.thumbnails),) \
        if job.art_dir else ()
    return Tags(job.text, job.hash, art=art, cover=True)


# --- flattening each family to {lower-case key: [text, ...]}

PICTURE_KEYS = ("apic", "covr", "wm/picture", "metadata_block_picture", "cover art", "coverart")


def flatten(tags: Any, pictures: list | None = None) -> dict[str, list[str]]:
    """A mutagen tags object as {lower-case key: [text, ...]}. Picture tags go to the
    artwork cache, not into the JSON: they are left out, or put in `pictures` as
    (key, value) pairs when a list is given."""
    if tags is None:
        return {}
    flat: dict[str, list[str]] = {}
    for key, value in _items(tags):
        key = key.lower()
        if key.startswith(PICTURE_KEYS):
            if pictures is not None:
                pictures.append((key, value))
            continue
        if type(value) is list and all(type(v) is str and "\0" not in v and v for v in value):
            texts = value  # plain texts (Vorbis comments, most ID3 and MP4): the fast path
        else:
            texts = [t for t in map(_text, _values(value)) if t is not None]
        if texts:
            if key in flat:
                flat[key].extend(texts)
            else:
                flat[key] = list(texts)
    return flat


def _items(tags: Any) -> Iterable[tuple[str, Any]]:
    if hasattr(tags, "getall") and hasattr(tags, "version"):  # ID3
        for frame in tags.values():
            if frame.FrameID == "APIC":
                yield "APIC", frame  # a picture: flatten() sets it aside whole
            else:
                yield _id3_key(frame), _id3_values(frame)
    elif isinstance(tags, list):  # Vorbis comments, ASF: (key, value) pairs in file order
        for key, value in tags:  # (their mapping view scans the whole list for each key)
            yield key, [value]
    else:  # MP4, APEv2: mappings of key -> value or values
        yield from tags.items()


# Frames a file may hold several of, told apart by a description, language, owner or
# address: each keeps those in its key, mutagen's own (`COMM:iTunNORM:eng`, `TXXX:desc`),
# or the four COMM frames of one file would be one list under `comm`.
DESCRIBED_FRAMES = frozenset(("TXXX", "WXXX", "COMM", "USLT", "SYLT", "UFID", "GEOB", "POPM",
                              "USER", "RVA2"))


def _id3_key(frame: Any) -> str:
    return frame.HashKey if frame.FrameID in DESCRIBED_FRAMES else frame.FrameID


def _id3_values(frame: Any) -> list:
    if frame.FrameID == "TCON":
        return list(frame.genres)
    if frame.FrameID == "UFID":
        return [frame.data]
    text = getattr(frame, "text", None)
    if isinstance(text, str):  # USLT, USER: one text, not a list of texts (nor of letters)
        return [text]
    return list(text or []) or [str(frame)]


def _values(value: Any) -> list:
    if isinstance(value, (list, tuple)) and not _is_pair(value):
        return list(value)
    if getattr(value, "kind", None) == 0 and hasattr(value, "value"):  # APEv2 text: \0-separated
        return list(value)
    return [value]


def _is_pair(value: Any) -> bool:
    return isinstance(value, tuple) and len(value) == 2 and all(isinstance(v, int) for v in value)


def _text(value: Any) -> str | None:
    if _is_pair(value):
        number, total = value  # MP4 trkn / disk
        return f"{number}/{total}" if total else str(number)
    if isinstance(value, bytes):
        try:
            return value.decode("utf-8").rstrip("\0")
        except UnicodeDecodeError:
            return f"<{len(value)} bytes>"
    if hasattr(value, "kind") and hasattr(value, "value") and isinstance(value.value, bytes):
        return f"<{len(value.value)} bytes>"  # a binary APEv2 value
    text = str(getattr(value, "value", value))
    return text.replace("\0", "") or None


# --- the catalogue's columns

def canonical(flat: dict[str, list[str]]) -> dict[str, list[str]]:
    """Keys of every family under one name: 'tpe1', '©art' and 'author' are 'artist'."""
    result: dict[str, list[str]] = {}
    for key, values in flat.items():
        name = _CANONICAL.get(key) or _canonical_name(key)
        result.setdefault(name, []).extend(values)
    return result


_CANONICAL: dict[str, str] = {}  # the same few keys come back for every file


# The COMM frames that are the comment: no description, or ID3v1's (as mutagen reads it).
# Those with one (iTunNORM, iTunSMPB, a player's own) are data kept in `tags` only.
COMMENT_FRAMES = ("comm::", "comm:id3v1 comment:")


def _canonical_name(key: str) -> str:
    name = "comment" if key.startswith(COMMENT_FRAMES) else ALIASES.get(key, key)
    for prefix in ("txxx:", "----:com.apple.itunes:"):  # free-form keys: their own name
        name = name.removeprefix(prefix)
    if len(_CANONICAL) < 10_000:
        _CANONICAL[key] = name
    return name


def tag_columns(flat: dict[str, list[str]]) -> dict[str, Any]:
    tags = canonical(flat)
    columns: dict[str, Any] = {column: display(tags.get(key)) for key, column in TEXT_COLUMNS.items()}
    artists = _unique(tags.get("artist") or [])
    columns["artists"] = json.dumps(artists, ensure_ascii=False) if artists else None
    columns["track_no"], track_total = number_pair(first(tags.get("tracknumber")))
    columns["track_total"] = whole(first(tags.get("tracktotal"))) or track_total
    columns["disc_no"], disc_total = number_pair(first(tags.get("discnumber")))
    columns["disc_total"] = whole(first(tags.get("disctotal"))) or disc_total
    columns["date"] = first(tags.get("date")) or first(tags.get("year"))
    columns["year"] = year_of(columns["date"])
    columns["compilation"] = flag(first(tags.get("compilation")))
    for which in ("track_gain", "track_peak", "album_gain", "album_peak"):
        columns[f"rg_{which}"] = decibels(first(tags.get(f"replaygain_{which}")))
    return columns


def stream_columns(parsed: Any) -> dict[str, Any]:
    info = parsed.info
    length = getattr(info, "length", None)
    kind = type(parsed).__name__
    codec = CODECS.get(kind)
    if kind == "MP3":
        codec = f"mp{getattr(info, 'layer', 3)}"
    elif kind == "MP4":
        codec = (info.codec_description or info.codec or "mp4").lower()
    elif kind == "ASF":
        codec = (getattr(info, "codec_name", "") or "wma").lower()
    return {
        "duration": length if isinstance(length, (int, float)) and math.isfinite(length)
        and 0 <= length <= MAX_DURATION_S else None,
        "bitrate": positive(getattr(info, "bitrate", None)),
        # Opus always decodes at 48 kHz; its header's input rate is only a hint
        "sample_rate": 48000 if kind == "OggOpus" else positive(getattr(info, "sample_rate", None)),
        "bit_depth": positive(getattr(info, "bits_per_sample", None)),
        "channels": positive(getattr(info, "channels", None)),
        "codec": codec or kind.lower(),
    }


def display(values: list[str] | None) -> str | None:
    """The one text shown for a multi-value tag: its values in order, joined by '; '."""
    if not values:
        return None
    if len(values) == 1:  # nearly every tag: nothing to join
        return values[0].strip() or None
    return "; ".join(_unique(values)) or None


def _unique(values: list[str]) -> list[str]:
    """The values in order, stripped, without blanks or repeats (some formats store one twice)."""
    return list(dict.fromkeys(v.strip() for v in values if v.strip()))


def first(values: list[str] | None) -> str | None:
    return values[0].strip() if values else None


_WHOLE = re.compile(r"\s*(\d{1,6})(?!\d)")  # a longer number is no track number
_YEAR = re.compile(r"\s*(\d{4})")
_DECIBELS = re.compile(r"\s*([-+]?\d+(?:\.\d+)?)(?![\d,])")  # "-6,20": refused


def whole(text: str | None) -> int | None:
    if text is None:
        return None
    match = _WHOLE.match(text)
    return int(match.group(1)) if match else None


def number_pair(text: str | None) -> tuple[int | None, int | None]:
    """'3/12' -> (3, 12); '03' -> (3, None); 'A1' or '' -> (None, None)."""
    if text is None:
        return None, None
    number, _, total = text.partition("/")
    return whole(number), whole(total) if total else None


def year_of(date: str | None) -> int | None:
    match = _YEAR.match(date or "")
    year = int(match.group(1)) if match else None
    return year if year and 1000 <= year <= 9999 else None


def flag(text: str | None) -> int | None:
    if text is None:
        return None
    return 1 if text.strip().lower() in ("1", "true", "yes") else 0


def decibels(text: str | None) -> float | None:
    match = _DECIBELS.match(text or "")
    value = float(match.group(1)) if match else None
    return value if value is not None and math.isfinite(value) and abs(value) < 100 else None


def positive(value: Any) -> int | None:
    return int(value) if isinstance(value, (int, float)) and math.isfinite(value) and value > 0 else None


# --- embedded pictures

def _kept(picture: tuple[bytes, str, int]) -> bool:
    """A picture the catalogue keeps, and so counts in `has_embedded_art`: some bytes, at
    most MAX_IMAGE_BYTES, and not a link (MIME type "-->": ID3 and FLAC let the data be
    a URL). Taggers leave empty picture blocks behind; each of those said "has art"
    with no `file_artwork` row."""
    data, mime, _ = picture
    return 0 < len(data) <= artwork.MAX_IMAGE_BYTES and mime != "-->"


def store_pictures(pictures: list, art_dir: str, thumbnails: tuple[int, ...]) -> Iterable[artwork.ArtRef]:
    for data, mime, picture_type in pictures:
        yield artwork.store(bytes(data), art_dir, picture_type, "embedded", mime, thumbnails)


def _pictures(parsed: Any, tagged: list) -> Iterable[tuple[bytes, str, int]]:
    """(data, mime, picture type) of each picture: FLAC blocks, ID3 APIC frames, and the
    picture tags of other families (`tagged`, as flatten() set them aside)."""
    for picture in getattr(parsed, "pictures", None) or ():  # FLAC
        yield picture.data, picture.mime, picture.type
    for key, value in tagged:
        if key.startswith("apic"):  # ID3: one frame a key
            yield value.data, value.mime, int(value.type)
        elif key == "covr":  # MP4
            for cover in value:
                yield bytes(cover), "", 3
        elif key == "metadata_block_picture":  # Ogg: base64 FLAC picture blocks
            from mutagen.flac import Picture
            for encoded in value:
                picture = Picture(base64.b64decode(encoded))
                yield picture.data, picture.mime, picture.type
        elif key == "wm/picture":  # ASF
            for attribute in value:
                yield _asf_picture(attribute.value)
        elif key.startswith("cover art") and hasattr(value, "value"):  # APEv2: name\0data
            yield value.value.partition(b"\0")[2], "", 3 if "front" in key else 0


def _asf_picture(blob: bytes) -> tuple[bytes, str, int]:
    """WM/Picture: type byte, data length, UTF-16 mime and description, then the data."""
    picture_type = blob[0]
    size = int.from_bytes(blob[1:5], "little")
    at = 5
    for _ in range(2):  # mime, description: NUL-terminated UTF-16-LE
        while blob[at:at + 2] != b"\0\0":
            at += 2
        at += 2
    return blob[at:at + size], "", picture_type
