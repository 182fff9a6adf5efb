"""Trees with the names real libraries have, for differential and model tests.

Prefix siblings with every character that sorts below "/" ("Foo", "Foo Bar",
"Foo (Live)", "Foo.", "Foo-Bar", "Foo+Bar", "Foo,Bar", "Foo!"), NFC and NFD
twins, case twins, spaces, a name that is not UTF-8 and a 255-byte name.
"""

from __future__ import annotations

import os
import unicodedata
from pathlib import Path

PREFIX_SIBLINGS = ["Foo", "Foo Bar", "Foo (Live)", "Foo.", "Foo-Bar", "Foo+Bar", "Foo,Bar",
                   "Foo!", "Fo", "Foo0", "Foo Bar (Live)"]
CAFE = "Café"
TWINS = [unicodedata.normalize("NFC", CAFE), unicodedata.normalize("NFD", CAFE), "abc", "ABC"]
ODD = [os.fsdecode(b"caf\xe9 (latin-1)"), "x" * 200 + " long", "  spaced  name "]
ARTISTS = PREFIX_SIBLINGS + TWINS + ODD


def write(path: Path, content: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content)
    return path


def hard_tree(root: Path, albums: int = 2, tracks: int = 3, loose: int = 2) -> list[Path]:
    """Artist/Album/NN name.mp3 under every hard artist name, a few loose files in each
    artist folder and in the root; every file's content is distinct. Returns the files."""
    made = [write(root / f"root {i}.mp3", f"root {i}".encode()) for i in range(loose)]
    for artist in ARTISTS:
        for i in range(loose):
            made.append(write(root / artist / f"{artist[:40]} {i}.mp3", os.fsencode(f"{artist}/{i}")))
        for a in range(albums):
            for t in range(tracks):
                name = f"{t + 1:02d} {artist[:40]}.mp3"
                made.append(write(root / artist / f"{artist[:40]} {a}" / name,
                                  os.fsencode(f"{artist}/{a}/{t}")))
    long_name = "y" * 251 + ".mp3"  # 255 bytes
    made.append(write(root / "Foo" / long_name, b"a name of 255 bytes"))
    return made


def media_texts(root: Path, suffix: str = ".mp3") -> set[str]:
    """The catalogue text of every file under `root` with the suffix, as a scan stores it."""
    from indexer.paths import db_text
    return {db_text(str(path))[0] for path in root.rglob(f"*{suffix}")}


SIBLING_SUFFIXES = ("", " Bar", " (Live)", ".", "-Bar")


def large_library(root: Path, files: int, sample: bytes) -> int:
    """`files` tiny real MP3s (the `sample`, with a distinct tail each) under artists whose
    names are prefixes of each other ("Artist 007", "Artist 007 Bar", "Artist 007 (Live)",
    ...), 2 albums of 10 tracks each. Returns how many files it made."""
    made = 0
    for group in range(-(-files // (len(SIBLING_SUFFIXES) * 20))):
        for suffix in SIBLING_SUFFIXES:
            for album in range(2):
                folder = root / f"Artist {group:03d}{suffix}" / f"Album {album}"
                folder.mkdir(parents=True)
                for track in range(10):
                    if made == files:
                        return made
                    (folder / f"{track + 1:02d} Song.mp3").write_bytes(
                        sample + f"{group}/{suffix}/{album}/{track}".encode())
                    made += 1
    return made
