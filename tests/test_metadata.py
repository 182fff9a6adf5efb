"""Tags, stream properties and cover art: each format mutagen reads lands in `media`
field by field; a broken file is recorded on its row and the scan goes on; tags are
read again only when the content changes; a picture is stored once however many
files carry it.

Real samples from tests/data (made by make_samples.sh and make_crafted.py, which say
what each holds), real scans into a real catalogue, real mutagen: no mocks.
"""

from __future__ import annotations

import errno
import hashlib
import json
import math
import os
import random
import shutil
import signal
import sqlite3
import struct
import subprocess
import sys
import threading
import time
from pathlib import Path

import mutagen
import pytest
from hypothesis import given, settings, strategies as st
from mutagen.apev2 import APEv2
from mutagen.flac import FLAC, Picture
from mutagen.id3 import COMM, ID3, TIT2, USLT, WXXX, delete as delete_id3

from conftest import DATA, connect, files, workers_of
from indexer import Manager
from indexer.metadata import decibels, display, number_pair, stream_columns, year_of
from indexer.pipeline import ProcessPool, named, with_alarm
from indexer.records import describe
from indexer import tagging
from indexer.tagging import Offered
from trees import PREFIX_SIBLINGS, TWINS
from indexer import worker
from indexer.worker import MEMORY_LIMIT

COVER = (DATA / "cover.jpg").read_bytes()  # 64x64, embedded in art.mp3 and art.flac
MODES = pytest.mark.parametrize("parallel", [True, False], ids=["parallel", "sequential"])
TAG_COLUMNS = ("title", "artist", "album", "album_artist", "track_no", "track_total",
               "disc_no", "disc_total", "year", "genre", "composer")


def query(db: Path, sql: str, *params) -> list[sqlite3.Row]:
    conn = connect(db)
    try:
        return conn.execute(sql, params).fetchall()
    finally:
        conn.close()


def media(db: Path) -> dict[str, dict]:
    """Every media row, by the name of its file (the tests use distinct names)."""
    return {Path(row["path"]).name: dict(row) for row in query(
        db, "SELECT f.path, m.* FROM media m JOIN files f ON f.id = m.file_id")}


def put(folder: Path, sample: str, name: str | None = None) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / (name or sample)
    shutil.copyfile(DATA / sample, target)
    return target


def digest(data: bytes) -> str:
    """The artwork key: BLAKE2b-128 of the image bytes, as docs/schema.md says."""
    return hashlib.blake2b(data, digest_size=16).hexdigest()


def metadata_counts(result) -> tuple[int, int, int, int]:
    c = result.counters
    return c.metadata_queued, c.metadata_extracted, c.metadata_copied, c.metadata_failed


# --- every format, field by field

def tagged(title: str, artist: str, album: str, track: int) -> dict:
    """The tags make_samples.sh gives a sample: track N of 12, disc 1 of 2, 2001, Rock."""
    return {"title": title, "artist": artist, "album": album, "album_artist": artist,
            "track_no": track, "track_total": 12, "disc_no": 1, "disc_total": 2, "year": 2001,
            "genre": "Rock", "composer": "Composer"}


def stream(codec: str, sample_rate: int | None, channels: int | None, bit_depth: int | None = None,
           duration: float = 1.0, **more) -> dict:
    return {"codec": codec, "sample_rate": sample_rate, "channels": channels,
            "bit_depth": bit_depth, "duration": pytest.approx(duration, rel=0.05), "error": None,
            **more}


def without(columns: dict, *names: str) -> dict:
    """Columns not asserted for a format, each for the reason given where it is used."""
    return {k: v for k, v in columns.items() if k not in names}


UNTAGGED = dict.fromkeys(TAG_COLUMNS)
ID3V1 = {**UNTAGGED, "title": "Tone_MP3_v1", "artist": "Artist_A", "album": "Album_One",
         "track_no": 4, "year": 2001, "genre": "Rock"}  # v1 has no album artist, disc, composer
RIFF_INFO = {**UNTAGGED, "title": "Tone_WAV", "artist": "Artist_D", "album": "Album_Four",
             "track_no": 7, "track_total": 12, "year": 2001, "genre": "Rock"}  # what INFO holds
FORMATS = {
    "id3v22.mp3": {**tagged("Tone_MP3_v22", "Artist_A", "Album_One", 3),
                   **stream("mp3", 44100, 1)},
    "id3v23.mp3": {**tagged("Tone_MP3_v23", "Artist_A", "Album_One", 1),
                   **stream("mp3", 44100, 1)},
    "id3v24.mp3": {**tagged("Tone_MP3_v24", "Artist_A", "Album_One", 2),
                   **stream("mp3", 44100, 1)},
    "id3v1.mp3": {**ID3V1,
                  **stream("mp3", 44100, 1)},
    "tone.flac": {**tagged("Tone_FLAC", "Artist_B", "Album_Two", 3),
                  **stream("flac", 44100, 1, 16)},
    "tone.ogg": {**tagged("Tone_Vorbis", "Artist_B", "Album_Two", 4),
                 **stream("vorbis", 44100, 1)},
    "tone.opus": {**tagged("Tone_Opus", "Artist_C", "Album_Three", 5),
                  **stream("opus", 48000, 1)},
    "tone.oga": {**tagged("Tone_OggFLAC", "Artist_B", "Album_Two", 12),
                 **stream("flac", 8000, 1, 16)},
    "tone.spx": {**tagged("Tone_Speex", "Artist_G", "Album_Seven", 1),
                 **stream("speex", 8000, 1)},
    # Mono AAC LC, but mutagen says 2 channels: parametric stereo cannot be ruled out
    # from the header, so it falls back to the sample entry's count. Not asserted.
    "tone.m4a": without({**tagged("Tone_M4A", "Artist_C", "Album_Three", 6),
                         **stream("aac lc", 44100, None, 16)}, "channels"),
    "tone.m4b": without({**tagged("Tone_M4B", "Artist_H", "Album_Book", 1),
                         **stream("aac lc", 44100, None, 16)}, "channels"),
    "alac.m4a": {**tagged("Tone_ALAC", "Artist_C", "Album_Three", 7),
                 **stream("alac", 8000, 1, 16)},
    "tone.aac": {**UNTAGGED,  # ADTS carries no tags
                 **stream("aac", 44100, 1)},
    # videos are read by PyAV (test_video.py): the codec is the video stream's
    "clip.mp4": {**UNTAGGED, "title": "Clip",
                 **stream("h264", None, None, 8)},
    "clip.m4v": {**UNTAGGED, "title": "Clip_M4V",
                 **stream("h264", None, None, 8)},
    "clip.mov": {**UNTAGGED, "title": "Clip_MOV", "artist": "Artist_M",
                 **stream("h264", None, None, 8)},
    "tone.wav": {**RIFF_INFO,
                 **stream("pcm", 8000, 1, 16, bitrate=128000)},
    "id3.wav": {**tagged("Tone_WAV_ID3", "Artist_D", "Album_Four", 9),
                **stream("pcm", 8000, 1, 8, bitrate=64000)},
    "tone.aiff": {**tagged("Tone_AIFF", "Artist_D", "Album_Four", 8),
                  **stream("pcm", 8000, 1, 16, bitrate=128000)},
    "tone.wma": {**tagged("Tone_WMA", "Artist_E", "Album_Five", 9),
                 **stream("windows media audio v8", 44100, 1)},
    "tone.wv": {**tagged("Tone_WavPack", "Artist_F", "Album_Six", 10),
                **stream("wavpack", 8000, 1, 16)},
    # mutagen's TrueAudio reads no channel count
    "tone.tta": without({**tagged("Tone_TTA", "Artist_F", "Album_Six", 11),
                         **stream("tta", 8000, None)}, "channels"),
    "tone.ape": {**tagged("Tone_APE", "Artist_K", "Album_Lossless", 1),
                 **stream("ape", 44100, 1, 16)},
    "tone.mpc": {**tagged("Tone_MPC", "Artist_K", "Album_Lossless", 2),
                 **stream("musepack", 44100, 1)},
    "tone.ofr": {**tagged("Tone_OFR", "Artist_K", "Album_Lossless", 3),
                 **stream("optimfrog", 44100, 1, 16)},
    "tone.dsf": {**tagged("Tone_DSF", "Artist_L", "Album_DSD", 1),
                 **stream("dsd", 2822400, 1, 1, duration=0.01)},
    "tone.dff": {**tagged("Tone_DFF", "Artist_L", "Album_DSD", 2),
                 **stream("dsd", 2822400, 1, 1, duration=0.01)},
    "tone.mid": {**UNTAGGED,  # mutagen reads no tags from a MIDI file
                 **stream("midi", None, None)},
}


@pytest.fixture(scope="module")
def samples(tmp_path_factory) -> dict[str, dict]:
    """One scan of every sample; the media rows by file name."""
    root = tmp_path_factory.mktemp("samples")
    for name in FORMATS:
        put(root, name)
    db = tmp_path_factory.mktemp("state") / "library.db"
    result = Manager(db_path=db, roots=[str(root)], env={}, parallel=False).scan()
    everything = len(FORMATS)
    assert (result.status, metadata_counts(result)) == ("completed", (everything, everything, 0, 0))
    return media(db)


@pytest.mark.parametrize("name", FORMATS)
def test_each_format_is_catalogued_with_its_tags_and_stream_properties(samples, name):
    expected = FORMATS[name]
    assert {column: samples[name][column] for column in expected} == expected


@pytest.mark.parametrize("name, tags", [
    ("tone.wav", {"iart": ["Artist_D"], "icrd": ["2001"], "ignr": ["Rock"], "inam": ["Tone_WAV"],
                  "iprd": ["Album_Four"], "iprt": ["7/12"], "isft": ["Lavf59.27.100"]}),
    ("id3v24.mp3", {"tit2": ["Tone_MP3_v24"], "tpe1": ["Artist_A"], "talb": ["Album_One"],
                    "tpe2": ["Artist_A"], "trck": ["2/12"], "tpos": ["1/2"], "tdrc": ["2001"],
                    "tcon": ["Rock"], "tcom": ["Composer"], "tsse": ["Lavf59.27.100"]}),
    ("tone.ape", {"title": ["Tone_APE"], "artist": ["Artist_K"], "album": ["Album_Lossless"],
                  "album artist": ["Artist_K"], "track": ["1/12"], "disc": ["1/2"],
                  "year": ["2001"], "genre": ["Rock"], "composer": ["Composer"]}),
], ids=["riff-info", "id3v24", "apev2"])
def test_every_tag_is_kept_in_the_tags_json(samples, name, tags):
    assert json.loads(samples[name]["tags"]) == tags


def test_id3_frames_told_apart_by_description_and_language_each_keep_their_own_key(
        tmp_path, db, scan):
    song = put(tmp_path / "music", "id3v24.mp3", "comments.mp3")
    tags = ID3(song)
    tags.add(COMM(encoding=3, lang="eng", desc="", text=["A comment"]))
    tags.add(COMM(encoding=3, lang="deu", desc="", text=["Ein Kommentar"]))
    tags.add(COMM(encoding=3, lang="eng", desc="iTunNORM", text=[" 00000A2C 00000A2C"]))
    tags.add(COMM(encoding=3, lang="fra", desc="Songs-DB_Custom1", text=["humeur: calme"]))
    tags.add(USLT(encoding=3, lang="eng", desc="", text="la la la\nla"))
    tags.add(WXXX(encoding=3, desc="Bandcamp", url="https://band.example/"))
    tags.save()

    scan(tmp_path / "music")

    row = media(db)["comments.mp3"]
    described = {k: v for k, v in json.loads(row["tags"]).items() if k[:4] in ("comm", "uslt", "wxxx")}
    assert described == {
        "comm::eng": ["A comment"], "comm::deu": ["Ein Kommentar"],
        "comm:itunnorm:eng": [" 00000A2C 00000A2C"], "comm:songs-db_custom1:fra": ["humeur: calme"],
        "uslt::eng": ["la la la\nla"],  # the lyrics, not a list of their letters
        "wxxx:bandcamp": ["https://band.example/"]}
    # the comment is what has no description: iTunNORM and a player's data are not
    assert row["comment"] == "A comment; Ein Kommentar"


def test_an_id3v1_comment_is_the_comment(tmp_path, db, scan):
    song = put(tmp_path / "music", "id3v1.mp3", "old.mp3")
    v1 = (b"TAG" + b"Old Song".ljust(30, b"\0") + b"Old Artist".ljust(30, b"\0")
          + b"Old Album".ljust(30, b"\0") + b"1999" + b"Ripped in 1999".ljust(30, b"\0") + b"\x11")
    data = song.read_bytes()
    assert data[-128:-125] == b"TAG"  # the sample's own ID3v1 tag, replaced
    song.write_bytes(data[:-128] + v1)

    scan(tmp_path / "music")

    row = media(db)["old.mp3"]
    assert (row["title"], row["comment"]) == ("Old Song", "Ripped in 1999")
    assert json.loads(row["tags"])["comm:id3v1 comment:eng"] == ["Ripped in 1999"]


def test_an_opus_file_has_the_48_khz_sample_rate_opus_always_decodes_at(samples):
    assert samples["tone.opus"]["sample_rate"] == 48000


def test_a_wma_artist_stored_twice_by_the_format_is_listed_once(samples):
    assert (samples["tone.wma"]["artist"], json.loads(samples["tone.wma"]["artists"])) == (
        "Artist_E", ["Artist_E"])


def test_an_adts_aac_file_with_an_id3_tag_in_front_is_read(tmp_path, db, scan):
    put(tmp_path / "music", "id3.aac")
    scan(tmp_path / "music")
    row = media(db)["id3.aac"]
    assert {c: row[c] for c in ("title", "artist", "codec", "sample_rate", "error")} == {
        "title": "Tone_AAC_ID3", "artist": "Artist_I", "codec": "aac", "sample_rate": 44100,
        "error": None}


@pytest.mark.parametrize("sample", ["id3v24.mp3", "tone.tta"])
def test_a_file_tagged_only_with_apev2_has_its_tags_read(tmp_path, db, scan, sample):
    song = put(tmp_path / "music", sample)
    delete_id3(song)
    tags = APEv2()
    tags["Title"], tags["Artist"] = "Ape_Title", "Ape_Artist"
    tags.save(song)
    scan(tmp_path / "music")
    row = media(db)[sample]
    assert (row["title"], row["artist"], row["error"]) == ("Ape_Title", "Ape_Artist", None)


# --- the pure parsing of tag text

@pytest.mark.parametrize("text, pair", [
    ("3/12", (3, 12)), ("03", (3, None)), ("03/012", (3, 12)), (" 7 / 9 ", (7, 9)),
    ("3/", (3, None)), ("/12", (None, 12)), ("A1", (None, None)), ("", (None, None)),
    (None, (None, None)),
])
def test_track_and_disc_numbers_are_parsed_from_their_usual_spellings(text, pair):
    assert number_pair(text) == pair


def test_a_number_too_long_for_a_track_is_not_cut_to_its_first_digits():
    assert number_pair("1234567/12") == (None, 12)


@pytest.mark.parametrize("date, year", [
    ("2001", 2001), ("2001-05-14", 2001), ("2001-05-14T21:54:00", 2001), (" 1999", 1999),
    ("0999", None), ("99", None), ("unknown", None), ("", None), (None, None),
])
def test_the_year_is_the_first_four_digits_of_a_plausible_date(date, year):
    assert year_of(date) == year


@pytest.mark.parametrize("text, value", [
    ("-6.20 dB", -6.2), ("+3.5 dB", 3.5), ("0.988547", 0.988547), ("-150 dB", None),
    ("loud", None), ("", None), (None, None),
])
def test_replaygain_values_are_read_as_numbers(text, value):
    assert decibels(text) == value


def test_a_replaygain_value_with_a_decimal_comma_is_not_stored_wrong():
    assert decibels("-6,20 dB") in (-6.2, None)


@pytest.mark.parametrize("values, text", [
    (["A", "B"], "A; B"), (["A", "A"], "A"), ([" A ", "A", ""], "A"), (["", " "], None),
    ([], None), (None, None),
])
def test_several_values_are_shown_joined_in_order_without_duplicates(values, text):
    assert display(values) == text


@pytest.mark.parametrize("length, duration", [
    (-1.0, None), (math.nan, None), (math.inf, None), (40 * 24 * 3600.0, None),
    (40 * 3600.0, 144000.0), (0.0, 0.0),
], ids=["negative", "nan", "infinite", "40-days", "40-hours-audiobook", "zero"])
def test_a_nonsense_duration_is_stored_as_null(length, duration):
    parsed = mutagen.File(DATA / "tone.flac")
    parsed.info.length = length  # what a broken header makes a parser report
    assert stream_columns(parsed)["duration"] == duration


def test_a_negative_duration_read_from_a_truncated_file_is_stored_as_null(tmp_path, db, scan):
    song = tmp_path / "music" / "cut.opus"
    song.parent.mkdir()
    song.write_bytes((DATA / "tone.opus").read_bytes()[:1000])  # headers, no audio page
    assert mutagen.File(song).info.length < 0  # its last page's position is before pre-skip

    scan(tmp_path / "music")

    row = media(db)["cut.opus"]
    assert (row["title"], row["duration"], row["bitrate"], row["error"]) == (
        "Tone_Opus", None, None, None)


def test_several_artists_are_kept_as_a_list_and_shown_joined(tmp_path, db, scan):
    song = put(tmp_path / "music", "tone.flac", "duet.flac")
    audio = FLAC(song)
    audio["artist"] = ["Nina Simone", "Frank Sinatra"]
    audio.save()

    scan(tmp_path / "music")

    row = media(db)["duet.flac"]
    assert (row["artist"], json.loads(row["artists"])) == (
        "Nina Simone; Frank Sinatra", ["Nina Simone", "Frank Sinatra"])


# --- broken files

def test_the_broken_midi_sample_makes_mutagen_raise_an_exception_that_is_not_a_mutagen_error():
    with pytest.raises(ZeroDivisionError) as raised:
        mutagen.File(DATA / "zero_tickdiv.mid")
    assert not isinstance(raised.value, mutagen.MutagenError)


@MODES
def test_broken_files_are_recorded_with_their_exception_and_the_scan_goes_on(tmp_path, db, scan,
                                                                             parallel):
    root = tmp_path / "music"
    put(root, "id3v24.mp3")
    put(root, "tone.ogg")
    put(root, "zero_tickdiv.mid")
    (root / "truncated.flac").write_bytes((DATA / "tone.flac").read_bytes()[:1000])
    (root / "empty.flac").write_bytes(b"")
    (root / "notes.flac").write_text("these are my notes, not a FLAC file\n")

    result = scan(root, parallel=parallel)

    rows = media(db)
    assert {name: row["error"] for name, row in rows.items()} == {
        "truncated.flac": "mutagen.flac.error: file said 8192 bytes, read 737 bytes",
        "empty.flac": "mutagen.flac.error: file said 4 bytes, read 0 bytes",
        # the verdict is about the content, which a renamed file keeps: no path in it
        "notes.flac": "FLACNoHeaderError: the file is not a valid FLAC file",
        "zero_tickdiv.mid": "ZeroDivisionError: float division by zero",
        "id3v24.mp3": None,
        "tone.ogg": None,
    }
    assert (rows["id3v24.mp3"]["title"], rows["tone.ogg"]["title"]) == (
        "Tone_MP3_v24", "Tone_Vorbis")
    bookkeeping = ("path", "file_id", "content_hash", "extracted_at", "error", "has_embedded_art")
    for name in ("truncated.flac", "empty.flac", "notes.flac", "zero_tickdiv.mid"):
        values = without(rows[name], *bookkeeping)
        assert values == dict.fromkeys(values), name  # every tag and stream column NULL
    assert (result.status, metadata_counts(result)) == ("completed", (6, 2, 0, 4))
    assert {row["error"] for row in files(db).values()} == {None}  # the files themselves are fine


def test_an_error_without_a_message_still_says_what_failed_and_where_it_came_from(
        tmp_path, db, scan):
    wav = bytearray((DATA / "id3.wav").read_bytes())
    chunk = wav.find(b"id3 ")
    wav[chunk + 14:chunk + 18] = bytes([0, 0, 0x7F, 0x7F])  # the ID3 tag: longer than its chunk
    put(tmp_path / "music", "id3.wav", "overrun.wav").write_bytes(wav)

    scan(tmp_path / "music")

    # mutagen raises error(error(OSError())), whose text is empty: the row said "error: "
    assert media(db)["overrun.wav"]["error"] == (
        "mutagen.wave.error: no reason given (from mutagen.id3.error, from OSError)")


@pytest.mark.parametrize("error, text", [
    (PermissionError(13, "Permission denied", "/srv/music/a.flac"), "PermissionError: Permission denied"),
    (OSError(), "OSError: no reason given"),
    (ZeroDivisionError("float division by zero"), "ZeroDivisionError: float division by zero"),
    (struct.error("unpack requires a buffer of 4 bytes"),
     "struct.error: unpack requires a buffer of 4 bytes"),
])
def test_every_error_text_names_its_type_and_a_reason(error, text):
    assert describe(error) == text


# --- tags are read again only when the content changes

def test_a_touched_file_is_not_parsed_again(tmp_path, db, scan):
    song = put(tmp_path / "music", "id3v24.mp3")
    scan(tmp_path / "music")
    before = media(db)
    touched = song.stat().st_mtime_ns + 10**9
    os.utime(song, ns=(touched, touched))

    result = scan(tmp_path / "music")

    assert metadata_counts(result) == (0, 0, 0, 0)
    assert media(db) == before  # extracted_at too
    assert files(db)[str(song)]["mtime_ns"] == touched  # the scan did see the touch


def test_a_tag_edited_in_place_is_read_again_though_the_size_did_not_change(tmp_path, db, scan):
    song = put(tmp_path / "music", "tone.flac")
    scan(tmp_path / "music")
    size, mtime = song.stat().st_size, song.stat().st_mtime_ns
    audio = FLAC(song)
    audio["title"] = "Tone_FLAX"  # one letter: the comment block keeps its length
    audio.save()
    assert song.stat().st_size == size  # only the content (and the mtime) tell
    assert song.stat().st_mtime_ns != mtime

    result = scan(tmp_path / "music")

    row = media(db)["tone.flac"]
    assert (row["title"], row["content_hash"]) == ("Tone_FLAX", files(db)[str(song)]["hash"])
    assert metadata_counts(result) == (1, 1, 0, 0)


def test_a_copy_of_a_catalogued_file_gets_its_tags_and_art_without_a_parse(tmp_path, db, scan):
    root = tmp_path / "music"
    original = put(root / "Album", "art.mp3")
    scan(root)
    copy = put(root / "Copies", "art.mp3", "the same song.mp3")

    result = scan(root)

    rows = media(db)
    assert metadata_counts(result) == (0, 0, 1, 0)
    ignored = ("file_id", "path", "extracted_at")
    assert {k: v for k, v in rows["the same song.mp3"].items() if k not in ignored} == {
        k: v for k, v in rows["art.mp3"].items() if k not in ignored}
    assert rows["the same song.mp3"]["title"] == "Tone_Art_MP3"
    links = query(db, "SELECT f.path, a.artwork_hash, a.picture_type FROM file_artwork a "
                      "JOIN files f ON f.id = a.file_id ORDER BY f.path")
    assert [tuple(r) for r in links] == [(str(original), digest(COVER), 3),
                                         (str(copy), digest(COVER), 3)]


def test_copies_offered_together_each_get_the_tags_without_a_parse(tmp_path, db, scan):
    root = tmp_path / "music"
    put(root / "Album", "tone.flac")
    put(root / "Album", "tone.ogg")
    scan(root)
    for number in range(40):  # more than a hashing batch: copies offered in several
        put(root / "Copies", "tone.flac" if number % 2 else "tone.ogg", f"{number:02d}.x")
        os.rename(root / "Copies" / f"{number:02d}.x",
                  root / "Copies" / f"{number:02d}.{'flac' if number % 2 else 'ogg'}")

    result = scan(root)

    assert metadata_counts(result) == (0, 0, 40, 0)
    titles = {name: row["title"] for name, row in media(db).items()}
    assert titles == {"tone.flac": "Tone_FLAC", "tone.ogg": "Tone_Vorbis",
                      **{f"{n:02d}.{'flac' if n % 2 else 'ogg'}":
                         "Tone_FLAC" if n % 2 else "Tone_Vorbis" for n in range(40)}}


def test_a_first_scan_copies_the_tags_of_a_content_it_read_earlier_in_the_same_scan(
        tmp_path, db, scan):
    """A scan that begins with no media rows asks the catalogue only for contents it
    offered before (tagging.Offered): a copy found later in the walk is still a copy.
    Sequential, and a commit each file, so the first file's tags are in the catalogue
    when its copy is offered."""
    root = tmp_path / "music"
    put(root / "Album", "tone.flac")
    put(root / "Album", "tone.ogg")
    put(root / "Copies", "tone.flac", "the same song.flac")

    result = scan(root, parallel=False, batch_size=1)

    assert metadata_counts(result) == (2, 2, 1, 0)
    titles = {name: row["title"] for name, row in media(db).items()}
    assert titles == {"tone.flac": "Tone_FLAC", "tone.ogg": "Tone_Vorbis",
                      "the same song.flac": "Tone_FLAC"}


@MODES
def test_a_first_scan_gives_the_same_media_rows_with_the_filter_of_offered_contents_as_without(
        tmp_path, monkeypatch, parallel):
    """The filter (tagging.Offered) only skips lookups that cannot find a copy: a first
    scan of duplicates under prefix-sibling and NFC/NFD-twin folders gives the same media
    rows as one that asks the catalogue for every file."""
    root = tmp_path / "music"
    for n, artist in enumerate(PREFIX_SIBLINGS[:4] + TWINS[:2]):
        for sample in ("tone.flac", "tone.ogg", "id3v24.mp3")[: 1 + n % 3]:
            put(root / artist, sample)
    rows, counts = {}, {}
    for side in ("filter", "every lookup"):
        if side == "every lookup":
            monkeypatch.setattr(tagging.Offered, "add", lambda self, digest: True)
        db = tmp_path / side / "library.db"
        result = Manager(db_path=db, roots=[str(root)], env={}, parallel=parallel,
                         batch_size=1).scan()
        assert result.status == "completed"
        counts[side] = metadata_counts(result)
        rows[side] = {path: {k: v for k, v in row.items() if k not in ("file_id", "extracted_at")}
                      for path, row in media_by_path(db).items()}
    assert rows["filter"] == rows["every lookup"] and len(rows["filter"]) == 12
    if not parallel:  # (in parallel, which duplicate is read and which copied is a race)
        assert counts["filter"] == counts["every lookup"] and counts["filter"][2] > 0


def media_by_path(db: Path) -> dict[str, dict]:
    return {row["path"]: dict(row) for row in query(
        db, "SELECT f.path, m.* FROM media m JOIN files f ON f.id = m.file_id")}


@settings(max_examples=200)
@given(st.lists(st.text(max_size=40), max_size=300))
def test_the_filter_of_offered_contents_never_says_a_content_was_not_offered_when_it_was(digests):
    offered, before = Offered(), set()
    for digest in digests:
        assert offered.add(digest) or digest not in before
        before.add(digest)
    assert all(offered.add(digest) for digest in before)


def test_a_renamed_file_keeps_its_tags_without_a_parse(tmp_path, db, scan):
    song = put(tmp_path / "music", "tone.flac")
    scan(tmp_path / "music")
    before = media(db)["tone.flac"]
    song.rename(song.with_name("renamed.flac"))

    result = scan(tmp_path / "music")

    assert media(db) == {"renamed.flac": {**before, "path": str(song.with_name("renamed.flac"))}}
    assert metadata_counts(result)[:2] == (0, 0)  # neither queued nor read


def test_a_rename_is_not_counted_as_a_copy(tmp_path, db, scan):
    song = put(tmp_path / "music", "tone.flac")
    scan(tmp_path / "music")
    song.rename(song.with_name("renamed.flac"))
    assert metadata_counts(scan(tmp_path / "music")) == (0, 0, 0, 0)


# --- cover art

@MODES
def test_a_cover_shared_by_an_album_is_stored_once(tmp_path, db, scan, parallel):
    album = tmp_path / "music" / "Album_Art"
    for number, title in enumerate(["One", "Two", "Three"], 1):
        song = put(album, "art.mp3", f"{number:02d}.mp3")
        tags = ID3(song)
        tags.add(TIT2(encoding=3, text=title))  # distinct tracks, one embedded cover
        tags.save()
    put(album, "art.flac", "04.flac")

    scan(tmp_path / "music", parallel=parallel)

    h, cache = digest(COVER), db.parent / "artwork"
    stored = cache / h[:2] / f"{h}.jpg"
    artwork = query(db, "SELECT hash, mime, width, height, size, path FROM artwork")
    assert [tuple(r) for r in artwork] == [(h, "image/jpeg", 64, 64, len(COVER), str(stored))]
    assert [p for p in cache.rglob("*") if p.is_file()] == [stored]
    assert stored.read_bytes() == COVER
    links = query(db, "SELECT f.path, a.artwork_hash, a.picture_type FROM file_artwork a "
                      "JOIN files f ON f.id = a.file_id")
    assert {Path(r[0]).name: tuple(r[1:]) for r in links} == {
        name: (h, 3) for name in ("01.mp3", "02.mp3", "03.mp3", "04.flac")}
    assert {name: (r["title"], r["has_embedded_art"]) for name, r in media(db).items()} == {
        "01.mp3": ("One", 1), "02.mp3": ("Two", 1), "03.mp3": ("Three", 1),
        "04.flac": ("Tone_Art_FLAC", 1)}


def test_a_folder_cover_is_the_cover_of_the_files_without_their_own(tmp_path, db, scan):
    album = tmp_path / "music" / "Album"
    put(album, "art.mp3")
    put(album, "tone.flac")
    image = put(album, "cover.png")
    png = (DATA / "cover.png").read_bytes()

    scan(tmp_path / "music")

    image_id = files(db)[str(image)]["id"]
    assert [tuple(r) for r in query(db, "SELECT * FROM folder_artwork")] == [
        (str(album), image_id, digest(png))]
    assert [tuple(r) for r in query(db, "SELECT mime, width, height FROM artwork WHERE hash = ?",
                                    digest(png))] == [("image/png", 32, 32)]
    covers = query(db, "SELECT path, cover FROM tracks")
    assert {Path(r["path"]).name: r["cover"] for r in covers} == {
        "art.mp3": digest(COVER), "tone.flac": digest(png)}


def test_a_folder_cover_that_was_deleted_is_no_longer_the_cover(tmp_path, db, scan):
    album = tmp_path / "music" / "Album"
    put(album, "tone.flac")
    image = put(album, "cover.png")
    scan(tmp_path / "music")
    image.unlink()

    scan(tmp_path / "music")

    assert [tuple(r) for r in query(db, "SELECT cover FROM tracks")] == [(None,)]


def test_a_file_with_a_picture_says_so_when_the_artwork_cache_is_off(tmp_path, db):
    put(tmp_path / "music", "art.mp3")
    config = tmp_path / "no-artwork.toml"
    config.write_text("[metadata]\nartwork = false\n")
    Manager(db_path=db, roots=[str(tmp_path / "music")], config_file=str(config), env={},
            parallel=False).scan()
    assert media(db)["art.mp3"]["has_embedded_art"] == 1


def flac_with_pictures(folder: Path, name: str, *pictures: tuple[str, bytes]) -> Path:
    song = put(folder, "tone.flac", name)
    audio = FLAC(song)
    for mime, data in pictures:
        picture = Picture()
        picture.type, picture.mime, picture.data = 3, mime, data
        audio.add_picture(picture)
    audio.save()
    return song


def test_has_embedded_art_says_whether_the_file_has_a_picture_in_file_artwork(tmp_path, db, scan):
    music = tmp_path / "music"
    flac_with_pictures(music, "empty.flac", ("image/jpeg", b""))  # a tagger's leftover block
    flac_with_pictures(music, "link.flac", ("-->", b"https://covers.example/1.jpg"))
    flac_with_pictures(music, "both.flac", ("image/jpeg", b""), ("image/jpeg", COVER))

    scan(music)

    stored = {Path(r[0]).name: r[1] for r in query(
        db, "SELECT f.path, count(a.file_id) FROM files f JOIN media m ON m.file_id = f.id "
            "LEFT JOIN file_artwork a ON a.file_id = f.id GROUP BY f.id")}
    assert stored == {"empty.flac": 0, "link.flac": 0, "both.flac": 1}
    assert {name: row["has_embedded_art"] for name, row in media(db).items()} == {
        "empty.flac": 0, "link.flac": 0, "both.flac": 1}
    assert [tuple(r) for r in query(db, "SELECT hash FROM artwork")] == [(digest(COVER),)]


# --- reading the catalogue

def test_the_tracks_view_lists_present_files_with_their_tags_and_drops_missing_ones(tmp_path, db,
                                                                                    scan):
    root = tmp_path / "music"
    for sample in ("id3v23.mp3", "tone.ogg", "tone.wma"):
        put(root, sample)

    def tracks() -> dict[str, tuple]:
        return {Path(r["path"]).name: (r["kind"], r["title"], r["artist"], r["track_no"],
                                       r["codec"]) for r in query(db, "SELECT * FROM tracks")}

    scan(root)
    assert tracks() == {
        "id3v23.mp3": ("audio", "Tone_MP3_v23", "Artist_A", 1, "mp3"),
        "tone.ogg": ("audio", "Tone_Vorbis", "Artist_B", 4, "vorbis"),
        "tone.wma": ("audio", "Tone_WMA", "Artist_E", 9, "windows media audio v8"),
    }

    (root / "tone.ogg").unlink()
    scan(root)
    assert tracks() == {
        "id3v23.mp3": ("audio", "Tone_MP3_v23", "Artist_A", 1, "mp3"),
        "tone.wma": ("audio", "Tone_WMA", "Artist_E", 9, "windows media audio v8"),
    }
    assert set(media(db)) == {"id3v23.mp3", "tone.ogg", "tone.wma"}  # kept, not deleted


def retagged(folder: Path, name: str, artist: str, title: str) -> Path:
    song = put(folder, "tone.flac", name)
    audio = FLAC(song)
    audio["artist"], audio["title"] = artist, title
    audio.save()
    return song


def search(db: Path, words: str) -> set[str]:
    return {Path(r["path"]).name for r in query(
        db, "SELECT path FROM tracks WHERE id IN "
            "(SELECT rowid FROM media_fts WHERE media_fts MATCH ?)", words)}


def test_search_finds_a_file_by_artist_and_by_title(tmp_path, db, scan):
    root = tmp_path / "music"
    retagged(root, "yesterday.flac", "The Beatles", "Yesterday")
    retagged(root, "feeling good.flac", "Nina Simone", "Feeling Good")

    scan(root)

    assert (search(db, "beatles"), search(db, "feeling"), search(db, "artist:simone"),
            search(db, "title:yesterday")) == (
        {"yesterday.flac"}, {"feeling good.flac"}, {"feeling good.flac"}, {"yesterday.flac"})


def test_search_follows_a_title_edited_since(tmp_path, db, scan):
    root = tmp_path / "music"
    song = retagged(root, "song.flac", "The Beatles", "Yesterday")
    scan(root)
    retagged(root, "song.flac", "The Beatles", "Help")

    scan(root)

    assert (search(db, "yesterday"), search(db, "help")) == (set(), {song.name})


# --- the time limit on a parser that hangs

def test_a_stage_that_hangs_in_a_worker_process_is_stopped_and_its_worker_replaced():
    # The workers find tests/slow_stage.py without PYTHONPATH: multiprocessing hands the
    # forkserver and each worker this process's sys.path, where pytest put tests/.
    results: list[str] = []
    pool = ProcessPool("slow_stage:hang_on", results.extend, threading.Event(), workers=1,
                       timeout=1.0, on_timeout=lambda item: f"timed out {item}",
                       on_crash=lambda item, reason: f"crashed {item}: {reason}")
    try:
        pool.submit(["first", "hang", "last"])
        pool.drain()
    finally:
        pool.close()
    assert (results, pool.replaced) == (["read first", "timed out hang", "read last"], 1)


@pytest.fixture(params=["bursts", "one write a result"])
def results_written(request, monkeypatch):
    """Workers as they run where they can share a word of memory with the parent (a
    memfd), and as they run where they cannot: each result written as it is made."""
    if request.param != "bursts":
        monkeypatch.setattr(worker, "_shared_word", lambda: (None, None))
    return request.param


@pytest.mark.parametrize("bad, outcome", [("die", "crashed"), ("grip", "timed out")])
def test_a_worker_that_dies_or_hangs_holding_the_gil_is_blamed_for_its_item_alone(
        bad, outcome, results_written):
    """The items read before it in the same chunk keep their results (in whatever order):
    a worker writes its results in bursts, and those it had not sent yet die with it;
    it tells which item it was on, so they are read again, not blamed in turn."""
    results: list[str] = []
    pool = ProcessPool("slow_stage:dies_on", results.extend, threading.Event(), workers=1,
                       timeout=1.0, on_timeout=lambda item: f"timed out {item}",
                       on_crash=lambda item, reason: f"crashed {item}")
    try:
        pool.submit(["a", "b", "c", bad, "d"])
        pool.drain()
    finally:
        pool.close()
    assert (sorted(results), pool.replaced) == (
        sorted(["read a", "read b", "read c", f"{outcome} {bad}", "read d"]), 1)


def test_the_time_limit_is_each_items_own_though_results_wait_behind_the_next_item(
        results_written):
    """Four items of 0.3 s each under a limit of 0.5 s, in C code that keeps the GIL: a
    result waits in its burst until the next item is done (0.6 s after it was asked
    for), and the limit must not count that against anyone."""
    results: list[str] = []
    pool = ProcessPool("slow_stage:slow_in_c", results.extend, threading.Event(), workers=1,
                       timeout=0.5, on_timeout=lambda item: f"timed out {item}",
                       on_crash=lambda item, reason: f"crashed {item}")
    try:
        pool.submit(["a", "b", "c", "d"])
        pool.drain()
    finally:
        pool.close()
    assert (sorted(results), pool.replaced) == (["read a", "read b", "read c", "read d"], 0)


def test_what_a_stage_writes_to_fd_1_is_not_taken_for_results(results_written):
    results: list[str] = []
    pool = ProcessPool("slow_stage:prints_on", results.extend, threading.Event(), workers=1,
                       timeout=1.0, on_timeout=lambda item: f"timed out {item}",
                       on_crash=lambda item, reason: f"crashed {item}")
    try:
        pool.submit(["a", "print", "b", "frame", "c"])
        pool.drain()
    finally:
        pool.close()
    assert (sorted(results), pool.replaced) == (
        sorted(["read a", "read print", "read b", "read frame", "read c"]), 0)


def test_a_chunk_is_not_sent_ahead_to_a_new_worker_while_a_dead_ones_chunk_waits(
        results_written):
    """The worker dies on the chunk sent ahead while this process still hands on the
    results of the one before (a slow writer): the next chunk went to a new worker,
    and its results were taken for the dead worker's chunk's."""
    results: list[str] = []

    def slow_sink(found: list) -> None:
        results.extend(found)
        time.sleep(0.5)  # a writer that takes its time: the worker dies meanwhile

    pool = ProcessPool("slow_stage:dies_on", slow_sink, threading.Event(), workers=1,
                       timeout=1.0, on_timeout=lambda item: f"timed out {item}",
                       on_crash=lambda item, reason: f"crashed {item}")
    try:
        for chunk in (["a"], ["die", "b"], ["c"]):
            pool.submit(chunk)
        pool.drain()
    finally:
        pool.close()
    assert (sorted(results), pool.replaced) == (
        sorted(["read a", "crashed die", "read b", "read c"]), 1)


def test_a_worker_that_dies_before_its_first_item_gives_no_item_a_verdict():
    """A stage the worker cannot even load (a broken install) stops it before any item:
    that is no item's doing, so each is left for later, never called a crash (a crash
    twice on the same file is a verdict on it: media_rows)."""
    results: list[str] = []
    pool = ProcessPool("slow_stage:no_such_stage", results.extend, threading.Event(),
                       workers=1, timeout=1.0, on_timeout=lambda item: f"timed out {item}",
                       on_crash=lambda item, reason: f"crashed {item}",
                       on_unplaced=lambda item, reason: f"unplaced {item}")
    try:
        for chunk in (["a", "b"], ["c"]):
            pool.submit(chunk)
        pool.drain()
    finally:
        pool.close()
    assert sorted(results) == ["unplaced a", "unplaced b", "unplaced c"]


def _pool(stage: str, results: list) -> ProcessPool:
    return ProcessPool(stage, results.extend, threading.Event(), workers=1, timeout=1.0,
                       on_timeout=lambda item: f"timed out {item}",
                       on_crash=lambda item, reason: f"crashed {item}",
                       on_unplaced=lambda item, reason: f"unplaced {item}")


def _each_once(results: list[str], items: list[str]) -> dict[str, str]:
    """Each item's one result's verb, by item; fails if an item has none or several."""
    verbs = {}
    for result in results:
        verb = next(v for v in ("read", "timed out", "crashed", "unplaced")
                    if result.startswith(v + " "))
        item = result[len(verb) + 1:]
        assert item not in verbs, f"{item} answered twice: {results}"
        verbs[item] = verb
    assert sorted(verbs) == sorted(items), results
    return verbs


def test_a_worker_stopped_between_chunks_blames_no_item():
    """Frozen while it waited for work (SIGSTOP), a worker had begun nothing of the next
    chunk: its items are left for later, not timed out."""
    results: list[str] = []
    pool = _pool("slow_stage:dies_on", results)
    try:
        pool.submit(["a"])
        pool.drain()
        for pid in workers_of(os.getpid()):
            os.kill(pid, signal.SIGSTOP)
        pool.submit(["b", "c"])
        pool.drain()
    finally:
        pool.close()
    assert _each_once(results, ["a", "b", "c"]) == {"a": "read", "b": "unplaced", "c": "unplaced"}


def test_chunks_that_went_ahead_to_a_dead_worker_go_to_one_new_worker_once(
        tmp_path, monkeypatch):
    """The worker dies on the first chunk, its replacement as it starts, while the second
    chunk was being sent to it again (too big for the pipe at once): that chunk must not
    go to a third worker while the first chunk's rest waits on the second."""
    monkeypatch.setenv("SLOW_STAGE_MARKER", str(tmp_path / "die as you start"))
    pad = "x" * 1900
    first = ["slow", "die twice"] + [f"a{n:02d}{pad}" for n in range(29)]
    second = [f"b{n:02d}{pad}" for n in range(30)]
    results: list[str] = []
    pool = _pool("slow_stage:dies_on", results)
    try:
        pool.submit(first)
        pool.submit(second)
        pool.drain()
    finally:
        pool.close()
    verbs = _each_once(results, first + second)
    assert verbs["die twice"] == "crashed"
    assert all(verbs[item] == "read" for item in second), results
    assert "timed out" not in verbs.values()


def test_a_worker_that_dies_when_no_other_can_start_leaves_the_rest_unread(monkeypatch):
    """As under a reached `ulimit -u`: the chunks that went ahead to the dead worker are
    left for later too, and the pool ends cleanly."""
    started = []
    real = worker.subprocess.Popen

    def only_once(*args, **kwargs):
        if started:
            raise OSError(errno.EAGAIN, "Resource temporarily unavailable")
        started.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(worker.subprocess, "Popen", only_once)
    results: list[str] = []
    pool = _pool("slow_stage:dies_on", results)
    try:
        for chunk in (["slow", "die", "b"], ["c"], ["d"]):
            pool.submit(chunk)
        pool.drain()
    finally:
        pool.close()
    verbs = _each_once(results, ["slow", "die", "b", "c", "d"])
    assert (verbs["die"], verbs["c"], verbs["d"]) == ("crashed", "unplaced", "unplaced")


def test_a_batch_no_worker_lives_to_read_is_refused_as_no_worker_not_raised():
    """Too big for the pipe, sent to workers that die as they start, twice: the pool is
    told no worker could take it (its items are left for later), not a broken pipe."""
    dying = worker.Worker("slow_stage:no_such_stage")
    try:
        with pytest.raises(worker.WorkerUnavailable, match="died as it started"):
            dying.send(["x" * 100_000])
    finally:
        dying.stop()


def test_chunks_sent_ahead_to_a_worker_that_hangs_are_sent_again_to_its_replacement():
    # The worker starts on the first chunk, so the later ones are queued by then: the
    # third goes into the pipe ahead while the second hangs; the fourth is too big to
    # go ahead (it is sent when its turn comes).
    results: list[str] = []
    pool = ProcessPool("slow_stage:hang_on", results.extend, threading.Event(), workers=1,
                       timeout=1.0, on_timeout=lambda item: f"timed out {item}",
                       on_crash=lambda item, reason: f"crashed {item}: {reason}")
    big = "big " + "x" * 70_000
    try:
        for chunk in (["first"], ["hang", "after"], ["last"], [big]):
            pool.submit(chunk)
        pool.drain()
    finally:
        pool.close()
    assert (results, pool.replaced) == (
        ["read first", "timed out hang", "read after", "read last", f"read {big}"], 1)


def test_a_worker_limits_its_memory_and_is_the_first_the_out_of_memory_killer_takes():
    results: list = []
    pool = ProcessPool("slow_stage:limits", results.extend, threading.Event(), workers=1,
                       timeout=5.0, on_timeout=lambda item: None,
                       on_crash=lambda item, reason: None)
    try:
        pool.submit(["any"])
        pool.drain()
    finally:
        pool.close()
    assert results == [(MEMORY_LIMIT, 500)]


def test_a_stage_that_hangs_in_sequential_mode_is_stopped_by_an_alarm():
    stage = with_alarm(named("slow_stage:hang_on"), 0.5, lambda item: f"timed out {item}")
    assert [stage(item) for item in ("first", "hang", "last")] == [
        "read first", "timed out hang", "read last"]


# --- both modes, and the Python API as the README shows it

def test_sequential_and_parallel_modes_give_the_same_media_rows(tmp_path):
    root = tmp_path / "music"
    for name in [*FORMATS, "art.mp3", "art.flac", "zero_tickdiv.mid", "cover.jpg"]:
        put(root / Path(name).suffix.lstrip("."), name)
    (root / "flac" / "notes.flac").write_text("not a FLAC file\n")

    def content(db: Path) -> tuple[dict, dict, dict]:
        rows = {name: without(row, "file_id", "extracted_at") for name, row in media(db).items()}
        links = {r["path"]: (r["artwork_hash"], r["picture_type"]) for r in query(
            db, "SELECT f.path, a.* FROM file_artwork a JOIN files f ON f.id = a.file_id")}
        art = {r["hash"]: (r["mime"], r["width"], r["height"], r["size"],
                           os.path.relpath(r["path"], db.parent)) for r in query(
            db, "SELECT * FROM artwork")}
        return rows, links, art

    catalogues = {}
    for mode in ("parallel", "sequential"):
        db = tmp_path / mode / "library.db"
        result = Manager(db_path=db, roots=[str(root)], env={}, parallel=mode == "parallel").scan()
        assert result.status == "completed"
        catalogues[mode] = content(db)

    assert catalogues["parallel"] == catalogues["sequential"]
    rows, links, art = catalogues["parallel"]
    assert (len(rows), len(links), len(art)) == (len(FORMATS) + 4, 2, 1)


READ_TAGS_JSON = """
import sys
from indexer.metadata import read_tags
from indexer.records import TagJob
for path in sys.argv[1:]:
    print(read_tags(TagJob(path, path, "hash")).tags_json)
"""


def test_the_tags_json_of_a_file_is_the_same_text_whatever_process_reads_it():
    samples = [str(DATA / name) for name in ("tone.flac", "tone.ogg", "tone.wma")]
    texts = [subprocess.run([sys.executable, "-c", READ_TAGS_JSON, *samples], check=True,
                            capture_output=True, text=True, timeout=60,
                            env={**os.environ, "PYTHONHASHSEED": seed}).stdout
             for seed in ("1", "2")]
    assert texts[0] == texts[1]


READ_ALBUM_ARTIST = """
import sys
from indexer.metadata import read_tags
from indexer.records import MEDIA_COLUMNS, TagJob
values = read_tags(TagJob(sys.argv[1], sys.argv[1], "hash")).values
print(values[MEDIA_COLUMNS.index("album_artist")])
"""


def test_a_tag_spelled_two_ways_shows_its_values_in_the_files_order_in_every_process(tmp_path):
    """A Vorbis comment's keys came back from mutagen as a set: which spelling came
    first, so the album artist shown, changed with the process's hash seed."""
    song = put(tmp_path, "tone.flac")
    tagged = FLAC(song)
    tagged.tags.clear()
    for key, value in [("ALBUMARTIST", "Zed"), ("ALBUM ARTIST", "Abe"), ("album_artist", "Mo")]:
        tagged.tags.append((key, value))
    tagged.save()
    shown = {subprocess.run([sys.executable, "-c", READ_ALBUM_ARTIST, str(song)], check=True,
                            capture_output=True, text=True, timeout=60,
                            env={**os.environ, "PYTHONHASHSEED": str(seed)}).stdout.strip()
             for seed in range(6)}
    assert shown == {"Zed; Abe; Mo"}


SCRIPT = """
import os, sys
from indexer import Manager

if os.environ.get("SCRIPT_RUNNING"):  # run again inside a worker: stop, never recurse
    sys.exit(3)
os.environ["SCRIPT_RUNNING"] = "1"
Manager(db_path=sys.argv[1], roots=[sys.argv[2]], env={}).scan()
"""


def test_tags_are_read_when_a_script_without_a_main_guard_scans(tmp_path, db):
    put(tmp_path / "music", "tone.flac")
    script = tmp_path / "scan_library.py"
    script.write_text(SCRIPT)
    run = subprocess.run([sys.executable, str(script), str(db), str(tmp_path / "music")],
                         cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr
    row = media(db)["tone.flac"]
    assert (row["title"], row["error"]) == ("Tone_FLAC", None)


def test_thumbnails_of_each_distinct_image_are_made_once_in_the_configured_sizes(tmp_path, db):
    from PIL import Image
    album = tmp_path / "music" / "Album"
    put(album, "art.flac", "01.flac")
    put(album, "art.mp3", "02.mp3")  # the same cover embedded again
    config = tmp_path / "thumbs.toml"
    config.write_text("[metadata]\nthumbnails = [16, 32]\n")
    Manager(db_path=db, roots=[str(tmp_path / "music")], config_file=str(config), env={}).scan()

    thumbnails = sorted(p.relative_to(db.parent / "artwork" / "thumbnails")
                        for p in (db.parent / "artwork" / "thumbnails").rglob("*.jpg"))
    cover = digest((DATA / "cover.jpg").read_bytes())
    assert [str(p) for p in thumbnails] == [f"16/{cover[:2]}/{cover}.jpg", f"32/{cover[:2]}/{cover}.jpg"]
    with Image.open(db.parent / "artwork" / "thumbnails" / thumbnails[0]) as image:
        assert image.size == (16, 16) and image.format == "JPEG"
