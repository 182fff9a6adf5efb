"""The command line, as a user runs it: real processes, real output, real exit codes."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import threading

from watchdog.events import FileOpenedEvent, FileSystemEventHandler
from watchdog.observers.inotify import InotifyObserver

from indexer import schema
from conftest import cli_env, connect, files, indexer, make_library, wait_for


def test_scan_json_prints_only_the_summary_object(library, tmp_path):
    env = cli_env(tmp_path, INDEXER_DB=str(tmp_path / "l.db"))
    result = indexer("scan", library, "--json", env=env, check=True)
    summary = json.loads(result.stdout)
    assert result.stdout.count("\n") == 1
    assert set(summary) == {"job_id", "status", "added", "modified", "moved", "missing", "restored",
                            "unchanged", "skipped", "errors", "files_found", "files_processed",
                            "bytes_processed", "duration_s", "files_per_s", "warnings",
                            "metadata_queued", "metadata_extracted", "metadata_copied",
                            "metadata_failed"}
    assert (summary["status"], summary["added"], summary["files_found"]) == ("completed", 15, 15)


def test_scan_prints_a_human_summary_and_uses_the_default_catalogue_place(library, tmp_path):
    env = cli_env(tmp_path)
    result = indexer("scan", library, env=env, check=True)
    assert "scan completed" in result.stdout and "added 15" in result.stdout
    assert (tmp_path / "xdg-data" / "indexer" / "library.db").exists()


def test_scan_with_every_root_unusable_exits_1_and_records_the_job(tmp_path):
    db = tmp_path / "l.db"
    result = indexer("scan", tmp_path / "nowhere", "--db", db, "--json", env=cli_env(tmp_path))
    assert result.returncode == 1
    assert "does not exist" in result.stderr
    with connect(db) as conn:
        assert conn.execute("SELECT status FROM scan_jobs").fetchone()[0] == "failed"


def test_scan_without_any_root_is_a_usage_error(tmp_path):
    result = indexer("scan", "--db", tmp_path / "l.db", env=cli_env(tmp_path))
    assert result.returncode == 2 and "library.roots" in result.stderr


def test_status_shows_jobs_and_totals(library, tmp_path):
    env = cli_env(tmp_path, INDEXER_DB=str(tmp_path / "l.db"))
    indexer("scan", library, env=env, check=True)
    text = indexer("status", env=env, check=True).stdout
    assert "audio  12" in text and "image  3" in text
    assert "#1   completed  full" in text
    report = json.loads(indexer("status", "--json", env=env, check=True).stdout)
    assert report["files"] == {"audio": {"present": 12, "missing": 0},
                               "image": {"present": 3, "missing": 0}}
    assert report["jobs"][0]["status"] == "completed"
    assert report["schema_version"] == schema.VERSION


def test_status_before_any_scan_says_so(tmp_path):
    result = indexer("status", "--db", tmp_path / "none.db", env=cli_env(tmp_path))
    assert result.returncode == 1 and "run `indexer scan` first" in result.stderr


def test_ls_lists_present_missing_and_erroneous_files(library, tmp_path):
    env = cli_env(tmp_path, INDEXER_DB=str(tmp_path / "l.db"))
    indexer("scan", library, env=env, check=True)
    gone = next(library.rglob("*.opus"))
    gone.unlink()
    indexer("scan", library, env=env, check=True)

    present = indexer("ls", env=env, check=True).stdout.splitlines()
    missing = indexer("ls", "--missing", "--json", env=env, check=True).stdout.splitlines()
    assert len(present) == 14 and all(line.startswith("present") for line in present)
    assert [json.loads(line)["path"] for line in missing] == [str(gone)]
    assert indexer("ls", "--errors", env=env, check=True).stdout == ""


def test_show_prints_one_row_with_the_relative_path_made_absolute(library, tmp_path):
    env = cli_env(tmp_path, INDEXER_DB=str(tmp_path / "l.db"))
    indexer("scan", library, env=env, check=True)
    song = next(library.rglob("*.flac"))
    result = subprocess.run([sys.executable, "-m", "indexer", "show", song.name, "--json"],
                            cwd=song.parent, env=env, capture_output=True, text=True, check=True)
    record = json.loads(result.stdout)
    assert record["file"]["path"] == str(song) and record["file"]["size"] == song.stat().st_size
    assert record["media"]["title"] == "Tone_FLAC" and record["media"]["tags"]["title"] == ["Tone_FLAC"]
    assert "not in the catalogue" in indexer("show", "/no/such.mp3", env=env).stderr


def test_progress_goes_to_the_log_as_plain_lines_when_not_a_terminal(tmp_path):
    root = tmp_path / "music"
    root.mkdir()
    for n in range(12):
        (root / f"{n}.flac").write_bytes(bytes([n]) * 300_000)
    env = cli_env(tmp_path, INDEXER_DB=str(tmp_path / "l.db"), INDEXER_SCAN_MAX_READ_MIB_S="0.5")
    result = indexer("scan", root, env=env, check=True, timeout=60)  # ~7 s: one line at 5 s
    lines = [l for l in result.stderr.splitlines() if l.startswith("indexer: info: scan: ")]
    assert lines and "of 12 files" in lines[0] and "files/s" in lines[0]


def test_a_running_scan_shows_live_progress_in_its_job_row(tmp_path):
    root = tmp_path / "music"
    root.mkdir()
    for n in range(10):
        (root / f"{n}.flac").write_bytes(bytes([n]) * 200_000)
    db = tmp_path / "l.db"
    env = cli_env(tmp_path, INDEXER_DB=str(db), INDEXER_SCAN_MAX_READ_MIB_S="0.5")
    child = subprocess.Popen([sys.executable, "-m", "indexer", "scan", str(root)], env=env,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        def live():
            try:
                with connect(db) as conn:
                    return conn.execute("SELECT * FROM scan_jobs WHERE status = 'running' "
                                        "AND files_processed > 0 AND files_found = 10").fetchone()
            except sqlite3.OperationalError:
                return None
        row = wait_for(live, timeout=20, what="a running job with progress")
        assert 0 < row["progress"] < 100
        report = json.loads(indexer("status", "--json", env=env, check=True).stdout)
        assert report["jobs"][0]["status"] == "running"
    finally:
        child.wait(timeout=30)
    assert child.returncode == 0


class Opens(FileSystemEventHandler):
    def __init__(self):
        self.paths: list[str] = []
        self.lock = threading.Lock()

    def on_opened(self, event):
        if isinstance(event, FileOpenedEvent):
            with self.lock:
                self.paths.append(event.src_path)


def test_a_rescan_of_an_unchanged_library_opens_no_file(tmp_path):
    """Counted with inotify, from outside the indexer: not one media file is opened."""
    root = tmp_path / "music"
    root.mkdir()
    make_library(root, albums=4, tracks=5)
    env = cli_env(tmp_path, INDEXER_DB=str(tmp_path / "l.db"))
    indexer("scan", root, env=env, check=True)
    opens = Opens()
    observer = InotifyObserver()
    observer.schedule(opens, str(root), recursive=True)
    observer.start()
    try:
        marker = root / "marker"
        marker.touch()  # proves the watch is live before the rescan
        wait_for(lambda: (marker.open().close(), str(marker) in opens.paths)[1], what="watch live")
        with opens.lock:
            opens.paths.clear()
        summary = json.loads(indexer("scan", root, "--json", env=env, check=True).stdout)
        marker.open().close()  # events arrive in order: after this one, the rescan's are in
        wait_for(lambda: str(marker) in opens.paths, what="the marker's open event")
    finally:
        observer.stop()
        observer.join()
    assert [p for p in opens.paths if p != str(marker)] == []
    assert summary["unchanged"] == 24 and summary["bytes_processed"] == 0


def test_search_finds_by_artist_and_by_title_with_field_and_year_filters(library, tmp_path):
    env = cli_env(tmp_path, INDEXER_DB=str(tmp_path / "l.db"))
    indexer("scan", library, env=env, check=True)

    by_artist = indexer("search", "artist:Artist_B", "--json", env=env, check=True).stdout
    by_title = indexer("search", "Tone_Opus", env=env, check=True).stdout
    by_year = indexer("search", "year:2001", "album:Album_Four", "--json", env=env,
                      check=True).stdout

    assert sorted(json.loads(line)["title"] for line in by_artist.splitlines()) == [
        "Tone_FLAC", "Tone_FLAC", "Tone_Vorbis"]  # the library has tone.flac twice
    assert by_title.count("\n") == 1 and "Artist_C - Album_Three - 05 Tone_Opus" in by_title
    assert sorted(json.loads(line)["title"] for line in by_year.splitlines()) == [
        "Tone_AIFF", "Tone_WAV"]
    bad = indexer("search", "year:sixties", env=env)
    assert bad.returncode == 2 and "year:sixties" in bad.stderr


def test_ls_errors_lists_files_whose_tags_could_not_be_read_with_the_reason(library, tmp_path):
    (library / "Artist 0" / "broken.flac").write_text("not a FLAC file\n")
    env = cli_env(tmp_path, INDEXER_DB=str(tmp_path / "l.db"))
    summary = json.loads(indexer("scan", library, "--json", env=env, check=True).stdout)

    listed = indexer("ls", "--errors", env=env, check=True).stdout.splitlines()

    assert summary["metadata_failed"] == 1 and summary["status"] == "completed"
    assert len(listed) == 1 and "broken.flac" in listed[0]
    assert "[tags: FLACNoHeaderError:" in listed[0]
