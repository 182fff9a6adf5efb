"""Make a deterministic media library for benchmarks.

Two kinds, both decided entirely by the seed and the sizes asked for:

* a realistic music library (`--files N`): N real, playable audio tracks laid
  out as `Artist NNN/Album Title (Year)/NN - Title.ext`, 10-14 tracks per album,
  a varying number of albums per artist, mostly mp3 and flac. Each track is a
  copy of one of the small template files in tests/data with its own tags
  written by mutagen, so every file differs in content and tags. Each album
  folder also has a cover.jpg (distinct per album) and sometimes a side file
  that is not media (album.nfo, a .cue or a .log).
* a hash-bound library (`--large N`): N big `.flac`-named files of
  pseudo-random bytes (not valid audio), sized between --min-mb and --max-mb.

A marker file in DEST records the parameters; running again with the same
parameters does nothing, with others it remakes DEST (only a DEST this script
made is ever deleted).

    python bench/make_library.py /tmp/lib --files 50000 --seed 1
    python bench/make_library.py /tmp/large --large 400 --min-mb 5 --max-mb 50
"""

from __future__ import annotations

import argparse
import io
import json
import multiprocessing
import os
import random
import shutil
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from needs import project_venv  # noqa: E402

project_venv("bench/make_library.py")

from mutagen.easymp4 import EasyMP4
from mutagen.flac import FLAC
from mutagen.mp3 import EasyMP3
from mutagen.oggopus import OggOpus
from mutagen.oggvorbis import OggVorbis

DATA = Path(__file__).resolve().parent.parent / "tests" / "data"
MARKER = ".bench-library.json"
GENERATOR_VERSION = 1  # bump when the output for the same parameters changes
MIB = 1024 * 1024

# extension -> (template in tests/data, mutagen class, share of albums).
# Mostly mp3 and flac, as in most collections.
FORMATS = {
    "mp3": ("id3v24.mp3", EasyMP3, 45),
    "flac": ("tone.flac", FLAC, 35),
    "ogg": ("tone.ogg", OggVorbis, 8),
    "m4a": ("tone.m4a", EasyMP4, 7),
    "opus": ("tone.opus", OggOpus, 5),
}
# How many albums an artist has, and how often: many one-album artists, a few big ones.
ALBUMS_PER_ARTIST = ((1, 30), (2, 20), (3, 15), (4, 10), (5, 8), (6, 6), (8, 5), (10, 4), (15, 2))
GENRES = ("Rock", "Jazz", "Electronic", "Classical", "Hip-Hop", "Folk", "Pop", "Metal",
          "Blues", "Soul", "Reggae", "Ambient", "Country", "Punk", "Latin")
# A few accented words: real libraries have non-ASCII names, and paths must cope.
WORDS = (
    "blue night river stone fire glass summer winter echo shadow light golden silver "
    "broken quiet wild electric midnight ocean desert city rain storm heart ghost dream "
    "paper velvet iron morning highway garden mirror thunder hollow crystal falling "
    "burning distant northern southern lonely secret hidden last first little great "
    "song dance road home sky moon sun star wave wind tide fever bloom dust smoke "
    "café über señor naïve fjörd élan"
).split()

TEXT_SIDE_FILES = (("album.nfo", 25), ("{album}.cue", 10), ("{album}.log", 10))  # (name, % of albums)


@dataclass
class Track:
    number: int
    title: str
    trackid: str


@dataclass
class Album:
    """Everything needed to write one album folder; made in the parent, written in a worker."""

    index: int
    folder: str  # relative to DEST
    artist: str
    title: str
    year: int
    genre: str
    ext: str
    tracks: list[Track] = field(default_factory=list)
    side_files: list[str] = field(default_factory=list)


# --- planning: pure, deterministic from the seed


def _words(rng: random.Random, low: int, high: int) -> str:
    return " ".join(rng.sample(WORDS, rng.randint(low, high))).title()


def plan_library(n_tracks: int, seed: int) -> list[Album]:
    """The albums of a library of exactly `n_tracks` tracks."""
    rng = random.Random(seed)
    sizes = [rng.choices([n for n, _ in ALBUMS_PER_ARTIST], [w for _, w in ALBUMS_PER_ARTIST])[0]
             for _ in range(n_tracks // 12 + 1)]  # more artists than needed; we stop early
    width = max(3, len(str(len(sizes))))
    albums: list[Album] = []
    left = n_tracks
    for artist_no, n_albums in enumerate(sizes, 1):
        artist = f"Artist {artist_no:0{width}d}"
        titles: set[str] = set()
        for _ in range(n_albums):
            if left == 0:
                return albums
            album = _plan_album(rng, len(albums), artist, titles, min(left, rng.randint(10, 14)))
            albums.append(album)
            left -= len(album.tracks)
    return albums


def _plan_album(rng: random.Random, index: int, artist: str, taken: set[str], n: int) -> Album:
    title = _words(rng, 1, 3)
    while title in taken:  # one artist never has two folders of the same name
        title += " II"
    taken.add(title)
    year = rng.randint(1960, 2024)
    ext = rng.choices(list(FORMATS), [share for _, _, share in FORMATS.values()])[0]
    album = Album(index, f"{artist}/{title} ({year})", artist, title, year,
                  rng.choice(GENRES), ext)
    album.tracks = [Track(no, _words(rng, 1, 4), str(uuid.UUID(int=rng.getrandbits(128), version=4)))
                    for no in range(1, n + 1)]
    album.side_files = [name.format(album=title) for name, percent in TEXT_SIDE_FILES
                        if rng.randrange(100) < percent]
    return album


# --- writing, in worker processes

_TEMPLATES: dict[str, bytes] = {}  # extension -> template audio with no tags; one copy per worker


def _load_templates() -> None:
    for ext, (name, cls, _) in FORMATS.items():
        buffer = io.BytesIO((DATA / name).read_bytes())
        audio = cls(buffer)
        buffer.seek(0)  # mutagen saves from where the file object stands
        audio.delete(buffer)
        _TEMPLATES[ext] = buffer.getvalue()


def tagged_audio(ext: str, tags: dict[str, str]) -> bytes:
    """The template for `ext` with `tags` written into it, tagged in memory: one write to disk."""
    buffer = io.BytesIO(_TEMPLATES[ext])
    audio = FORMATS[ext][1](buffer)
    if audio.tags is None:
        audio.add_tags()
    for key, value in tags.items():
        audio[key] = value
    buffer.seek(0)
    audio.save(buffer)
    return buffer.getvalue()


def _track_tags(album: Album, track: Track) -> dict[str, str]:
    return {"title": track.title, "artist": album.artist, "album": album.title,
            "albumartist": album.artist, "tracknumber": f"{track.number}/{len(album.tracks)}",
            "date": str(album.year), "genre": album.genre, "musicbrainz_trackid": track.trackid}


def write_album(job: tuple[str, Album]) -> tuple[int, int]:
    """Write one album folder; returns (files, bytes) written."""
    dest, album = job
    folder = os.path.join(dest, album.folder)
    os.makedirs(folder, exist_ok=True)
    files = total = 0
    for track in album.tracks:
        name = f"{track.number:02d} - {track.title}.{album.ext}"
        total += _write(os.path.join(folder, name), tagged_audio(album.ext, _track_tags(album, track)))
        files += 1
    # Bytes after a JPEG's end marker are ignored by readers: distinct covers, still valid.
    cover = (DATA / "cover.jpg").read_bytes() + f"\0bench-album-{album.index}".encode()
    total += _write(os.path.join(folder, "cover.jpg"), cover)
    for name in album.side_files:
        total += _write(os.path.join(folder, name), _side_text(album, name))
    return files + 1 + len(album.side_files), total


def _side_text(album: Album, name: str) -> bytes:
    lines = [f"{album.artist} - {album.title} ({album.year})", f"file: {name}", ""]
    lines += [f"{t.number:02d}. {t.title}" for t in album.tracks]
    return ("\n".join(lines) + "\n").encode()


def _write(path: str, data: bytes) -> int:
    with open(path, "wb") as handle:
        handle.write(data)
    return len(data)


def retag(path: str, title_suffix: str) -> None:
    """Change one track's title tag in place (used by run.py to make a file "modified")."""
    ext = path.rsplit(".", 1)[-1]
    audio = FORMATS[ext][1](path)
    audio["title"] = audio["title"][0] + title_suffix
    audio.save()


# --- the large, hash-bound library

_BLOCK_SIZE = MIB


def plan_large(n: int, min_mib: float, max_mib: float, seed: int) -> list[tuple[str, int]]:
    """(relative path, size in bytes) of each large file: 10 files per folder."""
    rng = random.Random(seed)
    return [(f"Large {i // 10:04d}/{i % 10 + 1:02d} - Big Track {i:05d}.flac",
             rng.randint(int(min_mib * MIB), int(max_mib * MIB))) for i in range(n)]


def write_large(job: tuple[str, int, str, int, int]) -> tuple[int, int]:
    """One large file: a header naming it, then the seed's 1 MiB random block, rotated per chunk.

    Rotating one block by a different offset for every chunk costs no CPU
    (two writes from a memoryview) and still makes every chunk, and so every
    file, different.
    """
    dest, index, relative, size, seed = job
    block = memoryview(random.Random(seed).randbytes(_BLOCK_SIZE))
    path = os.path.join(dest, relative)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb", buffering=0) as handle:
        left = size - handle.write(f"bench-large {index} {size}\n".encode())
        chunk = 0
        while left > 0:
            shift = (index * 7919 + chunk * 104729) % _BLOCK_SIZE
            rotated = (block[shift:], block[:shift])
            for part in rotated:
                left -= handle.write(part[:max(left, 0)])
            chunk += 1
    return 1, size


# --- the destination and its marker


def read_marker(dest: Path) -> dict | None:
    try:
        return json.loads((dest / MARKER).read_text())
    except (OSError, ValueError):
        return None


def _write_marker(dest: Path, params: dict, **facts: object) -> None:
    (dest / MARKER).write_text(json.dumps({"params": params, **facts}, indent=1) + "\n")


def prepare_dest(dest: Path, params: dict) -> bool:
    """Make DEST ready to fill; False if it already holds this very library."""
    marker = read_marker(dest) if dest.exists() else None
    if marker and marker.get("complete") and marker.get("params") == params:
        return False
    if marker:  # ours, but other parameters or half made: remake it
        shutil.rmtree(dest)
    elif dest.exists() and any(dest.iterdir()):
        sys.exit(f"make_library: {dest} is not empty and was not made by this script; "
                 "not touching it")
    dest.mkdir(parents=True, exist_ok=True)
    _write_marker(dest, params, complete=False)
    return True


def _run_jobs(worker, jobs: list, processes: int, initializer=None) -> tuple[int, int]:
    files = total = 0
    with multiprocessing.Pool(processes, initializer=initializer) as pool:
        for n, size in pool.imap_unordered(worker, jobs, chunksize=4):
            files, total = files + n, total + size
    return files, total


def ensure_library(dest: Path, *, files: int = 0, large: int = 0, min_mb: float = 5,
                   max_mb: float = 50, seed: int = 1, processes: int | None = None,
                   quiet: bool = False) -> dict:
    """Make the library unless DEST already holds it; returns the marker's facts."""
    params = ({"kind": "large", "files": large, "min_mb": min_mb, "max_mb": max_mb, "seed": seed}
              if large else {"kind": "music", "tracks": files, "seed": seed})
    params["version"] = GENERATOR_VERSION
    if not prepare_dest(dest, params):
        if not quiet:
            print(f"make_library: {dest} already holds this library; nothing to do", flush=True)
        return read_marker(dest) or {}
    processes = processes or os.cpu_count() or 1
    started = time.monotonic()
    if large:
        jobs = [(str(dest), i, rel, size, seed) for i, (rel, size) in
                enumerate(plan_large(large, min_mb, max_mb, seed))]
        made, total = _run_jobs(write_large, jobs, processes)
    else:
        jobs = [(str(dest), album) for album in plan_library(files, seed)]
        made, total = _run_jobs(write_album, jobs, processes, initializer=_load_templates)
    seconds = round(time.monotonic() - started, 1)
    _write_marker(dest, params, complete=True, files=made, bytes=total, seconds=seconds)
    if not quiet:
        what = f"{large} large files" if large else f"{files:,} tracks, {len(jobs):,} albums"
        print(f"make_library: made {dest}: {what}; {made:,} files, {total / MIB:,.1f} MiB "
              f"in {seconds:.1f} s", flush=True)
    return read_marker(dest) or {}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("dest", type=Path, help="folder to fill (made if missing)")
    kind = parser.add_mutually_exclusive_group(required=True)
    kind.add_argument("--files", type=int, metavar="N", help="audio tracks of a music library")
    kind.add_argument("--large", type=int, metavar="N", help="large files of a hash-bound library")
    parser.add_argument("--min-mb", type=float, default=5, help="smallest large file, MiB")
    parser.add_argument("--max-mb", type=float, default=50, help="largest large file, MiB")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--processes", type=int, default=None, help="default: number of CPUs")
    args = parser.parse_args(argv)
    if (args.files or 0) < 0 or (args.large or 0) < 0 or not 0 < args.min_mb <= args.max_mb:
        parser.error("sizes must be positive and --min-mb <= --max-mb")
    ensure_library(args.dest, files=args.files or 0, large=args.large or 0, min_mb=args.min_mb,
                   max_mb=args.max_mb, seed=args.seed, processes=args.processes)


if __name__ == "__main__":
    main()
