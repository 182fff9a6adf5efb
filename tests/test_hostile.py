"""Hostile trees: a scan ends, never leaves its roots, never opens what is not a regular
file, and records what it could not read instead of stopping."""

from __future__ import annotations

import os
import pickle
import pwd
import shutil
import socket
import stat
import sys
import sqlite3
import tempfile
import traceback
from pathlib import Path

import pytest

from conftest import connect, files, job, make_library
from indexer import Manager
from indexer.paths import printable


@pytest.fixture
def open_tmp():
    """A folder every user may enter: permission tests run as `nobody`."""
    path = Path(tempfile.mkdtemp(prefix="indexer-test-", dir="/tmp"))
    path.chmod(0o777)
    yield path
    chmod_all(path, 0o755, None)
    shutil.rmtree(path)


def chmod_all(top: Path, dirs: int, files: int | None) -> None:
    """chmod everything below `top`, relative to open folders (paths may exceed PATH_MAX)."""
    top.chmod(dirs)
    for _, folders, names, fd in os.fwalk(top, follow_symlinks=False):
        for name in folders:  # real folders only: fwalk lists symlinks with the files
            os.chmod(name, dirs, dir_fd=fd)
        if files is not None:
            for name in names:
                if stat.S_ISREG(os.stat(name, dir_fd=fd, follow_symlinks=False).st_mode):
                    os.chmod(name, files, dir_fd=fd)  # never through a link: not /dev/zero


def as_unprivileged(function):
    """Run `function()` as the user `nobody` when we are root (root reads everything).

    The child is forked from this process, so everything it imports must be
    imported before: the Python here lives under /root, which `nobody` cannot
    read (nor start a worker process from: these scans run sequentially).
    """
    if os.geteuid() != 0:
        return function()
    import indexer.metadata  # noqa: F401  (loaded lazily by a scan)
    import indexer.ownership  # noqa: F401  (by a writer's start: grp, under /root too)
    nobody = pwd.getpwnam("nobody")
    reader, writer = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: drop privileges for good, run, send the result back
        code = 0
        try:
            os.close(reader)
            os.setgroups([])
            os.setgid(nobody.pw_gid)
            os.setuid(nobody.pw_uid)
            payload = pickle.dumps(("ok", function()))
        except BaseException:
            payload, code = pickle.dumps(("error", traceback.format_exc())), 1
        with os.fdopen(writer, "wb") as out:
            out.write(payload)
        os._exit(code)
    os.close(writer)
    with os.fdopen(reader, "rb") as incoming:
        kind, value = pickle.loads(incoming.read())
    os.waitpid(pid, 0)
    if kind == "error":
        raise AssertionError(f"as nobody:\n{value}")
    return value


def open_to_all(path: Path) -> None:
    chmod_all(path, 0o777, 0o666)


def scan_summary(db: Path, root: Path, **settings) -> dict:
    settings.setdefault("parallel", False)
    result = Manager(db_path=db, roots=[str(root)], env={}, **settings).scan()
    return {**result.summary(), "message": result.message}


def test_a_fifo_named_like_a_song_does_not_hang_the_scan(library, db, scan):
    os.mkfifo(library / "Artist 0" / "blocking.mp3")
    with socket.socket(socket.AF_UNIX) as sock:
        sock.bind(str(library / "Artist 0" / "socket.flac"))
        result = scan(library)
    assert result.status == "completed"
    assert result.counters.skipped == 2
    assert str(library / "Artist 0" / "blocking.mp3") not in files(db)


def test_an_unreadable_file_is_recorded_on_its_row_and_the_scan_goes_on(open_tmp):
    root = open_tmp / "music"
    root.mkdir()
    make_library(root, albums=2, tracks=3)
    secret = root / "Artist 0" / "Album 0 (2000)" / "01 - Song 0.mp3"
    open_to_all(open_tmp)
    secret.chmod(0o000)
    db = open_tmp / "state" / "library.db"

    summary = as_unprivileged(lambda: scan_summary(db, root))

    rows = files(db)
    assert summary["status"] == "completed" and summary["errors"] == 1
    assert rows[str(secret)]["error"].startswith("PermissionError")
    assert rows[str(secret)]["hash"] is None
    assert sum(1 for r in rows.values() if r["hash"]) == len(rows) - 1 == 7

    secret.chmod(0o644)  # readable again: a later success clears the error
    again = as_unprivileged(lambda: scan_summary(db, root))
    assert again["status"] == "completed", again["message"]
    assert files(db)[str(secret)]["error"] is None and files(db)[str(secret)]["hash"]


def test_an_unreadable_folder_is_recorded_and_its_files_are_not_called_missing(open_tmp):
    root = open_tmp / "music"
    root.mkdir()
    make_library(root, albums=2, tracks=3)
    open_to_all(open_tmp)
    db = open_tmp / "state" / "library.db"
    as_unprivileged(lambda: scan_summary(db, root))
    locked = root / "Artist 1"
    locked.chmod(0o000)

    summary = as_unprivileged(lambda: scan_summary(db, root))

    assert summary["status"] == "completed" and summary["missing"] == 0
    assert all(r["status"] == "present" for r in files(db).values())
    with connect(db) as conn:
        problems = conn.execute("SELECT path, stage, error FROM scan_errors").fetchall()
    assert [tuple(p) for p in problems] == [(str(locked), "walk", "PermissionError: Permission denied")]


def test_a_symlink_loop_ends_when_links_are_followed(library, db):
    (library / "Artist 0" / "loop").symlink_to(library)
    (library / "Artist 1" / "self").symlink_to(".")
    result = Manager(db_path=db, roots=[str(library)], env={}, config=None).scan()
    assert result.status == "completed"

    config = library.parent / "follow.toml"
    config.write_text("[library]\nfollow_symlinks = true\n")
    followed = Manager(db_path=db, roots=[str(library)], config_file=str(config), env={}).scan()
    assert followed.status == "completed"
    assert followed.counters.files_found == 15  # each folder entered once


def test_symlinks_are_not_followed_by_default(library, db, scan, tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    shutil.copyfile(library / "Artist 0" / "Album 0 (2000)" / "cover.jpg", outside / "secret.jpg")
    (library / "escape").symlink_to(outside)
    (library / "zero.mp3").symlink_to("/dev/zero")
    (library / "dangling.flac").symlink_to(tmp_path / "nowhere.flac")

    result = scan(library)

    assert result.counters.files_found == 15 and result.counters.skipped == 3
    assert not any("secret" in p or "zero" in p or "dangling" in p for p in files(db))


def test_a_name_that_is_not_utf8_is_indexed_and_its_row_opens_the_file(library, db, scan):
    raw_name = b"caf\xe9 \xff.flac"
    raw_path = os.fsencode(library) + b"/" + raw_name
    with open(raw_path, "wb") as handle:
        handle.write(b"not really flac")

    scan(library)

    with connect(db) as conn:
        row = conn.execute("SELECT path, path_raw FROM files WHERE path_raw IS NOT NULL").fetchone()
    assert row["path"] == f"{library}/caf\\xe9 \\xff.flac"
    assert row["path_raw"] == raw_path
    with open(row["path_raw"], "rb") as handle:  # how a consumer opens exactly that file
        assert handle.read() == b"not really flac"
    assert sum(1 for r in files(db).values() if r["path_raw"] is None) == 15


@pytest.mark.parametrize("parallel", [True, False])
def test_two_names_shown_with_the_same_text_index_one_and_record_the_other(library, db, scan,
                                                                          parallel):
    # A name holding a literal backslash and one holding the byte \xe9 both read
    # "caf\xe9.flac" in the catalogue's `path` column: one row, the other an error.
    literal = library / "caf\\xe9.flac"
    raw_path = os.fsencode(library) + b"/caf\xe9.flac"
    literal.write_bytes(b"literal")
    with open(raw_path, "wb") as handle:
        handle.write(b"raw byte")

    result = scan(library, parallel=parallel)

    text = f"{library}/caf\\xe9.flac"
    with connect(db) as conn:
        rows = conn.execute("SELECT path FROM files WHERE path = ?", (text,)).fetchall()
        errors = conn.execute("SELECT path, stage, error FROM scan_errors").fetchall()
    assert result.status == "completed" and len(rows) == 1
    assert [tuple(e) for e in errors] == [
        (text, "walk", "another file's name is shown with the same text in the catalogue; "
                       "not indexed (rename one of them)")]
    assert len(files(db, "present")) == 15 + 1


def test_names_with_newlines_and_escapes_are_stored_verbatim_and_printed_escaped(library, db, scan):
    name = "evil\n\x1b[31mINFO fake line'; DROP TABLE files;--.mp3"
    (library / name).write_bytes(b"x")
    scan(library)
    assert str(library / name) in files(db)
    shown = printable(str(library / name))
    assert "\n" not in shown and "\x1b" not in shown and "\\n" in shown and "\\x1b" in shown


def test_a_missing_root_marks_nothing_missing_and_the_job_says_why(library, db, scan, tmp_path):
    scan(library)
    moved_away = tmp_path / "unmounted"
    library.rename(moved_away)

    result = scan(library)

    assert result.status == "failed"
    assert all(r["status"] == "present" for r in files(db).values())
    assert "does not exist" in job(db, result.job_id)["message"]
    assert result.warnings[str(library)]


def test_an_empty_root_marks_nothing_missing(library, db, scan, tmp_path):
    scan(library)
    for child in list(library.iterdir()):  # like a mount point with the disk not mounted
        shutil.move(child, tmp_path)

    result = scan(library)

    assert result.status == "completed" and result.counters.missing == 0
    assert all(r["status"] == "present" for r in files(db).values())
    assert "nothing marked missing" in job(db, result.job_id)["message"]


def test_one_usable_root_is_enough_and_the_other_is_reported(library, db, tmp_path):
    other = tmp_path / "absent"
    result = Manager(db_path=db, roots=[str(library), str(other)], env={}).scan()
    assert result.status == "completed" and result.counters.added == 15
    assert list(result.warnings) == [str(other)]


def test_a_second_writer_is_refused_with_a_clear_message(library, db):
    from indexer.catalog import CatalogBusy, open_for_writing
    with open_for_writing(db):
        with pytest.raises(CatalogBusy, match=f"pid {os.getpid()}"):
            Manager(db_path=db, roots=[str(library)], env={}).scan()


def test_a_job_left_running_by_a_killed_process_is_marked_interrupted(library, db, scan):
    scan(library)
    with sqlite3.connect(db) as conn:
        conn.execute("UPDATE scan_jobs SET status = 'running'")
    result = scan(library)
    assert job(db, result.job_id - 1)["status"] == "interrupted"
    assert job(db, result.job_id)["status"] == "completed"


@pytest.mark.parametrize("parallel", [True, False], ids=["parallel", "sequential"])
@pytest.mark.parametrize("first", ["literal", "byte"])
def test_two_names_shown_with_the_same_text_one_indexed_the_other_an_error_stable(
        tmp_path, parallel, first):
    from indexer import Manager
    from conftest import changes
    root = tmp_path / "music"
    root.mkdir()
    literal, byte = root / "\\xff.mp3", root / os.fsdecode(b"\xff.mp3")
    names = {"literal": literal, "byte": byte}
    names[first].write_bytes(b"the first")
    db = tmp_path / "library.db"

    def scan():
        return Manager(db_path=db, roots=[str(root)], env={}, parallel=parallel,
                       settings={"metadata.enabled": False}).scan()
    scan()
    (names["byte" if first == "literal" else "literal"]).write_bytes(b"the second, longer")
    results = [scan() for _ in range(3)]
    feed = changes(db)

    row = files(db)[str(literal)]
    assert bytes(row["path_raw"]) == os.fsencode(str(byte)) if first == "byte" \
        else row["path_raw"] is None
    assert row["size"] == len(b"the first")
    assert [r.counters.errors for r in results] == [1, 1, 1]
    assert feed == [("added", str(literal), None)]  # never flipped to the other file


def test_a_scan_whose_tag_workers_cannot_start_completes_and_leaves_their_tags_for_later(
        open_tmp):
    """As `nobody`, no worker process can start from the Python under /root (as under a
    `ulimit -u` that is reached): the scan must not hang; the files are indexed, their
    tags left unread without a verdict, to be read by a later scan, however many scans
    could not (a crash of a worker twice on the same file is a verdict; this never)."""
    if os.geteuid() != 0:
        pytest.skip("needs root, to drop to nobody")
    nobody = pwd.getpwnam("nobody")
    if os.access(sys.executable, os.X_OK) and not os.path.realpath(sys.executable).startswith(
            "/root"):
        pytest.skip("nobody may start this Python: no way here to refuse a worker")
    root, db = open_tmp / "music", open_tmp / "state" / "library.db"
    make_library(root, albums=2, tracks=2)
    open_to_all(open_tmp)

    def scan():
        result = Manager(db_path=db, roots=[str(root)], env={}, parallel=True, workers=1,
                         settings={"metadata.workers": 1}).scan()
        return result.status, result.counters.added, result.counters.metadata_extracted

    first, second = as_unprivileged(scan), as_unprivileged(scan)

    assert (first, second) == (("completed", 6, 0), ("completed", 0, 0))
    with connect(db) as conn:
        errors = {r[0] for r in conn.execute("SELECT m.error FROM media m")}
        unread = conn.execute("SELECT count(*) FROM files WHERE tags_hash IS NULL").fetchone()[0]
    assert all(e.startswith("WorkerUnavailable: no worker process could be started")
               for e in errors), errors
    assert unread == 6 and errors and nobody.pw_uid != 0  # twice, and still no verdict
