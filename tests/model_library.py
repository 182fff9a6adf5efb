"""The model of a library on disk, for tests/test_model.py: which file is where, who it is,
and the real filesystem operations that change it.

Two roots, `A` and `B`, folders side by side in one folder (one filesystem, so a
move across roots keeps its inode). Paths are bytes relative to that folder
(`b"A/Foo/x.mp3"`): Linux names are bytes, and some of ours are not UTF-8.

Every file has an identity, an integer given when it is created or copied, and
its content. A rename, a move (of the file or of its folder), an edit, a touch
or an atomic replace keeps the identity; a rename over an existing file ends the
identity of the file it replaces; a delete ends it.

A root taken offline is renamed away (`A` -> `A.away`). For the catalogue its
files stay as they were when it left (`away` keeps that picture), while changes
made to it meanwhile go to the live model, to be seen when it comes back.

Each root holds an anchor file the rules never touch, so that no online root is
ever without media files: a root with none is the "disk not mounted" guard,
which marks nothing missing by design (README, "Root guard").
"""

from __future__ import annotations

import itertools
import os
import shutil
import unicodedata
from dataclasses import dataclass

import xxhash

from indexer.paths import db_text

ROOTS = (b"A", b"B")
ANCHOR = b"anchor.mp3"
MAX_FOLDER_DEPTH = 3  # A/Foo/Bar: the rules make no deeper folder (a folder moved may go deeper)


def _nfc(text: str) -> bytes:
    return unicodedata.normalize("NFC", text).encode()


def _nfd(text: str) -> bytes:
    return unicodedata.normalize("NFD", text).encode()


# The names real libraries have. Prefix siblings with every character that sorts
# below "/" (so "Foo Bar" sorts between "Foo" and "Foo/x"), NFC and NFD twins, case
# twins, spaces and dots, a byte that is not UTF-8, 255-byte names. No name here is
# shown as the text of another (a literal "\xe9" beside the byte): see test_model.py.
FOLDER_NAMES = (
    b"Foo", b"Foo Bar", b"Foo (Live)", b"Foo.", b"Foo-Bar", b"Foo+Bar", b"Foo,Bar", b"Foo!",
    _nfc("Café"), _nfd("Café"), b"abc", b"ABC", b"caf\xe9", b"d" * 255,
)
FILE_NAMES = (
    b"Foo.mp3", b"Foo Bar.mp3", b"Foo (Live).flac", b"Foo..mp3", b"Foo-Bar.jpg", b"Foo+Bar.mp3",
    b"Foo,Bar.flac", b"Foo!.mp3", _nfc("Café.mp3"), _nfd("Café.mp3"), b"abc.flac", b"ABC.flac",
    b" a  b .mp3", b"x.y.z.jpg", b"caf\xe9.mp3", b"\xff\xfe.flac",
    b"L" * 251 + b".mp3", _nfc("é" * 125 + "x.mp3"),  # 255 bytes each
)
# Small, so that copies and files with the same content are common; one empty.
CONTENTS = (b"", b"one", b"two two two", b"\xff\xd8\xff\xe0 three " * 20)


@dataclass(frozen=True)
class Entry:
    ident: int
    content: bytes


def digest(content: bytes) -> str:
    return xxhash.xxh3_128(content).hexdigest()


def root_of(rel: bytes) -> bytes:
    return rel.split(b"/", 1)[0]


def parent_of(rel: bytes) -> bytes:
    return rel.rsplit(b"/", 1)[0]


def depth(rel: bytes) -> int:
    return rel.count(b"/") + 1


def is_under(rel: bytes, folder: bytes) -> bool:
    return rel.startswith(folder + b"/")


class Library:
    """The disk as the model sees it; every method changes the real tree and the model."""

    def __init__(self, base: bytes):
        self.base = base
        self.files: dict[bytes, Entry] = {}
        self.folders: set[bytes] = set()  # below the roots; the roots always exist
        self.away: dict[bytes, dict[bytes, Entry]] = {}  # offline root -> its files as it left
        self.ended: set[int] = set()
        self.deleted: set[bytes] = set()  # paths whose file was deleted and that are still free
        self._idents = itertools.count(1)
        self._stamps = itertools.count(1)
        for root in ROOTS:
            os.mkdir(self.disk(root))
            self.create(root + b"/" + ANCHOR, b"anchor " + root)

    # --- where things are

    def disk(self, rel: bytes) -> bytes:
        """The real path of `rel`, wherever its root is now."""
        root = root_of(rel)
        if root in self.away:
            rel = root + b".away" + rel[len(root):]
        return self.base + b"/" + rel

    def text(self, rel: bytes) -> str:
        """The catalogue's `path` for `rel` (where its root is configured)."""
        return db_text(os.fsdecode(self.base + b"/" + rel))[0]

    @property
    def online(self) -> list[bytes]:
        return [root for root in ROOTS if root not in self.away]

    def shown(self) -> dict[bytes, Entry]:
        """What the catalogue must show as present: the online roots' files as they are,
        the offline roots' as they were when they left."""
        found = {rel: e for rel, e in self.files.items() if root_of(rel) not in self.away}
        for snapshot in self.away.values():
            found.update(snapshot)
        return found

    def expected(self) -> dict[str, tuple[int, str]]:
        """Present rows by path text: (size, xxh3-128 of the content)."""
        return {self.text(rel): (len(e.content), digest(e.content))
                for rel, e in self.shown().items()}

    def movable(self, roots: list[bytes]) -> list[bytes]:
        """Files of these roots the rules may act on: all but the anchors."""
        return sorted(rel for rel in self.files
                      if root_of(rel) in roots and rel != root_of(rel) + b"/" + ANCHOR)

    def folders_in(self, roots: list[bytes], max_depth: int = 99) -> list[bytes]:
        return sorted([*roots, *(f for f in self.folders
                                 if root_of(f) in roots and depth(f) <= max_depth)])

    def free(self, rel: bytes) -> bool:
        return rel not in self.files and rel not in self.folders

    # --- operations: each one real filesystem call (and the folders it needs)

    def create(self, rel: bytes, content: bytes) -> None:
        self._write(rel, content)
        self.files[rel] = Entry(next(self._idents), content)

    def copy(self, src: bytes, dst: bytes, keep_times: bool) -> None:
        """`cp` (a new inode, a new mtime), or `cp -p` (the source's times)."""
        content = self.files[src].content
        self._write(dst, content)
        if keep_times:
            info = os.stat(self.disk(src))
            os.utime(self.disk(dst), ns=(info.st_atime_ns, info.st_mtime_ns))
        self.files[dst] = Entry(next(self._idents), content)

    def move(self, src: bytes, dst: bytes) -> None:
        """`mv`: to a free path, or over a file (which it replaces: that identity ends)."""
        self._make_parents(dst)
        os.rename(self.disk(src), self.disk(dst))
        replaced = self.files.get(dst)
        if replaced is not None:
            self.ended.add(replaced.ident)
        self.files[dst] = self.files.pop(src)
        self.deleted.discard(dst)

    def move_folder(self, src: bytes, dst: bytes) -> None:
        self._make_parents(dst)
        os.rename(self.disk(src), self.disk(dst))
        self.files = {_rebase(rel, src, dst): e for rel, e in self.files.items()}
        self.folders = {_rebase(f, src, dst) for f in self.folders}

    def delete(self, rel: bytes) -> None:
        os.unlink(self.disk(rel))
        self._forget(rel)

    def delete_folder(self, folder: bytes) -> None:
        shutil.rmtree(self.disk(folder))
        for rel in [rel for rel in self.files if is_under(rel, folder)]:
            self._forget(rel)
        self.folders = {f for f in self.folders if f != folder and not is_under(f, folder)}

    def edit_keeping_mtime(self, rel: bytes, offset: int) -> None:
        """What a tagger that "preserves timestamps" does: same size, same mtime, new ctime."""
        path, old = self.disk(rel), self.files[rel]
        info = os.stat(path)
        flipped = bytes([old.content[offset] ^ 0xFF])
        with open(path, "r+b") as handle:
            handle.seek(offset)
            handle.write(flipped)
        os.utime(path, ns=(info.st_atime_ns, info.st_mtime_ns))
        content = old.content[:offset] + flipped + old.content[offset + 1:]
        self.files[rel] = Entry(old.ident, content)

    def edit_resizing(self, rel: bytes, size: int) -> None:
        """Write in place to a new size: grown with new bytes, or cut short."""
        old = self.files[rel]
        content = (old.content + b"+" * size)[:size]
        with open(self.disk(rel), "r+b") as handle:
            handle.seek(min(size, len(old.content)))
            handle.write(content[len(old.content):])
            handle.truncate(size)
        self.files[rel] = Entry(old.ident, content)

    def replace_atomically(self, rel: bytes, content: bytes) -> None:
        """Write a temporary file beside it (an ignored name) and rename it over the file."""
        temp = parent_of(rel) + b"/~replace.tmp"
        with open(self.disk(temp), "wb") as handle:
            handle.write(content)
        os.replace(self.disk(temp), self.disk(rel))
        self.files[rel] = Entry(self.files[rel].ident, content)

    def touch(self, rel: bytes) -> None:
        """A new mtime, one second on; the content as it was."""
        info = os.stat(self.disk(rel))
        os.utime(self.disk(rel), ns=(info.st_atime_ns, info.st_mtime_ns + 1_000_000_000))

    def go_offline(self, root: bytes) -> None:
        self.away[root] = {rel: e for rel, e in self.files.items() if root_of(rel) == root}
        os.rename(self.base + b"/" + root, self.disk(root))

    def come_back(self, root: bytes) -> None:
        os.rename(self.disk(root), self.base + b"/" + root)
        del self.away[root]

    def stamp(self, root: bytes) -> None:
        """New content for a root's anchor: the service's "everything before this is seen"."""
        rel = root + b"/" + ANCHOR
        content = b"anchor %s %06d" % (root, next(self._stamps))
        self._write(rel, content)
        self.files[rel] = Entry(self.files[rel].ident, content)

    # --- the model against the real tree (a failure here is a bug in the test)

    def on_disk(self) -> tuple[dict[bytes, bytes], set[bytes]]:
        """Every file (by logical path) with its content, and every folder below the roots."""
        files, folders = {}, set()
        for root in ROOTS:
            top = self.disk(root)
            for folder, subfolders, names in os.walk(top):
                rel_folder = root + folder[len(top):]
                if folder != top:
                    folders.add(rel_folder)
                for name in names:
                    with open(os.path.join(folder, name), "rb") as handle:
                        files[rel_folder + b"/" + name] = handle.read()
        return files, folders

    def contents(self) -> dict[bytes, bytes]:
        return {rel: e.content for rel, e in self.files.items()}

    # --- helpers

    def _write(self, rel: bytes, content: bytes) -> None:
        self._make_parents(rel)
        with open(self.disk(rel), "wb") as handle:
            handle.write(content)
        self.deleted.discard(rel)

    def _make_parents(self, rel: bytes) -> None:
        folder = parent_of(rel)
        os.makedirs(self.disk(folder), exist_ok=True)
        while depth(folder) > 1:
            self.folders.add(folder)
            folder = parent_of(folder)

    def _forget(self, rel: bytes) -> None:
        self.ended.add(self.files.pop(rel).ident)
        self.deleted.add(rel)


def _rebase(rel: bytes, src: bytes, dst: bytes) -> bytes:
    if rel == src:
        return dst
    return dst + rel[len(src):] if is_under(rel, src) else rel
