"""The catalogue's views (indexer/views.py): what each row means, the same answers as
the first definitions (schema.py's V2) gave, and an older catalogue given them.

Real FLAC files tagged by mutagen, real scans into a real catalogue.
"""

from __future__ import annotations

import hashlib
import re
import shutil
import sqlite3
from pathlib import Path

from mutagen.flac import FLAC, Picture

from conftest import DATA, connect
from indexer import schema, views

COVER = (DATA / "cover.jpg").read_bytes()


def picture(label: str) -> bytes:
    """A distinct, valid JPEG: readers ignore bytes after its end marker."""
    return COVER + label.encode()


def digest(data: bytes) -> str:
    return hashlib.blake2b(data, digest_size=16).hexdigest()


def track(folder: Path, name: str, *, album: str | None, artist: str,
          album_artist: str | None = None, number: int = 1, art: bytes | None = None) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    song = folder / name
    shutil.copyfile(DATA / "tone.flac", song)
    audio = FLAC(song)
    audio.clear()  # the sample's own tags
    audio["title"], audio["artist"], audio["tracknumber"] = name, artist, str(number)
    if album is not None:
        audio["album"] = album
    if album_artist is not None:
        audio["albumartist"] = album_artist
    if art is not None:
        embedded = Picture()
        embedded.type, embedded.mime, embedded.data = 3, "image/jpeg", art
        audio.add_picture(embedded)
    audio.save()
    return song


def library(root: Path) -> dict[str, Path]:
    """Albums whose covers come from different places, and a track on no album."""
    blue, solo, mixed = root / "Nina" / "Blue", root / "Solo" / "Alone", root / "Various"
    return {
        "blue 1": track(blue, "01.flac", album="Blue", artist="Nina", number=1),
        "blue 2": track(blue, "02.flac", album="Blue", artist="Nina", number=2,
                        art=picture("blue 2")),
        "blue 3": track(blue, "03.flac", album="Blue", artist="Nina", number=3,
                        art=picture("blue 3")),
        "solo 1": track(solo, "01.flac", album="Alone", artist="Solo", number=1),
        "solo 2": track(solo, "02.flac", album="Alone", artist="Solo", number=2),
        "mixed 1": track(mixed, "01.flac", album="Hits", artist="A", album_artist="VA",
                         number=1),
        "mixed 2": track(mixed, "02.flac", album="Hits", artist="B", album_artist="VA",
                         number=2, art=picture("mixed 2")),
        "single": track(root / "Loose", "single.flac", album=None, artist="Nina"),
        "folder cover": _folder_cover(solo, picture("solo folder")),
    }


def _folder_cover(folder: Path, data: bytes) -> Path:
    (folder / "cover.jpg").write_bytes(data)
    return folder / "cover.jpg"


def albums(db: Path) -> set[tuple]:
    with connect(db) as conn:
        return {tuple(r) for r in conn.execute("SELECT * FROM album_artwork")}


def test_an_album_is_its_present_tracks_with_the_cover_of_the_first_that_has_one(
        tmp_path, db, scan):
    songs = library(tmp_path / "music")
    scan(tmp_path / "music")
    assert albums(db) == {
        ("Nina", "Blue", digest(picture("blue 2")), 3),
        ("Solo", "Alone", digest(picture("solo folder")), 2),  # by artist: no album artist
        ("VA", "Hits", digest(picture("mixed 2")), 2),
    }

    songs["blue 2"].unlink()  # missing: neither counted nor its cover used
    scan(tmp_path / "music")
    assert ("Nina", "Blue", digest(picture("blue 3")), 2) in albums(db)


def v2_views(conn: sqlite3.Connection) -> None:
    """The first definitions of the views, from schema.py's V2, as v2_<name>."""
    for statement in re.findall(r"CREATE VIEW .*?;\n", schema.V2, re.DOTALL):
        statement = re.sub(r"^CREATE VIEW (\w+)", r"CREATE VIEW v2_\1", statement)
        conn.execute(re.sub(r"\bfile_cover\b", "v2_file_cover", statement))  # used by the others


def test_the_views_answer_as_their_first_definitions_did(tmp_path, db, scan):
    songs = library(tmp_path / "music")
    scan(tmp_path / "music")
    songs["solo 2"].unlink()
    scan(tmp_path / "music")
    copy = tmp_path / "copy.db"
    shutil.copyfile(db, copy)
    with connect(copy) as conn:
        v2_views(conn)
        for name in ("file_cover", "tracks"):
            now = conn.execute(f"SELECT * FROM {name} ORDER BY 1").fetchall()
            assert [tuple(r) for r in now] == [
                tuple(r) for r in conn.execute(f"SELECT * FROM v2_{name} ORDER BY 1")], name
            assert len(now) >= 7  # every track present, and more files
        # V2 took any track's cover, a missing one's too; here it is the first present one's
        assert {tuple(r) for r in conn.execute(
            "SELECT album_artist, album, tracks FROM album_artwork")} == {tuple(r) for r in conn.execute(
                "SELECT album_artist, album, tracks FROM v2_album_artwork")}


def test_a_catalogue_of_schema_3_is_given_the_views_as_they_are_now(tmp_path):
    db = tmp_path / "library.db"
    with connect(db) as conn:
        conn.isolation_level = None
        for step in schema.MIGRATIONS[:3]:
            step(conn)
        conn.execute("PRAGMA user_version = 3")
        old = dict(conn.execute("SELECT name, sql FROM sqlite_master WHERE type = 'view'"))

        assert schema.migrate(conn) == 3

        now = dict(conn.execute("SELECT name, sql FROM sqlite_master WHERE type = 'view'"))
        assert set(old) == {"file_cover", "tracks", "album_artwork"}
        assert set(now) == set(views.NAMES)
        assert all(now[name] in views.VIEWS for name in views.NAMES)
        # tracks: without images (schema 7, which adds videos and photos)
        assert [name for name in old if now[name] != old[name]] == [
            "file_cover", "tracks", "album_artwork"]
        assert [r[2] for r in conn.execute("PRAGMA table_info(tracks)") if r[1] == "cover"] == [
            "TEXT"]  # from file_cover's column, now a table's
        assert conn.execute("SELECT 1 FROM sqlite_master WHERE name = 'media_album_key'").fetchone()
