"""Videos: every container FFmpeg opens gets a `media` row and its `streams` from its
headers, field by field as the test wrote it; the `videos` view; HDR; names as people
name files; broken files, FIFOs and vanished files; read again only when the content
changes; both modes give the same rows.

Real videos encoded by PyAV's bundled encoders (tests/videos.py), real scans into a
real catalogue, real worker processes.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import threading
from pathlib import Path

import pytest

from conftest import DATA, cli_env, connect, indexer
from images import camera_exif, make_image
from indexer import Manager
from indexer.metadata import read_tags
from indexer.records import STREAM_COLUMNS, TagJob
from videos import make_video

X265 = {"x265-params": "log-level=error"}
PQ = {"color_trc": 16, "color_primaries": 9, "colorspace": 9}  # smpte2084, bt2020, bt2020nc
HLG = {"color_trc": 18, "color_primaries": 9, "colorspace": 9}  # arib-std-b67
EPISODE = "Show Name/Season 02/Show.Name.S02E05.1080p.mkv"
FILM = "Film Title (1999)/Film Title (1999).mkv"


def library(root: Path) -> None:
    """One video of each kind the tests below assert."""
    make_video(root / "multi.mkv", audio=(("aac", "5.1", "eng", True),
                                          ("libopus", "stereo", "fra", False)),
               subtitles=(("eng", False, True), ("fra", False, False)), title="Multi Film",
               tags={"DATE_RELEASED": "2004-03-01", "GENRE": "Drama", "SUMMARY": "Two tongues"},
               chapters=3,
               attachment=("cover.jpg", "image/jpeg", (DATA / "cover.jpg").read_bytes()))
    make_video(root / "hdr10.mkv", codec="libx265", pix_fmt="yuv420p10le", size=(64, 64),
               color=PQ, options=X265)
    make_video(root / "hlg.mp4", codec="libx265", pix_fmt="yuv420p10le", size=(64, 64),
               color=HLG, options=X265)
    make_video(root / "vision.mp4", codec="libx265", pix_fmt="yuv420p10le", size=(64, 64),
               color=PQ, options=X265, codec_tag="dvh1")
    make_video(root / "old.avi", codec="mpeg4", audio=(("mp2", "stereo", None, True),))
    make_video(root / "broadcast.ts", audio=(("aac", "stereo", "deu", True),))
    make_video(root / "web.webm", codec="libvpx", audio=(("libopus", "mono", "spa", True),))
    make_video(root / "tagged.m4v", title="Pilot", tags={
        "show": "Tagged Show", "season_number": "3", "episode_sort": "7", "date": "2011-09-01",
        "description": "It starts.", "genre": "Comedy"})
    make_video(root / EPISODE)
    make_video(root / FILM, audio=(("aac", "stereo", "ita", True),))
    make_video(root / "Holiday 2019" / "IMG_1234.mp4")


def videos(db: Path) -> dict[str, dict]:
    """The `videos` view by path below the root's parent, without the id."""
    with connect(db) as conn:
        return {_name(row["path"]): {k: row[k] for k in row.keys() if k not in ("file_id", "path")}
                for row in conn.execute("SELECT * FROM videos")}


def streams(db: Path) -> dict[str, list[tuple]]:
    with connect(db) as conn:
        found: dict[str, list[tuple]] = {}
        for row in conn.execute("SELECT f.path, s.* FROM streams s JOIN files f "
                                "ON f.id = s.file_id ORDER BY f.path, s.idx"):
            found.setdefault(_name(row["path"]), []).append(tuple(row)[2:])
        return found


def media(db: Path, name: str) -> dict:
    with connect(db) as conn:
        return {_name(r["path"]): dict(r) for r in conn.execute(
            "SELECT f.path, m.* FROM media m JOIN files f ON f.id = m.file_id")}[name]


def _name(path: str) -> str:
    return path.split("/videos/", 1)[-1]


@pytest.fixture(scope="module")
def scanned(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("lib") / "videos"
    library(root)
    db = tmp_path_factory.mktemp("state") / "library.db"
    result = Manager(db_path=db, roots=[str(root)], env={}).scan()
    assert (result.status, result.counters.metadata_extracted, result.counters.metadata_failed) \
        == ("completed", 11, 0)
    return db


SDR = {"hdr": None, "bit_depth": 8, "frame_rate": 25.0, "year": None, "show": None,
       "season": None, "episode": None, "title": None}


def test_a_multi_audio_mkv_has_each_stream_with_its_language_and_flags(scanned):
    assert videos(scanned)["multi.mkv"] == {
        **SDR, "container": "matroska", "duration": pytest.approx(0.4, abs=0.02),
        "bitrate": videos(scanned)["multi.mkv"]["bitrate"], "width": 64, "height": 48,
        "video_codec": "h264", "audio_languages": '["eng", "fra"]',
        "subtitle_languages": '["eng", "fra"]', "title": "Multi Film", "year": 2004}
    assert streams(scanned)["multi.mkv"] == [
        # idx, type, codec, profile, width, height, frame_rate, bit_depth, pix_fmt,
        # color_transfer, channels, channel_layout, sample_rate, language, title, default, forced
        (0, "video", "h264", "High", 64, 48, 25.0, 8, "yuv420p", None, None, None, None, None,
         None, 0, 0),
        (1, "audio", "aac", "LC", None, None, None, None, None, None, 6, "5.1", 48000, "eng",
         None, 1, 0),
        (2, "audio", "opus", None, None, None, None, None, None, None, 2, "stereo", 48000, "fra",
         None, 0, 0),
        (3, "subtitle", "subrip", None, None, None, None, None, None, None, None, None, None,
         "eng", None, 0, 1),
        (4, "subtitle", "subrip", None, None, None, None, None, None, None, None, None, None,
         "fra", None, 0, 0),
    ]


def test_a_videos_tags_chapters_and_cover_attachment_are_on_its_media_row(scanned):
    row = media(scanned, "multi.mkv")
    assert {k: row[k] for k in ("genre", "date", "description", "chapters", "display_aspect_ratio",
                                "sample_rate", "channels", "has_embedded_art", "error")} == {
        "genre": "Drama", "date": "2004-03-01", "description": "Two tongues", "chapters": 3,
        "display_aspect_ratio": "4:3", "sample_rate": 48000, "channels": 6,
        "has_embedded_art": 1, "error": None}
    assert json.loads(row["tags"])["title"] == ["Multi Film"]
    with connect(scanned) as conn:
        art = conn.execute("SELECT a.mime, a.width FROM file_artwork fa JOIN artwork a "
                           "ON a.hash = fa.artwork_hash WHERE fa.file_id = ?",
                           (row["file_id"],)).fetchall()
    assert [tuple(a) for a in art] == [("image/jpeg", 64)]


@pytest.mark.parametrize("name, container, hdr, transfer", [
    ("hdr10.mkv", "matroska", "HDR10", "smpte2084"),
    ("hlg.mp4", "mp4", "HLG", "arib-std-b67"),
    ("vision.mp4", "mp4", "DolbyVision", "smpte2084"),
])
def test_a_10_bit_hevc_video_says_its_hdr_kind(scanned, name, container, hdr, transfer):
    row = videos(scanned)[name]
    assert {k: row[k] for k in ("container", "video_codec", "bit_depth", "hdr", "width")} == {
        "container": container, "video_codec": "hevc", "bit_depth": 10, "hdr": hdr, "width": 64}
    assert streams(scanned)[name][0][2:10] == ("hevc", "Main 10", 64, 64, 25.0, 10,
                                                "yuv420p10le", transfer)
    assert (media(scanned, name)["color_primaries"], media(scanned, name)["color_transfer"]) \
        == ("bt2020", transfer)


@pytest.mark.parametrize("name, container, video, audio", [
    ("old.avi", "avi", "mpeg4", (1, "audio", "mp2", None, None, None, None, None, None, None, 2,
                                 "stereo", 48000, None, None, 0, 0)),
    ("broadcast.ts", "mpegts", "h264", (1, "audio", "aac", "LC", None, None, None, None, None,
                                        None, 2, "stereo", 48000, "deu", None, 0, 0)),
    ("web.webm", "webm", "vp8", (1, "audio", "opus", None, None, None, None, None, None, None, 1,
                                 "mono", 48000, "spa", None, 1, 0)),
])
def test_avi_ts_and_webm_are_read_as_their_containers(scanned, name, container, video, audio):
    row = videos(scanned)[name]
    assert (row["container"], row["video_codec"], row["width"], row["height"]) == (
        container, video, 64, 48)
    assert streams(scanned)[name][1] == audio


def test_tags_of_an_episode_give_its_show_season_and_episode(scanned):
    row = videos(scanned)["tagged.m4v"]
    assert {k: row[k] for k in ("container", "title", "year", "show", "season", "episode")} == {
        "container": "mov", "title": "Pilot", "year": 2011,
        "show": "Tagged Show", "season": 3, "episode": 7}
    assert (media(scanned, "tagged.m4v")["description"], media(scanned, "tagged.m4v")["genre"]) \
        == ("It starts.", "Comedy")


def test_an_untagged_episode_and_film_are_known_by_their_names(scanned):
    found = videos(scanned)
    assert {k: found[EPISODE][k] for k in ("title", "year", "show", "season", "episode")} == {
        "title": None, "year": None, "show": "Show Name", "season": 2, "episode": 5}
    assert {k: found[FILM][k] for k in ("title", "year", "show", "season", "episode",
                                        "audio_languages")} == {
        "title": "Film Title", "year": 1999, "show": None, "season": None, "episode": None,
        "audio_languages": '["ita"]'}


def test_a_phone_clips_number_is_not_taken_for_a_season_and_episode(scanned):
    row = videos(scanned)["Holiday 2019/IMG_1234.mp4"]
    assert (row["title"], row["year"], row["show"], row["season"], row["episode"]) == (
        None, None, None, None, None)


def test_a_video_whose_tags_say_a_year_is_not_named_from_its_file(tmp_path, db, scan):
    make_video(tmp_path / "lib" / "Other Name (1950)" / "Other Name (1950).mkv",
               title="Real Title", tags={"DATE_RELEASED": "2001"})
    scan(tmp_path / "lib")
    row = videos(db)[str(tmp_path / "lib" / "Other Name (1950)" / "Other Name (1950).mkv")]
    assert (row["title"], row["year"]) == ("Real Title", 2001)


def test_junk_and_truncated_videos_are_recorded_with_their_reason_and_the_scan_goes_on(
        tmp_path, db, scan):
    root = tmp_path / "lib"
    root.mkdir()
    (root / "random.mkv").write_bytes(random.Random(9).randbytes(50_000))
    whole = make_video(tmp_path / "whole.mp4", frames=50).read_bytes()
    (root / "truncated.mp4").write_bytes(whole[:len(whole) // 2])  # its moov is at the end
    (root / "empty.avi").write_bytes(b"")
    make_video(root / "good.mkv")

    result = scan(root)

    assert (result.status, result.counters.metadata_failed) == ("completed", 3)
    with connect(db) as conn:
        errors = {Path(r[0]).name: r[1] for r in conn.execute(
            "SELECT f.path, m.error FROM media m JOIN files f ON f.id = m.file_id")}
        verdicts = conn.execute("SELECT count(*) FROM files WHERE tags_hash = hash").fetchone()[0]
    assert errors == {"random.mkv": "InvalidDataError: Invalid data found when processing input",
                      "truncated.mp4": "InvalidDataError: Invalid data found when processing input",
                      "empty.avi": "InvalidDataError: Invalid data found when processing input",
                      "good.mkv": None}
    assert verdicts == 4  # a verdict on the bytes: not read again until they change
    assert scan(root).counters.metadata_queued == 0


def test_a_fifo_named_like_a_film_neither_hangs_a_scan_nor_a_probe(tmp_path, db, scan):
    root = tmp_path / "lib"
    root.mkdir()
    os.mkfifo(root / "film.mkv")
    make_video(root / "real.mkv")

    result = scan(root)
    assert (result.status, result.counters.skipped, result.counters.metadata_extracted) == (
        "completed", 1, 1)

    answer: list = []  # a file swapped for a FIFO after its hash was read: the probe refuses it
    probe = threading.Thread(target=lambda: answer.append(read_tags(TagJob(
        str(root / "film.mkv"), str(root / "film.mkv"), "0" * 32))), daemon=True)
    probe.start()
    probe.join(20)
    assert not probe.is_alive(), "av.open blocked on a FIFO"
    assert (answer[0].error, answer[0].final) == (
        "NotRegular: not a regular file: not opened (a FIFO would block the reader)", False)


def test_a_video_gone_before_its_headers_are_read_is_no_verdict(tmp_path):
    gone = str(tmp_path / "gone.mkv")
    result = read_tags(TagJob(gone, gone, "0" * 32))
    assert (result.final, result.error) == (False, "FileNotFoundError: No such file or directory")


def test_a_video_is_read_again_only_when_its_content_changes_or_on_rehash(tmp_path, db, scan):
    root = tmp_path / "lib"
    film = make_video(root / "film.mkv", audio=(("aac", "stereo", "eng", True),))
    make_video(root / "other.mp4")
    assert scan(root).counters.metadata_extracted == 2

    os.utime(film)  # touched: not read
    assert scan(root).counters.metadata_queued == 0

    make_video(film, audio=(("aac", "stereo", "jpn", True), ("aac", "mono", "eng", False)))
    changed = scan(root)
    assert (changed.counters.metadata_queued, videos(db)[str(film)]["audio_languages"]) == (
        1, '["jpn", "eng"]')
    assert [s[0] for s in streams(db)[str(film)]] == [0, 1, 2]  # the old rows replaced

    assert scan(root, rehash=True).counters.metadata_extracted == 2


def test_a_copy_of_a_video_gets_its_row_and_streams_without_a_probe(tmp_path, db, scan):
    root = tmp_path / "lib"
    film = make_video(root / "film.mkv", audio=(("aac", "stereo", "eng", True),))
    scan(root)
    shutil.copyfile(film, root / "copy.mkv")

    result = scan(root)

    assert (result.counters.metadata_queued, result.counters.metadata_copied) == (0, 1)
    found = streams(db)
    assert found[str(root / "copy.mkv")] == found[str(film)]
    assert len(found[str(film)]) == 2


def test_sequential_and_parallel_modes_give_the_same_video_photo_and_stream_rows(tmp_path):
    root = tmp_path / "videos"
    library(root)
    make_image(root / "photos" / "a.jpg", exif=camera_exif())
    make_image(root / "photos" / "b.heic", exif=camera_exif())
    (root / "junk.mkv").write_bytes(random.Random(2).randbytes(4096))

    def content(db: Path) -> tuple:
        with connect(db) as conn:
            return tuple([tuple(r)[1:] for r in conn.execute(  # all but the ids
                f"SELECT * FROM {view} ORDER BY path")] for view in ("videos", "photos")) + (
                [(r[0], *tuple(r)[2:]) for r in conn.execute(
                    "SELECT f.path, s.* FROM streams s JOIN files f ON f.id = s.file_id "
                    "ORDER BY f.path, s.idx")],
                [tuple(r) for r in conn.execute(
                    "SELECT f.path, m.error, m.tags FROM media m JOIN files f ON f.id = m.file_id "
                    "ORDER BY f.path")])

    catalogues = {}
    for mode in ("parallel", "sequential"):
        db = tmp_path / mode / "library.db"
        result = Manager(db_path=db, roots=[str(root)], env={}, parallel=mode == "parallel").scan()
        assert result.status == "completed"
        catalogues[mode] = content(db)

    assert catalogues["parallel"] == catalogues["sequential"]
    found_videos, found_photos, found_streams, _ = catalogues["parallel"]
    assert (len(found_videos), len(found_photos), len(found_streams)) == (12, 2, 19)


def test_the_stream_columns_are_the_tables():
    assert STREAM_COLUMNS == ("idx", "type", "codec", "profile", "width", "height", "frame_rate",
                              "bit_depth", "pix_fmt", "color_transfer", "channels",
                              "channel_layout", "sample_rate", "language", "title", "is_default",
                              "is_forced")


# --- the command line: search, show, ls

@pytest.fixture(scope="module")
def shelf(tmp_path_factory) -> tuple[Path, Path, dict]:
    """A small film and TV shelf, scanned by the real command: (root, catalogue, env)."""
    tmp = tmp_path_factory.mktemp("shelf")
    root = tmp / "media"
    make_video(root / "The Office" / "Season 2" / "The.Office.S02E01.720p.mkv")
    make_video(root / "The Office" / "Season 2" / "The.Office.S02E02.720p.mkv")
    make_video(root / "Other Show" / "Season 1" / "Other.Show.S01E01.mkv")
    make_video(root / "Big Film (2020)" / "Big Film (2020).mkv", codec="mpeg4", size=(3840, 1600),
               frames=1, audio=(("aac", "5.1", "eng", True),))
    make_video(root / "Small Film (2001)" / "Small Film (2001).mkv", codec="libx265",
               pix_fmt="yuv420p10le", size=(64, 64), color=PQ, options=X265)
    make_image(root / "Photos" / "beach.jpg", exif=camera_exif())
    env = cli_env(tmp)
    db = tmp / "library.db"
    indexer("scan", root, "--db", db, env=env, check=True)
    return root, db, env


def found(shelf, *query: str) -> list[str]:
    root, db, env = shelf
    result = indexer("search", *query, "--json", "--db", db, env=env, check=True)
    return [os.path.relpath(json.loads(line)["path"], root) for line in result.stdout.splitlines()]


@pytest.mark.parametrize("query, paths", [
    (["show:office"], ["The Office/Season 2/The.Office.S02E01.720p.mkv",
                       "The Office/Season 2/The.Office.S02E02.720p.mkv"]),
    (["office", "episode:2"], ["The Office/Season 2/The.Office.S02E02.720p.mkv"]),
    (["season:1"], ["Other Show/Season 1/Other.Show.S01E01.mkv"]),
    (['"big film"'], ["Big Film (2020)/Big Film (2020).mkv"]),
    (["kind:video", "resolution:2160"], ["Big Film (2020)/Big Film (2020).mkv"]),
    (["resolution:4k"], ["Big Film (2020)/Big Film (2020).mkv"]),
    (["hdr:hdr10"], ["Small Film (2001)/Small Film (2001).mkv"]),
    (["film", "hdr:none"], ["Big Film (2020)/Big Film (2020).mkv"]),
    (["kind:image"], ["Photos/beach.jpg"]),
    (["kind:audio"], []),
])
def test_search_finds_videos_by_show_title_season_kind_hdr_and_resolution(shelf, query, paths):
    assert sorted(found(shelf, *query)) == paths


def test_a_found_episode_is_shown_with_its_show_season_and_episode(shelf):
    root, db, env = shelf
    result = indexer("search", "show:other", "--db", db, env=env, check=True)
    assert result.stdout == (f"Other Show S01E01  64x48  "
                             f"{root / 'Other Show/Season 1/Other.Show.S01E01.mkv'}\n")


@pytest.mark.parametrize("query, message", [
    ("kind:film", "kind:film: give one of audio, video, image"),
    ("hdr:bright", "hdr:bright: give hdr10, hlg, dolbyvision, any or none"),
    ("resolution:big", "resolution:big: give a number of lines (2160, 1080p, 720) or 4k"),
    ("season:two", "season:two: give a number (season:2)"),
])
def test_a_filter_it_cannot_read_is_a_usage_error_naming_it(shelf, query, message):
    root, db, env = shelf
    result = indexer("search", query, "--db", db, env=env)
    assert (result.returncode, result.stderr) == (2, f"indexer: error: {message}\n")


def test_show_prints_a_videos_streams(shelf):
    root, db, env = shelf
    result = indexer("show", root / "Big Film (2020)" / "Big Film (2020).mkv", "--db", db,
                     env=env, check=True)
    assert result.stdout.split("streams:\n")[1].split("\n\n")[0].splitlines() == [
        "  #0 video mpeg4 (Simple Profile) 3840x1600 25 fps 8-bit yuv420p",
        "  #1 audio aac (LC) 6 ch 5.1 48000 Hz [eng] default"]
    shown = json.loads(indexer("show", root / "Big Film (2020)" / "Big Film (2020).mkv", "--json",
                               "--db", db, env=env, check=True).stdout)
    assert [(s["idx"], s["type"], s["codec"]) for s in shown["streams"]] == [
        (0, "video", "mpeg4"), (1, "audio", "aac")]
    assert (shown["media"]["width"], shown["media"]["year"]) == (3840, 2020)


@pytest.mark.parametrize("kind, count", [("video", 5), ("image", 1), ("audio", 0)])
def test_ls_lists_the_files_of_one_kind(shelf, kind, count):
    root, db, env = shelf
    rows = [json.loads(line) for line in indexer("ls", "--kind", kind, "--json", "--db", db,
                                                 env=env, check=True).stdout.splitlines()]
    assert (len(rows), {r["kind"] for r in rows} <= {kind}) == (count, True)


def test_a_catalogue_of_schema_6_has_its_videos_read_again_and_its_shows_searchable(tmp_path):
    from indexer import schema
    db = tmp_path / "library.db"
    with connect(db) as conn:
        conn.isolation_level = None
        for step in schema.MIGRATIONS[:6]:
            step(conn)
        conn.execute("PRAGMA user_version = 6")
        for file_id, kind, title in ((1, "video", "Clip"), (2, "audio", "Song")):
            conn.execute("INSERT INTO files (id, root, path, dir, size, mtime_ns, inode, device, "
                         "hash, kind, first_seen, updated_at, tags_hash) VALUES (?, '/r', ?, '/r', "
                         "1, 1, ?, 1, 'h', ?, 'now', 'now', 'h')",
                         (file_id, f"/r/{title}", file_id, kind))
            conn.execute("INSERT INTO media (file_id, content_hash, title, extracted_at) "
                         "VALUES (?, 'h', ?, 'now')", (file_id, title))

        assert schema.migrate(conn) == 6

        assert dict(conn.execute("SELECT path, tags_hash FROM files").fetchall()) == {
            "/r/Clip": None, "/r/Song": "h"}  # the video is read again by the next scan
        assert [r[0] for r in conn.execute(
            "SELECT rowid FROM media_fts WHERE media_fts MATCH 'clip'")] == [1]
        conn.execute("UPDATE media SET show = 'The Office' WHERE file_id = 1")
        assert [r[0] for r in conn.execute(
            "SELECT rowid FROM media_fts WHERE media_fts MATCH 'show: office'")] == [1]
        assert [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'view' "
                                           "AND name IN ('videos', 'photos')")] == ["videos",
                                                                                   "photos"]


# --- thumbnails (metadata.thumbnails): a frame of each video, each photo made small

def test_thumbnails_are_made_of_a_frame_of_each_video_and_of_each_photo_when_asked(tmp_path, db):
    from PIL import Image
    root = tmp_path / "lib"
    make_video(root / "film.mkv", size=(320, 180), frames=30)
    make_video(root / "covered.mkv", attachment=("cover.jpg", "image/jpeg",
                                                 (DATA / "cover.jpg").read_bytes()))
    make_image(root / "beach.jpg", size=(400, 300), exif=camera_exif())  # orientation 6
    config = tmp_path / "thumbs.toml"
    config.write_text("[metadata]\nthumbnails = [32, 100]\n")
    Manager(db_path=db, roots=[str(root)], config_file=str(config), env={}).scan()

    with connect(db) as conn:
        pictures = {Path(r["path"]).name: dict(r) for r in conn.execute(
            "SELECT f.path, fa.picture_type, a.width, a.height, a.mime, m.has_embedded_art "
            "FROM file_artwork fa JOIN files f ON f.id = fa.file_id JOIN artwork a "
            "ON a.hash = fa.artwork_hash JOIN media m ON m.file_id = f.id")}
    assert {name: (p["picture_type"], p["width"], p["height"], p["mime"], p["has_embedded_art"])
            for name, p in pictures.items()} == {
        "film.mkv": (0, 100, 56, "image/jpeg", 0),  # a frame, 320x180 made 100 wide
        "covered.mkv": (3, 64, 64, "image/jpeg", 1),  # its own cover: no frame
        "beach.jpg": (0, 75, 100, "image/jpeg", 0),  # turned as its orientation says
    }
    small = sorted((db.parent / "artwork" / "thumbnails" / "32").rglob("*.jpg"))
    assert len(small) == 3
    with Image.open(small[0]) as image:
        assert max(image.size) == 32


def test_no_thumbnail_is_made_past_its_time_budget_nor_by_default(tmp_path, db):
    root = tmp_path / "lib"
    make_video(root / "film.mkv")
    make_image(root / "beach.jpg")
    config = tmp_path / "thumbs.toml"
    config.write_text("[metadata]\nthumbnails = [32]\nthumbnail_budget_s = 0\n")
    Manager(db_path=db, roots=[str(root)], config_file=str(config), env={}).scan()
    Manager(db_path=tmp_path / "plain" / "library.db", roots=[str(root)], env={}).scan()

    for catalogue in (db, tmp_path / "plain" / "library.db"):
        with connect(catalogue) as conn:
            assert conn.execute("SELECT count(*) FROM file_artwork").fetchone()[0] == 0
            assert conn.execute("SELECT count(*) FROM media WHERE error IS NULL").fetchone()[0] == 2
