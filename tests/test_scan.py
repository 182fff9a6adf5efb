"""A scan leaves a catalogue that exactly describes the media files under its roots,
and a rescan touches only what changed."""

from __future__ import annotations

import os
import shutil
import threading
from pathlib import Path

import pytest
import xxhash

from conftest import changes, connect, files, job, make_library, reuse_inode_of


def expected_rows(root: Path) -> dict[str, tuple]:
    """What the catalogue must say about every media file under `root`, from the disk itself."""
    found = {}
    for path in root.rglob("*"):
        if path.is_file() and path.suffix in {".mp3", ".flac", ".ogg", ".opus", ".m4a", ".wav",
                                               ".aiff", ".wma", ".jpg"}:
            info = path.stat()
            kind = "image" if path.suffix == ".jpg" else "audio"
            digest = xxhash.xxh3_128(path.read_bytes()).hexdigest()
            found[str(path)] = (info.st_size, info.st_mtime_ns, info.st_ino, info.st_dev, digest,
                                kind, "present")
    return found


def catalogue_rows(db: Path) -> dict[str, tuple]:
    return {path: (r["size"], r["mtime_ns"], r["inode"], r["device"], r["hash"], r["kind"],
                   r["status"]) for path, r in files(db).items()}


@pytest.mark.parametrize("parallel", [True, False], ids=["parallel", "sequential"])
def test_a_scan_catalogues_every_media_file_exactly(library, db, scan, parallel):
    result = scan(library, parallel=parallel)

    assert result.status == "completed"
    assert catalogue_rows(db) == expected_rows(library)
    assert result.counters.added == len(expected_rows(library)) == 15
    assert result.counters.files_found == result.counters.files_processed == 15


def test_sequential_and_parallel_modes_give_the_same_catalogue(tmp_path, scan):
    root = tmp_path / "music"
    root.mkdir()
    make_library(root, albums=6, tracks=9)
    dbs = {}
    for mode in ("parallel", "sequential"):
        dbs[mode] = tmp_path / f"{mode}.db"
        from indexer import Manager
        Manager(db_path=dbs[mode], roots=[str(root)], env={}, parallel=mode == "parallel",
                workers=4).scan()

    def content(db):
        return {p: tuple(r[c] for c in ("root", "dir", "size", "mtime_ns", "inode", "hash", "kind",
                                         "status", "error", "path_raw"))
                for p, r in files(db).items()}

    assert content(dbs["parallel"]) == content(dbs["sequential"])
    assert len(content(dbs["parallel"])) == 6 * 10


def test_rescan_of_an_unchanged_library_reads_no_file_and_writes_no_row(library, db, scan):
    scan(library)
    before = files(db)

    result = scan(library)

    assert result.counters.bytes_processed == 0
    assert result.counters.unchanged == 15
    assert (result.counters.added, result.counters.modified, result.counters.missing) == (0, 0, 0)
    assert {p: tuple(r) for p, r in files(db).items()} == {p: tuple(r) for p, r in before.items()}


def test_a_modified_file_is_hashed_again_and_reported(library, db, scan):
    scan(library)
    song = next(library.rglob("*.flac"))
    old = files(db)[str(song)]
    with open(song, "r+b") as handle:  # same size, new content and mtime
        handle.seek(-4, os.SEEK_END)
        handle.write(b"EDIT")

    result = scan(library)

    row = files(db)[str(song)]
    assert row["id"] == old["id"]
    assert row["hash"] == xxhash.xxh3_128(song.read_bytes()).hexdigest() != old["hash"]
    assert result.counters.modified == 1
    assert result.counters.bytes_processed == song.stat().st_size
    assert changes(db)[-1] == ("modified", str(song), None)


def test_a_new_mtime_with_the_same_content_updates_the_row_but_adds_no_change(library, db, scan):
    scan(library)
    song = next(library.rglob("*.mp3"))
    os.utime(song, ns=(0, 1_234_567_890_123_456_789))
    feed = changes(db)

    result = scan(library)

    assert files(db)[str(song)]["mtime_ns"] == 1_234_567_890_123_456_789
    assert result.counters.unchanged == 15 and result.counters.modified == 0
    assert changes(db) == feed


def test_rehash_reads_every_file_again(library, db, scan):
    scan(library)
    result = scan(library, rehash=True)
    total = sum(os.path.getsize(p) for p in expected_rows(library))
    assert result.counters.bytes_processed == total
    assert result.counters.unchanged == 15


def test_a_renamed_file_keeps_its_id(library, db, scan):
    scan(library)
    song = next(library.rglob("*.ogg"))
    old_id = files(db)[str(song)]["id"]
    target = library / "Artist 0" / "renamed.ogg"
    song.rename(target)

    result = scan(library)

    rows = files(db)
    assert rows[str(target)]["id"] == old_id
    assert str(song) not in rows
    assert result.counters.moved == 1 and result.counters.missing == 0
    # its ctime changed (so does an edit that keeps the mtime): read once, to be sure
    assert result.counters.bytes_processed == target.stat().st_size
    assert changes(db)[-1] == ("moved", str(target), str(song))


def test_a_file_copied_elsewhere_then_deleted_keeps_its_id_by_hash(library, db, scan, tmp_path):
    scan(library)
    song = next(library.rglob("*.m4a"))
    old_id = files(db)[str(song)]["id"]
    target = library / "Artist 1" / "moved across.m4a"
    shutil.copyfile(song, target)  # a new inode: only size and hash can tell
    song.unlink()

    result = scan(library)

    assert files(db)[str(target)]["id"] == old_id
    assert result.counters.moved == 1 and result.counters.added == 0
    assert result.counters.missing == 0


def test_a_moved_folder_keeps_the_ids_of_its_files(library, db, scan):
    scan(library)
    album = library / "Artist 2" / "Album 2 (2002)"
    ids = {Path(p).name: r["id"] for p, r in files(db).items() if p.startswith(str(album) + "/")}
    album.rename(library / "Artist 0" / "Moved Album")

    result = scan(library)

    moved = {Path(p).name: r["id"] for p, r in files(db).items()
             if p.startswith(str(library / "Artist 0" / "Moved Album") + "/")}
    assert moved == ids and len(ids) == 5
    assert result.counters.moved == 5 and result.counters.missing == 0
    assert result.counters.bytes_processed == 0  # its files' ctimes did not change: not read


def test_a_removed_file_becomes_missing_and_comes_back_with_the_same_id(library, db, scan, tmp_path):
    scan(library)
    song = next(library.rglob("*.wav"))
    kept = tmp_path / "kept.wav"
    old_id = files(db)[str(song)]["id"]
    shutil.move(song, kept)

    result = scan(library)
    row = files(db)[str(song)]
    assert (row["status"], row["id"]) == ("missing", old_id)
    assert row["missing_since"] is not None
    assert result.counters.missing == 1

    shutil.move(kept, song)
    result = scan(library)
    row = files(db)[str(song)]
    assert (row["status"], row["id"], row["missing_since"]) == ("present", old_id, None)
    assert result.counters.restored == 1
    assert [c[0] for c in changes(db)[-2:]] == ["missing", "restored"]


def test_a_deleted_folder_marks_its_files_missing(library, db, scan):
    scan(library)
    album = library / "Artist 1"
    shutil.rmtree(album)

    result = scan(library)

    missing = {p for p, r in files(db).items() if r["status"] == "missing"}
    assert missing == {p for p in files(db) if p.startswith(str(album) + "/")}
    assert result.counters.missing == 5


def test_non_media_and_ignored_names_are_not_indexed(library, db, scan):
    (library / "@eaDir").mkdir()
    (library / "@eaDir" / "thumb.jpg").write_bytes(b"x")
    (library / "Artist 0" / "download.mp3.part").write_bytes(b"x")
    (library / "Artist 0" / "._song.mp3").write_bytes(b"x")
    (library / "Artist 0" / "notes.txt").write_text("x")

    result = scan(library)

    ignored = {str(library / "@eaDir" / "thumb.jpg"), str(library / "Artist 0" / "._song.mp3")}
    assert set(files(db)) == set(expected_rows(library)) - ignored
    assert len(files(db)) == 15
    assert result.counters.skipped == 3  # @eaDir, *.part, ._*


def test_kinds_choose_what_is_indexed(library, db, scan, tmp_path):
    from indexer import Manager
    config = tmp_path / "kinds.toml"
    config.write_text('[library]\nkinds = ["image", "other"]\n')
    Manager(db_path=db, roots=[str(library)], config_file=str(config), env={}).scan()
    kinds = {Path(p).suffix: r["kind"] for p, r in files(db).items()}
    assert kinds == {".jpg": "image", ".nfo": "other"}


def test_job_row_records_the_totals_and_the_timestamps_are_utc(library, db, scan):
    result = scan(library)
    row = job(db, result.job_id)
    assert (row["status"], row["kind"], row["files_found"], row["added"]) == ("completed", "full", 15, 15)
    assert row["progress"] == 100
    assert row["started_at"].endswith("Z") and row["finished_at"] >= row["started_at"]
    assert scan(library).job_id == result.job_id + 1
    assert job(db, result.job_id + 1)["kind"] == "incremental"


def test_a_file_at_a_root_given_twice_or_nested_is_indexed_once(library, db, scan):
    result = scan(library, library / "Artist 0")
    assert result.roots == (str(library),)
    assert len(files(db)) == 15


def test_a_file_still_being_written_is_never_indexed_half_copied(tmp_path, db):
    root = tmp_path / "music"
    root.mkdir()
    growing = root / "downloading.flac"
    growing.write_bytes(b"\0" * 1_000_000)
    done = threading.Event()

    def keep_writing():  # a copy that goes on for the whole scan, retry included
        with open(growing, "ab") as handle:
            while not done.wait(0.01):
                handle.write(b"x" * 100)
                handle.flush()

    writer = threading.Thread(target=keep_writing)
    writer.start()
    try:
        from indexer import Manager
        config = tmp_path / "slow.toml"
        config.write_text("[scan]\nmax_read_mib_s = 2\nhash_buffer_kib = 64\n")  # reads take ~0.5 s
        result = Manager(db_path=db, roots=[str(root)], config_file=str(config), env={}).scan()
    finally:
        done.set()
        writer.join()

    assert result.status == "completed" and result.counters.errors == 1
    assert files(db) == {}
    with connect(db) as conn:
        problem = conn.execute("SELECT path, stage, error FROM scan_errors").fetchone()
    assert tuple(problem)[:2] == (str(growing), "hash")
    assert "changed while it was being read" in problem["error"]

    Manager(db_path=db, roots=[str(root)], env={}).scan()  # the copy is done: now it is indexed
    assert files(db)[str(growing)]["hash"] == xxhash.xxh3_128(growing.read_bytes()).hexdigest()


@pytest.fixture
def survey_in_workers() -> dict:
    """Rescans of large libraries survey in worker processes; with these settings, of any size."""
    return {"scan.survey_workers_from": 1}


def test_a_rescan_surveyed_in_worker_processes_finds_every_change(tmp_path, db, survey_in_workers):
    from indexer import Manager
    root = tmp_path / "music"
    root.mkdir()
    make_library(root, albums=8, tracks=3)
    (root / "loose.mp3").write_bytes(b"in the root folder itself")

    def scan():
        return Manager(db_path=db, roots=[str(root)], env={}, workers=2,
                       settings=survey_in_workers).scan()

    scan()
    ids = {p: r["id"] for p, r in files(db).items()}
    shutil.rmtree(root / "Artist 7")                                  # a deleted folder: the last part
    shutil.rmtree(root / "Artist 0" / "Album 0 (2000)")              # and one in the first
    song = next((root / "Artist 3" / "Album 3 (2003)").glob("01 - *"))
    song.rename(root / "Artist 5" / ("moved" + song.suffix))
    (root / "Artist 4" / "Album 4 (2004)" / "cover.jpg").write_bytes(b"new cover")
    (root / "Artist 9" / "new").mkdir(parents=True)                  # a new folder past the last
    (root / "Artist 9" / "new" / "new.mp3").write_bytes(b"new")

    result = scan()

    assert catalogue_rows(db) == {**expected_rows(root), **{
        p: r for p, r in catalogue_rows(db).items() if r[-1] == "missing"}}
    assert (result.counters.added, result.counters.modified, result.counters.moved,
            result.counters.missing) == (1, 1, 1, 8)
    assert files(db)[str(root / "Artist 5" / ("moved" + song.suffix))]["id"] == ids[str(song)]
    assert result.counters.unchanged == result.counters.files_found - 3 == 23


def test_an_unchanged_rescan_in_worker_processes_reads_and_writes_nothing(library, db, scan,
                                                                          survey_in_workers):
    scan(library, settings=survey_in_workers)
    before = {p: tuple(r) for p, r in files(db).items()}
    result = scan(library, settings=survey_in_workers)
    assert (result.counters.unchanged, result.counters.bytes_processed) == (15, 0)
    assert {p: tuple(r) for p, r in files(db).items()} == before


def test_a_new_file_that_reuses_a_deleted_files_inode_is_not_taken_for_it(fresh_fs,
                                                                          db, scan):
    root = fresh_fs / "music"
    root.mkdir()
    old = root / "old.flac"
    old.write_bytes(b"the old song")
    scan(root)
    old_row = files(db)[str(old)]
    new = reuse_inode_of(old, "new", b"a different, longer song", fresh_fs / "fillers")

    result = scan(root)

    assert (result.counters.added, result.counters.moved, result.counters.missing) == (1, 0, 1)
    assert files(db)[str(new)]["id"] != old_row["id"]
    assert files(db)[str(old)]["status"] == "missing"


def test_a_root_given_relative_or_unnormalised_names_the_same_files(library, db, scan,
                                                                   monkeypatch):
    from indexer import Manager
    scan(library)
    ids = {p: r["id"] for p, r in files(db).items()}
    monkeypatch.chdir(library / "Artist 0")
    for given in ("../", "..", f"../../{library.name}/./", f"../Artist 1/../"):
        result = Manager(db_path=db, env={}).scan([given])
        assert result.roots == (str(library),)
        assert (result.counters.added, result.counters.missing) == (0, 0)
    assert {p: r["id"] for p, r in files(db).items()} == ids
