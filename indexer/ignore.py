"""Ignore rules: the one owner of "does a scan skip this path?" (pathspec lives only here).

The model is git's. The rules in effect in a folder are levels, shallowest
first: `library.ignore` (relative to each root), then the ignore files of the
root and of every folder down to this one (`.plexignore`, `.ndignore`,
`.indexerignore`, in that order within one folder), each relative to the
folder that holds it. An entry of a folder (a file; a folder, written with a
trailing "/") is decided by the deepest level with a pattern that matches it,
and within a level by its last matching pattern, so a `!pattern` re-includes
and a deeper file overrides a shallower one. A folder ignored is never
entered, so nothing below it comes back (git: "it is not possible to
re-include a file if a parent directory of that file is excluded").

An empty `.ndignore` ignores all of its folder, as Navidrome does; empty
`.indexerignore` and `.plexignore` files ignore nothing, as an empty
.gitignore. Ignore files are read, never indexed, whatever the patterns say.

The walk asks `Rules.ignored` for each entry of each folder it lists; a walk
that starts below a root (a part of a parallel scan, a folder the service
rescans), the watcher and `indexer verify` ask `inside` and `explain`, which go
down from the root the way the walk does. Every answer is `Rules.entry`'s: the
walk's `Rules.ignored` only skips pathspec for a name no pattern can match, and
is property-tested equal to it (tests/test_ignore.py).
"""

from __future__ import annotations

import functools
import logging
import os
import re
import sys
from collections.abc import Callable, Iterable, Sequence
from typing import NamedTuple

from .order import within
from .paths import printable

log = logging.getLogger(__name__)

IGNORE_FILES = (".plexignore", ".ndignore", ".indexerignore")  # in one folder, the last wins
IGNORE_NAMES = frozenset(IGNORE_FILES)
SETTING = "library.ignore"


class Rule(NamedTuple):
    """One pattern and where it was written."""

    pattern: str
    source: str  # SETTING, or the path of the ignore file
    line: int  # in the file (1-based); in library.ignore, the position; 0: the empty .ndignore

    def __str__(self) -> str:
        if self.source == SETTING:
            return f"{self.pattern!r} in {SETTING}"
        if self.line == 0:
            return f"the empty file {printable(self.source)} (an empty .ndignore ignores all " \
                   "of its folder)"
        return f"{self.pattern!r} in {printable(self.source)} (line {self.line})"


class Verdict(NamedTuple):
    """The decision for one path, and the rule that made it (None: no rule matched)."""

    ignored: bool
    rule: Rule | None = None
    folder: str | None = None  # set when it is a folder above the path that is ignored

    def __str__(self) -> str:
        if not self.ignored:
            return "not ignored"
        where = f"it is inside {printable(self.folder)}, which is " if self.folder else ""
        return f"{where}ignored by {self.rule}"


KEPT = Verdict(False)


class _Compiled(NamedTuple):
    spec: "Callable[[], object]"  # pathspec.GitIgnoreSpec of `rules`, made on first use
    # every pattern's regex in one: the cheap first test, found (re.search) in a path or not
    any_match: "Callable[[str], re.Match | None] | None"
    rules: tuple[tuple[str, int], ...]  # (text, line) of each of spec's patterns
    # every pattern matches a name at any depth (no "/" but a last one, or "**/" first):
    # then a match of `any_match` on a path is one on a name in it (see Rules.ignored)
    names_only: bool


class IgnoreSyntaxError(ValueError):
    """A pattern that pathspec cannot read; the message names it."""


def _pathspec():
    import pathspec  # (here only; imported once a pattern is compiled, or a name decided)
    return pathspec


class _Known(NamedTuple):
    """A default pattern as pathspec compiles it (`regex`, `include`), without pathspec."""

    regex: re.Pattern
    include: bool


# pathspec's regexes of config.DEFAULT_IGNORE, so that a walk under the default patterns
# imports pathspec only once a name matches one of them: its import is 10 to 30 ms of the
# start of every process that walks (the main one, each survey worker). pathspec itself
# still decides every name these regexes match (`Level.decide`), and
# tests/test_ignore.py checks them against pathspec's own, pattern by pattern.
_DIR = r"(?:(?P<ps_d>/)|$)"
KNOWN_REGEXES = {
    "@eaDir": r"^(?:.+/)?@eaDir" + _DIR,
    ".stversions": r"^(?:.+/)?\.stversions" + _DIR,
    ".Trash-*": r"^(?:.+/)?\.Trash\-[^/]*" + _DIR,
    "lost+found": r"^(?:.+/)?lost\+found" + _DIR,
    ".DS_Store": r"^(?:.+/)?\.DS_Store" + _DIR,
    "Thumbs.db": r"^(?:.+/)?Thumbs\.db" + _DIR,
    "._*": r"^(?:.+/)?\._[^/]*" + _DIR,
    "*.part": r"^(?:.+/)?[^/]*\.part" + _DIR,
    "*.tmp": r"^(?:.+/)?[^/]*\.tmp" + _DIR,
    "*.crdownload": r"^(?:.+/)?[^/]*\.crdownload" + _DIR,
    "*.!qB": r"^(?:.+/)?[^/]*\.!qB" + _DIR,
    ".*.??????": r"^(?:.+/)?\.[^/]*\.[^/][^/][^/][^/][^/][^/]" + _DIR,
}


def compile_pattern(text: str):
    """One gitignore pattern, compiled by pathspec (None for an empty line, whose
    `include` pathspec leaves None like a comment's); IgnoreSyntaxError if it cannot be.
    A default pattern is compiled from its known regex, pathspec left unimported."""
    if text in KNOWN_REGEXES:
        return _Known(re.compile(KNOWN_REGEXES[text]), True)
    return _by_pathspec(text)


def _by_pathspec(text: str):
    pathspec = _pathspec()
    try:
        compiled = pathspec.GitIgnoreSpec.from_lines([text]).patterns
        return compiled[0] if compiled else None
    except (ValueError, re.error) as error:  # pathspec's own errors are ValueErrors
        reason = getattr(error, "msg", None) or str(error)  # (a regex's, without its position)
        raise IgnoreSyntaxError(f"{text!r} is not a gitignore pattern ({reason})") from None


@functools.lru_cache(maxsize=512)
def _compile(lines: tuple[str, ...], source: str) -> _Compiled:
    """The patterns of one source; a line pathspec cannot read is skipped, with a warning
    (in library.ignore, config.py has refused it already)."""
    patterns, rules = [], []
    for number, text in enumerate(lines, 1):
        try:
            pattern = compile_pattern(text)
        except IgnoreSyntaxError as error:
            log.warning("%s line %d skipped: %s", printable(source), number, error)
            continue
        if pattern is not None and pattern.include is not None:  # (blank lines, comments)
            patterns.append(pattern)
            rules.append((text, number))
    if not rules and os.path.basename(source) == ".ndignore" and not _says_anything(lines):
        patterns, rules = [compile_pattern("*")], [("*", 0)]  # see Rule: line 0
    names_only = all(_names_only(text, pattern) for (text, _), pattern in zip(rules, patterns))
    return _Compiled(_spec_of(tuple(text for text, _ in rules)), _any_match(patterns),
                     tuple(rules), names_only)


def _spec_of(texts: tuple[str, ...]) -> "Callable[[], object]":
    """pathspec's spec of the patterns `texts` (each compiles to one pattern), made on first
    use, by pathspec alone: its verdicts never rest on KNOWN_REGEXES."""
    return functools.cache(lambda: _pathspec().GitIgnoreSpec([_by_pathspec(t) for t in texts]))


def _names_only(text: str, pattern) -> bool:
    body = text.removeprefix("!").rstrip("/")
    while body.startswith("**/"):
        body = body[3:]
    # (a bracket is left out: pathspec's [!x] matches "/", so it could match across names)
    return not any(c in body for c in "/\\[") and pattern.regex.pattern.startswith(_ANY_FOLDERS)


def _says_anything(lines: tuple[str, ...]) -> bool:
    """Navidrome's test of an empty .ndignore: no line but blanks and # comments."""
    return any(line.strip() and not line.strip().startswith("#") for line in lines)


def _any_match(patterns: list) -> "Callable[[str], re.Match | None] | None":
    """One regex found where any of the patterns' regexes is (pathspec uses `re.search`;
    most of its regexes start with "^", not all): a path no pattern matches, nearly every path,
    costs one regex call instead of pathspec's loop over its patterns (5 µs a path with
    the default patterns, measured). Named groups are made plain, so that several can
    sit side by side, and the start that patterns without a "/" share, "any folders
    first", is tried once for all of them: tried for each, it cost 1.6 µs a name."""
    if not patterns:
        return None
    anywhere, others = [], []
    for pattern in patterns:
        body = re.sub(r"\(\?P<\w+>", "(?:", pattern.regex.pattern)
        if body.startswith(_ANY_FOLDERS):
            anywhere.append(body[len(_ANY_FOLDERS):])
        else:
            others.append(body)
    if anywhere:
        others.append(_ANY_FOLDERS + "(?:" + "|".join(f"(?:{b})" for b in anywhere) + ")")
    regex = re.compile("|".join(f"(?:{body})" for body in others))
    # all anchored: where `match` finds nothing, `search` would not either (and it tries
    # each position in turn: 0.6 µs more a name, measured)
    return regex.match if all(body.startswith("^") for body in others) else regex.search


_ANY_FOLDERS = "^(?:.+/)?"  # how pathspec's regex of a pattern without "/" starts


class Level(NamedTuple):
    """The patterns of one source, relative to `base` (a folder, as a path)."""

    base: str
    source: str
    compiled: _Compiled

    def decide(self, path: str) -> Verdict | None:
        """`path`: relative to `base`, with a trailing "/" for a folder. None: no opinion."""
        compiled = self.compiled
        if compiled.any_match is None or compiled.any_match(path) is None:
            return None
        result = compiled.spec().check_file(path)
        if result.include is None:
            return None
        text, line = compiled.rules[result.index]
        return Verdict(bool(result.include), Rule(text, self.source, line))


def setting_level(root: str, patterns: Sequence[str]) -> Level:
    return Level(root, SETTING, _compile(tuple(patterns), SETTING))


def file_levels(folder: str, files: dict[str, tuple[str, ...]]) -> tuple[tuple[Level, str], ...]:
    """The levels of a folder's own ignore files, deepest (the one that wins) first."""
    levels = []
    for name, lines in files.items():
        source = os.path.join(folder, name)
        levels.append((Level(folder, source, _compile(lines, source)), ""))
    return tuple(levels[::-1])


class Rules:
    """The levels in effect in one folder: the decision for each of its entries.

    Each level is kept as (its cheap test, `needed`, `prefix`, the level), deepest first;
    a level without patterns never decides, so it is not kept. `prefix` is this folder
    relative to the level's base ("" or ending in "/"): pathspec is asked about
    prefix + name. `needed` is what of `prefix` the cheap test must see: patterns that
    match a name at any depth match a path where they match one of its names, the
    entry's or a folder's in `prefix`, and the prefix alone tells which, once per folder:
    when no name in it matches, the entry's name is enough ("" here; a long prefix costs
    the regex more than the rest of the walk's loop)."""

    __slots__ = ("folder", "_tests")

    def __init__(self, folder: str, tests: tuple[tuple, ...]):
        self.folder, self._tests = folder, tests

    @classmethod
    def at_root(cls, root: str, patterns: Sequence[str],
                files: dict[str, tuple[str, ...]]) -> "Rules":
        """The rules of the root's entries: library.ignore, then its own ignore files."""
        return cls(root, _tests(file_levels(root, files) + ((setting_level(root, patterns), ""),)))

    def entry(self, name: str, is_dir: bool) -> Verdict:
        """Whether an entry of this folder is ignored, and by which rule."""
        tail = name + "/" if is_dir else name
        for _, _, prefix, level in self._tests:
            verdict = level.decide(prefix + tail)
            if verdict is not None:
                return verdict
        return KEPT

    def ignored(self, name: str, is_dir: bool) -> bool:
        """`entry(name, is_dir).ignored`, at the cost of one regex call per level for a
        name no pattern matches: the walk's hot loop (property-tested against `entry`)."""
        tail = name + "/" if is_dir else name
        for match, needed, prefix, level in self._tests:
            if match(needed + tail) is not None:
                verdict = level.decide(prefix + tail)
                if verdict is not None:
                    return verdict.ignored
        return False

    def enter(self, folder: str, files: dict[str, tuple[str, ...]]) -> "Rules":
        """The rules of `folder`'s entries (a folder of this one, not ignored), given the
        ignore files it holds: name -> lines (see `read_ignore_files`)."""
        name = os.path.basename(folder) + "/"
        inherited = tuple(
            (match, prefix + name if needed or not level.compiled.names_only or match(name)
             else "", prefix + name, level)
            for match, needed, prefix, level in self._tests)
        return Rules(folder, _tests(file_levels(folder, files)) + inherited if files else inherited)


def _tests(levels: tuple[tuple[Level, str], ...]) -> tuple[tuple, ...]:
    """Levels at a folder's own files (prefix ""), as Rules keeps them."""
    return tuple((level.compiled.any_match, prefix, prefix, level) for level, prefix in levels
                 if level.compiled.any_match is not None)


def read_ignore_file(path: str) -> tuple[str, ...] | None:
    """The lines of an ignore file, None if there is none (or it is not a file). Raises
    OSError when it is there but cannot be read: then what is ignored is unknown."""
    try:
        with open(path, "rb") as handle:
            data = handle.read()
    except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
        return None
    except OSError as error:  # (OSError(errno, ...) is PermissionError for EACCES, ...)
        raise OSError(error.errno, f"its ignore file {os.path.basename(path)} cannot be read "
                      f"({error.strerror or error})") from None
    # Names are str with surrogate escapes (os.fsdecode): a pattern holding a byte that
    # is not UTF-8 matches the name holding it. A BOM (Windows editors) is not a pattern.
    text = data.decode(sys.getfilesystemencoding(), "surrogateescape").removeprefix("\ufeff")
    return tuple(text.splitlines())


def read_ignore_files(folder: str, names: Iterable[str] = IGNORE_FILES) -> dict[str, tuple[str, ...]]:
    """The ignore files among `names` in `folder`, in precedence order (the last wins)."""
    present = set(names)
    found = {}
    for name in IGNORE_FILES:
        if name in present:
            lines = read_ignore_file(os.path.join(folder, name))
            if lines is not None:
                found[name] = lines
    return found


def inside(root: str, patterns: Sequence[str], folder: str,
           known: dict[str, "Rules | Verdict"] | None = None) -> "Rules | Verdict":
    """The rules of `folder`'s entries, read from the root down as a walk would; or the
    verdict that ignores `folder` or a folder above it (then a walk never gets there).
    `known`: rules already found, by folder (read and filled in). Raises OSError when an
    ignore file on the way cannot be read."""
    if known is not None and folder in known:
        return known[folder]
    if not within(folder, root):
        raise ValueError(f"{printable(folder)} is not inside the root {printable(root)}")
    if folder == root:
        found: Rules | Verdict = Rules.at_root(root, patterns, read_ignore_files(root))
    else:
        parent = inside(root, patterns, os.path.dirname(folder), known)
        if isinstance(parent, Rules):
            verdict = parent.entry(os.path.basename(folder), True)
            found = parent.enter(folder, read_ignore_files(folder)) if not verdict.ignored \
                else verdict._replace(folder=folder)
        else:
            found = parent
    if known is not None:
        known[folder] = found
    return found


def explain(root: str, patterns: Sequence[str], path: str, is_dir: bool,
            known: dict[str, "Rules | Verdict"] | None = None) -> Verdict:
    """Whether a scan of `root` skips `path` (inside it), and why: the rule and the file
    that holds it, and the folder above it that is ignored, if that is why."""
    if path == root:
        return KEPT
    rules = inside(root, patterns, os.path.dirname(path), known)
    if isinstance(rules, Verdict):
        return rules
    return rules.entry(os.path.basename(path), is_dir)


def check_patterns(patterns: Iterable[str]) -> None:
    """Raise IgnoreSyntaxError for the first pattern pathspec cannot read."""
    for pattern in patterns:
        compile_pattern(pattern)


def never_matching(patterns: Iterable[str], roots: Iterable[str]) -> list[str]:
    """Why each pattern of library.ignore that can never match a path below a root is
    so (one line each). Patterns are relative to each root, and paths below a root
    never hold "." or ".." as a name: an absolute path, or one that climbs out, names
    nothing a scan sees."""
    roots = list(roots)
    tops = {root.strip("/").split("/")[0] for root in roots if root.strip("/")}
    said = []
    for pattern in patterns:
        body = pattern.rstrip("/").lstrip("!")
        parts = body.split("/")
        if getattr(compile_pattern(pattern), "include", None) is None:
            said.append(f"{pattern!r} matches nothing (a comment, or not a gitignore "
                        "pattern); to match a name starting with #, write \\#")
        elif any(part in (".", "..") for part in parts):
            said.append(f"{pattern!r} never matches: patterns are relative to each root, and "
                        "no path below a root holds '.' or '..'")
        elif body.startswith("/") and len(parts) > 2 and parts[1] in tops:
            said.append(_absolute(pattern, body, roots))
    return said


def _absolute(pattern: str, body: str, roots: list[str]) -> str:
    home = next((root for root in roots if body == root or body.startswith(root.rstrip("/") + "/")),
                None)
    if home is not None:
        relative = "/" + body[len(home.rstrip("/")) + 1:] if body != home else "/"
        return (f"{pattern!r} looks like an absolute path, but patterns are relative to each "
                f"root: it would match {printable(home)}{body} only; for {printable(body)}, "
                f"write {relative!r}")
    return (f"{pattern!r} looks like an absolute path outside every root: patterns are "
            "relative to each root, so it never matches")
