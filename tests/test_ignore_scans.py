"""Ignore rules through real scans: each pattern form of library.ignore, each ignore file
(.indexerignore, .ndignore, .plexignore), a deeper file overriding a shallower one, on
prefix siblings, NFC/NFD twins and a name that is not UTF-8; sequential and parallel
scans giving the same catalogue; the running service following an ignore file written
and deleted; verify naming the rule; a pattern that can never match warned about."""

from __future__ import annotations

import json
import os
import shutil
import threading
from pathlib import Path

import pytest

from conftest import cli_env, connect, files, indexer, wait_for
from indexer import Manager, ignore
from indexer.daemon import Service
from indexer.paths import os_path
from indexer.watch import Watcher
from test_daemon import reconciled, service_config
from test_hostile import as_unprivileged, open_tmp, open_to_all, scan_summary  # noqa: F401
from trees import TWINS, hard_tree, write

QUIET = {"metadata.enabled": False}
NEVER = 10 ** 9
DRIVERS = {
    "sequential": {"parallel": False},
    "parallel": {"parallel": True, "workers": 2, "settings": {"scan.survey_workers_from": NEVER}},
    "workers-survey": {"parallel": True, "workers": 2, "settings": {"scan.survey_workers_from": 1}},
}
NFC, NFD = TWINS[0], TWINS[1]
ODD = os.fsdecode(b"caf\xe9")  # a folder name that is not UTF-8

# every file of the small tree, relative to the root (all media by extension, but a.part)
TREE = ["Artist 001/Album/01.mp3", "Artist 001/02.mp3", "Artist 001 Bar/01.mp3",
        "Artist 001 (Live)/01.mp3", "Foo/Samples/s.mp3", "Foo Bar/Deep/Samples/s.mp3",
        "Foo/Samples.mp3", "Incoming/i.mp3", "Foo/Incoming/i.mp3", "Incoming Bar/i.mp3",
        "Foo/a.part", "Foo/keep.flac", "Foo (Live)/x.flac", "Foo (Live)/keep.flac",
        f"{NFC}/c.mp3", f"{NFD}/c.mp3", f"{ODD}/b.mp3", "Foo/Bonus Disc/01.mp3",
        "Foo/Bonus Track.mp3"]


@pytest.fixture
def tree(tmp_path) -> Path:
    root = tmp_path / "music"
    for relative in TREE:
        write(root / relative, os.fsencode(relative))
    return root


def scan(db: Path, root: Path, driver: str = "sequential", **settings):
    options = dict(DRIVERS[driver])
    settings = {**QUIET, **options.pop("settings", {}), **settings}
    result = Manager(db_path=db, roots=[str(root)], env={}, settings=settings, **options).scan()
    assert result.status == "completed", result.message
    return result


def present(db: Path, root: Path) -> set[str]:
    """The present rows, as paths (on disk) relative to the root."""
    return {os.path.relpath(os_path(path, row["path_raw"]), root) for path, row in
            files(db).items() if row["status"] == "present"}


def every(kinds: tuple[str, ...] = ("audio",)) -> set[str]:
    return {p for p in TREE if kinds != ("audio",) or not p.endswith(".part")}


@pytest.mark.parametrize("patterns, ignored", [
    (["Artist 001/*"], {"Artist 001/Album/01.mp3", "Artist 001/02.mp3"}),
    (["**/Samples/"], {"Foo/Samples/s.mp3", "Foo Bar/Deep/Samples/s.mp3"}),
    (["/Incoming"], {"Incoming/i.mp3"}),
    (["Bonus*/"], {"Foo/Bonus Disc/01.mp3"}),  # a folder only: "Bonus Track.mp3" stays
    (["*.flac", "!keep.flac"], {"Foo (Live)/x.flac"}),
    ([f"/{NFC}/"], {f"{NFC}/c.mp3"}),  # code points as written: not the NFD twin
    (["Foo"], {p for p in TREE if p.startswith("Foo/")}),  # not Foo Bar, Foo (Live)
])
def test_each_pattern_form_of_library_ignore_skips_exactly_its_paths(tree, tmp_path, patterns,
                                                                     ignored):
    db = tmp_path / "library.db"
    scan(db, tree, **{"library.ignore": patterns})
    assert present(db, tree) == every() - ignored


def test_a_name_glob_applies_at_every_depth_and_the_defaults_are_kept_unless_replaced(tree,
                                                                                      tmp_path):
    other = ("audio", "other")
    scan(tmp_path / "defaults.db", tree, **{"library.kinds": list(other)})
    scan(tmp_path / "none.db", tree, **{"library.kinds": list(other), "library.ignore": []})
    assert present(tmp_path / "defaults.db", tree) == every(other) - {"Foo/a.part"}
    assert present(tmp_path / "none.db", tree) == every(other)


@pytest.mark.parametrize("name", [".indexerignore", ".ndignore", ".plexignore"])
def test_each_ignore_file_applies_to_its_folder_and_below_and_is_never_indexed(tree, tmp_path,
                                                                               name):
    write(tree / "Foo" / name, b"# kept for my media server\nSamples/\n*.flac\n")
    db = tmp_path / "library.db"

    scan(db, tree, **{"library.kinds": ["audio", "other"], "library.ignore": []})

    assert present(db, tree) == every(("audio", "other")) - {
        "Foo/Samples/s.mp3", "Foo/keep.flac"}  # not Foo Bar's Samples, nor Foo (Live)'s flac


def test_a_deeper_file_overrides_a_shallower_one_and_library_ignore(tree, tmp_path):
    write(tree / ".indexerignore", b"*.flac\n!Samples.mp3\n")
    write(tree / "Foo (Live)" / ".ndignore", b"!*.flac\n")
    write(tree / "Foo (Live)" / "Sub" / ".plexignore", b"x.flac\n")
    write(tree / "Foo (Live)" / "Sub" / "x.flac", b"deeper")
    write(tree / "Foo (Live)" / "Sub" / "y.flac", b"deeper")
    db = tmp_path / "library.db"

    scan(db, tree, **{"library.ignore": ["Samples*"]})

    assert present(db, tree) == every() - {"Foo/keep.flac", "Foo/Samples/s.mp3",
                                           "Foo Bar/Deep/Samples/s.mp3"} | {
        "Foo (Live)/Sub/y.flac"}


def test_an_empty_ndignore_ignores_its_folder_and_a_pattern_may_name_bytes_not_utf8(tree,
                                                                                   tmp_path):
    write(tree / "Artist 001" / ".ndignore", b"")
    write(tree / ".indexerignore", b"caf\xe9/\n")
    db = tmp_path / "library.db"
    scan(db, tree, **{"library.ignore": []})
    assert present(db, tree) == every() - {"Artist 001/Album/01.mp3", "Artist 001/02.mp3",
                                           f"{ODD}/b.mp3"}


def test_rows_of_files_newly_ignored_are_marked_missing_and_come_back_when_not(tree, tmp_path):
    db = tmp_path / "library.db"
    scan(db, tree)
    write(tree / "Foo" / ".indexerignore", b"Samples/\n*.mp3\n")

    newly = scan(db, tree)
    assert newly.counters.missing == 5 and present(db, tree) == every() - {
        "Foo/Samples/s.mp3", "Foo/Samples.mp3", "Foo/Incoming/i.mp3", "Foo/Bonus Disc/01.mp3",
        "Foo/Bonus Track.mp3"}
    (tree / "Foo" / ".indexerignore").unlink()
    back = scan(db, tree)
    assert back.counters.restored == newly.counters.missing and present(db, tree) == every()


def test_an_ignore_file_that_cannot_be_read_leaves_its_folder_unknown_not_missing(open_tmp):
    root, db = open_tmp / "music", open_tmp / "state" / "library.db"
    for relative in TREE:
        write(root / relative, os.fsencode(relative))
    unreadable = write(root / "Foo" / ".indexerignore", b"*.mp3\n")
    open_to_all(open_tmp)
    ignore._pathspec()  # (imported before dropping to nobody, who cannot read it)
    assert as_unprivileged(lambda: scan_summary(db, root, settings=QUIET))["added"] == 13
    unreadable.chmod(0o000)

    summary = as_unprivileged(lambda: scan_summary(db, root, settings=QUIET))

    assert (summary["status"], summary["missing"], summary["added"]) == ("completed", 0, 0)
    with connect(db) as conn:
        problems = [tuple(p) for p in conn.execute("SELECT path, stage, error FROM scan_errors")]
    assert problems == [(str(root / "Foo"), "walk", "PermissionError: its ignore file "
                         ".indexerignore cannot be read (Permission denied)")]


# --- the fast paths agree


def ignore_files(root: Path) -> None:
    write(root / ".indexerignore", b"/Foo Bar/\n*0.mp3\n")
    write(root / "Foo" / ".ndignore", b"!*0.mp3\nFoo 1/\n")
    write(root / "Foo (Live)" / ".plexignore", b"*1.mp3\n")
    write(root / "Foo." / ".ndignore", b"")
    write(root / NFC / ".indexerignore", f"{NFC} 0/\n".encode())


def test_sequential_and_parallel_scans_give_the_same_catalogue_under_ignore_rules(tmp_path):
    source = tmp_path / "source"
    hard_tree(source)
    ignore_files(source)
    results = {}
    for driver in DRIVERS:
        root = tmp_path / driver / "music"
        shutil.copytree(source, root, symlinks=True)
        db = tmp_path / driver / "library.db"
        scan(db, root, driver, **{"library.ignore": ["Foo+Bar/", "Foo-Bar 1"]})
        first = present(db, root)
        (root / "Foo" / ".ndignore").unlink()  # rules change: some leave, some come back
        write(root / "Foo Bar (Live)" / ".indexerignore", b"*.mp3\n")
        counters = scan(db, root, driver, **{"library.ignore": ["Foo+Bar/", "Foo-Bar 1"]}).counters
        results[driver] = (first, present(db, root), (counters.missing, counters.restored,
                                                       counters.added))
    assert results["parallel"] == results["sequential"]
    assert results["workers-survey"] == results["sequential"]
    first, then, (missing, restored, added) = results["sequential"]
    assert "Foo/Foo 0.mp3" in first and "Foo/Foo 0.mp3" not in then and missing > 0
    assert "Foo/Foo 1/01 Foo.mp3" not in first and "Foo/Foo 1/01 Foo.mp3" in then and added > 0
    assert not any(p.startswith(("Foo Bar/", "Foo+Bar/", "Foo./")) for p in first | then)


# --- the service, the watcher, verify, the configuration


def test_the_running_service_follows_an_ignore_file_written_then_deleted(tree, tmp_path):
    db = tmp_path / "library.db"
    running = Service(service_config(db, [tree], **QUIET))
    thread = threading.Thread(target=running.run, daemon=True)
    thread.start()
    try:
        wait_for(lambda: reconciled(db) and present(db, tree) == every(), timeout=20,
                 what="the first reconcile")
        rules = tree / "Foo" / ".plexignore"
        rules.write_text("*.mp3\n")
        left = {p for p in every() if p.startswith("Foo/") and p.endswith(".mp3")}
        wait_for(lambda: present(db, tree) == every() - left, timeout=10,
                 what="Foo's mp3 files to leave the catalogue")
        assert {files(db)[str(tree / p)]["status"] for p in left} == {"missing"}

        rules.unlink()
        wait_for(lambda: present(db, tree) == every(), timeout=10, what="them to come back")
        write(tree / ".indexerignore", b"*.flac\n")
        write(tree / "Foo Bar" / "New" / "n.flac", b"new")  # a new folder: its tree scanned
        write(tree / "Foo Bar" / "New" / "n.mp3", b"new")
        wait_for(lambda: present(db, tree) == every() - {
            "Foo/keep.flac", "Foo (Live)/x.flac", "Foo (Live)/keep.flac"} | {"Foo Bar/New/n.mp3"},
            timeout=10, what="the flac files to leave, and n.mp3 (not n.flac) to come")
    finally:
        running.stop()
        thread.join(timeout=10)


def test_the_watcher_drops_events_for_ignored_paths(tree):
    places = []
    watcher = Watcher(lambda place, complete=False: places.append(place), ("*.part", "Samples/"))
    try:
        assert watcher.arm(str(tree)) == "inotify"
        write(tree / "Foo" / "song.flac.part", b"a download")
        (tree / "Foo" / "Samples" / "new.mp3").write_bytes(b"in an ignored folder")
        write(tree / "Foo" / ".indexerignore", b"new/\n")
        (tree / "Foo" / "new").mkdir()
        (tree / "Foo Bar" / "done.mp3").write_bytes(b"the last event")
        wait_for(lambda: any(p.folder == str(tree / "Foo Bar") for p in places), what="events")
    finally:
        watcher.stop()
    assert {(os.path.relpath(p.folder, tree), p.how) for p in places} == {
        ("Foo", "tree"), ("Foo Bar", "folder")}


def test_verify_names_the_rule_and_the_file_that_ignores_a_row(tree, tmp_path):
    db = tmp_path / "library.db"
    scan(db, tree)
    write(tree / "Foo" / ".plexignore", b"# Plex's\nSamples/\n")
    write(tree / ".indexerignore", b"*.flac\n")

    result = indexer("verify", "--json", env=cli_env(tmp_path, INDEXER_DB=str(db)))

    reasons = {os.path.relpath(f["path"], tree): f["reason"] for f in
               map(json.loads, result.stdout.splitlines()) if f["kind"] == "excluded"}
    assert result.returncode == 1 and reasons == {
        "Foo/Samples/s.mp3": f"it is inside {tree}/Foo/Samples, which is ignored by 'Samples/' "
                             f"in {tree}/Foo/.plexignore (line 2)",
        **{p: f"ignored by '*.flac' in {tree}/.indexerignore (line 1)"
           for p in ("Foo/keep.flac", "Foo (Live)/x.flac", "Foo (Live)/keep.flac")}}


def test_a_pattern_that_can_never_match_is_one_warning_and_a_bad_one_exit_2(tree, tmp_path):
    config = tmp_path / "config.toml"
    env = cli_env(tmp_path, INDEXER_DB=str(tmp_path / "library.db"))

    config.write_text(f'[library]\nignore = ["{tree}/Incoming", "*.part"]\n')
    warned = indexer("scan", "--config", config, tree, env=env)
    config.write_text('[library]\nignore = ["Foo[z-a]"]\n')
    refused = indexer("scan", "--config", config, tree, env=env)

    assert warned.returncode == 0, warned.stderr
    assert [line for line in warned.stderr.splitlines() if "library.ignore" in line] == [
        f"indexer: warning: library.ignore: '{tree}/Incoming' looks like an absolute path, but "
        f"patterns are relative to each root: it would match {tree}{tree}/Incoming only; for "
        f"{tree}/Incoming, write '/Incoming'"]
    assert refused.returncode == 2 and refused.stderr.count("\n") == 1
    assert refused.stderr.startswith("indexer: error: library.ignore: 'Foo[z-a]' is not a "
                                     "gitignore pattern (bad character range z-a)")
