"""The disk side of the fault loop: a library, a user changing it, and the truth.

`Library` makes a root of real tracks under the names real libraries have
(prefix siblings, NFD, spaces) and changes it as users and their tools do:
tracks and albums copied in (some rsync-style, through a hidden temporary
name), renamed, moved between albums, albums renamed, tags rewritten in
place with the mtime put back, files appended to, deleted. It keeps each
file's lineage (a number that follows it through renames and edits) so the
check can tell whether the catalogue kept a file's id.

`Truth` compares the catalogue with the disk: every present row against
every file (path, size, xxh3-128 of the content), and the id of each file
against the id it had at the last check that agreed.
"""

from __future__ import annotations

import os
import random
import sqlite3
import threading
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path

from needs import project_venv  # noqa: E402

project_venv("bench/soak_disk.py")

import xxhash

DATA = Path(__file__).resolve().parents[1] / "tests" / "data"
SAMPLES = [DATA / name for name in ("id3v23.mp3", "id3v24.mp3", "tone.flac", "tone.ogg",
                                    "tone.opus", "tone.m4a")]
TRACKS_PER_ALBUM = 25
ALBUMS_PER_ARTIST = 4


def artist_name(n: int) -> str:
    """Artists whose names are prefixes of each other's, as in real libraries."""
    base = f"Artist {n // 5}"
    return [base, f"{base} Bar", f"{base} (Live)", f"{base}.",
            unicodedata.normalize("NFD", f"Café {n // 5}")][n % 5]


@dataclass
class Library:
    root: Path
    seed: int
    base: Path | None = None  # where the root's content is now (another mount, for a while)
    lineage: dict[str, int] = field(default_factory=dict)  # relative path -> lineage
    lock: threading.Lock = field(default_factory=threading.Lock)
    actions: int = 0
    history: list[str] = field(default_factory=list)  # what was done, to trace a failure

    def __post_init__(self):
        self.base = self.base or self.root
        self.rng = random.Random(self.seed)
        self._next = 0
        self._folders: list[str] = []

    # --- building

    def make(self, files: int) -> None:
        albums = max(1, files // TRACKS_PER_ALBUM)
        for a in range(albums):
            folder = f"{artist_name(a // ALBUMS_PER_ARTIST)}/Album {a % ALBUMS_PER_ARTIST} ({a})"
            count = files - a * TRACKS_PER_ALBUM if a == albums - 1 else TRACKS_PER_ALBUM
            self.add_album(folder, count)

    def add_album(self, folder: str, tracks: int) -> None:
        (self.base / folder).mkdir(parents=True, exist_ok=True)
        self._folders.append(folder)
        for t in range(tracks):
            self._write(f"{folder}/{t + 1:02d} Song {self._next}{SAMPLES[t % len(SAMPLES)].suffix}",
                        SAMPLES[t % len(SAMPLES)])

    def _write(self, relative: str, sample: Path, via_temp: bool = False) -> None:
        target = self.base / relative
        data = sample.read_bytes() + f"lineage {self._next}".encode()
        if via_temp:  # rsync: a hidden name in the same folder, then a rename
            temp = target.with_name(f".{target.name}.{self._next:06x}")
            temp.write_bytes(data)
            temp.rename(target)
        else:
            target.write_bytes(data)
        self.lineage[relative] = self._next
        self.history.append(f"write\t{relative}\t{self._next}")
        self._next += 1

    # --- a user at work

    def change(self, count: int = 1, go: threading.Event | None = None) -> None:
        """`count` random changes, each whole before the next (under the lock); none once
        `go` is cleared, so whoever clears it and then takes the lock has the user paused."""
        for _ in range(count):
            with self.lock:
                if go is not None and not go.is_set():
                    return
                self._one_change()
                self.actions += 1

    def _one_change(self) -> None:
        roll, rng = self.rng.random(), self.rng
        paths = list(self.lineage) if roll >= 0.3 else []
        if roll < 0.25 or not paths:
            folder = rng.choice(self._folders)
            if not (self.base / folder).is_dir():
                return
            sample = rng.choice(SAMPLES)
            self._write(f"{folder}/new {self._next}{sample.suffix}", sample, rng.random() < 0.3)
        elif roll < 0.3:
            self.add_album(f"{artist_name(rng.randrange(1000))}/Copied in {self._next}", 8)
        elif roll < 0.45:
            self._rename(rng.choice(paths), f"renamed {self._next}")
        elif roll < 0.55:
            self._move(rng.choice(paths), rng.choice(self._folders))
        elif roll < 0.58:
            self._rename_folder(rng.choice(paths).rsplit("/", 1)[0])
        elif roll < 0.75:
            self._append(rng.choice(paths))
        elif roll < 0.85:
            self._retag_keeping_mtime(rng.choice(paths))
        else:
            victim = rng.choice(paths)
            (self.base / victim).unlink()
            del self.lineage[victim]
            self.history.append(f"delete\t{victim}")
        self._next += 1

    def _rename(self, relative: str, stem: str) -> None:
        target = relative.rsplit("/", 1)[0] + f"/{stem}{Path(relative).suffix}"
        self._moved(relative, target)

    def _move(self, relative: str, folder: str) -> None:
        if (self.base / folder).is_dir():
            self._moved(relative, f"{folder}/moved {self._next}{Path(relative).suffix}")

    def _moved(self, relative: str, target: str) -> None:
        if target in self.lineage:
            return
        (self.base / relative).rename(self.base / target)
        self.lineage[target] = self.lineage.pop(relative)
        self.history.append(f"rename\t{relative}\t{target}")

    def _rename_folder(self, folder: str) -> None:
        new = f"{folder.split(' (remaster ')[0]} (remaster {self._next})"  # (a name < 255 bytes)
        (self.base / folder).rename(self.base / new)
        self.history.append(f"rename folder\t{folder}\t{new}")
        self._folders = [new if f == folder else f for f in self._folders]
        prefix = folder + "/"
        for relative in [p for p in self.lineage if p.startswith(prefix)]:
            self.lineage[new + "/" + relative[len(prefix):]] = self.lineage.pop(relative)

    def _append(self, relative: str) -> None:
        with open(self.base / relative, "ab") as out:
            out.write(f" edit {self._next}".encode())
        self.history.append(f"append\t{relative}")

    def _retag_keeping_mtime(self, relative: str) -> None:
        """Same size, new bytes, the mtime put back: Picard's "preserve timestamps"."""
        path = self.base / relative
        before = path.stat()
        with open(path, "r+b") as out:
            out.seek(max(0, before.st_size - 4))
            out.write(self._next.to_bytes(4, "big"))
        os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))
        self.history.append(f"retag keeping mtime\t{relative}")

    def touch_storm(self, events: int) -> None:
        """`events` inotify events at once, as `chmod -R` or a backup tool: attributes only."""
        paths = [self.base / p for p in self.lineage]
        for n in range(events):
            os.chmod(paths[n % len(paths)], 0o644 if n // len(paths) % 2 else 0o664)


class Truth:
    """The disk against the catalogue."""

    def __init__(self, library: Library, db: Path):
        self.library, self.db = library, db
        self._hashes: dict[tuple, str] = {}
        self.ids: dict[int, int] = {}  # lineage -> the catalogue's id at the last agreement

    def disk(self) -> dict[str, tuple[int, str]]:
        """Every file under the root: path -> (size, content hash)."""
        found = {}
        for folder, _, names in os.walk(self.library.root):
            for name in names:
                path = os.path.join(folder, name)
                try:
                    st = os.stat(path)
                    key = (path, st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino)
                    if key not in self._hashes:
                        self._hashes[key] = _hash(path)
                except FileNotFoundError:  # changed while looked at: the next look has it
                    continue
                found[path] = (st.st_size, self._hashes[key])
        return found

    def catalogue(self) -> dict[str, tuple[int, int, str]]:
        """Present rows: path -> (id, size, hash)."""
        with sqlite3.connect(f"file:{self.db}?mode=ro", uri=True, timeout=30) as conn:
            rows = conn.execute("SELECT path, id, size, hash FROM files WHERE status = 'present'")
            found = {path: (i, size, digest) for path, i, size, digest in rows}
        conn.close()
        return found

    def differences(self) -> set[tuple]:
        """What the catalogue gets wrong now: each a key that stays the same while the same
        fault lasts (a file absent, a row extra, a row stale)."""
        disk, rows = self.disk(), self.catalogue()
        wrong = {("absent", p, *disk[p]) for p in disk.keys() - rows.keys()}
        wrong |= {("extra", p, rows[p][0]) for p in rows.keys() - disk.keys()}
        wrong |= {("stale", p, *disk[p]) for p in disk.keys() & rows.keys()
                  if rows[p][1:] != disk[p]}
        return wrong

    def ids_kept(self) -> tuple[int, list[str]]:
        """At an agreement, with the user paused: files whose id changed since the last
        agreement (the number, and a few of their paths); then this agreement's ids."""
        rows, root = self.catalogue(), str(self.library.root)
        lost, ids = [], {}
        with self.library.lock:
            lineage = dict(self.library.lineage)
        for relative, line in lineage.items():
            row = rows.get(os.path.join(root, relative))
            if row is None:
                continue
            if line in self.ids and self.ids[line] != row[0]:
                lost.append(f"{relative}: id {self.ids[line]} -> {row[0]}")
            ids[line] = row[0]
        self.ids = ids
        self.library.history.append(f"agreement\t{len(ids)} ids\t{len(lost)} lost")
        return len(lost), lost[:5]

    def without_tags(self) -> int:
        """Present tracks whose tags the catalogue does not hold for their content."""
        with sqlite3.connect(f"file:{self.db}?mode=ro", uri=True, timeout=30) as conn:
            count = conn.execute("SELECT count(*) FROM files WHERE status = 'present' AND "
                                 "kind = 'audio' AND tags_hash IS NOT hash").fetchone()[0]
        conn.close()
        return count


def _hash(path: str) -> str:
    with open(path, "rb") as handle:
        return xxhash.xxh3_128(handle.read()).hexdigest()

