"""Configuration: resolved once from defaults, profile, file, environment and flags;
a bad value or unknown key is one line naming the key, exit code 2, nothing written."""

from __future__ import annotations

import os
import re
import tomllib
from pathlib import Path

import pytest

from conftest import cli_env, indexer
from indexer.config import KEYS, PROFILE_VALUES, ConfigError, interval_seconds, load

ROOT = Path(__file__).parent.parent
EXAMPLE = ROOT / "config.example.toml"


def test_defaults_are_those_of_the_design(tmp_path):
    cfg = load(env={"XDG_DATA_HOME": str(tmp_path)})
    assert cfg.scan.workers == os.cpu_count() and cfg.metadata.workers == os.cpu_count()
    assert (cfg.scan.batch_size, cfg.scan.parallel, cfg.scan.smart_hash) == (500, True, True)
    assert cfg.library.follow_symlinks is False
    assert cfg.library.kinds == ("audio", "video", "image")
    assert {"@eaDir", ".stversions", ".Trash-*", "lost+found", "*.part", "*.!qB"} <= set(cfg.library.ignore)
    assert cfg.database.path == tmp_path / "indexer" / "library.db"


@pytest.mark.parametrize("profile, workers, batch, meta", [
    ("conservative", 2, 250, 1), ("aggressive", 8, 1000, 4)])
def test_profiles_set_workers_and_batches(profile, workers, batch, meta):
    cfg = load(overrides={"scan.profile": profile}, env={})
    assert (cfg.scan.workers, cfg.scan.batch_size, cfg.metadata.workers) == (workers, batch, meta)
    assert cfg.sources["scan.workers"] == f"profile {profile}"


def test_file_then_environment_then_flags_each_win_over_the_one_before(tmp_path):
    config = tmp_path / "c.toml"
    config.write_text('[scan]\nprofile = "aggressive"\nworkers = 3\nbatch_size = 7\n'
                      '[library]\nroots = ["/music"]\n')
    cfg = load(str(config), {"scan.batch_size": 9},
               env={"INDEXER_SCAN_WORKERS": "5", "INDEXER_DB": "/x/y.db"})
    assert cfg.scan.workers == 5 and cfg.sources["scan.workers"] == "environment INDEXER_SCAN_WORKERS"
    assert cfg.scan.batch_size == 9 and cfg.sources["scan.batch_size"] == "command line"
    assert cfg.metadata.workers == 4 and cfg.sources["metadata.workers"] == "profile aggressive"
    assert cfg.library.roots == ("/music",) and cfg.database.path == Path("/x/y.db")


def test_the_config_file_comes_from_indexer_config_then_the_user_folder(tmp_path):
    user = tmp_path / "xdg" / "indexer" / "config.toml"
    user.parent.mkdir(parents=True)
    user.write_text("[scan]\nbatch_size = 11\n")
    named = tmp_path / "named.toml"
    named.write_text("[scan]\nbatch_size = 12\n")
    assert load(env={"XDG_CONFIG_HOME": str(tmp_path / "xdg")}).scan.batch_size == 11
    assert load(env={"XDG_CONFIG_HOME": str(tmp_path / "xdg"),
                     "INDEXER_CONFIG": str(named)}).scan.batch_size == 12


@pytest.mark.parametrize("text, message", [
    ("[scan]\nwrokers = 2\n", "scan.wrokers: unknown key"),
    ("[scna]\nworkers = 2\n", "scna.workers: unknown key"),
    ("[scan]\nworkers = 0\n", "scan.workers: must be a whole number from 1 to 256"),
    ("[scan]\nbatch_size = \"many\"\n", "scan.batch_size: must be a whole number"),
    ("[scan]\nparallel = \"perhaps\"\n", "scan.parallel: must be true or false"),
    ("[scan]\nprofile = \"turbo\"\n", "scan.profile: must be one of default, conservative, aggressive"),
    ("[library]\nkinds = [\"audio\", \"sound\"]\n",
     "library.kinds: 'sound' is not a kind; the kinds are audio, video, image, other, got"),
    ("[library]\nkinds = []\n", "library.kinds: must name at least one kind"),
    ("[reconcile]\ncron = \"99 99 * * *\"\n", "reconcile.cron: Error validating expression '99'"),
    ("[reconcile]\ncron = \"0 4 * * funday\"\n", "reconcile.cron: Invalid weekday name \"funday\""),
    ("[reconcile]\ninterval = \"0\"\n", "reconcile.interval: must be a duration"),
    ("[library]\nroots = [\"music\"]\n", "library.roots: 'music' is a relative path"),
    ("[database]\npath = \"lib.db\"\n", "database.path: 'lib.db' is a relative path"),
    ("[library]\nroots = 5\n", "library.roots: must be a list"),
    ("[scan\n", "config file"),
])
def test_a_bad_config_is_one_line_naming_the_key_with_exit_code_2_and_nothing_written(
        tmp_path, text, message):
    config = tmp_path / "bad.toml"
    config.write_text(text)
    db = tmp_path / "never.db"
    with pytest.raises(ConfigError, match=message.replace("[", r"\[")):
        load(str(config), env={})

    result = indexer("scan", tmp_path, "--config", config, "--db", db, env=cli_env(tmp_path))

    assert result.returncode == 2
    assert result.stderr.startswith(f"indexer: error: {message}")
    assert result.stderr.count("\n") == 1 and result.stdout == ""
    assert not db.exists()


def test_a_bad_environment_value_names_the_variable(tmp_path):
    with pytest.raises(ConfigError, match=r"scan.workers: .* \(from environment INDEXER_SCAN_WORKERS\)"):
        load(env={"INDEXER_SCAN_WORKERS": "lots"})
    with pytest.raises(ConfigError, match="scan.speed: unknown key"):
        load(env={"INDEXER_SCAN_SPEED": "11"})


def test_a_missing_config_file_given_by_name_is_an_error(tmp_path):
    result = indexer("config", "--config", tmp_path / "nope.toml", env=cli_env(tmp_path))
    assert result.returncode == 2 and "nope.toml does not exist" in result.stderr


def test_a_root_that_is_a_file_is_a_configuration_error_from_each_source(tmp_path):
    song = tmp_path / "song.flac"
    song.write_bytes(b"fLaC")
    config = tmp_path / "c.toml"
    config.write_text(f'[library]\nroots = ["{song}"]\n')
    with pytest.raises(ConfigError, match=f"library.roots: {song} is a file, not a folder"):
        load(str(config), env={})
    for command in ("run", "scan"):
        result = indexer(command, song, "--db", tmp_path / "x.db", env=cli_env(tmp_path))
        assert result.returncode == 2 and "is a file, not a folder" in result.stderr
        assert len(result.stderr.splitlines()) == 1


def test_a_root_on_the_command_line_is_relative_to_the_current_folder_and_an_offline_one_is_allowed(
        tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    cfg = load(None, {"library.roots": ["music", "/not/mounted/now"]}, env={})
    assert cfg.library.roots == (str(tmp_path / "music"), "/not/mounted/now")
    config = tmp_path / "c.toml"
    config.write_text('[library]\nroots = ["~/Music"]\n')  # ~ is whole, wherever one runs
    assert load(str(config), env={"HOME": str(tmp_path)}).library.roots[0].endswith("/Music")


@pytest.mark.parametrize("text, seconds", [
    ("6h", 21600), ("90m", 5400), ("1d12h", 129600), ("2w", 1209600), ("3600", 3600),
    ("1.5h", 5400), ("0", None), ("0d", None), ("soon", None), ("1x", None), ("h", None)])
def test_reconcile_intervals_take_weeks_and_compound_durations(text, seconds):
    assert interval_seconds(text) == seconds


def example_keys() -> dict[str, tuple[int, object]]:
    """The example's commented-out `key = value` lines of known keys: line number, value."""
    known = {key.dotted for key in KEYS}
    found, section = {}, None
    for number, line in enumerate(EXAMPLE.read_text().splitlines()):
        if match := re.fullmatch(r"\[(\w+)\]", line):
            section = match[1]
        elif (match := re.fullmatch(r"# (\w+) = (.*)", line)) and f"{section}.{match[1]}" in known:
            found[f"{section}.{match[1]}"] = (number, tomllib.loads(f"v = {match[2]}")["v"])
    return found


def test_the_example_config_lists_every_key_with_its_default_commented_out():
    tables = tomllib.loads(EXAMPLE.read_text())
    assert not any(tables.values())  # sets nothing: the profile still counts
    found = example_keys()
    assert {dotted: value for dotted, (_, value) in found.items()} == {
        key.dotted: key.default for key in KEYS}
    lines = EXAMPLE.read_text().splitlines()
    starts = {number for number, _ in found.values()}
    for key in KEYS:  # each key has its comment in the block just above it
        at, _ = found[key.dotted]
        above = []
        while lines[at - 1 - len(above)].startswith("#") and at - 1 - len(above) not in starts:
            above.append(lines[at - 1 - len(above)])
        assert f"# {key.help}" in above, key.dotted
    for profile in PROFILE_VALUES:
        assert f"#   {profile} " in "\n".join(lines)


def test_the_example_config_copied_as_the_readme_says_leaves_the_profile_its_keys(tmp_path):
    config = tmp_path / "config.toml"
    config.write_text(EXAMPLE.read_text().replace("# profile = \"default\"",
                                                  "profile = \"conservative\""))
    cfg = load(str(config), env={})
    assert (cfg.scan.workers, cfg.scan.batch_size, cfg.metadata.workers) == (2, 250, 1)


def test_indexer_config_shows_each_value_and_where_it_came_from(tmp_path):
    env = cli_env(tmp_path, INDEXER_SCAN_WORKERS="3")
    result = indexer("config", "--db", tmp_path / "x.db", env=env, check=True)
    assert "workers = 3  # environment INDEXER_SCAN_WORKERS" in result.stdout
    assert f'path = "{tmp_path / "x.db"}"  # command line' in result.stdout
    assert "batch_size = 500  # default" in result.stdout
