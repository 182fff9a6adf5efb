"""Changes made to a library between timed runs, and undone exactly afterwards.

A changer shuffles the library's tracks by the seed and cuts them into disjoint
slices of 1%. Before run i it changes slice i, and the earlier slices stay
changed, so every run sees exactly one slice new and the no-change rescan run
after it sees nothing new. `restore()` (called in a `finally`) puts back every
name, byte and mtime it touched, folders' included, so the library is as made
for the next bench: make_library's marker still tells the truth.

  Retagger  a new title tag: size and inode stay, only the mtime tells
  Mover     os.rename into ROOT/_bench_moved/<same relative path>: the inode stays
  Deleter   os.rename into a stash outside ROOT on the same filesystem: "deleted",
            yet put back with its inode, bytes and mtime
"""

from __future__ import annotations

import os
import random
from pathlib import Path

import make_library  # a sibling script: run.py puts bench/ on sys.path

MOVED_FOLDER = "_bench_moved"


def library_tracks(root: Path) -> list[str]:
    """Every audio track under `root`, sorted: the same list for the same library."""
    return sorted(os.path.join(folder, name) for folder, _, names in os.walk(root)
                  for name in names if name.rsplit(".", 1)[-1] in make_library.FORMATS)


def _slices(root: Path, fraction: float, seed: int) -> tuple[int, list[list[str]]]:
    tracks = library_tracks(root)
    random.Random(seed).shuffle(tracks)
    size = max(1, round(len(tracks) * fraction))
    return size, [tracks[k:k + size] for k in range(0, len(tracks), size)]


class Retagger:
    """Before run i, retag the i-th disjoint slice of the tracks; `restore()` undoes all.

    A retag keeps size and inode (mutagen writes into the tag padding), so only
    the mtime tells the scan: the cheap check must catch that. Restoring puts
    back the bytes and the mtime, so the library is as made for the next bench.
    """

    def __init__(self, root: Path, fraction: float, seed: int):
        self.size, self.slices = _slices(root, fraction, seed)
        self.saved: dict[str, tuple[bytes, int, int]] = {}

    def prepare(self, i: int) -> None:
        for path in self.slices[i % len(self.slices)]:
            if path not in self.saved:
                info = os.stat(path)
                self.saved[path] = (Path(path).read_bytes(), info.st_atime_ns, info.st_mtime_ns)
            make_library.retag(path, f" (edit {i})")

    def restore(self) -> None:
        for path, (data, atime_ns, mtime_ns) in self.saved.items():
            with open(path, "r+b") as handle:  # in place: the inode stays
                handle.write(data)
                handle.truncate()
            os.utime(path, ns=(atime_ns, mtime_ns))
        self.saved.clear()


class Renamer:
    """Before run i, rename the i-th slice of the tracks under `away`; `restore()` renames all back.

    os.rename keeps inode, size and mtime, so a scan can only tell by the path.
    Renaming into or out of a folder changes that folder's mtime: the folders'
    times are kept before the first rename and set back last.
    """

    def __init__(self, root: Path, fraction: float, seed: int, away: Path):
        if away.exists():
            raise SystemExit(f"bench: {away} exists: an earlier bench was stopped before it put "
                             f"its files back; move them back into {root} and remove it")
        self.root, self.away = root, away
        self.size, self.slices = _slices(root, fraction, seed)
        self.done: list[tuple[str, str]] = []  # (where it was, where it is), in order
        self.folder_times: dict[str, tuple[int, int]] = {}
        self._keep_times(str(root))  # making `away` inside the root touches the root

    def prepare(self, i: int) -> None:
        if i >= len(self.slices):  # the slices are cumulative: none is left to change
            raise SystemExit(f"bench: {len(self.slices)} slices of {self.size} tracks: "
                             f"too few for run {i}; use fewer --runs")
        for path in self.slices[i]:
            target = str(self.away / os.path.relpath(path, self.root))
            self._keep_times(os.path.dirname(path))
            os.makedirs(os.path.dirname(target), exist_ok=True)
            os.rename(path, target)
            self.done.append((path, target))

    def restore(self) -> None:
        for path, target in reversed(self.done):
            os.rename(target, path)
        self.done.clear()
        if self.away.exists():
            for folder, _, _ in os.walk(self.away, topdown=False):
                os.rmdir(folder)  # fails loudly if anything else was left there
        for folder, (atime_ns, mtime_ns) in self.folder_times.items():
            os.utime(folder, ns=(atime_ns, mtime_ns))

    def _keep_times(self, folder: str) -> None:
        if folder not in self.folder_times:
            info = os.stat(folder)
            self.folder_times[folder] = (info.st_atime_ns, info.st_mtime_ns)


def mover(root: Path, fraction: float, seed: int) -> Renamer:
    """Moves within the library: a scan should match each by its inode, reading nothing."""
    return Renamer(root, fraction, seed, root / MOVED_FOLDER)


def deleter(root: Path, fraction: float, seed: int, workdir: Path) -> Renamer:
    """Deletions that can be undone: a stash outside the root, on the root's filesystem."""
    if os.stat(workdir).st_dev != os.stat(root).st_dev:
        # os.rename cannot cross filesystems, and a copy would give a new inode
        raise SystemExit(f"bench: {workdir} and {root} are on different filesystems: "
                         "cannot stash deleted tracks by rename")
    return Renamer(root, fraction, seed, workdir / f"stash-{root.name}")


def snapshot(root: Path) -> dict[str, tuple[int, int]]:
    """Relative path -> (size, mtime_ns) of everything under `root`: a peer must leave it equal."""
    found = {}
    for folder, subfolders, names in os.walk(root):
        for name in subfolders + names:
            path = os.path.join(folder, name)
            info = os.lstat(path)
            found[os.path.relpath(path, root)] = (info.st_size, info.st_mtime_ns)
    return found
