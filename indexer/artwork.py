"""Cover art: the content-addressed cache next to the catalogue, and image sizes
read from headers (no image is decoded just to learn its size).

Each distinct image is stored once, as `<cache>/<h[:2]>/<h>.<ext>` where `h`
is the BLAKE2b-128 hex of its bytes. Writes are atomic (a temporary file,
then a rename), so two workers storing the same image at once is harmless.
"""

from __future__ import annotations

import hashlib
import os
import struct
from typing import NamedTuple

MAX_IMAGE_BYTES = 32 << 20  # a "cover" larger than this is not a cover
EXTENSION_OF_MIME = {"image/jpeg": "jpg", "image/png": "png", "image/gif": "gif",
                     "image/webp": "webp", "image/bmp": "bmp"}


class ArtRef(NamedTuple):
    """One image, stored in the cache: what the writer links files and folders to."""

    hash: str
    mime: str
    width: int | None
    height: int | None
    size: int
    picture_type: int  # ID3/FLAC picture type: 3 = front cover, 0 = other
    source: str  # "embedded" or "folder"


def sniff_mime(data: bytes) -> str:
    if data.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if data[:6] in (b"GIF87a", b"GIF89a"):
        return "image/gif"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    if data[:2] == b"BM":
        return "image/bmp"
    return "application/octet-stream"


def image_size(data: bytes) -> tuple[int, int] | None:
    """(width, height) from the image's header, or None if it cannot be told."""
    try:
        mime = sniff_mime(data)
        if mime == "image/png" and data[12:16] == b"IHDR":
            return struct.unpack(">II", data[16:24])
        if mime == "image/gif":
            return struct.unpack("<HH", data[6:10])
        if mime == "image/bmp":
            width, height = struct.unpack("<ii", data[18:26])
            return width, abs(height)
        if mime == "image/webp":
            return _webp_size(data)
        if mime == "image/jpeg":
            return _jpeg_size(data)
    except struct.error:
        pass
    return None


def _jpeg_size(data: bytes) -> tuple[int, int] | None:
    at = 2
    while at + 9 < len(data):
        if data[at] != 0xFF:
            at += 1
            continue
        marker = data[at + 1]
        if marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7 or marker == 0xFF:
            at += 1 if marker == 0xFF else 2
            continue
        length = struct.unpack(">H", data[at + 2:at + 4])[0]
        if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):  # a start of frame
            height, width = struct.unpack(">HH", data[at + 5:at + 9])
            return width, height
        at += 2 + length
    return None


def _webp_size(data: bytes) -> tuple[int, int] | None:
    chunk = data[12:16]
    if chunk == b"VP8 ":
        width, height = struct.unpack("<HH", data[26:30])
        return width & 0x3FFF, height & 0x3FFF
    if chunk == b"VP8L":
        bits = int.from_bytes(data[21:25], "little")
        return (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
    if chunk == b"VP8X":
        return (int.from_bytes(data[24:27], "little") + 1,
                int.from_bytes(data[27:30], "little") + 1)
    return None


def store(data: bytes, cache_dir: str, picture_type: int = 3, source: str = "embedded",
          mime: str | None = None, thumbnails: tuple[int, ...] = ()) -> ArtRef:
    """Put an image in the cache (once per distinct content) and describe it."""
    digest = hashlib.blake2b(data, digest_size=16).hexdigest()
    sniffed = sniff_mime(data)
    mime = sniffed if sniffed != "application/octet-stream" or not mime else mime
    target = cache_path(cache_dir, digest, mime)
    if not os.path.exists(target):
        _write_atomically(target, data)
    for size in thumbnails:
        thumbnail(target, cache_dir, digest, size)
    width, height = image_size(data) or (None, None)
    return ArtRef(digest, mime, width, height, len(data), picture_type, source)


def _write_atomically(target: str, data: bytes) -> None:
    try:
        os.makedirs(os.path.dirname(target), exist_ok=True)
        temporary = f"{target}.{os.getpid()}.tmp"
        with open(temporary, "wb") as out:
            out.write(data)
        os.replace(temporary, target)
    except PermissionError:  # a folder made by another user (root): say which, and whose
        raise PermissionError(_not_writable(os.path.dirname(target))) from None


def _not_writable(folder: str) -> str:
    from pathlib import Path
    from .ownership import folder_of, owner_name, user_name
    place = folder_of(Path(folder, "x"))
    return (f"the artwork cache folder {place} belongs to {owner_name(place)}: {user_name()} "
            "cannot store covers there (`indexer doctor` says how to fix it)")


def thumbnail_path(cache_dir: str, digest: str, size: int) -> str:
    return os.path.join(cache_dir, "thumbnails", str(size), digest[:2], f"{digest}.jpg")


def thumbnail(source: str, cache_dir: str, digest: str, size: int) -> str | None:
    """A JPEG at most `size` pixels wide and high, made once per image; needs Pillow
    (the `thumbnails` extra). None when Pillow is missing or cannot read the image."""
    target = thumbnail_path(cache_dir, digest, size)
    if os.path.exists(target):
        return target
    try:
        from PIL import Image
    except ImportError:
        return None
    try:
        with Image.open(source) as image:
            image.thumbnail((size, size))
            os.makedirs(os.path.dirname(target), exist_ok=True)
            temporary = f"{target}.{os.getpid()}.tmp"
            image.convert("RGB").save(temporary, "JPEG", quality=85)
            os.replace(temporary, target)
        return target
    except (OSError, ValueError, Image.DecompressionBombError):
        return None


def cache_path(cache_dir: str, digest: str, mime: str) -> str:
    extension = EXTENSION_OF_MIME.get(mime, "bin")
    return os.path.join(cache_dir, digest[:2], f"{digest}.{extension}")
