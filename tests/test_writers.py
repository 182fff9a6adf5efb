"""Whether a file is still held open for writing, by the kernel's word (writers.py), and
what a scan makes of it: real files, real writer processes, real leases."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from watchdog.events import DirCreatedEvent, FileCreatedEvent

from indexer import writers
from indexer.survey import Settings, Signals, Survey, whole
from indexer.watch import Closes, _Handler

S = 10 ** 9


@pytest.fixture
def breaks_ignored():
    """SIGIO ignored, as `indexer run` has it; as it was, after."""
    before = signal.signal(signal.SIGIO, signal.SIG_IGN)
    yield
    signal.signal(signal.SIGIO, before)


class Writer:
    """Another process holding a file open for writing (appending, or through a shared
    mapping with its descriptor closed) until told to stop."""

    def __init__(self, path: Path, how: str = "append"):
        code = {
            "append": "f = open(p, 'ab'); f.write(b'more'); f.flush()",
            "mapping": "import mmap, os; fd = os.open(p, os.O_RDWR); m = mmap.mmap(fd, 4); "
                       "os.close(fd); m[0:1] = b'z'",
        }[how]
        self.proc = subprocess.Popen(
            [sys.executable, "-c", f"import sys; p = {str(path)!r}; {code}; print('ready', "
             "flush=True); sys.stdin.read()"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        assert self.proc.stdout.readline().strip() == "ready"

    def close(self) -> None:
        self.proc.stdin.close()
        self.proc.wait(timeout=10)


def song(folder: Path, name: str, data: bytes = b"ID3" + b"\0" * 200) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_bytes(data)
    return path


@pytest.mark.parametrize("how", ["append", "mapping"])
def test_a_file_is_unwritten_only_once_no_process_holds_it_for_writing(tmp_path, breaks_ignored,
                                                                        how):
    path = song(tmp_path, "01.flac")
    assert writers.unwritten(str(path)) is True
    writer = Writer(path, how)
    try:
        assert writers.unwritten(str(path)) is False
        with open(path, "rb"):  # a reader changes nothing
            assert writers.unwritten(str(path)) is False
    finally:
        writer.close()
    assert writers.unwritten(str(path)) is True
    assert path.read_bytes()[:1] in (b"I", b"z")  # (asking took no lease that stayed)


def test_without_sigio_ignored_the_kernel_is_never_asked(tmp_path):
    path = song(tmp_path, "01.flac")
    assert signal.getsignal(signal.SIGIO) == signal.SIG_DFL  # as pytest leaves it
    assert not writers.usable() and writers.unwritten(str(path)) is None


def test_no_answer_for_what_is_not_a_regular_file_of_ones_own_or_is_gone(tmp_path, breaks_ignored):
    assert writers.unwritten(str(tmp_path)) is None  # a folder
    assert writers.unwritten(str(tmp_path / "gone.flac")) is None
    link = tmp_path / "link.flac"
    link.symlink_to(song(tmp_path, "01.flac"))
    assert writers.unwritten(str(link)) is None
    fifo = tmp_path / "pipe.flac"
    os.mkfifo(fifo)  # opened without waiting for a writer, and no lease on it
    assert writers.unwritten(str(fifo)) is None


def test_a_name_that_is_not_utf8_is_asked_like_any_other(tmp_path, breaks_ignored):
    path = os.fsdecode(os.fsencode(str(tmp_path)) + b"/caf\xe9.flac")
    Path(path).write_bytes(b"ID3")
    assert writers.unwritten(path) is True


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to become another user")
def test_another_users_file_gets_no_answer_without_cap_lease(tmp_path):
    path = song(tmp_path, "01.flac")
    tmp_path.chmod(0o755)
    code = ("import sys; sys.path[:0] = sys.argv[1:2]; from indexer import writers; "
            "writers.ignore_breaks(); print(writers.unwritten(sys.argv[2]))")
    result = subprocess.run(
        ["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups", "--inh-caps=-all",
         sys.executable, "-c", code, str(Path(__file__).parent.parent), str(path)],
        capture_output=True, text=True, timeout=30)
    assert result.stdout.strip() == "None", result.stderr


def survey_of(root: Path, signals: Signals) -> Survey:
    now = time.time_ns()
    settings = Settings(("audio",), (), False, True, True, None, now - 5 * S, now, signals)
    survey = Survey(whole(str(root)), settings, None, threading.Event())
    for _ in survey:
        pass
    return survey


def test_a_copy_that_ended_before_its_folders_watch_is_taken_at_once_but_a_file_still_open(
        tmp_path, breaks_ignored):
    album = tmp_path / "music" / "Album"
    done = [song(album, f"{n:02d}.flac") for n in (1, 2)]
    open_one = song(album, "03.flac")
    writer = Writer(open_one)
    try:
        said = Closes()
        said.armed(str(album))  # the watch began after the copy wrote these: no events
        survey = survey_of(tmp_path / "music", said.recent(10 * S, S))
        assert survey.unsettled_files == {(open_one.stat().st_dev, open_one.stat().st_ino)}
        assert set(survey.unsettled) == {str(album)}
    finally:
        writer.close()
    survey = survey_of(tmp_path / "music", said.recent(10 * S, S))
    assert not survey.unsettled and done  # closed since: every file taken


def test_a_file_a_writer_still_holds_open_is_not_taken_once_it_held_still_for_the_debounce(
        tmp_path, breaks_ignored):
    album = tmp_path / "music" / "Album"
    part = song(album, "01.flac")  # a copier wrote part of it before the watch began,
    writer = Writer(part)  # and holds it open, stalled
    try:
        said = Closes()
        said.armed(str(album))
        hold = S // 5  # a short debounce, and a file that has held still for longer
        deadline = time.monotonic() + 10
        while time.time_ns() - part.stat().st_ctime_ns <= 2 * hold:
            assert time.monotonic() < deadline
            time.sleep(0.01)
        survey = survey_of(tmp_path / "music", said.recent(10 * S, hold))
        assert survey.unsettled_files == {(part.stat().st_dev, part.stat().st_ino)}
    finally:
        writer.close()


def test_without_an_answer_the_copy_holds_still_for_the_debounce_as_before(tmp_path):
    album = tmp_path / "music" / "Album"
    song(album, "01.flac")
    said = Closes()
    said.armed(str(album))
    survey = survey_of(tmp_path / "music", said.recent(10 * S, 60 * S))  # a long debounce
    assert set(survey.unsettled) == {str(album)}  # SIGIO not ignored: no lease asked


def test_a_folder_made_while_watched_is_looked_at_soon_only_if_the_kernel_can_be_asked(
        tmp_path):
    touched = []
    handler = _Handler(str(tmp_path), lambda place, complete=False: touched.append(complete),
                       ())
    (tmp_path / "New").mkdir()
    handler.on_any_event(DirCreatedEvent(str(tmp_path / "New")))
    before = signal.signal(signal.SIGIO, signal.SIG_IGN)
    try:
        handler.on_any_event(DirCreatedEvent(str(tmp_path / "New")))
    finally:
        signal.signal(signal.SIGIO, before)
    assert touched == [False, True]


def test_the_files_watchdog_finds_in_a_new_folder_are_looked_at_soon_only_if_the_kernel_can_be_asked(
        tmp_path):
    """watchdog reports "created" for each file already in a folder when its watch
    begins: a copy that ended before that has only those events."""
    touched = []
    handler = _Handler(str(tmp_path), lambda place, complete=False: touched.append(complete),
                       ())
    song(tmp_path / "New", "01.flac")
    handler.on_any_event(DirCreatedEvent(str(tmp_path / "New")))
    handler.on_any_event(FileCreatedEvent(str(tmp_path / "New" / "01.flac")))
    before = signal.signal(signal.SIGIO, signal.SIG_IGN)
    try:
        handler.on_any_event(FileCreatedEvent(str(tmp_path / "New" / "01.flac")))
    finally:
        signal.signal(signal.SIGIO, before)
    song(tmp_path / "Old", "01.flac")  # a folder not made while watched: its own events
    handler.on_any_event(FileCreatedEvent(str(tmp_path / "Old" / "01.flac")))
    assert touched == [False, False, True, False]
