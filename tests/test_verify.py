"""`indexer verify`: the catalogue compared with the disk, on real files and a catalogue
made by a real scan, through the real command line; and nothing is ever written."""

from __future__ import annotations

import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

import indexer.cli
import indexer.console  # noqa: F401  (imported by the command: loaded before dropping to nobody)
import indexer.verify  # noqa: F401
from conftest import cli_env, connect, indexer as run_cli, make_library, wait_for
from test_hostile import as_unprivileged, chmod_all, open_tmp  # noqa: F401  (a fixture)


@pytest.fixture
def env(tmp_path, library, scan, db):
    """A library scanned into a fresh catalogue, and the environment to verify it."""
    assert scan(library).status == "completed"
    return cli_env(tmp_path, INDEXER_DB=str(db))


def verify(*args, env, timeout: float = 60) -> tuple[int, list[dict]]:
    """`indexer verify --json ARGS`: the exit code and every line, parsed."""
    result = run_cli("verify", "--json", *args, env=env, timeout=timeout)
    assert result.returncode != 2, result.stderr
    return result.returncode, [json.loads(line) for line in result.stdout.splitlines()]


def found(lines: list[dict]) -> list[tuple]:
    """The findings as (kind, path, changed figures, reason), sorted by path."""
    return sorted(((f["kind"], f["path"], tuple(c["what"] for c in f["changes"]), f["reason"])
                   for f in lines if f["kind"] != "summary"), key=lambda f: (f[1], f[0]))


def song(library: Path, artist: int, track: int) -> Path:
    album = library / f"Artist {artist}" / f"Album {artist} ({2000 + artist})"
    return next(album.glob(f"{track + 1:02d} - *"))


def test_a_catalogue_that_agrees_with_the_disk_exits_0_with_no_findings(env, library):
    code, lines = verify(env=env)
    code_read, lines_read = verify("--read", env=env)

    assert (code, code_read) == (0, 0)
    assert len(lines) == len(lines_read) == 1
    summary, summary_read = lines[0], lines_read[0]
    assert summary["status"] == summary_read["status"] == "agree"
    assert summary["roots"] == [str(library)] and summary["files"] == 15
    assert set(summary["counts"].values()) == {0} and summary["warnings"] == {}
    assert summary["bytes_read"] == 0
    assert summary_read["bytes_read"] == sum(p.stat().st_size for p in library.rglob("*")
                                             if p.is_file() and p.suffix != ".nfo")


def test_each_difference_is_reported_once_with_what_changed(env, library):
    deleted = song(library, 0, 0)
    deleted.unlink()
    whole_album = library / "Artist 2" / "Album 2 (2002)"
    album_rows = sorted(str(p) for p in whole_album.iterdir() if p.suffix != ".nfo")
    shutil.rmtree(whole_album)  # a folder the walk never reaches: found by the last query
    new = library / "Artist 1" / "Album 1 (2001)" / "05 - New.flac"
    new.write_bytes(b"new song")
    (library / "Artist 1" / "notes.txt").write_text("not media")
    (library / "Artist 1" / "copying.flac.part").write_bytes(b"ignored by library.ignore")
    touched = song(library, 1, 0)
    os.utime(touched, ns=(touched.stat().st_atime_ns, touched.stat().st_mtime_ns + 1))
    grown = song(library, 1, 1)
    with open(grown, "ab") as handle:
        handle.write(b"more")

    code, lines = verify(env=env)

    assert code == 1
    assert found(lines) == sorted([
        ("gone", str(deleted), (), None),
        *(("gone", path, (), None) for path in album_rows),
        ("unindexed", str(new), (), None),
        ("changed", str(touched), ("mtime_ns",), None),
        ("changed", str(grown), ("size", "mtime_ns"), None),
    ], key=lambda f: (f[1], f[0]))
    summary = lines[-1]
    assert summary["kind"] == "summary" and summary["status"] == "differ"
    assert summary["counts"] == {"gone": 6, "excluded": 0, "unindexed": 1, "changed": 2,
                                 "content": 0, "unreadable": 0}
    size = next(f for f in lines if f["path"] == str(grown))["changes"][0]
    assert (size["old"] + 4, size["new"]) == (grown.stat().st_size, grown.stat().st_size)


def test_bytes_changed_under_the_same_size_and_mtime_are_found_only_by_read(env, library):
    rotten = song(library, 0, 2)
    before = rotten.stat()
    data = bytearray(rotten.read_bytes())
    data[len(data) // 2] ^= 0x01  # one bit flipped, as bit rot would
    rotten.write_bytes(bytes(data))
    os.utime(rotten, ns=(before.st_atime_ns, before.st_mtime_ns))
    assert (rotten.stat().st_size, rotten.stat().st_mtime_ns) == (before.st_size,
                                                                  before.st_mtime_ns)

    code, lines = verify(env=env)
    code_read, lines_read = verify("--read", env=env)

    assert (code, found(lines)) == (0, [])
    assert code_read == 1
    assert found(lines_read) == [("content", str(rotten), ("hash",), None)]
    change = lines_read[0]["changes"][0]
    assert change["old"] != change["new"] and len(change["new"]) == 32


def test_the_human_report_has_one_line_a_finding_and_advice_for_each_kind(env, library):
    song(library, 0, 0).unlink()
    (library / "Artist 0" / "new.mp3").write_bytes(b"new")

    result = run_cli("verify", env=env)

    lines = result.stdout.splitlines()
    assert result.returncode == 1
    assert lines[:2] == [f"unindexed  {library}/Artist 0/new.mp3",
                         f"gone       {song_path_text(library)}"]
    assert lines[2].startswith("verify: 2 differences (15 files in 1 root")
    assert lines[3].startswith("  gone 1: files no longer on disk: run `indexer scan`")
    assert lines[4].startswith("  unindexed 1: media files the catalogue does not list: run ")
    assert len(lines) == 5


def song_path_text(library: Path) -> str:
    return str(library / "Artist 0" / "Album 0 (2000)" / "01 - Song 0.mp3")


@pytest.mark.parametrize("setting, pattern, reason", [
    ('ignore = ["cover.*"]', "cover.jpg", "ignored by 'cover.*' in library.ignore"),
    ('kinds = ["audio", "video"]', "cover.jpg", "its kind (image) is not in library.kinds"),
    ('ignore = ["Album 1 *"]', "Album 1 */*.*",
     "it is inside {folder}, which is ignored by 'Album 1 *' in library.ignore"),
])
def test_a_file_a_scan_no_longer_indexes_is_excluded_not_gone(env, library, tmp_path,
                                                              setting, pattern, reason):
    config = tmp_path / "changed.toml"
    config.write_text(f"[library]\n{setting}\n")

    code, lines = verify("--config", config, env=env)

    there = sorted(str(p) for p in library.rglob(pattern) if p.suffix != ".nfo")
    assert code == 1 and there
    assert found(lines) == [("excluded", path, (), reason.format(folder=os.path.dirname(path)))
                            for path in there]


def test_an_offline_root_is_a_warning_and_not_every_file_gone(env, library, tmp_path):
    library.rename(tmp_path / "unmounted")

    code, lines = verify(env=env)  # the roots the catalogue holds files for
    alone, = lines

    assert code == 1
    assert alone["status"] == "unverified" and alone["roots"] == []
    assert set(alone["counts"].values()) == {0}
    assert alone["warnings"] == {str(library): [
        f"root {library} does not exist (not mounted?): offline, not verified"]}


def test_an_empty_mount_point_is_offline_and_another_root_is_still_verified(env, library,
                                                                            tmp_path, scan):
    other = tmp_path / "films"
    other.mkdir()
    (other / "clip.mp4").write_bytes(b"a film")
    scan(library, other)
    for child in list(library.iterdir()):  # the disk not mounted: its mount point is empty
        shutil.move(child, tmp_path)

    code, lines = verify(str(library), str(other), env=env)
    alone, = lines

    assert code == 0 and alone["status"] == "agree" and alone["roots"] == [str(other)]
    assert alone["warnings"] == {str(library): [
        f"root {library} has no media files but the catalogue holds 15 for it "
        "(not mounted?): offline, not verified"]}


def test_every_json_line_parses_and_the_last_is_the_summary(env, library):
    song(library, 2, 3).unlink()
    (library / "Artist 2" / "extra.ogg").write_bytes(b"x")

    result = run_cli("verify", "--json", "--read", env=env)

    objects = [json.loads(line) for line in result.stdout.splitlines()]
    assert [o["kind"] for o in objects] == ["unindexed", "gone", "summary"]
    assert all(set(o) == {"kind", "path", "path_raw", "changes", "reason"} for o in objects[:-1])
    assert set(objects[-1]) == {"kind", "status", "counts", "files", "bytes_read", "roots",
                                "warnings", "duration_s"}


def test_no_root_given_configured_or_catalogued_is_a_usage_error(tmp_path):
    db = tmp_path / "empty.db"
    sqlite3.connect(db).close()
    from indexer import schema
    with sqlite3.connect(db) as conn:
        schema.migrate(conn)

    result = run_cli("verify", "--db", db, env=cli_env(tmp_path))

    assert result.returncode == 2 and "library.roots" in result.stderr


# --- nothing written, by anyone who can only read


def snapshot(*places: Path) -> dict[str, tuple]:
    """Every name below `places` with its type, size and mtime; whole bytes for the
    catalogue and its -wal (not its -shm: readers take their read marks there)."""
    seen = {}
    for place in places:
        for folder, dirs, names in os.walk(place):
            for name in dirs + names:
                path = os.path.join(folder, name)
                info = os.lstat(path)
                seen[path] = (info.st_mode, info.st_size, info.st_mtime_ns)
                if name.endswith(".db-shm"):  # there or not: its content is the readers' too
                    seen[path] = (info.st_mode,)
                if name.endswith((".db", ".db-wal")):
                    seen[path] += (Path(path).read_bytes(),)
    return seen


class ServiceLike:
    """A writer holding the catalogue open with pages in its -wal not yet checkpointed,
    as the service does between its commits."""

    def __init__(self, db: Path):
        self.conn = sqlite3.connect(db, isolation_level=None)
        self.conn.execute("PRAGMA wal_autocheckpoint = 0")
        self.conn.execute("UPDATE scan_jobs SET message = 'running' WHERE id = 1")
        assert db.with_name(db.name + "-wal").stat().st_size > 0

    def close(self):
        self.conn.close()


@pytest.mark.parametrize("service", [False, True], ids=["alone", "while-a-writer-runs"])
def test_verify_writes_nothing_to_the_catalogue_or_the_media(env, library, db, service):
    song(library, 0, 0).unlink()  # findings, and a file to read for every other one
    (library / "Artist 0" / "new.mp3").write_bytes(b"new")
    writer = ServiceLike(db) if service else None
    try:
        before = snapshot(library, db.parent)
        wal = next(value for path, value in before.items() if path.endswith(".db-wal"))
        assert (wal[1] > 0) == service  # kept by the scan, empty; or holding the writer's pages
        code, _ = verify(env=env)
        code_read, _ = verify("--read", env=env)
        after = snapshot(library, db.parent)
    finally:
        if writer:
            writer.close()
    assert (code, code_read) == (1, 1)
    assert after == before


def scan_into(db: Path, root: Path) -> None:
    from indexer import Manager
    assert Manager(db_path=db, roots=[str(root)], env={}).scan().status == "completed"


def verify_as_nobody(*args: str) -> tuple[int, list[dict]]:
    """The real command, run as `nobody` (when we are root) in a child forked from here,
    so that it needs nothing `nobody` cannot read (the Python may live under /root)."""
    def run():
        unset = {name: None for name in os.environ if name.startswith("INDEXER_")}
        result = CliRunner().invoke(indexer.cli.app, ["verify", "--json", *args], env=unset)
        return result.exit_code, result.stdout, result.stderr
    code, out, err = as_unprivileged(run)
    assert code != 2, err
    return code, [json.loads(line) for line in out.splitlines()]


@pytest.mark.parametrize("service", [False, True], ids=["alone", "while-a-writer-runs"])
def test_verify_works_for_a_user_who_can_only_read_the_catalogue(open_tmp, service):
    root, db = open_tmp / "music", open_tmp / "state" / "library.db"
    root.mkdir()
    make_library(root, albums=3, tracks=3)
    scan_into(db, root)
    gone = song(root, 0, 0)
    gone.unlink()
    secret, locked = song(root, 1, 0), root / "Artist 2"
    config = open_tmp / "config.toml"
    config.write_text("")
    writer = ServiceLike(db) if service else None
    chmod_all(open_tmp, 0o755, 0o644)  # readable by all, writable by none but the owner
    db.parent.chmod(0o555)
    db.chmod(0o444)  # and not by the owner either, when the tests do not run as root
    secret.chmod(0o000)
    locked.chmod(0o000)
    try:
        before = snapshot(root, db.parent)
        args = ("--db", str(db), "--config", str(config))
        code, lines = verify_as_nobody(*args)
        code_read, lines_read = verify_as_nobody("--read", *args)
        after = snapshot(root, db.parent)
    finally:
        if writer:
            writer.close()

    cannot_list = (f"cannot list folder {locked}: PermissionError: Permission denied: "
                   "its files were not verified")
    assert (code, code_read) == (1, 1)
    assert found(lines) == [("gone", str(gone), (), None)]
    assert found(lines_read) == sorted([
        ("gone", str(gone), (), None),
        ("unreadable", str(secret), (), "PermissionError: Permission denied")],
        key=lambda f: (f[1], f[0]))
    assert lines[-1]["warnings"] == lines_read[-1]["warnings"] == {str(root): [cannot_list]}
    assert after == before


# --- cancellation


def reading(pid: int, path: Path) -> bool:
    """Whether process `pid` has `path` open."""
    fds = Path(f"/proc/{pid}/fd")
    try:
        return any(os.readlink(fds / fd) == str(path) for fd in os.listdir(fds))
    except FileNotFoundError:  # it ended, or closed the file between the two calls
        return False


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_during_read_stops_within_2_s_with_exit_130_and_the_findings_so_far(
        tmp_path, signum):
    root = tmp_path / "music"
    (root / "A").mkdir(parents=True)
    (root / "B").mkdir()
    (root / "A" / "early.flac").write_bytes(b"read first")
    big = root / "B" / "big.flac"
    big.write_bytes(os.urandom(1024 * 1024) * 16)  # 16 s to read at 1 MiB/s
    env = cli_env(tmp_path, INDEXER_DB=str(tmp_path / "l.db"))
    run_cli("scan", root, env=env, check=True)
    (root / "A" / "early.flac").unlink()  # walked before B: found before the signal
    env["INDEXER_SCAN_MAX_READ_MIB_S"] = "1"
    child = subprocess.Popen([sys.executable, "-m", "indexer", "verify", "--read", str(root)],
                             env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                             stdin=subprocess.DEVNULL)
    try:
        wait_for(lambda: reading(child.pid, big), timeout=20, what="verify to read big.flac")
        sent = time.monotonic()
        child.send_signal(signum)
        out, err = child.communicate(timeout=10)
        took = time.monotonic() - sent
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()

    assert child.returncode == 130, err
    assert took < 2.0
    lines = out.splitlines()
    assert lines[0] == f"gone       {root}/A/early.flac"
    assert lines[1].startswith("verify cancelled: 1 difference so far, above")


def test_a_catalogue_written_while_it_was_read_alone_is_not_trusted(env, library, db):
    """No writer had it open, nor left its -wal and -shm (an older indexer, another
    program), so the file alone was read, without locks: a writer that starts
    meanwhile and checkpoints into it makes what was read doubtful."""
    from indexer import config
    from indexer.verify import Verify
    song(library, 0, 0).unlink()
    for suffix in ("-wal", "-shm"):  # checkpointed: the file holds everything
        db.with_name(db.name + suffix).unlink()
    check = Verify(db, [str(library)], config.load(None, {}, env={}).library)

    for _ in check:  # the service starts, writes and checkpoints while verify reads
        with connect(db) as writer:  # closing it checkpoints into the file
            writer.execute("UPDATE scan_jobs SET message = 'reconcile' WHERE id = 1")
    summary = check.summary()

    assert summary.status == "unverified" and summary.roots == ()
    assert summary.warnings == {str(db): [
        "the catalogue was written while verify read it (the service started?): verify again"]}


def test_a_folder_given_as_root_is_verified_alone_and_not_its_prefix_sibling(env, library,
                                                                             scan, tmp_path):
    live = library / "Artist 1 (Live)"
    live.mkdir()
    (live / "01 - Intro.flac").write_bytes(b"live")
    (library / "Artist 1" / "Single.mp3").write_bytes(b"single")
    scan(library)
    (live / "01 - Intro.flac").unlink()  # outside the folder verified: not reported
    album = library / "Artist 1" / "Album 1 (2001)"
    lost = sorted(str(p) for p in album.iterdir() if p.suffix != ".nfo")
    shutil.rmtree(album)  # inside it, in a folder the walk never reaches

    code, lines = verify(str(library / "Artist 1"), env=env)

    assert code == 1 and lines[-1]["roots"] == [str(library / "Artist 1")]
    assert found(lines) == [("gone", path, (), None) for path in lost]


def test_a_name_that_is_not_utf8_agrees_and_once_deleted_is_gone_with_its_bytes(env, library,
                                                                               scan):
    raw_path = os.fsencode(library) + b"/caf\xe9 \xff.flac"
    with open(raw_path, "wb") as handle:
        handle.write(b"not really flac")
    scan(library)

    agree, _ = verify("--read", env=env)
    os.unlink(raw_path)
    code, lines = verify(env=env)

    assert (agree, code) == (0, 1)
    assert [(f["path"], f["path_raw"]) for f in lines[:-1]] == [
        (f"{library}/caf\\xe9 \\xff.flac", raw_path.hex())]
