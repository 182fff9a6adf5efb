"""Real images for the tests, written by Pillow (JPEG, PNG, WebP, TIFF, AVIF) and
pillow-heif (HEIC), with the EXIF a camera writes: what each holds is what the tests
that made it assert."""

from __future__ import annotations

from pathlib import Path

import pillow_heif
from PIL import Image
from PIL.TiffImagePlugin import IFDRational

# What CAMERA writes, as the photo columns read it back.
CAMERA_COLUMNS = {
    "taken_at": "2023-05-14T12:34:56+02:00", "camera_make": "Canon", "camera_model": "EOS R5",
    "lens": "RF24-70mm F2.8 L IS USM", "orientation": 6, "latitude": -33.856,
    "longitude": 151.215, "iso": 400, "exposure_s": 0.004, "f_number": 2.8,
    "focal_length_mm": 35.0,
}


def camera_exif(*, offset: str | None = "+02:00", gps: bool = True) -> Image.Exif:
    """EXIF as a camera writes it: IFD0, the Exif IFD and the GPS IFD (33°51'21.6" S,
    151°12'54" E: Sydney)."""
    exif = Image.Exif()
    exif[0x010F], exif[0x0110], exif[0x0112] = "Canon", "EOS R5", 6
    details = exif.get_ifd(0x8769)
    details[0x9003] = "2023:05:14 12:34:56"
    if offset is not None:
        details[0x9011] = offset
    details[0x8827] = 400
    details[0x829A] = IFDRational(1, 250)
    details[0x829D] = IFDRational(28, 10)
    details[0x920A] = IFDRational(35, 1)
    details[0xA434] = "RF24-70mm F2.8 L IS USM"
    if gps:
        where = exif.get_ifd(0x8825)
        where[1], where[2] = "S", (IFDRational(33), IFDRational(51), IFDRational(216, 10))
        where[3], where[4] = "E", (IFDRational(151), IFDRational(12), IFDRational(54))
    return exif


def make_image(path: Path, size: tuple[int, int] = (48, 32), exif: Image.Exif | None = None,
               **options) -> Path:
    """An image in the format its extension names, with `exif` if given."""
    path.parent.mkdir(parents=True, exist_ok=True)
    picture = Image.new("RGB", size, (200, 120, 40))
    if exif is not None:
        options["exif"] = exif.tobytes()
    if path.suffix.lower() in (".heic", ".heif"):
        pillow_heif.from_pillow(picture).save(str(path), quality=50, **options)
    else:
        picture.save(path, **options)
    return path
