"""The mount table read as the kernel writes it: every octal escape decoded (a space, a
tab, a newline, a backslash in a mount point), by the one function that both the mount
type (inotify or polling) and "is this root a mount point?" use."""

from __future__ import annotations

import os
import subprocess

import pytest
from hypothesis import given, strategies as st

from indexer.watch import is_mount_point, mount_type, mounts, unescape_mount_field

KERNEL_ESCAPES = b" \t\n\\"  # fs/proc_namespace.c, mangle(); newer kernels add "#"


def escape(path: bytes, also: bytes = b"") -> bytes:
    """A path as the kernel writes it in /proc/self/mounts."""
    return b"".join(b"\\%03o" % c if c in KERNEL_ESCAPES + also else bytes([c]) for c in path)


@given(st.binary(min_size=1).filter(lambda b: b"\0" not in b), st.binary(max_size=4))
def test_a_path_escaped_as_the_kernel_does_reads_back_as_itself(raw, also):
    assert unescape_mount_field(escape(raw, also)) == os.fsdecode(raw)


def test_every_field_of_a_table_is_decoded_for_both_questions(tmp_path):
    table = tmp_path / "mounts"
    table.write_bytes(b"/dev/vda / ext4 rw 0 0\n"
                      b"//nas/films /srv/films\\040and\\011shows\\134x cifs rw 0 0\n"
                      b"host:/ /srv/caf\\351\\012new nfs4 rw 0 0\n")
    odd = os.fsdecode(b"/srv/caf\xe9\nnew")

    assert mounts(str(table))[1:] == [("/srv/films and\tshows\\x", "cifs"), (odd, "nfs4")]
    assert mount_type("/srv/films and\tshows\\x/A", str(table)) == "cifs"
    assert mount_type(odd + "/B", str(table)) == "nfs4"
    assert is_mount_point("/srv/films and\tshows\\x", str(table))
    assert not is_mount_point("/srv/films and\tshows", str(table))


@pytest.mark.skipif(os.geteuid() != 0, reason="mounting needs root")
def test_a_real_mount_at_a_path_with_a_space_a_tab_a_backslash_and_a_newline_is_seen(tmp_path):
    point = tmp_path / "nas share\tmusic\\2024\nnew"
    point.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "tmpfs", str(point)], capture_output=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount here: {mounted.stderr.decode().strip()}")
    try:
        assert is_mount_point(str(point))
        assert mount_type(str(point / "Artist")) == "tmpfs"
        assert not is_mount_point(str(tmp_path))
    finally:
        subprocess.run(["umount", str(point)], check=True)
