"""ignore.py, the one owner of "is this path ignored?": its decision as a pure function of
patterns, folders and names (property tests), and the walk, `explain` and the watcher's
reading of the same rules agreeing on real trees with the names real libraries have."""

from __future__ import annotations

import fnmatch
import os
import re
from pathlib import Path

import pathspec
import pytest
from hypothesis import assume, example, given, settings, strategies as st

from indexer import ignore
from indexer.config import DEFAULT_IGNORE, ConfigError, load
from indexer.ignore import KEPT, Rule, Rules, explain
from indexer.walk import Walk
from trees import PREFIX_SIBLINGS, TWINS, hard_tree, write

ROOT = "/music"

# pieces that make gitignore patterns, and names, with every special character in play
PIECES = ["a", "b", "ab", "Foo", "Foo Bar", "*", "**", "?", "/", ".", "!", "[ab]", "[!a]",
          "\\*", " ", "#", "é", os.fsdecode(b"\xff")]
patterns = st.lists(st.sampled_from(PIECES), min_size=1, max_size=5).map("".join).filter(
    lambda p: _compiles(p))
names = st.lists(st.sampled_from(["a", "b", "Foo", " ", "Bar", ".", "é", "*", "x.part", "ab",
                                  os.fsdecode(b"\xff")]), min_size=1, max_size=4).map(
    "".join).filter(lambda name: name not in (".", ".."))
folders = st.lists(names, max_size=3)


def _compiles(pattern: str) -> bool:
    try:
        ignore.compile_pattern(pattern)
        return True
    except ignore.IgnoreSyntaxError:
        return False


def rules_in(chain: list[str], setting: list[str], files: dict[int, list[str]]) -> Rules:
    """The rules of the folder ROOT/chain..., with `files[depth]` the lines of an
    .indexerignore at that depth (0: the root)."""
    rules = Rules.at_root(ROOT, setting, {".indexerignore": tuple(files[0])} if 0 in files else {})
    folder = ROOT
    for depth, name in enumerate(chain, 1):
        folder = f"{folder}/{name}"
        rules = rules.enter(folder, {".indexerignore": tuple(files[depth])} if depth in files
                            else {})
    return rules


# --- the decision, as a pure function


@settings(max_examples=300)
@given(st.lists(patterns, max_size=4), st.dictionaries(st.integers(0, 3),
                                                       st.lists(patterns, max_size=3)),
       folders, names, st.booleans())
@example(["a[!x]b"], {}, ["a"], "b", False)  # pathspec's [!x] matches "/": "a/b" from "a/"
@example(["x.part/"], {0: ["!x.part/"]}, ["x.part"], "b", False)  # a folder's name matches
def test_the_walks_quick_answer_is_always_the_full_decisions(setting, files, chain, name, is_dir):
    rules = rules_in(chain, setting, files)
    assert rules.ignored(name, is_dir) == rules.entry(name, is_dir).ignored


@settings(max_examples=500)
@given(st.lists(patterns, min_size=1, max_size=5), folders, names, st.booleans())
@example(["*/"], [], "a", True)  # a regex pathspec searches for, not anchored at the start
def test_library_ignore_alone_decides_as_pathspec_does_on_the_path_from_the_root(
        setting, chain, name, is_dir):
    path = "/".join(chain + [name]) + ("/" if is_dir else "")
    expected = pathspec.GitIgnoreSpec.from_lines(setting).check_file(path)

    verdict = rules_in(chain, setting, {}).entry(name, is_dir)

    assert verdict.ignored == bool(expected.include)
    if expected.include is not None:
        assert verdict.rule == Rule(setting[expected.index], ignore.SETTING, expected.index + 1)


@given(st.lists(patterns, max_size=3), st.dictionaries(st.integers(0, 3),
                                                       st.lists(patterns, max_size=3)),
       folders, names, st.booleans(), st.integers(0, 3), st.booleans())
def test_a_deeper_file_overrides_every_shallower_one_and_library_ignore(
        setting, files, chain, name, is_dir, depth, ignores):
    """Whatever library.ignore and the files above say, an ignore file at any depth down to
    the entry's folder that matches the entry decides: "*" ignores it, "!*" keeps it."""
    depth = min(depth, len(chain))
    files = {d: lines for d, lines in files.items() if d < depth}
    files[depth] = ["*" if ignores else "!*"]
    folder = "/".join([ROOT] + chain[:depth])

    verdict = rules_in(chain, setting, files).entry(name, is_dir)

    assert verdict == (ignores, Rule(files[depth][0], f"{folder}/.indexerignore", 1), None)


@given(st.text(st.characters(blacklist_characters="/\0"), min_size=1, max_size=12))
def test_the_default_patterns_keep_meaning_what_they_did_as_name_globs(name):
    # (pathspec's regexes end in "$", which also matches before a last newline: "x.part\n"
    # is ignored now, and was not. A name ending in a newline is left out.)
    assume(not name.endswith("\n"))
    old = re.compile("|".join(fnmatch.translate(p) for p in DEFAULT_IGNORE)).match
    rules = Rules.at_root(ROOT, DEFAULT_IGNORE, {})
    assert rules.ignored(name, False) == rules.ignored(name, True) == bool(old(name))
    deep = rules.enter(f"{ROOT}/Foo", {}).enter(f"{ROOT}/Foo/Foo Bar", {})
    assert deep.ignored(name, False) == bool(old(name))


@pytest.mark.parametrize("name, ignored", [
    ("@eaDir", True), (".DS_Store", True), ("Thumbs.db", True), ("._01 Song.flac", True),
    ("01 Song.flac.part", True), (".01 Song.flac.Ab3xZ9", True), (".Trash-1000", True),
    ("lost+found", True), ("x.!qB", True), ("01 Song.flac", False), (".hidden", False),
    ("Foo (Live)", False), ("Café", False)])
def test_the_default_patterns_on_names_real_libraries_hold(name, ignored):
    assert Rules.at_root(ROOT, DEFAULT_IGNORE, {}).ignored(name, False) is ignored
    assert ignore.check_patterns(DEFAULT_IGNORE) is None  # config.py relies on it


def test_the_default_patterns_known_regexes_are_pathspecs_own():
    assert set(ignore.KNOWN_REGEXES) == set(DEFAULT_IGNORE)
    for pattern in DEFAULT_IGNORE:
        [theirs] = pathspec.GitIgnoreSpec.from_lines([pattern]).patterns
        ours = ignore.compile_pattern(pattern)
        assert (ours.regex.pattern, ours.regex.flags, ours.include) == (
            theirs.regex.pattern, theirs.regex.flags, theirs.include), pattern


WALK_IN_A_FRESH_PROCESS = """
import sys
from indexer.config import DEFAULT_IGNORE
from indexer.walk import Walk
walk = Walk(sys.argv[1], (sys.argv[1],), ("audio",), DEFAULT_IGNORE)
print(sorted(f.path[len(sys.argv[1]) + 1:] for listing in walk for f in listing.files))
print("pathspec" in sys.modules)
"""


def test_a_walk_under_the_default_patterns_imports_pathspec_only_once_a_name_matches(tmp_path):
    import subprocess
    import sys
    for name in ("01 Song.flac", "Foo/02 Song.flac", "Foo Bar/03 Song.mp3"):
        write(tmp_path / name, name.encode())

    def walked() -> list[str]:
        return subprocess.run([sys.executable, "-c", WALK_IN_A_FRESH_PROCESS, str(tmp_path)],
                              capture_output=True, text=True, check=True).stdout.splitlines()

    assert walked() == [str(["01 Song.flac", "Foo Bar/03 Song.mp3", "Foo/02 Song.flac"]),
                        "False"]
    write(tmp_path / "Foo" / "._02 Song.flac", b"x")  # AppleDouble: ignored, by pathspec's word
    write(tmp_path / "@eaDir" / "04 Song.flac", b"y")
    assert walked() == [str(["01 Song.flac", "Foo Bar/03 Song.mp3", "Foo/02 Song.flac"]),
                        "True"]


def test_an_empty_ndignore_ignores_its_folder_and_an_empty_indexerignore_nothing():
    for name, ignored in ((".ndignore", True), (".indexerignore", False), (".plexignore", False)):
        rules = Rules.at_root(ROOT, (), {}).enter(f"{ROOT}/Foo", {name: ("", "# a comment")})
        assert rules.ignored("song.flac", False) is ignored, name
        assert rules.ignored("Album", True) is ignored, name
    verdict = Rules.at_root(ROOT, (), {".ndignore": ()}).entry("song.flac", False)
    assert str(verdict) == f"ignored by the empty file {ROOT}/.ndignore (an empty .ndignore " \
                           "ignores all of its folder)"


def test_in_one_folder_the_indexerignore_wins_over_ndignore_and_plexignore():
    rules = Rules.at_root(ROOT, (), {".plexignore": ("*.flac",), ".ndignore": ("!a.flac",),
                                     ".indexerignore": ("a.flac",)})
    assert rules.entry("a.flac", False).rule == Rule("a.flac", f"{ROOT}/.indexerignore", 1)
    assert not Rules.at_root(ROOT, (), {".plexignore": ("*.flac",), ".ndignore": ("!a.flac",)}
                             ).ignored("a.flac", False)


def test_a_folder_only_pattern_leaves_a_file_of_that_name():
    rules = Rules.at_root(ROOT, ("Live/",), {})
    assert rules.ignored("Live", True) and not rules.ignored("Live", False)


# --- patterns in the configuration


@pytest.mark.parametrize("pattern", ["[z-a]", "!", "foo\\"])
def test_a_pattern_pathspec_cannot_read_is_a_config_error_naming_the_key(pattern):
    with pytest.raises(ConfigError) as error:
        load(overrides={"library.ignore": [pattern]}, env={})
    assert str(error.value).startswith(f"library.ignore: {pattern!r} is not a gitignore pattern")
    assert "\n" not in str(error.value)


@pytest.mark.parametrize("pattern, said", [
    ("/srv/music/Incoming", "'/srv/music/Incoming' looks like an absolute path, but patterns are "
     "relative to each root: it would match /srv/music/srv/music/Incoming only; for "
     "/srv/music/Incoming, write '/Incoming'"),
    ("/srv/films/x", "'/srv/films/x' looks like an absolute path outside every root: patterns "
     "are relative to each root, so it never matches"),
    ("../Films", "'../Films' never matches: patterns are relative to each root, and no path "
     "below a root holds '.' or '..'"),
    ("#Live", "'#Live' matches nothing (a comment, or not a gitignore pattern); to match a "
     "name starting with #, write \\#"),
])
def test_a_pattern_that_can_never_match_is_one_warning_line(pattern, said, caplog):
    with caplog.at_level("WARNING", logger="indexer"):
        load(overrides={"library.ignore": [pattern, "*.part", "/Incoming", "Artist 001/*"],
                        "library.roots": ["/srv/music"]}, env={})
    assert [r.getMessage() for r in caplog.records] == [f"library.ignore: {said}"]


# --- the same rules, read from disk by the walk, `explain` and `inside`


def ignore_files(root: Path) -> None:
    """Ignore files of each kind at several depths, over prefix siblings and twins."""
    write(root / ".indexerignore", b"/Foo Bar/\n*.flac\n")
    write(root / "Foo" / ".ndignore", b"# Navidrome's\n!*.flac\nFoo 0/\n")
    write(root / "Foo (Live)" / ".plexignore", b"*1.mp3\n")
    write(root / "Foo (Live)" / "Foo (Live) 1" / ".ndignore", b"")
    write(root / TWINS[0] / ".indexerignore", TWINS[0].encode() + b" 0/\n")
    for folder in (root / "Foo", root / "Fo", root / "Foo (Live)"):
        write(folder / "song.flac", b"flac " + os.fsencode(folder.name))


def walked(root: Path, patterns: tuple[str, ...], tops: tuple[str, ...] | None = None) -> set[str]:
    return {seen.path for listing in Walk(str(root), tops or (str(root),), ("audio",), patterns)
            for seen in listing.files}


def test_explain_and_the_walk_agree_on_every_path_of_a_hard_tree(tmp_path):
    root = tmp_path / "music"
    hard_tree(root)
    ignore_files(root)
    patterns = (*DEFAULT_IGNORE, "Foo./", "**/Foo-Bar 1/")
    media = [p for p in root.rglob("*") if p.is_file() and p.suffix in (".mp3", ".flac")]

    listed = walked(root, patterns)
    known: dict = {}
    kept = {str(p) for p in media if not explain(str(root), patterns, str(p), False, known).ignored}

    assert listed == kept
    assert len(kept) < len(media)  # something is ignored, by each kind of rule:
    assert str(root / "Foo" / "song.flac") in kept  # re-included below
    assert str(root / "Fo" / "song.flac") not in kept  # prefix sibling: *.flac from the root
    assert not any(p.startswith(str(root / "Foo Bar") + "/") for p in kept)
    assert any(p.startswith(str(root / "Foo Bar (Live)") + "/") for p in kept)
    assert not any(p.startswith(str(root / "Foo (Live)" / "Foo (Live) 1") + "/") for p in kept)


def test_a_walk_from_a_top_below_the_root_reads_the_rules_above_it(tmp_path):
    root = tmp_path / "music"
    hard_tree(root)
    ignore_files(root)
    every = walked(root, DEFAULT_IGNORE)
    for top in [root / name for name in PREFIX_SIBLINGS] + [root / "Foo" / "Foo 1",
                                                            root / "Foo" / "Foo 0"]:
        if top.is_dir():
            assert walked(root, DEFAULT_IGNORE, (str(top),)) == {
                p for p in every if p.startswith(str(top) + "/")}, top


def test_explain_names_the_rule_the_file_and_the_ignored_folder_above(tmp_path):
    root = tmp_path / "music"
    hard_tree(root)
    ignore_files(root)
    said = {path: str(explain(str(root), DEFAULT_IGNORE, str(root / path), False)) for path in
            ("Fo/song.flac", "Foo/song.flac", "Foo/Foo 0/01 Foo.mp3", "Foo Bar/Foo Bar 0.mp3",
             "x.part", "Foo (Live)/Foo (Live) 1/01 Foo (Live).mp3")}
    assert said == {
        "Fo/song.flac": f"ignored by '*.flac' in {root}/.indexerignore (line 2)",
        "Foo/song.flac": "not ignored",
        "Foo/Foo 0/01 Foo.mp3": f"it is inside {root}/Foo/Foo 0, which is ignored by 'Foo 0/' "
                                f"in {root}/Foo/.ndignore (line 3)",
        "Foo Bar/Foo Bar 0.mp3": f"it is inside {root}/Foo Bar, which is ignored by '/Foo Bar/' "
                                 f"in {root}/.indexerignore (line 1)",
        "x.part": "ignored by '*.part' in library.ignore",
        "Foo (Live)/Foo (Live) 1/01 Foo (Live).mp3":
            f"ignored by the empty file {root}/Foo (Live)/Foo (Live) 1/.ndignore (an empty "
            ".ndignore ignores all of its folder)"}


def test_a_pattern_in_a_file_matches_a_name_that_is_not_utf8_and_not_its_nfd_twin(tmp_path):
    root = tmp_path / "music"
    odd = os.fsdecode(b"caf\xe9.mp3")
    nfc, nfd = TWINS[0], TWINS[1]
    for name in (odd, "other.mp3", f"{nfc}.mp3", f"{nfd}.mp3"):
        write(root / name, name.encode("utf-8", "surrogateescape"))
    write(root / ".indexerignore", b"caf\xe9.mp3\n" + f"{nfc}.mp3\n".encode())
    assert walked(root, ()) == {str(root / "other.mp3"), str(root / f"{nfd}.mp3")}
    assert explain(str(root), (), str(root / odd), False).ignored


def test_the_root_is_never_ignored_and_a_path_outside_it_is_refused():
    assert explain(ROOT, ("*",), ROOT, True) == KEPT
    with pytest.raises(ValueError):
        explain(ROOT, (), "/elsewhere/x.flac", False)
