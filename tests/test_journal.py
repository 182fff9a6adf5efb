"""Log lines carry journald's priority prefixes (`<4>...`) only when stderr is the stream
that $JOURNAL_STREAM names (systemd.exec(5)): the variable is inherited, so a command
run from a unit with its stderr sent to a file must write plain lines there."""

from __future__ import annotations

import os
import re
import subprocess
import sys

from conftest import cli_env

PRIORITY = re.compile(r"<\d>")


def stderr_lines(tmp_path, library, journal_stream: str | None) -> list[str]:
    """The stderr of `indexer scan` (with a root that is offline: a warning is logged),
    sent to a file; JOURNAL_STREAM is `journal_stream`, or the file's own DEVICE:INODE."""
    log = tmp_path / "stderr.log"
    with open(log, "wb") as err:
        info = os.fstat(err.fileno())
        env = cli_env(tmp_path, INDEXER_DB=str(tmp_path / "library.db"),
                      JOURNAL_STREAM=journal_stream or f"{info.st_dev}:{info.st_ino}")
        subprocess.run([sys.executable, "-m", "indexer", "scan", str(library),
                        str(tmp_path / "offline")], env=env, stdin=subprocess.DEVNULL,
                       stdout=subprocess.DEVNULL, stderr=err, timeout=60, check=True)
    return log.read_text().splitlines()


def test_with_stderr_sent_to_a_file_log_lines_have_no_journal_prefix(tmp_path, library):
    elsewhere = os.stat(tmp_path)  # a real stream's numbers, but not stderr's
    lines = stderr_lines(tmp_path, library, f"{elsewhere.st_dev}:{elsewhere.st_ino}")
    assert lines and all(line.startswith("indexer: ") for line in lines), lines


def test_when_stderr_is_the_stream_journal_stream_names_lines_have_its_prefix(tmp_path, library):
    lines = stderr_lines(tmp_path, library, None)
    assert lines and all(PRIORITY.match(line) for line in lines), lines
    assert any(line.startswith("<4>root ") for line in lines), lines  # a warning: priority 4


def test_a_journal_stream_that_is_not_device_and_inode_is_not_the_journal(tmp_path, library):
    lines = stderr_lines(tmp_path, library, "journal")
    assert lines and not any(PRIORITY.match(line) for line in lines), lines
