"""Fast paths are proven equal to the slow path: every driver of a scan (sequential,
parallel with the survey in this process, parallel with the survey in worker processes)
gives the same catalogue and the same change feed, on trees with the names real
libraries have, on both sides of the threshold that switches to worker processes."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from conftest import DATA, changes, connect, files
from indexer import Manager
from trees import PREFIX_SIBLINGS, hard_tree, large_library, media_texts, write

NEVER = 10 ** 9
DRIVERS = {
    "sequential": {"parallel": False},
    "parallel": {"parallel": True, "workers": 2, "settings": {"scan.survey_workers_from": NEVER}},
    "workers-survey": {"parallel": True, "workers": 2,
                       "settings": {"scan.survey_workers_from": 1}},
}
QUIET = {"metadata.enabled": False}


def scan(db: Path, root: Path, driver: str):
    options = dict(DRIVERS[driver])
    settings = {**QUIET, **options.pop("settings", {})}
    return Manager(db_path=db, roots=[str(root)], env={}, settings=settings, **options).scan()


def catalogue(db: Path) -> dict[str, tuple]:
    return {path: (r["size"], r["hash"], r["status"], r["kind"], r["error"], r["path_raw"],
                   r["dir"]) for path, r in files(db).items()}


def feed_kinds(db: Path) -> list[str]:
    return sorted(kind for kind, _, _ in changes(db))


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    root = tmp_path / "music"
    hard_tree(root)
    return root


def test_no_change_rescans_add_nothing_to_the_feed_in_any_driver(tree, tmp_path):
    for driver in DRIVERS:
        db = tmp_path / f"{driver}.db"
        first = scan(db, tree, driver)
        feed = changes(db)
        for _ in range(3):
            again = scan(db, tree, driver)
            assert (again.counters.missing, again.counters.restored, again.counters.added) == \
                (0, 0, 0), driver
        assert changes(db) == feed, driver
        assert again.counters.unchanged == first.counters.added == len(catalogue(db))


def test_every_driver_gives_the_same_catalogue_and_feed_after_changes(tree, tmp_path):
    def change(root: Path) -> None:
        shutil.rmtree(root / "Foo" / "Foo 0")                    # inside the first sibling
        shutil.rmtree(root / "Foo (Live)")                       # a whole sibling
        (root / "Foo Bar" / "Foo Bar 0").rename(root / "Foo" / "moved album")
        write(root / "Foo." / "new.mp3", b"new")
        write(root / "Zed" / "Zed 0" / "01.mp3", b"a folder past every other")
        (root / "Foo-Bar" / "Foo-Bar 1.mp3").write_bytes(b"changed content")

    results = {}
    for driver in DRIVERS:
        root = tmp_path / driver / "music"
        shutil.copytree(tree, root, symlinks=True)
        db = tmp_path / driver / "library.db"
        scan(db, root, driver)
        change(root)
        counters = scan(db, root, driver).counters
        results[driver] = (
            {path.replace(str(root), "ROOT"): row[:5] for path, row in catalogue(db).items()},
            feed_kinds(db),
            (counters.added, counters.modified, counters.moved, counters.missing))
    assert results["parallel"] == results["sequential"]
    assert results["workers-survey"] == results["sequential"]
    assert results["sequential"][2] == (2, 1, 3, 11)


@pytest.mark.parametrize("driver", DRIVERS)
def test_when_every_folder_below_the_root_is_gone_every_driver_marks_their_files_missing(
        tree, tmp_path, driver):
    db = tmp_path / "library.db"
    scan(db, tree, driver)
    for folder in [p for p in tree.iterdir() if p.is_dir()]:
        shutil.rmtree(folder)

    result = scan(db, tree, driver)

    present = {p for p, row in catalogue(db).items() if row[2] == "present"}
    assert present == {str(tree / "root 0.mp3"), str(tree / "root 1.mp3")}
    assert result.counters.missing == len(catalogue(db)) - 2


@pytest.mark.parametrize("driver", DRIVERS)
def test_a_deleted_prefix_sibling_marks_only_its_own_files_missing(tree, tmp_path, driver):
    db = tmp_path / "library.db"
    scan(db, tree, driver)
    for name in PREFIX_SIBLINGS[1:]:  # every sibling that sorts between "Foo" and "Foo/"
        shutil.rmtree(tree / name)

    scan(db, tree, driver)

    missing = {p for p, row in catalogue(db).items() if row[2] == "missing"}
    assert missing and all(not p.startswith(str(tree / "Foo") + "/") for p in missing)
    assert {p for p, row in catalogue(db).items() if row[2] == "present"} == media_texts(tree)


LARGE = 25_000  # above the default scan.survey_workers_from (20,000): the real threshold


def test_a_library_of_25000_files_rescanned_adds_nothing_and_parallel_equals_sequential(
        tmp_path):
    root = tmp_path / "music"
    assert large_library(root, LARGE, (DATA / "id3v24.mp3").read_bytes()) == LARGE
    dbs = {mode: tmp_path / f"{mode}.db" for mode in ("parallel", "sequential")}
    for mode, db in dbs.items():
        manager = Manager(db_path=db, roots=[str(root)], env={}, parallel=mode == "parallel",
                          workers=2)
        assert manager.scan().counters.added == LARGE
        feed = changes(db)
        for _ in range(3):  # in parallel mode, surveyed in worker processes (25,000 rows)
            again = manager.scan().counters
            assert (again.unchanged, again.bytes_processed) == (LARGE, 0), mode
        assert changes(db) == feed, mode

    def content(db: Path) -> dict:
        return {p: row[:6] for p, row in catalogue(db).items()}
    assert content(dbs["parallel"]) == content(dbs["sequential"])
    with connect(dbs["parallel"]) as conn:
        assert conn.execute("SELECT count(*) FROM media WHERE title IS NOT NULL").fetchone()[0] \
            == LARGE
