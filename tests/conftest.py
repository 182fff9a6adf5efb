"""Fixtures that build real things fast: a library of real media files in
`tmp_path`, a fresh catalogue, scans through the Python API or the real CLI."""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from indexer import Manager

DATA = Path(__file__).parent / "data"
AUDIO_SAMPLES = ["id3v23.mp3", "id3v24.mp3", "tone.flac", "tone.ogg", "tone.opus", "tone.m4a",
                 "tone.wav", "tone.aiff", "tone.wma"]


def make_library(root: Path, albums: int = 3, tracks: int = 4) -> list[Path]:
    """Artist/Album (Year)/NN - Title.ext from real samples, a cover per album and a side file.

    Returns the media files (tracks and covers), the files a scan must index.
    """
    media = []
    for a in range(albums):
        album = root / f"Artist {a}" / f"Album {a} ({2000 + a})"
        album.mkdir(parents=True)
        for t in range(tracks):
            sample = AUDIO_SAMPLES[(a * tracks + t) % len(AUDIO_SAMPLES)]
            target = album / f"{t + 1:02d} - Song {t}{Path(sample).suffix}"
            shutil.copyfile(DATA / sample, target)
            with open(target, "ab") as handle:  # distinct content per file
                handle.write(f"{a}-{t}".encode())
            media.append(target)
        shutil.copyfile(DATA / "cover.jpg", album / "cover.jpg")
        media.append(album / "cover.jpg")
        (album / "album.nfo").write_text("not media\n")
    return media


@pytest.fixture(autouse=True)
def hermetic(tmp_path_factory, monkeypatch) -> None:
    """Each test its own HOME and XDG folders: nothing of the user's is read, and a
    service's control socket (made under XDG_RUNTIME_DIR) is never left in /tmp."""
    home = tmp_path_factory.mktemp("home")
    monkeypatch.setenv("HOME", str(home))
    for name, folder in (("XDG_RUNTIME_DIR", "run"), ("XDG_CONFIG_HOME", ".config"),
                         ("XDG_DATA_HOME", ".local/share"), ("XDG_CACHE_HOME", ".cache")):
        (home / folder).mkdir(parents=True, mode=0o700)
        monkeypatch.setenv(name, str(home / folder))
    monkeypatch.delenv("RUNTIME_DIRECTORY", raising=False)


@pytest.fixture
def library(tmp_path: Path) -> Path:
    root = tmp_path / "music"
    root.mkdir()
    make_library(root)
    return root


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "state" / "library.db"


@pytest.fixture
def scan(db: Path) -> Callable:
    """Run a scan through the Python API, ignoring the environment's configuration."""
    def run(*roots: Path, **settings):
        rehash = settings.pop("rehash", False)
        manager = Manager(db_path=db, roots=[str(r) for r in roots], env={}, **settings)
        return manager.scan(rehash=rehash)
    return run


class _Closing(sqlite3.Connection):
    """A connection that `with` closes (sqlite3's own only ends the transaction), so no
    test leaves a file open on a file system it unmounts."""

    def __exit__(self, *exc):
        super().__exit__(*exc)
        self.close()
        return False


def connect(db: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(db, factory=_Closing)
    conn.row_factory = sqlite3.Row
    return conn


def files(db: Path, status: str | None = None) -> dict[str, sqlite3.Row]:
    """Catalogue rows by path."""
    with connect(db) as conn:
        query = "SELECT * FROM files" + (" WHERE status = ?" if status else "")
        return {row["path"]: row for row in conn.execute(query, (status,) if status else ())}


def changes(db: Path, tagged: bool = False) -> list[tuple]:
    """The feed as (kind, path, old_path); the rows' story only, unless `tagged`."""
    with connect(db) as conn:
        return [tuple(r) for r in conn.execute(
            "SELECT kind, path, old_path FROM changes WHERE kind <> 'tagged' OR ? ORDER BY seq",
            (tagged,))]


def job(db: Path, job_id: int) -> sqlite3.Row:
    with connect(db) as conn:
        return conn.execute("SELECT * FROM scan_jobs WHERE id = ?", (job_id,)).fetchone()


def cli_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    """An environment where no user or system configuration leaks into the test."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("INDEXER_")}
    empty = tmp_path / "empty-config.toml"
    empty.touch()
    env.update(INDEXER_CONFIG=str(empty), XDG_DATA_HOME=str(tmp_path / "xdg-data"), **extra)
    return env


def indexer(*args: str, env: dict[str, str], timeout: float = 60,
            check: bool = False) -> subprocess.CompletedProcess:
    """Run the real `indexer` command line in a child process."""
    result = subprocess.run([sys.executable, "-m", "indexer", *map(str, args)], env=env,
                            capture_output=True, text=True, timeout=timeout,
                            stdin=subprocess.DEVNULL)
    if check and result.returncode != 0:
        raise AssertionError(f"indexer {args} failed {result.returncode}: {result.stderr}")
    return result


def wait_for(condition: Callable[[], object], timeout: float = 10.0, what: str = "condition"):
    """Poll `condition` until it is truthy or the deadline passes; never a bare sleep."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.02)


def reuse_inode_of(old: Path, new_name: str, content: bytes, fillers: Path) -> Path:
    """Delete `old`, then make a file in its folder that gets its inode number (ext4 and
    tmpfs hand a freed number to a next file; files moved to `fillers`, a folder on the
    same file system outside the library, take the lower free numbers meanwhile)."""
    inode = old.stat().st_ino
    fillers.mkdir()
    old.unlink()
    for attempt in range(500):
        new = old.parent / f"{new_name} {attempt}{old.suffix}"
        new.write_bytes(content)
        if new.stat().st_ino == inode:
            shutil.rmtree(fillers)
            return new
        new.rename(fillers / new.name)
    pytest.skip("this filesystem did not reuse the inode number")


@pytest.fixture
def fresh_fs(tmp_path: Path):
    """A new, empty ext4 file system (a loop mount, as root): the next file made gets the
    lowest free inode number, so a test can have a deleted file's number reused at will.
    Elsewhere, tmp_path (where reuse may not come: those tests skip)."""
    if os.geteuid() != 0 or not shutil.which("mkfs.ext4"):
        yield tmp_path
        return
    image, mount = tmp_path / "fs.img", tmp_path / "fs"
    mount.mkdir()
    with open(image, "wb") as handle:
        handle.truncate(32 << 20)
    subprocess.run(["mkfs.ext4", "-q", "-F", str(image)], check=True, capture_output=True)
    subprocess.run(["mount", "-o", "loop", str(image), str(mount)], check=True)
    try:
        yield mount
    finally:
        subprocess.run(["umount", str(mount)], check=False)


def workers_of(pid: int) -> list[int]:
    """The pids of the worker processes (`python -m indexer.worker`) that `pid` started."""
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as stat, open(f"/proc/{entry}/cmdline") as cmd:
                    parent = int(stat.read().rsplit(")", 1)[1].split()[1])
                    if parent == pid and "indexer.worker" in cmd.read():
                        found.append(int(entry))
            except (OSError, ValueError, IndexError):
                continue
    return found
