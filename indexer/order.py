"""Path order: the one definition shared by the walk, the parts of a survey and SQL ranges.

Folders are ordered by their catalogue text (`paths.db_text`), compared as
Python strings: code point by code point, which is also SQLite's BINARY order
of the same text in UTF-8, so the `files_dir` index, `ORDER BY dir` and the
walk's heap agree without a custom collation a media server would lack.

In that order a folder's tree is NOT one contiguous run: "/" (0x2F) sorts
after " ", "!", "(", "+", ",", "-" and ".", so "Foo Bar" and "Foo (Live)"
fall between "Foo" and "Foo/x". A tree is therefore always named by two
ranges (`subtree`), and a root is cut into parts only where no tree
straddles the cut (`cuts`). Every module that turns folders into ranges of
rows, or asks whether a path is inside a folder, does it here.
"""

from __future__ import annotations

from collections.abc import Iterable

Range = tuple[str, str]  # [low, high) of `dir` text


def only(text: str) -> Range:
    """The range of one folder alone: nothing sorts between s and s + NUL."""
    return text, text + "\0"


def below(text: str) -> Range:
    """The range of every folder below `text`, not `text` itself: all start with "text/",
    and "0" is the character after "/"."""
    prefix = text.rstrip("/") + "/"
    return prefix, prefix[:-1] + "0"


def subtree(text: str) -> tuple[Range, Range]:
    """A folder and every folder below it: two ranges, never one (see the module doc)."""
    return only(text), below(text)


def within(path: str, top: str) -> bool:
    """Whether `path` is `top` or inside it (by name: no file system call)."""
    return path == top or path.startswith(top.rstrip("/") + "/")


def in_range(text: str, bounds: Range) -> bool:
    return bounds[0] <= text < bounds[1]


def reach(text: str) -> str:
    """The end of the span that `text`'s tree and its prefix siblings share: every
    folder below `text` sorts before it, and so does "text (Live)", which may sort
    between "text" and "text/a"."""
    return text.rstrip("/") + "0"


def cuts(tops: Iterable[str], outer: Range, parts: int) -> list[tuple[list[str], Range]]:
    """Cut `outer` (the range below a root) into about `parts` contiguous ranges, each
    with the top folders (texts, each directly below the root) whose trees lie wholly
    inside it.

    The ranges cover `outer` without gaps or overlaps, so every row below the root
    is answered for by exactly one part, including rows of folders that are gone from
    disk (no top) and everything when there are no tops at all. A cut falls only
    before a top that no earlier top's tree reaches past (`reach`): "Foo", "Foo Bar"
    and "Foo/x" always end up in the same part.
    """
    ordered = sorted(set(tops))
    size = max(1, -(-len(ordered) // max(parts, 1)))
    groups: list[list[str]] = [[]]
    furthest = outer[0]
    for top in ordered:
        if len(groups[-1]) >= size and top >= furthest:
            groups.append([])
        groups[-1].append(top)
        furthest = max(furthest, reach(top))
    lows = [outer[0]] + [group[0] for group in groups[1:]]
    highs = lows[1:] + [outer[1]]
    return [(group, (low, high)) for group, low, high in zip(groups, lows, highs)]
