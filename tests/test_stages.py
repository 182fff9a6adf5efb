"""The stages on their own: the pure plan, the hasher's held-still check, the writer's
batches. Real files and a real SQLite catalogue; plain values for the pure parts."""

from __future__ import annotations

import os
import sqlite3
import threading
from pathlib import Path

import pytest
import xxhash
from hypothesis import given, strategies as st

from conftest import wait_for
from indexer import catalog
from indexer.hashing import Hasher, plan_folder
from indexer.paths import db_text
from indexer.records import FileFailure, Gone, Hashed, Known, Seen, Stored, ToHash, Unstable
from indexer.writer import Writer, WriterFailed


def seen(path="/m/a.mp3", size=10, mtime=1, inode=5, device=1, ctime=3) -> Seen:
    return Seen("/m", path, size, mtime, inode, device, ctime, "audio")


def known(path="/m/a.mp3", size=10, mtime=1, inode=5, device=1, hash="h", status="present",
          id=1, error=False, ctime=3) -> Known:
    ready = hash is not None and not error and status == "present"
    return Known(path, size, mtime, inode, device, ready, id, hash, status, error, None, ctime)


# --- the plan: the cheap check first

def plan(files, rows: list[Known], **options):
    """plan_folder over rows as the catalogue streams them, whole rows on demand."""
    by_id = {row.id: row for row in rows}
    stored = {db_text(row.path)[0]: Stored(
        db_text(row.path)[0], row.size, row.mtime_ns, row.inode, row.device,
        row.ctime_ns, row.ready, row.id,
        row.status == "present", "/m") for row in rows}
    return plan_folder(files, stored, whole_row=by_id.__getitem__, **options)


def test_an_unchanged_file_needs_no_read():
    result = plan([seen()], [known()])
    assert (result.unchanged, result.to_hash, result.known, result.gone) == (1, [], [], [])


@pytest.mark.parametrize("change", [dict(size=11), dict(mtime=2), dict(inode=6), dict(ctime=4)])
def test_a_new_size_mtime_inode_or_ctime_means_a_read(change):
    assert plan([seen(**change)], [known()]).to_hash == [ToHash(seen(**change), known())]


def test_a_row_from_before_ctimes_were_kept_is_given_its_ctime_without_a_read():
    row = known(ctime=None)
    assert plan([seen(ctime=99)], [row]).known == [Hashed(seen(ctime=99), "h", row)]


@pytest.mark.parametrize("row", [known(hash=None), known(error=True)])
def test_a_row_without_hash_or_with_an_error_is_read_again(row):
    assert plan([seen()], [row]).to_hash == [ToHash(seen(), row)]


def test_smart_hash_off_reads_everything():
    assert len(plan([seen()], [known()], smart=False).to_hash) == 1


def test_a_missing_row_found_again_unchanged_is_restored_without_a_read():
    row = known(status="missing")
    assert plan([seen()], [row]).known == [Hashed(seen(), "h", row)]


def test_a_remounted_disk_with_a_new_device_number_is_not_read_again():
    row = known(device=7)
    assert plan([seen()], [row]).known == [Hashed(seen(), "h", row)]


def test_a_new_path_with_a_known_inode_size_mtime_and_ctime_inherits_the_hash_held():
    twin = known(path="/m/old.mp3", id=7)
    assert plan([seen()], [], by_inode=lambda s: twin).known == [
        Hashed(seen(), "h", None, hold=True)]


@pytest.mark.parametrize("change", [dict(size=99), dict(ctime=4), dict(mtime=0)])
def test_a_new_path_with_a_known_inode_but_other_figures_is_read(change):
    twin = known(path="/m/old.mp3", id=7, **change)
    assert plan([seen()], [], by_inode=lambda s: twin).to_hash == [ToHash(seen(), None)]


def test_rows_not_seen_are_gone_but_not_those_the_walk_could_not_stat():
    rows = [known(), known(path="/m/b.mp3", id=2), known(path="/m/c.mp3", id=3),
            known(path="/m/d.mp3", id=4, status="missing")]
    assert plan([seen()], rows, unknown_paths=["/m/c.mp3"]).gone == [Gone(2, "/m/b.mp3", 1, 5)]


names = st.text(st.characters(blacklist_characters="/\0", blacklist_categories=("Cs",))
                | st.sampled_from(["\udcff", "\udce9"]), min_size=1, max_size=8)


@given(on_disk=st.dictionaries(names, st.integers(0, 3), max_size=8),
       in_catalogue=st.dictionaries(names, st.integers(0, 3), max_size=8))
def test_every_file_and_row_gets_exactly_one_fate(on_disk, in_catalogue):
    """Each file seen is unchanged, to read or known; each row not seen is gone."""
    files = [seen(f"/m/{n}", size=s) for n, s in on_disk.items()]
    rows = [known(f"/m/{n}", size=s, id=i) for i, (n, s) in enumerate(in_catalogue.items())]
    result = plan(files, rows)
    assert result.unchanged + len(result.to_hash) + len(result.known) == len(files)
    assert result.unchanged == sum(1 for n, s in on_disk.items() if in_catalogue.get(n) == s)
    assert {g.path for g in result.gone} == {db_text(f"/m/{n}")[0] for n in in_catalogue
                                             if n not in on_disk}


# --- the hasher: trust a read only if the file held still

def file_seen(path: Path) -> Seen:
    info = path.stat()
    return Seen(str(path.parent), str(path), info.st_size, info.st_mtime_ns, info.st_ino,
                info.st_dev, info.st_ctime_ns, "audio")


def test_the_hash_is_xxh3_128_of_the_whole_content(tmp_path):
    path = tmp_path / "a.flac"
    path.write_bytes(os.urandom(3 * 1024 * 1024 + 17))
    result = Hasher(64)(ToHash(file_seen(path)))
    assert result.hash == xxhash.xxh3_128(path.read_bytes()).hexdigest()
    assert result.bytes_read == path.stat().st_size


def read_position(path: Path) -> int:
    """How far this process has read `path`, from /proc: 0 until it is open and read."""
    for fd in os.listdir("/proc/self/fd"):
        try:
            if os.readlink(f"/proc/self/fd/{fd}") == str(path):
                with open(f"/proc/self/fdinfo/{fd}") as info:
                    return int(info.readline().split()[1])
        except OSError:
            continue
    return 0


def test_a_file_growing_while_it_is_read_is_unstable_not_hashed(tmp_path):
    path = tmp_path / "copying.flac"
    path.write_bytes(b"\0" * 512 * 1024)
    item = ToHash(file_seen(path))
    results = []
    # Throttled to ~2 s, so the file is surely appended to after the first chunk, mid-read.
    reading = threading.Thread(target=lambda: results.append(Hasher(64, max_read_mib_s=0.25)(item)))
    reading.start()
    wait_for(lambda: read_position(path) > 0, what="the hasher to start reading")
    with open(path, "ab") as handle:  # a copy still running
        handle.write(b"more")
    reading.join()
    assert isinstance(results[0], Unstable)


def test_a_vanished_file_is_a_failure_marked_vanished(tmp_path):
    result = Hasher()(ToHash(seen(str(tmp_path / "gone.mp3"))))
    assert isinstance(result, FileFailure) and result.vanished


def test_a_fifo_swapped_in_after_the_walk_is_refused_without_blocking(tmp_path):
    path = tmp_path / "swap.mp3"
    os.mkfifo(path)
    result = Hasher()(ToHash(seen(str(path))))
    assert isinstance(result, FileFailure) and "not a regular file" in result.error


def test_a_stop_during_a_read_drops_the_result(tmp_path):
    path = tmp_path / "big.flac"
    path.write_bytes(b"\0" * 4 * 1024 * 1024)
    stop = threading.Event()
    stop.set()
    assert Hasher(64, stop=stop)(ToHash(file_seen(path))) is None


# --- the writer: one transaction per batch, nothing half-written

@pytest.fixture
def writer_conn(tmp_path):
    with catalog.open_for_writing(tmp_path / "w.db") as conn:
        yield conn


def hashed(n: int) -> Hashed:
    return Hashed(Seen("/m", f"/m/{n}.mp3", n, n, n, 1, n, "audio"), f"h{n}")


def committed(conn) -> int:
    with sqlite3.connect(conn.execute("PRAGMA database_list").fetchone()[2]) as other:
        return other.execute("SELECT count(*) FROM files").fetchone()[0]


def test_rows_are_committed_in_batches_of_batch_size(writer_conn):
    writer = Writer(writer_conn, batch_size=3, max_delay=60)
    writer.start_job("full", "sequential", ["/m"])
    seen_by_reader = []
    for n in range(7):
        writer.put(hashed(n))
        seen_by_reader.append(committed(writer_conn))
    assert seen_by_reader == [0, 0, 3, 3, 3, 6, 6]
    writer.finish("completed")
    assert committed(writer_conn) == 7


def test_a_lone_result_is_committed_after_the_maximum_delay(writer_conn):
    writer = Writer(writer_conn, batch_size=100, max_delay=0.0)
    writer.start_job("full", "sequential", ["/m"])
    writer.put(hashed(1))
    assert committed(writer_conn) == 1


def test_a_failed_batch_is_rolled_back_whole_and_the_writer_takes_no_more(writer_conn):
    writer_conn.execute("CREATE TRIGGER poison BEFORE INSERT ON files WHEN new.path LIKE '%/4.mp3' "
                        "BEGIN SELECT RAISE(ABORT, 'disk says no'); END")
    writer = Writer(writer_conn, batch_size=3, max_delay=60)
    writer.start_job("full", "sequential", ["/m"])
    for n in range(3):
        writer.put(hashed(n))
    with pytest.raises(WriterFailed, match="disk says no"):  # by the batch's commit at the latest
        for n in range(3, 6):
            writer.put(hashed(n))
    with pytest.raises(WriterFailed):
        writer.put(hashed(6))
    assert committed(writer_conn) == 3  # the first batch; none of the failed one
    writer.finish("failed", "disk says no")
    status = writer_conn.execute("SELECT status, added FROM scan_jobs").fetchone()
    assert status == ("failed", 3)


def test_the_job_totals_are_committed_with_the_rows_they_count(writer_conn):
    writer = Writer(writer_conn, batch_size=2, max_delay=60)
    job_id = writer.start_job("full", "sequential", ["/m"])
    for n in range(4):
        writer.put(hashed(n))
    path = writer_conn.execute("PRAGMA database_list").fetchone()[2]
    with sqlite3.connect(path) as other:
        added, rows = other.execute("SELECT added, (SELECT count(*) FROM files) FROM scan_jobs "
                                    "WHERE id = ?", (job_id,)).fetchone()
    assert added == rows == 4


def test_the_writer_records_a_second_name_with_the_same_text_and_writes_the_first(writer_conn):
    """The safety net behind the survey's own check (survey.py `_one_per_text`)."""
    writer = Writer(writer_conn, batch_size=10, max_delay=60)
    writer.start_job("full", "sequential", ["/m"])
    literal = Seen("/m", "/m/\\xff.mp3", 1, 1, 1, 1, 1, "audio")
    byte = literal._replace(path=os.fsdecode(b"/m/\xff.mp3"), inode=2)
    writer.put(Hashed(literal, "h1"))
    writer.put(Hashed(byte, "h2"))
    writer.finish("completed")
    assert writer_conn.execute("SELECT path, path_raw, hash FROM files").fetchall() == [
        ("/m/\\xff.mp3", None, "h1")]
    assert writer_conn.execute("SELECT stage FROM scan_errors").fetchall() == [("write",)]


def test_tags_are_never_copied_from_a_source_that_holds_another_contents_tags(writer_conn):
    """A copy's tags come from a file with the same content; if that file changed (and its
    tags were read again) before the copy is written, nothing is copied: read next scan."""
    from indexer import media_rows
    from indexer.records import CopyTags
    writer = Writer(writer_conn, batch_size=100, max_delay=60)
    writer.start_job("full", "sequential", ["/m"])
    writer.put(hashed(1))
    writer.put(Hashed(Seen("/m", "/m/copy.mp3", 1, 1, 9, 1, 1, "audio"), "h1"))
    writer.finish("completed")
    source = writer_conn.execute("SELECT id FROM files WHERE path = '/m/1.mp3'").fetchone()[0]
    writer_conn.execute("UPDATE files SET hash = 'h2', tags_hash = 'h2' WHERE id = ?", (source,))
    writer_conn.execute("INSERT INTO media (file_id, content_hash, title, extracted_at) "
                        "VALUES (?, 'h2', 'the new content', 'now')", (source,))

    assert media_rows.copy_tags(writer_conn, CopyTags("/m/copy.mp3", "h1", source), "now") is None
    assert writer_conn.execute("SELECT tags_hash FROM files WHERE path = '/m/copy.mp3'"
                               ).fetchone()[0] is None
    assert writer_conn.execute("SELECT count(*) FROM media").fetchone()[0] == 1
