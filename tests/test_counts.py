"""A scan's counts and progress are true: each file found is processed once, progress
never passes 100%, and the totals agree with what happened to the files."""

from __future__ import annotations

from pathlib import Path

import pytest

from conftest import make_library
from indexer import Manager

MODES = {"parallel": {"parallel": True, "workers": 2}, "sequential": {"parallel": False}}


def scan(db: Path, root: Path, mode: str, seen: list | None = None, **settings):
    manager = Manager(db_path=db, roots=[str(root)], env={}, settings=settings, **MODES[mode])
    return manager.scan(on_progress=seen.append if seen is not None else None)


@pytest.mark.parametrize("mode", MODES)
def test_progress_never_counts_a_file_processed_before_it_is_found(tmp_path, mode):
    root = tmp_path / "music"
    make_library(root, albums=12, tracks=6)
    seen: list = []

    result = scan(tmp_path / "library.db", root, mode, seen)

    assert all(p.counters.files_processed <= p.counters.files_found for p in seen)
    assert all(p.percent <= 100.0 for p in seen)
    c = result.counters
    assert c.files_found == c.files_processed == c.added == 12 * 7


@pytest.mark.parametrize("mode", MODES)
def test_files_whose_tags_are_read_late_are_counted_once_and_unchanged(tmp_path, mode):
    root = tmp_path / "music"
    make_library(root, albums=3, tracks=4)
    db = tmp_path / "library.db"
    scan(db, root, mode, **{"metadata.enabled": False})  # rows, but no tags yet

    result = scan(db, root, mode)

    c = result.counters
    assert (c.files_found, c.files_processed, c.unchanged) == (15, 15, 15)
    assert c.metadata_queued == c.metadata_extracted == 15
    assert (c.added, c.modified, c.bytes_processed) == (0, 0, 0)
