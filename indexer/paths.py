"""Path text: the form stored in the catalogue, the exact bytes, the printable form.

Linux names are bytes. Python hands them to us as `str` with every byte that
is not valid UTF-8 carried as a lone surrogate (PEP 383). The catalogue's
`path` column must be valid UTF-8 text, so such a byte is shown as `\\xHH`
there and the exact bytes go to `path_raw`, which a consumer opens instead.
"""

from __future__ import annotations

import os
import re


def db_text(path: str) -> tuple[str, bytes | None]:
    """The catalogue's `path` text for an OS path, and its raw bytes when they differ."""
    try:
        path.encode("utf-8")
    except UnicodeEncodeError:
        raw = os.fsencode(path)
        return raw.decode("utf-8", "backslashreplace"), raw
    return path, None


def absolute(path: str) -> str:
    """A root or a path given by a user, as the catalogue names it: `~` expanded, made
    absolute and normal ("../Music/", "./Music" and "/srv/x/../Music" are one folder,
    so a file is never indexed under two names). Symbolic links are kept as given."""
    return os.path.abspath(os.path.expanduser(path))


def os_path(text: str, raw: bytes | None) -> str:
    """The OS path of a catalogue row, from `path_raw` when it is set."""
    return os.fsdecode(raw) if raw is not None else text


_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\ud800-\udfff]")


def _escape(match: re.Match[str]) -> str:
    char = match.group()
    code = ord(char)
    if 0xDC80 <= code <= 0xDCFF:  # a surrogate-escaped byte
        return f"\\x{code - 0xDC00:02x}"
    return repr(char)[1:-1] if code < 0x80 or code > 0xFF else f"\\x{code:02x}"


def printable(text: str) -> str:
    """`text` safe for a terminal or a log line: control characters escaped.

    A file name holding a newline or an ANSI escape must not be able to forge
    a log line or repaint the terminal.
    """
    return _CONTROL.sub(_escape, text)
