"""What a photo's headers say, read with Pillow and pillow-heif (the only module that
imports them for photos; artwork.py makes thumbnails with Pillow).

`probe(path)` opens an image lazily (`Image.open` reads the header, never the
pixels) and reads its size and EXIF: 0.23 ms and 8 KB read per 12-megapixel
JPEG here. PNG is the trap: `getexif()` on a PNG without an `eXIf` chunk before
its pixels decodes the whole image to look for one after them (36 ms against
0.02 ms, measured), so a PNG's EXIF is read only from a chunk the header pass
found. HEIC and HEIF (phones) are read by pillow-heif's opener, 1.8 ms each.
"""

from __future__ import annotations

import io
import math
import os
import stat
import time
from typing import Any

from PIL import Image, ImageFile, ImageOps

# EXIF tag numbers (EXIF 2.32; Pillow's ExifTags names them the same).
EXIF_IFD, GPS_IFD = 0x8769, 0x8825
MAKE, MODEL, ORIENTATION = 0x010F, 0x0110, 0x0112
DATE_TIME_ORIGINAL, OFFSET_TIME_ORIGINAL = 0x9003, 0x9011
EXPOSURE_TIME, F_NUMBER, ISO, FOCAL_LENGTH, LENS_MODEL = 0x829A, 0x829D, 0x8827, 0x920A, 0xA434
LATITUDE_REF, LATITUDE, LONGITUDE_REF, LONGITUDE = 1, 2, 3, 4

PHOTO_COLUMNS = ("width", "height", "taken_at", "camera_make", "camera_model", "lens",
                 "orientation", "latitude", "longitude", "iso", "exposure_s", "f_number",
                 "focal_length_mm")

_heif_registered = False


class NotRegular(OSError):
    """The path is not a regular file: not opened (an OSError: no verdict, as video.py's)."""


def probe(path: str) -> dict[str, Any]:
    """The photo columns of the image at `path` (PHOTO_COLUMNS; None where unknown).
    Raises what Pillow raises for what is not an image it reads (UnidentifiedImageError)."""
    _register_heif()
    with open(path, "rb", opener=_regular_only) as handle:
        try:
            with Image.open(handle) as image:
                return _columns(image)
        except OSError as error:
            if error.errno is not None:
                raise  # the disk's error, not the image's: no verdict
            raise NotAnImage(_reason(error)) from None


class NotAnImage(ValueError):
    """Bytes Pillow cannot read. Pillow raises OSError without an errno for those
    (UnidentifiedImageError is one), which the metadata stage would take for the disk's
    and read again at every scan: this is a verdict on the file."""


def _reason(error: OSError) -> str:
    if type(error).__name__ == "UnidentifiedImageError":
        return "not an image Pillow or pillow-heif can read"
    return str(error) or type(error).__name__


def _columns(image: Any) -> dict[str, Any]:
    width, height = _stored_size(image)
    columns = dict.fromkeys(PHOTO_COLUMNS)
    columns.update(width=width or None, height=height or None)
    exif = _exif(image)
    if exif is not None:
        columns.update(exif_columns(exif))
    return columns


def _regular_only(path: str, flags: int) -> int:
    """Open without blocking (a FIFO), and refuse what is not a regular file."""
    fd = os.open(path, flags | os.O_NONBLOCK)
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise NotRegular("not a regular file: not opened")
    return fd


def preview(path: str, size: int, budget_s: float) -> bytes | None:
    """The photo, turned as its orientation says, as a JPEG at most `size` pixels wide and
    high; None past `budget_s` seconds (a JPEG is decoded at an eighth of its size where
    that is enough: `draft`)."""
    deadline = time.monotonic() + budget_s
    _register_heif()
    with open(path, "rb", opener=_regular_only) as handle, Image.open(handle) as image:
        image.draft("RGB", (size, size))
        turned = ImageOps.exif_transpose(image)
        if time.monotonic() >= deadline:
            return None
        return jpeg(turned, size)


def jpeg(image: Any, size: int) -> bytes:
    """An image made at most `size` pixels wide and high, as JPEG bytes."""
    image = image.convert("RGB")
    image.thumbnail((size, size))
    out = io.BytesIO()
    image.save(out, "JPEG", quality=85)
    return out.getvalue()


def _stored_size(image: Any) -> tuple[int, int]:
    """The size as stored, before the EXIF orientation is applied (`orientation` says how
    to turn it). Pillow gives a TIFF's turned; pillow-heif gives a HEIC's turned too, as
    HEIF turns itself (its own `irot`), and its orientation is then 1: that one stays."""
    if image.format == "TIFF":
        tags = image.tag_v2
        return tags.get(256, image.size[0]), tags.get(257, image.size[1])
    return image.size


def _register_heif() -> None:
    global _heif_registered
    if not _heif_registered:
        from pillow_heif import register_heif_opener
        register_heif_opener()  # HEIC, HEIF; Pillow reads AVIF itself (11.2 and later)
        _heif_registered = True
    ImageFile.LOAD_TRUNCATED_IMAGES = False


def _exif(image: Any) -> Image.Exif | None:
    if image.format == "PNG" and "exif" not in image.info:
        return None  # no eXIf chunk before the pixels: getexif() would decode them all
    exif = image.getexif()
    return exif if len(exif) else None


def exif_columns(exif: Image.Exif) -> dict[str, Any]:
    """The photo columns an EXIF block gives: IFD0, its Exif IFD and its GPS IFD."""
    details = exif.get_ifd(EXIF_IFD)
    gps = exif.get_ifd(GPS_IFD)
    return {
        "taken_at": taken_at(details.get(DATE_TIME_ORIGINAL), details.get(OFFSET_TIME_ORIGINAL)),
        "camera_make": _text(exif.get(MAKE)),
        "camera_model": _text(exif.get(MODEL)),
        "lens": _text(details.get(LENS_MODEL)),
        "orientation": _whole(exif.get(ORIENTATION), 1, 8),
        "latitude": degrees(gps.get(LATITUDE), gps.get(LATITUDE_REF), 90),
        "longitude": degrees(gps.get(LONGITUDE), gps.get(LONGITUDE_REF), 180),
        "iso": _whole(_first(details.get(ISO)), 1, 10_000_000),
        "exposure_s": _number(details.get(EXPOSURE_TIME)),
        "f_number": _number(details.get(F_NUMBER)),
        "focal_length_mm": _number(details.get(FOCAL_LENGTH)),
    }


def taken_at(stamp: Any, offset: Any) -> str | None:
    """EXIF's "2023:05:14 12:34:56" and "+02:00" as ISO 8601, "2023-05-14T12:34:56+02:00";
    without an offset, the local time the camera kept, "2023-05-14T12:34:56"."""
    text = _text(stamp)
    if text is None or len(text) < 19 or not text[:4].isdigit() or text[:4] == "0000":
        return None
    date, time = text[:10].replace(":", "-"), text[11:19]
    if not (date[4] == date[7] == "-" and time[2] == time[5] == ":"):
        return None
    zone = _text(offset)
    zone = zone if zone and len(zone) == 6 and zone[0] in "+-" and zone[3] == ":" else ""
    return f"{date}T{time}{zone}"


def degrees(value: Any, ref: Any, limit: int) -> float | None:
    """(degrees, minutes, seconds) with its reference (N/S, E/W) as signed decimal degrees."""
    try:
        d, m, s = (float(part) for part in value)
    except (TypeError, ValueError, ZeroDivisionError):
        return None
    result = d + m / 60 + s / 3600
    if not math.isfinite(result) or result > limit:
        return None
    sign = -1 if (_text(ref) or "").upper()[:1] in ("S", "W") else 1
    return round(sign * result, 7)  # 1e-7 degrees is 1 cm


def _text(value: Any) -> str | None:
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    if not isinstance(value, str):
        return None
    text = value.replace("\0", "").strip()
    return text or None


def _first(value: Any) -> Any:
    return value[0] if isinstance(value, tuple) and value else value


def _number(value: Any) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError, ZeroDivisionError):
        return None
    return round(number, 6) if math.isfinite(number) and number > 0 else None


def _whole(value: Any, low: int, high: int) -> int | None:
    try:
        number = int(value)
    except (TypeError, ValueError):
        return None
    return number if low <= number <= high else None
