"""Everyday use, as a new user meets it: the first scan leaves a configured library,
options go where users put them, every problem is one line with its fix and its
documented exit code, and output that scripts read behaves as scripts expect."""

from __future__ import annotations

import importlib.metadata
import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import cli_env, indexer, make_library

needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="drops root's capabilities")


def own_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    """A user with no configuration file at all, and the default catalogue."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("INDEXER_")}
    env.update(**extra)
    return env


def as_plain_user(*args: object, env: dict[str, str]) -> subprocess.CompletedProcess:
    """The command as root without its capabilities: file modes hold for it as for anyone."""
    return subprocess.run(["setpriv", "--bounding-set=-all", "--inh-caps=-all", sys.executable,
                           "-m", "indexer", *map(str, args)], env=env, capture_output=True,
                          text=True, timeout=60, stdin=subprocess.DEVNULL)


def one_line(result: subprocess.CompletedProcess, code: int, *words: str) -> None:
    assert result.returncode == code, result.stderr
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr, result.stderr
    assert result.stderr.startswith("indexer: error: ")
    assert all(word in result.stderr for word in words), result.stderr


# --- the first ten minutes


def test_the_first_scan_of_a_folder_makes_it_the_library_that_run_and_rescan_use(tmp_path):
    music = tmp_path / "My Music"
    make_library(music, albums=1, tracks=2)
    env = own_env(tmp_path)
    config = Path(os.environ["XDG_CONFIG_HOME"]) / "indexer" / "config.toml"

    first = indexer("scan", music, env=env, check=True)

    assert f"the library is {music}" in first.stderr and str(config) in first.stderr
    assert indexer("config", "--json", env=env, check=True).stdout.count(str(music)) == 1
    again = indexer("rescan", env=env, check=True)  # no service: it scans here, the same root
    assert "unchanged 3" in again.stdout
    elsewhere = tmp_path / "Other"
    make_library(elsewhere, albums=1, tracks=1)
    indexer("scan", elsewhere, env=env, check=True)  # a file now exists: it stays as it was
    assert str(elsewhere) not in config.read_text() and str(music) in config.read_text()


def test_a_scan_into_a_catalogue_of_its_own_or_with_a_config_file_records_nothing(tmp_path):
    music = tmp_path / "music"
    make_library(music, albums=1, tracks=1)
    config = Path(os.environ["XDG_CONFIG_HOME"]) / "indexer" / "config.toml"
    indexer("scan", music, "--db", tmp_path / "one-off.db", env=own_env(tmp_path), check=True)
    indexer("scan", music, env=cli_env(tmp_path), check=True)  # INDEXER_CONFIG names a file
    assert not config.exists()


def test_global_options_stand_before_or_after_the_command(tmp_path):
    music = tmp_path / "music"
    make_library(music, albums=1, tracks=1)
    env = cli_env(tmp_path)
    db = tmp_path / "lib.db"
    indexer("--db", db, "scan", music, env=env, check=True)
    before = indexer("--db", db, "status", "--json", env=env, check=True)
    after = indexer("status", "--json", "--db", db, env=env, check=True)
    assert json.loads(before.stdout)["catalogue"] == json.loads(after.stdout)["catalogue"] == str(db)
    indexer("ls", "--db", db, "--debug", env=env, check=True)
    for verbose in (("-v", "scan", music), ("scan", music, "--verbose")):
        assert "debug: scan job" in indexer(*verbose, "--db", db, env=env, check=True).stderr
    loud = indexer("rescan", music, "--db", db, env=env, check=True)
    quiet = indexer("rescan", music, "--db", db, "-q", env=env, check=True)
    assert "no service runs" in loud.stderr and quiet.stderr == ""
    assert "unchanged 2" in quiet.stdout  # the result, still


def test_version_is_the_packages():
    result = subprocess.run([sys.executable, "-m", "indexer", "--version"], capture_output=True,
                            text=True, timeout=30)
    assert result.returncode == 0
    assert result.stdout == f"indexer {importlib.metadata.version('indexer')}\n"


def test_a_mistyped_command_is_suggested_once(tmp_path):
    result = indexer("scna", env=cli_env(tmp_path))
    assert result.returncode == 2 and result.stderr.count("Did you mean") == 1
    assert "'scan'" in result.stderr


# --- errors that are one clear line


@needs_root
def test_a_catalogue_in_a_folder_this_user_may_not_write_is_one_line(tmp_path):
    music, folder = tmp_path / "music", tmp_path / "locked"
    make_library(music, albums=1, tracks=1)
    folder.mkdir()
    indexer("scan", music, "--db", tmp_path / "lib.db", env=cli_env(tmp_path), check=True)
    (folder / "lib.db").write_bytes((tmp_path / "lib.db").read_bytes())  # alone: no lock, no WAL
    folder.chmod(0o555)
    try:
        result = as_plain_user("scan", music, "--db", folder / "lib.db", env=cli_env(tmp_path))
        doctor = as_plain_user("doctor", "--db", folder / "lib.db", env=cli_env(tmp_path))
    finally:
        folder.chmod(0o755)
    one_line(result, 1, "cannot write the catalogue", str(folder / "lib.db"))
    assert doctor.returncode == 1 and "Traceback" not in doctor.stderr
    assert "writable" not in doctor.stdout.split("WARN  catalogue:")[0].split("catalogue:")[-1]
    assert f"WARN  catalogue: {folder / 'lib.db'}: not writable by this user" in doctor.stdout


@needs_root
def test_a_catalogue_this_user_may_not_read_is_one_line_and_doctor_says_fail(tmp_path):
    music, db = tmp_path / "music", tmp_path / "lib.db"
    make_library(music, albums=1, tracks=1)
    env = cli_env(tmp_path)
    indexer("scan", music, "--db", db, env=env, check=True)
    db.chmod(0)
    for command in (("ls",), ("status",), ("search", "song"), ("export",)):
        one_line(as_plain_user(*command, "--db", db, env=env), 1, "cannot read the catalogue")
    doctor = as_plain_user("doctor", "--db", db, env=env)
    assert doctor.returncode == 1 and "Traceback" not in doctor.stderr + doctor.stdout
    assert f"FAIL  catalogue: {db}: not readable by this user" in doctor.stdout


def test_a_folder_or_a_stranger_given_as_the_catalogue_is_one_line(tmp_path):
    music = tmp_path / "music"
    make_library(music, albums=1, tracks=1)
    env = cli_env(tmp_path)
    for command in (("ls",), ("scan", music)):
        one_line(indexer(*command, "--db", music, env=env), 1, "is a folder, not a catalogue",
                 f"--db {music / 'library.db'}")
    doctor = indexer("doctor", "--db", music, env=env)
    assert doctor.returncode == 1 and "FAIL  catalogue:" in doctor.stdout
    stranger = tmp_path / "notes.db"
    stranger.write_text("shopping list\n" * 200)
    one_line(indexer("ls", "--db", stranger, env=env), 1, "is it indexer's catalogue?")
    assert stranger.read_text() == "shopping list\n" * 200


def test_export_to_a_folder_that_does_not_exist_is_one_line(tmp_path):
    music, db = tmp_path / "music", tmp_path / "lib.db"
    make_library(music, albums=1, tracks=1)
    env = cli_env(tmp_path)
    indexer("scan", music, "--db", db, env=env, check=True)
    one_line(indexer("export", "--db", db, "--output", tmp_path / "nope" / "x.json", env=env), 2,
             "--output", "No such file or directory")


def test_a_missing_root_is_said_once(tmp_path):
    result = indexer("scan", tmp_path / "nonexistent", "--db", tmp_path / "x.db",
                     env=cli_env(tmp_path))
    assert result.returncode == 1
    assert (result.stdout + result.stderr).count("does not exist") == 1


@pytest.mark.parametrize("age, words", [
    ("30", "with its unit"), ("0d", "more than nothing"), ("soon", "like 30d")])
def test_a_purge_age_without_a_unit_or_of_nothing_is_refused_and_says_why(tmp_path, age, words):
    one_line(indexer("purge", "--missing-older-than", age, "--yes", "--db", tmp_path / "x.db",
                     env=cli_env(tmp_path)), 2, words)


def test_purge_takes_weeks_and_compound_ages(tmp_path):
    music, db = tmp_path / "music", tmp_path / "lib.db"
    make_library(music, albums=1, tracks=1)
    env = cli_env(tmp_path)
    indexer("scan", music, "--db", db, env=env, check=True)
    for age in ("2w", "1d12h"):
        result = indexer("purge", "--missing-older-than", age, "--dry-run", "--db", db, env=env)
        assert result.returncode == 0 and "nothing to purge" in result.stdout


# --- output that scripts read


def test_a_reader_that_goes_away_ends_the_listing_quietly(tmp_path):
    music, db = tmp_path / "music", tmp_path / "lib.db"
    make_library(music, albums=40, tracks=12)  # ~500 lines: more than the pipe holds at once
    env = cli_env(tmp_path)
    indexer("scan", music, "--db", db, env=env, check=True)
    for command in (("ls",), ("export",), ("ls", "--json")):
        child = subprocess.Popen([sys.executable, "-m", "indexer", *command, "--db", str(db)],
                                 env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        child.stdout.readline()
        child.stdout.close()  # as `| head -1` does
        err = child.stderr.read()
        assert child.wait(timeout=30) == 141 and err == b"", (command, err)


def test_show_json_gives_lists_as_json_values(tmp_path):
    music, db = tmp_path / "music", tmp_path / "lib.db"
    song = make_library(music, albums=1, tracks=1)[0]
    env = cli_env(tmp_path)
    indexer("scan", music, "--db", db, env=env, check=True)
    with sqlite3.connect(db) as conn:  # as a track with two artists is stored
        conn.execute("UPDATE media SET artists = ?", (json.dumps(["A", "B"]),))
    record = json.loads(indexer("show", song, "--db", db, "--json", env=env, check=True).stdout)
    assert record["media"]["artists"] == ["A", "B"] and isinstance(record["media"]["tags"], dict)
    text = indexer("show", song, "--db", db, env=env, check=True).stdout
    assert "artists" in text and "A; B" in text


@pytest.mark.parametrize("query, words", [
    ("titel:blue", "no field 'titel'"), ("year:1970-1960", "runs backwards"),
    ("-desert", "give a word to search for too"), ('say "hi', "close each quote"),
    ("year:sixties", "give a year")])
def test_a_search_that_cannot_mean_anything_is_an_error_naming_the_token(tmp_path, query, words):
    music, db = tmp_path / "music", tmp_path / "lib.db"
    make_library(music, albums=1, tracks=1)
    env = cli_env(tmp_path)
    indexer("scan", music, "--db", db, env=env, check=True)
    one_line(indexer("search", query, "--db", db, env=env), 2, words)


def test_a_search_leaves_out_the_excluded_and_says_when_it_stopped_at_the_limit(tmp_path):
    music, db = tmp_path / "music", tmp_path / "lib.db"
    make_library(music, albums=3, tracks=2)
    env = cli_env(tmp_path)
    indexer("scan", music, "--db", db, env=env, check=True)
    everything = indexer("search", "tone", "--db", db, "--json", env=env, check=True)
    rows = [json.loads(line) for line in everything.stdout.splitlines()]
    album = rows[0]["album"]
    without = indexer("search", "tone", f'-album:"{album}"', "--db", db, "--json", env=env,
                      check=True)
    kept = [json.loads(line) for line in without.stdout.splitlines()]
    assert kept and all(row["album"] != album for row in kept)
    assert len(kept) == len(rows) - sum(row["album"] == album for row in rows)
    assert everything.stderr == ""
    cut = indexer("search", "tone", "--limit", "2", "--db", db, env=env, check=True)
    assert len(cut.stdout.splitlines()) == 2 and "more than 2 results" in cut.stderr


@needs_root
def test_an_unreadable_folder_is_listed_by_ls_errors_and_the_scan_exits_3(tmp_path):
    music, db = tmp_path / "music", tmp_path / "lib.db"
    make_library(music, albums=2, tracks=1)
    locked = next(p for p in music.iterdir() if p.is_dir())
    locked.chmod(0)
    env = cli_env(tmp_path)
    try:
        scan = as_plain_user("scan", music, "--db", db, env=env)
        listed = indexer("ls", "--errors", "--db", db, env=env, check=True).stdout
        doctor = indexer("doctor", "--db", db, env=env).stdout
    finally:
        locked.chmod(0o755)
    assert scan.returncode == 3, scan.stderr
    assert f"error    folder            - {locked}  [" in listed
    assert "WARN  files: 1 folder or path the last scan could not list or read" in doctor
    assert indexer("scan", music, "--db", db, env=env).returncode == 0  # readable again
    assert str(locked) not in indexer("ls", "--errors", "--db", db, env=env).stdout


def test_tab_completion_offers_the_choices_of_format_and_profile_not_file_names(tmp_path):
    (tmp_path / "a-file-name").touch()
    for words, choices in (("indexer scan --profile ", {"default", "conservative", "aggressive"}),
                           ("indexer export --format ", {"json", "csv"})):
        result = subprocess.run([sys.executable, "-m", "indexer"], capture_output=True, text=True,
                                cwd=tmp_path, timeout=30, env={
                                    **os.environ, "_INDEXER_COMPLETE": "complete_bash",
                                    "COMP_WORDS": words, "COMP_CWORD": "3"})
        assert set(result.stdout.split()) == choices, result.stderr
