"""The watcher asks the kernel for changes only. Our own scans open every folder they
list and every file they read: with watchdog's default mask each of those is two events
(an open, a close without a write) queued for us, and a rescan of a big root filled the
inotify queue, whose overflow brought another rescan of the root, round after round."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from conftest import wait_for
from indexer.watch import Place, Watcher

MAX_QUEUED = Path("/proc/sys/fs/inotify/max_queued_events")
IN_ACCESS, IN_CLOSE_NOWRITE, IN_OPEN = 0x1, 0x10, 0x20


def watch_masks() -> list[int]:
    """The event masks of this process's inotify watches, as the kernel holds them."""
    masks = []
    for fd in os.listdir("/proc/self/fdinfo"):
        try:
            text = Path(f"/proc/self/fdinfo/{fd}").read_text()
        except OSError:
            continue
        masks += [int(field.split(":")[1], 16) for line in text.splitlines()
                  if line.startswith("inotify wd:") for field in line.split()
                  if field.startswith("mask:")]
    return masks


def tree(root: Path, folders: int) -> list[Path]:
    songs = []
    for n in range(folders):
        (root / f"Album {n}").mkdir(parents=True)
        songs.append(root / f"Album {n}" / "01.flac")
        songs[-1].write_bytes(b"x" * 100)
    return songs


def test_no_watch_asks_for_opens_reads_or_closes_without_a_write(tmp_path):
    tree(tmp_path, 3)
    watcher = Watcher(lambda place, complete=False: None, ())
    try:
        assert watcher.arm(str(tmp_path)) == "inotify"
        masks = watch_masks()
    finally:
        watcher.stop()
    assert len(masks) >= 4  # the root and its three folders
    assert all(mask & (IN_ACCESS | IN_CLOSE_NOWRITE | IN_OPEN) == 0 for mask in masks)


@pytest.mark.skipif(os.geteuid() != 0, reason="sets fs.inotify.max_queued_events")
def test_reading_a_watched_tree_whole_overflows_no_small_queue(tmp_path):
    songs = tree(tmp_path / "music", 300)
    places: list[Place] = []
    before = MAX_QUEUED.read_text()
    MAX_QUEUED.write_text("256")  # read when the watcher's inotify instance is made
    try:
        watcher = Watcher(lambda place, complete=False: places.append(place), ())
    finally:
        MAX_QUEUED.write_text(before)
    try:
        assert watcher.arm(str(tmp_path / "music")) == "inotify"
        for _ in range(3):  # as scans do: every folder listed, every file read
            for song in songs:
                os.listdir(song.parent)
                song.read_bytes()
        marker = tmp_path / "music" / "Album 0" / "marker.flac"
        marker.write_bytes(b"the last event")
        wait_for(lambda: any(p.folder == str(marker.parent) for p in places), what="the marker")
    finally:
        watcher.stop()
    assert not any(p.how == "root" for p in places)  # no overflow, so no rescan of the root


def test_every_place_an_album_moved_in_whole_brings_is_looked_at_at_once(tmp_path):
    """watchdog follows a folder moved in from outside with a "created" event for each
    file in it; those once marked the folder for a second look after the debounce,
    which held a media server's push back by a second (bench/latency.py)."""
    album = tmp_path / "outside" / "Album"
    album.mkdir(parents=True)
    for n in range(3):
        (album / f"{n:02d}.flac").write_bytes(b"x" * 100)
    (tmp_path / "music").mkdir()
    touched: list[tuple[Place, bool]] = []
    watcher = Watcher(lambda place, complete=False: touched.append((place, complete)), ())
    try:
        assert watcher.arm(str(tmp_path / "music")) == "inotify"
        album.rename(tmp_path / "music" / "Album")
        wait_for(lambda: len(touched) >= 4, what="the folder's and its files' events")
    finally:
        watcher.stop()
    moved = str(tmp_path / "music" / "Album")
    assert sorted((place.folder, place.how, complete) for place, complete in touched) == [
        (moved, "folder", True)] * 3 + [(moved, "tree", True)]
