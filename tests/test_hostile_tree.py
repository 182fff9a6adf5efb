"""The hostile tree: every kind of name, file and link a library can hold, scanned as an
unprivileged user. The scan ends, never blocks, never leaves the root, never reads a
device; every readable media file is indexed, every unreadable one recorded with why."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import unicodedata
from pathlib import Path

import pytest

from conftest import DATA, cli_env, connect, indexer
from test_hostile import as_unprivileged, open_tmp, open_to_all, scan_summary  # noqa: F401

NAMES = {  # name -> why it is hostile
    "new\nline.mp3": "a newline",
    "tab\tand\rreturn.mp3": "tab and carriage return",
    "\x1b[31mred\x1b[0m.mp3": "an ANSI escape",
    "it's \"quoted\"; DROP TABLE files.mp3": "SQL quotes",
    "-rf --help.mp3": "leading dashes",
    unicodedata.normalize("NFC", "café.mp3"): "NFC",
    unicodedata.normalize("NFD", "café.mp3"): "NFD twin",
    "x" * 251 + ".mp3": "a 255-byte name",
}


def build(root: Path, outside: Path) -> dict[str, Path]:
    """The tree; returns the files that must be indexed and readable, by what they are."""
    root.mkdir()
    good = {}
    for name, why in NAMES.items():
        shutil.copyfile(DATA / "id3v24.mp3", root / name)
        good[why] = root / name
    raw = os.fsencode(root) + b"/not \xff utf8.flac"
    shutil.copyfile(DATA / "tone.flac", raw)
    good["not UTF-8"] = Path(os.fsdecode(raw))
    (root / "zero.flac").write_bytes(b"")
    (root / "truncated.flac").write_bytes((DATA / "tone.flac").read_bytes()[:3000])
    shutil.copyfile(DATA / "tone.ogg", root / "mislabelled.mp3")
    for why, path in (("zero-byte", "zero.flac"), ("truncated", "truncated.flac"),
                      ("mislabelled", "mislabelled.mp3")):
        good[why] = root / path
    os.mkfifo(root / "fifo.mp3")
    with socket.socket(socket.AF_UNIX) as sock:
        sock.bind(str(root / "socket.flac"))
    (root / "zero.mp3").symlink_to("/dev/zero")
    (root / "loop").symlink_to(root)
    (root / "escape").symlink_to(outside)
    (root / "broken.flac").symlink_to(root / "nowhere.flac")
    locked = root / "locked"
    locked.mkdir()
    shutil.copyfile(DATA / "tone.wav", locked / "inside.wav")
    shutil.copyfile(DATA / "tone.wav", root / "unreadable.wav")
    os.link(root / NAMES_KEY("SQL quotes"), root / "hard link.mp3")
    good["hard link"] = root / "hard link.mp3"
    with open(root / "sparse.flac", "wb") as sparse:  # 4 GiB, nothing on disk
        sparse.truncate(4 << 30)
    good["sparse 4 GiB"] = root / "sparse.flac"
    for year, when in (("1960", -315619200), ("epoch", 0), ("2038", 2147483647),
                       ("future", 4102444800)):
        shutil.copyfile(DATA / "tone.opus", root / f"{year}.opus")
        os.utime(root / f"{year}.opus", (when, when))
        good[f"mtime {year}"] = root / f"{year}.opus"
    _deep_file(root, DATA / "tone.flac")
    return good


def _deep_file(root: Path, sample: Path) -> None:
    """A file whose path is over PATH_MAX (4,096 bytes): made one level at a time,
    relative to an open folder, since no call takes the whole path."""
    fd, length = os.open(root, os.O_RDONLY), len(os.fsencode(root))
    while length < 4200:
        os.mkdir("d" * 200, dir_fd=fd)
        inner = os.open("d" * 200, os.O_RDONLY, dir_fd=fd)
        os.close(fd)
        fd, length = inner, length + 201
    out = os.open("too deep.flac", os.O_WRONLY | os.O_CREAT, 0o644, dir_fd=fd)
    os.write(out, sample.read_bytes())
    os.close(out)
    os.close(fd)


def NAMES_KEY(why: str) -> str:
    return next(name for name, reason in NAMES.items() if reason == why)


def test_a_hostile_tree_is_scanned_to_its_end_as_an_unprivileged_user(open_tmp):  # noqa: F811
    root, outside = open_tmp / "music", open_tmp / "outside"
    outside.mkdir()
    shutil.copyfile(DATA / "tone.flac", outside / "secret.flac")
    good = build(root, outside)
    open_to_all(open_tmp)
    (root / "locked").chmod(0o000)
    (root / "unreadable.wav").chmod(0o000)
    db = open_tmp / "state" / "library.db"

    summary = as_unprivileged(lambda: scan_summary(db, root))

    assert summary["status"] == "completed"
    with connect(db) as conn:
        rows = {r["path"]: r for r in conn.execute(
            "SELECT f.*, m.error AS tags_error FROM files f LEFT JOIN media m ON m.file_id = f.id")}
        problems = {r["path"]: r["error"] for r in conn.execute("SELECT * FROM scan_errors")}
    from indexer.paths import db_text
    for why, path in good.items():  # every readable media file: indexed, hashed
        text = db_text(str(path))[0]
        assert text in rows and rows[text]["hash"], why
    assert rows[db_text(str(good["NFC"]))[0]]["id"] != rows[db_text(str(good["NFD twin"]))[0]]["id"]
    assert rows[str(root / "zero.flac")]["tags_error"]  # media errors recorded, scan went on
    assert rows[str(root / "truncated.flac")]["tags_error"]
    assert rows[str(root / "unreadable.wav")]["error"].startswith("PermissionError")
    assert problems[str(root / "locked")].startswith("PermissionError")
    assert any("too long" in error.lower() for error in problems.values())
    assert not any(p.startswith(str(outside)) or "secret" in p or "fifo" in p or "socket" in p
                   or "zero.mp3" in p or "loop/" in p for p in rows)  # never left, never opened
    assert summary["skipped"] == 6  # fifo, socket, 4 symlinks (zero, loop, escape, broken)

    listing = indexer("ls", "--db", db, env=cli_env(open_tmp)).stdout
    assert "\x1b" not in listing and "\r" not in listing and "\t" not in listing
    assert len(listing.splitlines()) == len(rows) - 0 - sum(  # one line a row: no forged lines
        1 for r in rows.values() if r["status"] != "present")
    assert "\\x1b[31mred\\x1b[0m.mp3" in listing and "new\\nline.mp3" in listing
