"""Ids follow files on real trees: renamed and edited, moved while copies appear, renamed onto
the path of a file deleted earlier, swapped, replaced atomically, edited with the mtime put
back; in both modes, whatever the order of the walk."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
import xxhash

from conftest import changes, connect, files, reuse_inode_of
from indexer import Manager
from trees import write

MODES = {"parallel": {"parallel": True, "workers": 2}, "sequential": {"parallel": False}}


@pytest.fixture(params=MODES)
def scan(request, tmp_path):
    db = tmp_path / "library.db"

    def run(*roots: Path, **settings):
        return Manager(db_path=db, roots=[str(r) for r in roots], env={},
                       settings={"metadata.enabled": False, **settings},
                       **MODES[request.param]).scan()
    run.db = db
    return run


def ids(db: Path) -> dict[str, int]:
    return {path: row["id"] for path, row in files(db, "present").items()}


def digest(path: Path) -> str:
    return xxhash.xxh3_128(path.read_bytes()).hexdigest()


@pytest.fixture
def root(tmp_path) -> Path:
    music = tmp_path / "music"
    for n in range(4):
        write(music / "Album" / f"{n:02d}.flac", f"track {n}".encode() * 50)
    return music


def test_a_file_renamed_and_then_edited_keeps_its_id(root, scan):
    scan(root)
    before = ids(scan.db)
    old, new = root / "Album" / "01.flac", root / "Album" / "01 - Renamed.flac"
    old.rename(new)
    with open(new, "r+b") as handle:  # a tagger writes in place after the rename
        handle.write(b"TAGGED")

    result = scan(root)

    assert ids(scan.db)[str(new)] == before[str(old)]
    assert files(scan.db)[str(new)]["hash"] == digest(new)
    assert changes(scan.db)[-2:] == [("moved", str(new), str(old)), ("modified", str(new), None)]
    assert (result.counters.added, result.counters.missing) == (0, 0)


@pytest.mark.parametrize("copy_to", ["A copy", "Z copy"])  # walked before and after the move
def test_a_copy_never_takes_the_id_of_a_file_moved_in_the_same_interval(root, scan, copy_to):
    scan(root)
    before = ids(scan.db)
    shutil.copytree(root / "Album", root / copy_to)
    (root / "M").mkdir()
    (root / "Album" / "02.flac").rename(root / "M" / "02.flac")

    result = scan(root)

    after = ids(scan.db)
    assert after[str(root / "M" / "02.flac")] == before[str(root / "Album" / "02.flac")]
    assert not set(after[str(p)] for p in (root / copy_to).iterdir()) & set(before.values())
    assert (result.counters.added, result.counters.moved, result.counters.missing) == (4, 1, 0)


def test_a_copy_never_takes_the_id_of_a_file_on_a_root_that_is_offline(root, scan, tmp_path):
    other = tmp_path / "other"
    write(other / "x.flac", b"on the other disk")
    scan(root, other)
    before = ids(scan.db)
    shutil.copyfile(other / "x.flac", root / "x copy.flac")
    other.rename(tmp_path / "unmounted")  # the disk is gone: its path no longer exists

    scan(root, other)

    assert files(scan.db)[str(other / "x.flac")]["status"] == "present"
    assert files(scan.db)[str(other / "x.flac")]["id"] == before[str(other / "x.flac")]
    assert ids(scan.db)[str(root / "x copy.flac")] not in before.values()


def test_a_file_renamed_onto_the_path_of_a_file_deleted_earlier_keeps_its_id(root, scan):
    scan(root)
    before = ids(scan.db)
    deleted, renamed = root / "Album" / "00.flac", root / "Album" / "03.flac"
    deleted.unlink()
    scan(root)  # the deleted file is now a missing row at its path
    renamed.rename(deleted)

    scan(root)

    rows = files(scan.db)
    assert rows[str(deleted)]["id"] == before[str(renamed)]
    assert rows[str(deleted)]["hash"] == digest(deleted)
    assert before[str(deleted)] not in {r["id"] for r in rows.values()}  # purged: the path
    assert changes(scan.db)[-2:] == [("purged", str(deleted), None),      # names another file
                                     ("moved", str(deleted), str(renamed))]


def test_a_file_renamed_over_another_keeps_its_id_and_the_other_ends(root, scan):
    scan(root)
    before = ids(scan.db)
    over, renamed = root / "Album" / "00.flac", root / "Album" / "03.flac"
    renamed.rename(over)  # replaces 00.flac

    scan(root)

    rows = files(scan.db)
    assert rows[str(over)]["id"] == before[str(renamed)] and str(renamed) not in rows
    assert before[str(over)] not in {r["id"] for r in rows.values()}
    assert [c[0] for c in changes(scan.db)[-3:]] == ["missing", "purged", "moved"]


def test_files_that_swapped_names_keep_their_ids(root, scan):
    scan(root)
    before = ids(scan.db)
    a, b, tmp = root / "Album" / "00.flac", root / "Album" / "01.flac", root / "swap.tmp"
    a.rename(tmp)
    b.rename(a)
    tmp.rename(b)

    scan(root)

    after = ids(scan.db)
    assert (after[str(a)], after[str(b)]) == (before[str(b)], before[str(a)])
    assert sorted(changes(scan.db)[-2:]) == [("moved", str(a), str(b)), ("moved", str(b), str(a))]


def test_an_atomic_replace_keeps_the_id_of_its_path(root, scan):
    scan(root)
    before = ids(scan.db)
    song = root / "Album" / "01.flac"
    temp = root / "Album" / ".01.flac.tmp"
    temp.write_bytes(b"re-tagged by a tagger that writes a new file")
    os.replace(temp, song)

    scan(root)

    assert ids(scan.db) == before
    assert files(scan.db)[str(song)]["hash"] == digest(song)
    assert changes(scan.db)[-1] == ("modified", str(song), None)


def test_an_edit_that_puts_the_mtime_back_is_seen(root, scan):
    scan(root)
    song = root / "Album" / "02.flac"
    info = song.stat()
    with open(song, "r+b") as handle:  # same size, new bytes
        handle.write(b"NEWTAG")
    os.utime(song, ns=(info.st_atime_ns, info.st_mtime_ns))  # "preserve timestamps"

    result = scan(root)

    assert files(scan.db)[str(song)]["hash"] == digest(song)
    assert result.counters.modified == 1 and result.counters.bytes_processed == info.st_size


def test_many_identical_files_moved_all_keep_their_ids(tmp_path, scan):
    root = tmp_path / "music"
    for n in range(30):
        write(root / "Silence" / f"{n:02d}.flac", b"the same silence")
    scan(root)
    before = ids(scan.db)
    shutil.copytree(root / "Silence", root / "Moved")  # copies: new inodes, same content
    shutil.rmtree(root / "Silence")

    result = scan(root)

    after = ids(scan.db)
    assert {p.name: after[str(p)] for p in (root / "Moved").iterdir()} == \
        {Path(p).name: i for p, i in before.items()}
    assert (result.counters.moved, result.counters.added, result.counters.missing) == (30, 0, 0)


def albums_with_a_cover(root: Path, scan) -> Path:
    """Albums A and B of one real track each, A with its cover.jpg; scanned with tags."""
    from conftest import DATA
    write(root / "A" / "01.mp3", (DATA / "id3v24.mp3").read_bytes())
    write(root / "B" / "01.mp3", (DATA / "id3v23.mp3").read_bytes())
    shutil.copyfile(DATA / "cover.jpg", root / "A" / "cover.jpg")
    scan(root, **{"metadata.enabled": True})
    return root


def test_a_cover_image_moved_is_its_new_folders_cover(tmp_path, scan):
    root = albums_with_a_cover(tmp_path / "music", scan)
    (root / "A" / "cover.jpg").rename(root / "B" / "cover.jpg")

    scan(root, **{"metadata.enabled": True})

    with connect(scan.db) as conn:
        covers = dict(conn.execute("SELECT f.dir, c.artwork_hash IS NOT NULL FROM file_cover c "
                                   "JOIN files f ON f.id = c.file_id WHERE f.kind = 'audio'"))
        folders = [r[0] for r in conn.execute("SELECT dir FROM folder_artwork")]
    assert covers == {str(root / "A"): 0, str(root / "B"): 1}
    assert folders == [str(root / "B")]


def test_a_cover_renamed_to_another_name_is_no_cover_and_an_image_renamed_to_cover_is(
        tmp_path, scan):
    root = albums_with_a_cover(tmp_path / "music", scan)
    (root / "A" / "cover.jpg").rename(root / "A" / "scan 1.jpg")
    scan(root, **{"metadata.enabled": True})
    with connect(scan.db) as conn:
        assert conn.execute("SELECT count(*) FROM folder_artwork").fetchone()[0] == 0

    (root / "A" / "scan 1.jpg").rename(root / "A" / "folder.jpg")
    scan(root, **{"metadata.enabled": True})

    with connect(scan.db) as conn:
        assert [r[0] for r in conn.execute("SELECT dir FROM folder_artwork")] == [str(root / "A")]


def test_a_file_that_got_a_deleted_files_inode_number_and_then_its_path_keeps_its_own_id(
        fresh_fs, scan):
    """The inode number of a deleted file goes to the next new file (ext4, tmpfs): at the
    deleted file's path, that number is no proof that the file is the deleted one."""
    root = fresh_fs / "music"
    for n in range(4):
        write(root / "Album" / f"{n:02d}.flac", f"track {n}".encode() * 50)
    old = root / "Album" / "00.flac"
    scan(root)
    newcomer = reuse_inode_of(old, "new", b"a new file, not the deleted one",
                              fresh_fs / "fillers")
    scan(root)
    its_id = ids(scan.db)[str(newcomer)]
    deleted_id = files(scan.db)[str(old)]["id"]
    newcomer.rename(old)  # onto the path of the file whose inode number it has

    scan(root)

    assert ids(scan.db)[str(old)] == its_id != deleted_id
    assert changes(scan.db)[-2:] == [("purged", str(old), None), ("moved", str(old), str(newcomer))]


def test_a_file_renamed_again_before_its_scan_placed_it_is_left_for_the_next_not_made_new(
        root, scan):
    """The service's race: a folder renamed twice in a second, a file in it edited; the
    scan of the middle name reads the file, which has moved on when the scan places it."""
    from indexer import catalog
    from indexer.records import Hashed, Seen, Settle
    from indexer.writer import Writer
    scan(root)
    before = ids(scan.db)
    first = root / "Album" / "01.flac"
    middle, last = root / "Album (remaster)", root / "Album (remaster 2)"
    (root / "Album").rename(middle)
    with open(middle / "01.flac", "ab") as handle:  # edited: its content is no proof
        handle.write(b" retagged")
    st = os.stat(middle / "01.flac")
    seen = Seen(str(root), str(middle / "01.flac"), st.st_size, st.st_mtime_ns, st.st_ino,
                st.st_dev, st.st_ctime_ns, "audio")
    middle.rename(last)  # moved on before the scan of `middle` placed it
    with catalog.open_for_writing(scan.db) as conn:
        writer = Writer(conn)
        writer.start_job("watch", "sequential", [str(root)])
        writer.put(Hashed(seen, digest(last / "01.flac"), None, hold=True))
        writer.put(Settle((), (str(root),)))
        writer.finish("completed", None)
    assert str(middle / "01.flac") not in files(scan.db)  # no row for a file not there

    scan(root)

    assert ids(scan.db)[str(last / "01.flac")] == before[str(first)]


def test_files_held_under_a_root_the_scan_found_unmounted_are_left_for_the_next_not_made_new(
        root, scan):
    """The service's race (met by the soak under load): a folder renamed, the disk
    unmounted as the scan's walks end, so that the root looks unmounted and none of its
    rows is vacated, then mounted again before the writer places the folder's files."""
    from indexer import catalog
    from indexer.records import Hashed, Seen, Settle
    from indexer.writer import Writer
    scan(root)
    before = ids(scan.db)
    renamed = root / "Album (remaster)"
    (root / "Album").rename(renamed)
    with catalog.open_for_writing(scan.db) as conn:
        writer = Writer(conn)
        writer.start_job("watch", "sequential", [str(root)])
        for n in range(4):
            st = os.stat(renamed / f"{n:02d}.flac")
            writer.put(Hashed(Seen(str(root), str(renamed / f"{n:02d}.flac"), st.st_size,
                                   st.st_mtime_ns, st.st_ino, st.st_dev, st.st_ctime_ns,
                                   "audio"), digest(renamed / f"{n:02d}.flac"), None, hold=True))
        writer.put(Settle((), ()))  # nothing gone, no root mounted: it looked unmounted
        writer.finish("completed", None)
    assert ids(scan.db) == before  # neither placed nor new: which rows they are is unknown

    scan(root)

    assert ids(scan.db) == {path.replace(str(root / "Album"), str(renamed)): i
                            for path, i in before.items()}


def test_a_file_a_scan_saw_at_two_paths_keeps_its_id_at_the_path_that_holds_it(root, scan):
    """The service's race: a folder renamed (its files keep their ctime) and walked, then
    a file of it moved to a folder the same scan walks later."""
    from indexer import catalog
    from indexer.records import Hashed, Seen, Settle
    from indexer.writer import Writer
    scan(root)
    before = ids(scan.db)
    renamed, elsewhere = root / "Album (remaster)", root / "Other"
    (root / "Album").rename(renamed)
    elsewhere.mkdir()

    def sighting(path: Path) -> Hashed:
        st = os.stat(path)
        return Hashed(Seen(str(root), str(path), st.st_size, st.st_mtime_ns, st.st_ino,
                           st.st_dev, st.st_ctime_ns, "audio"), digest(path), None, hold=True)
    first = sighting(renamed / "01.flac")
    (renamed / "01.flac").rename(elsewhere / "01.flac")
    with catalog.open_for_writing(scan.db) as conn:
        writer = Writer(conn)
        writer.start_job("watch", "sequential", [str(root)])
        for item in (first, sighting(elsewhere / "01.flac"), *(
                sighting(renamed / f"{n:02d}.flac") for n in (0, 2, 3))):
            writer.put(item)
        writer.put(Settle((), (str(root),)))
        writer.finish("completed", None)

    assert ids(scan.db)[str(elsewhere / "01.flac")] == before[str(root / "Album" / "01.flac")]
    assert {path: i for path, i in ids(scan.db).items()} == {
        path.replace(str(root / "Album" / "01.flac"), str(elsewhere / "01.flac"))
        .replace(str(root / "Album"), str(renamed)): i for path, i in before.items()}
