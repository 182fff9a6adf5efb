"""A file's birth time, from statx(2): os.stat does not give it on Linux.

identity.py uses it to tell a renamed file from a new file that reused a
deleted file's inode number. It is asked only for the few files whose row is
in question, so a call through ctypes (about 1 µs here, as much as os.stat)
costs nothing that shows. Where the C library or the file system has no
birth time (older kernels, some network file systems), the answer is None.
"""

from __future__ import annotations

import functools
import os
import struct

_AT_FDCWD = -100
_AT_SYMLINK_NOFOLLOW = 0x100
_STATX_INO, _STATX_BTIME = 0x100, 0x800
# struct statx: stx_mask at 0, stx_ino at 0x20, stx_btime (tv_sec, tv_nsec) at 0x50
_MASK, _INO, _BTIME = struct.Struct("=I"), struct.Struct("=Q"), struct.Struct("=qI")

@functools.cache
def _statx():
    try:
        import ctypes
        return ctypes.CDLL(None, use_errno=True).statx, ctypes.create_string_buffer
    except (ImportError, AttributeError, OSError):  # no ctypes, or no statx (glibc < 2.28)
        return None


def birth_ns(path: str, inode: int) -> int | None:
    """When the file at `path` was born, in ns since the epoch, if it still has `inode`
    and its file system says; None otherwise. Symbolic links are not followed."""
    found = _statx()
    if found is None:
        return None
    statx, make_buffer = found
    buffer = make_buffer(256)
    if statx(_AT_FDCWD, os.fsencode(path), _AT_SYMLINK_NOFOLLOW,
              _STATX_INO | _STATX_BTIME, buffer) != 0:
        return None
    mask = _MASK.unpack_from(buffer, 0)[0]
    if not mask & _STATX_BTIME or _INO.unpack_from(buffer, 0x20)[0] != inode:
        return None
    seconds, nanoseconds = _BTIME.unpack_from(buffer, 0x50)
    return seconds * 1_000_000_000 + nanoseconds
