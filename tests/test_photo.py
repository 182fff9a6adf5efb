"""Photos: every image but a folder cover gets a `media` row from its header and EXIF,
shown by the `photos` view, field by field as the test wrote it; a PNG without an
`eXIf` chunk is never decoded; a broken image is recorded and the scan goes on.

Real images written by Pillow and pillow-heif (tests/images.py), real scans into a
real catalogue.
"""

from __future__ import annotations

import os
import random
from pathlib import Path

import pytest
from PIL import Image

from conftest import DATA, connect
from images import CAMERA_COLUMNS, camera_exif, make_image
from indexer import photo
from indexer.metadata import read_tags
from indexer.records import TagJob

NO_EXIF = dict.fromkeys(CAMERA_COLUMNS)


def photos(db: Path) -> dict[str, dict]:
    """The `photos` view, by file name, without the id and path."""
    with connect(db) as conn:
        return {Path(row["path"]).name: {k: row[k] for k in row.keys()
                                         if k not in ("file_id", "path")}
                for row in conn.execute("SELECT * FROM photos")}


def media_errors(db: Path) -> dict[str, str]:
    with connect(db) as conn:
        return {Path(r[0]).name: r[1] for r in conn.execute(
            "SELECT f.path, m.error FROM media m JOIN files f ON f.id = m.file_id "
            "WHERE m.error IS NOT NULL")}


@pytest.fixture(scope="module")
def scanned(tmp_path_factory) -> dict[str, dict]:
    """One scan of an image of each format with a camera's EXIF, and plain ones."""
    from indexer import Manager
    root = tmp_path_factory.mktemp("photos")
    for name in ("camera.jpg", "camera.png", "camera.webp", "camera.tif", "camera.avif"):
        make_image(root / name, exif=camera_exif())
    make_image(root / "phone.heic", exif=camera_exif())
    make_image(root / "local.jpg", exif=camera_exif(offset=None, gps=False))
    make_image(root / "plain.png")
    make_image(root / "plain.jpg")
    db = tmp_path_factory.mktemp("state") / "library.db"
    result = Manager(db_path=db, roots=[str(root)], env={}).scan()
    assert result.status == "completed"
    return photos(db)


@pytest.mark.parametrize("name", ["camera.jpg", "camera.png", "camera.webp", "camera.tif",
                                  "camera.avif"])
def test_each_format_gives_its_size_and_every_exif_field_as_the_camera_wrote_it(scanned, name):
    assert scanned[name] == {"width": 48, "height": 32, **CAMERA_COLUMNS}


def test_a_heic_photo_gives_its_exif_and_its_size_as_heif_turns_it(scanned):
    # pillow-heif stores the EXIF orientation as HEIF's own rotation, which the reader
    # applies: the size is as displayed and the orientation is 1 (docs/schema.md).
    assert scanned["phone.heic"] == {"width": 32, "height": 48,
                                     **CAMERA_COLUMNS, "orientation": 1}


def test_a_photo_without_an_offset_is_taken_at_the_cameras_local_time_and_has_no_place(scanned):
    assert scanned["local.jpg"] == {"width": 48, "height": 32, **CAMERA_COLUMNS,
                                    "taken_at": "2023-05-14T12:34:56", "latitude": None,
                                    "longitude": None}


@pytest.mark.parametrize("name", ["plain.png", "plain.jpg"])
def test_an_image_without_exif_has_its_size_only(scanned, name):
    assert scanned[name] == {"width": 48, "height": 32, **NO_EXIF}


def test_a_png_without_an_exif_chunk_is_not_decoded_to_look_for_one(tmp_path):
    big = tmp_path / "big.png"
    noise = random.Random(3).randbytes(1500 * 1500 * 3)  # incompressible: 6.75 MB stored
    Image.frombytes("RGB", (1500, 1500), noise).save(big, compress_level=0)
    assert big.stat().st_size > 6_000_000

    before = _bytes_read()
    columns = photo.probe(str(big))
    read = _bytes_read() - before

    assert columns == {"width": 1500, "height": 1500, **NO_EXIF}
    assert read < 256 << 10  # the header; getexif() would have read all 6.75 MB


def _bytes_read() -> int:
    """Bytes this process has read through read(2) and the like (/proc/self/io rchar)."""
    with open("/proc/self/io") as io:
        return next(int(line.split()[1]) for line in io if line.startswith("rchar:"))


def test_folder_covers_stay_covers_and_are_no_photos(tmp_path, db, scan):
    album = tmp_path / "lib" / "Album"
    make_image(album / "cover.jpg", exif=camera_exif())
    make_image(album / "folder.png")
    make_image(album / "holiday.jpg", exif=camera_exif())

    scan(tmp_path / "lib")

    assert set(photos(db)) == {"holiday.jpg"}
    with connect(db) as conn:
        covers = {Path(r[0]).name for r in conn.execute(
            "SELECT f.path FROM folder_artwork d JOIN files f ON f.id = d.image_file_id")}
        tracks = conn.execute("SELECT count(*) FROM tracks").fetchone()[0]
    assert covers == {"cover.jpg", "folder.png"}
    assert tracks == 0  # photos are not tracks


def test_a_photo_renamed_to_a_covers_name_is_a_cover_and_a_cover_renamed_is_a_photo(
        tmp_path, db, scan):
    album = tmp_path / "lib" / "Album"
    make_image(album / "cover.jpg", size=(20, 20))
    make_image(album / "beach.jpg", exif=camera_exif())
    scan(tmp_path / "lib")
    assert set(photos(db)) == {"beach.jpg"}

    os.rename(album / "cover.jpg", album / "old cover.jpg")
    os.rename(album / "beach.jpg", album / "front.jpg")
    scan(tmp_path / "lib")

    assert photos(db) == {"old cover.jpg": {"width": 20, "height": 20, **NO_EXIF}}
    with connect(db) as conn:
        covers = [Path(r[0]).name for r in conn.execute(
            "SELECT f.path FROM folder_artwork d JOIN files f ON f.id = d.image_file_id")]
    assert covers == ["front.jpg"]


def test_a_broken_image_is_recorded_with_its_reason_and_the_scan_goes_on(tmp_path, db, scan):
    root = tmp_path / "lib"
    make_image(root / "good.jpg", exif=camera_exif())
    (root / "junk.jpg").write_bytes(random.Random(5).randbytes(3000))
    (root / "empty.png").write_bytes(b"")

    result = scan(root)

    assert result.status == "completed"
    assert result.counters.metadata_failed == 2
    errors = media_errors(db)
    assert set(errors) == {"junk.jpg", "empty.png"}
    assert set(errors.values()) == {"NotAnImage: not an image Pillow or pillow-heif can read"}
    assert photos(db)["good.jpg"]["camera_model"] == "EOS R5"
    again = scan(root)  # a verdict on the bytes: not read again until they change
    assert (again.counters.metadata_queued, again.counters.modified) == (0, 0)


def test_an_image_gone_before_its_header_is_read_is_no_verdict(tmp_path):
    gone = str(tmp_path / "gone.jpg")
    result = read_tags(TagJob(gone, gone, "0" * 32))
    assert (result.final, result.error) == (False, "FileNotFoundError: No such file or directory")


def test_gps_degrees_take_their_sign_from_the_reference():
    assert photo.degrees((10, 30, 0), "N", 90) == 10.5
    assert photo.degrees((10, 30, 0), "S", 90) == -10.5
    assert photo.degrees((10, 30, 0), "W", 180) == -10.5
    assert photo.degrees((91, 0, 0), "N", 90) is None  # past the pole: garbage
    assert photo.degrees(None, "N", 90) is None


@pytest.mark.parametrize("stamp, offset, text", [
    ("2023:05:14 12:34:56", "+02:00", "2023-05-14T12:34:56+02:00"),
    ("2023:05:14 12:34:56", "-05:00", "2023-05-14T12:34:56-05:00"),
    ("2023:05:14 12:34:56", None, "2023-05-14T12:34:56"),
    ("2023:05:14 12:34:56", "   :  ", "2023-05-14T12:34:56"),  # an offset left blank
    ("0000:00:00 00:00:00", None, None),  # what cameras write when the clock was unset
    ("    :  :     :  :  ", None, None),
    ("2023-05-14", None, None),
])
def test_the_time_a_photo_was_taken_is_iso_8601_with_its_offset(stamp, offset, text):
    assert photo.taken_at(stamp, offset) == text


def test_the_sample_cover_is_read_as_a_photo_when_it_is_not_named_a_cover(tmp_path, db, scan):
    root = tmp_path / "lib"
    root.mkdir()
    (root / "blue.jpg").write_bytes((DATA / "cover.jpg").read_bytes())
    scan(root)
    assert photos(db) == {"blue.jpg": {"width": 64, "height": 64, **NO_EXIF}}
