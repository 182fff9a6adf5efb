"""bench/mpd_server.py, which runs MPD as the benchmark's peer: what it says and parses
without MPD, and, where mpd and mpc are installed, a real server on a few tracks that
reads them, counts them and writes only in its own folder."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))

import changes  # noqa: E402
from mpd_server import (MpdError, MpdServer, config_text, empty_database, find_mpd,  # noqa: E402
                        parse_response, parse_version, quote_arg, quote_path, song_count)

DATA = Path(__file__).resolve().parent / "data"


def test_the_version_is_read_from_the_first_line_of_mpd_version():
    said = "Music Player Daemon 0.23.12 (0.23.12)\nCopyright 2003-2007 Warren Dukes\n"

    assert (parse_version(said), parse_version("mpd: unknown option")) == ("0.23.12", "?")


def test_an_answer_is_its_pairs_up_to_ok_and_an_ack_raises():
    status = ["volume: -1", "updating_db: 3", "state: stop", "OK"]

    assert parse_response(status) == [("volume", "-1"), ("updating_db", "3"), ("state", "stop")]
    with pytest.raises(MpdError, match="No such directory"):
        parse_response(['ACK [50@0] {lsinfo} No such directory'])
    with pytest.raises(MpdError, match="before its OK"):
        parse_response(["file: a.mp3"])


def test_arguments_are_quoted_with_backslash_and_quote_escaped():
    assert quote_arg('Artist "X"\\Live') == '"Artist \\"X\\"\\\\Live"'


def test_the_config_reads_the_library_and_writes_only_in_its_folder(tmp_path):
    folder, music = tmp_path / "mpd", tmp_path / "music"

    text = config_text(folder, music, 6601, auto_update=True, depth=2)

    written = [line.split(" ", 1)[1].strip('"') for line in text.splitlines()
               if line.split(" ", 1)[0] in ("db_file", "state_file", "pid_file", "log_file")]
    assert [Path(w).parent for w in written] == [folder] * 4
    for line in (f'music_directory "{music}"', 'bind_to_address "127.0.0.1"', 'port "6601"',
                 'zeroconf_enabled "no"', 'auto_update "yes"', 'auto_update_depth "2"',
                 '  type "null"'):
        assert line in text.splitlines()


def test_a_path_mpd_conf_cannot_hold_as_written_is_refused(tmp_path):
    with pytest.raises(SystemExit, match="must not hold quotes"):
        quote_path(tmp_path / 'say "hi"')


MPD = find_mpd()


@pytest.mark.skipif(MPD is None, reason="mpd and mpc not installed (apt-get install mpd mpc)")
def test_a_real_mpd_updates_from_an_empty_database_and_leaves_the_library_as_it_was(tmp_path):
    music = tmp_path / "music" / "Artist" / "Album"
    music.mkdir(parents=True)
    for name in ("id3v24.mp3", "tone.flac", "tone.ogg", "cover.jpg"):
        shutil.copyfile(DATA / name, music / name)
    before = changes.snapshot(tmp_path / "music")
    empty = empty_database(MPD, tmp_path / "template")
    server = MpdServer(MPD, tmp_path / "mpd", tmp_path / "music")
    try:
        server.start(empty)
        assert song_count(server) == 0
        log = server.log_size()

        subprocess.run(server.update_cmd(), check=True, timeout=60)

        assert (song_count(server), server.log_count(log, "added")) == (3, 3)
        assert server.cpu_seconds() >= 0 and server.peak_rss_mib() > 0
    finally:
        server.stop()
    assert changes.snapshot(tmp_path / "music") == before
