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
