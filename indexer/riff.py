"""RIFF INFO tags of WAV files (INAM, IART, ...), which mutagen does not read.

Only the chunk headers are walked; the audio data is skipped with a seek.
"""

from __future__ import annotations

import struct

MAX_INFO_BYTES = 1 << 20


def info_tags(path: str) -> dict[str, list[str]]:
    """The LIST/INFO chunk of a RIFF WAVE file as {'inam': [title], ...}; {} if none."""
    with open(path, "rb") as handle:
        header = handle.read(12)
        if len(header) < 12 or header[:4] != b"RIFF" or header[8:12] != b"WAVE":
            return {}
        while chunk := handle.read(8):
            if len(chunk) < 8:
                break
            name, size = chunk[:4], struct.unpack("<I", chunk[4:])[0]
            if name == b"LIST" and size <= MAX_INFO_BYTES:
                body = handle.read(size)
                if body[:4] == b"INFO":
                    return _parse_info(body[4:])
            else:
                handle.seek(size + (size & 1), 1)  # chunks are padded to even sizes
    return {}


def _parse_info(body: bytes) -> dict[str, list[str]]:
    tags: dict[str, list[str]] = {}
    at = 0
    while at + 8 <= len(body):
        name = body[at:at + 4].decode("ascii", "replace").lower()
        size = struct.unpack("<I", body[at + 4:at + 8])[0]
        raw = body[at + 8:at + 8 + size].split(b"\0", 1)[0]
        text = raw.decode("utf-8", "replace").strip() if raw else ""
        if text:
            tags.setdefault(name, []).append(text)
        at += 8 + size + (size & 1)
    return tags
