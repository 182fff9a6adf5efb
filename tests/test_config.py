"""Configuration: resolved once from defaults, profile, file, environment and flags;
a bad value or unknown key is one line naming the key, exit code 2, nothing written."""

from __future__ import annotations

import os
import tomllib
from pathlib import Path

import pytest

from conftest import cli_env, indexer
from indexer.config import KEYS, PROFILE_VALUES, ConfigError, load

ROOT = Path(__file__).parent.parent


def test_defaults_are_those_of_the_design(tmp_path):
    cfg = load(env={"XDG_DATA_HOME": str(tmp_path)})
    assert cfg.scan.workers == os.cpu_count() and cfg.metadata.workers == os.cpu_count()
    assert (cfg.scan.batch_size, cfg.scan.parallel, cfg.scan.smart_hash) == (50, True, True)
    assert cfg.library.follow_symlinks is False
    assert cfg.library.kinds == ("audio", "video", "image")
    assert {"@eaDir", ".stversions", ".Trash-*", "lost+found", "*.part", "*.!qB"} <= set(cfg.library.ignore)
    assert cfg.database.path == tmp_path / "indexer" / "library.db"


@pytest.mark.parametrize("profile, workers, batch, meta", [
    ("conservative", 2, 25, 1), ("aggressive", 8, 100, 4)])
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
    ("[library]\nkinds = [\"audio\", \"sound\"]\n", "library.kinds: must be a non-empty list"),
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


def test_the_example_config_lists_every_key_with_its_default():
    example = tomllib.loads((ROOT / "config.example.toml").read_text())
    flat = {f"{s}.{k}": v for s, table in example.items() for k, v in table.items()}
    assert flat == {key.dotted: key.default for key in KEYS}
    lines = (ROOT / "config.example.toml").read_text().splitlines()
    for key in KEYS:  # each key has its comment in the block just above it
        section = lines.index(f"[{key.section}]")
        at = next(i for i in range(section, len(lines)) if lines[i].startswith(f"{key.name} = "))
        above = []
        while lines[at - 1 - len(above)].startswith("#"):
            above.append(lines[at - 1 - len(above)])
        assert f"# {key.help}" in above, key.dotted
    for profile in PROFILE_VALUES:
        assert f"#   {profile} " in "\n".join(lines)


def test_indexer_config_shows_each_value_and_where_it_came_from(tmp_path):
    env = cli_env(tmp_path, INDEXER_SCAN_WORKERS="3")
    result = indexer("config", "--db", tmp_path / "x.db", env=env, check=True)
    assert "workers = 3  # environment INDEXER_SCAN_WORKERS" in result.stdout
    assert f'path = "{tmp_path / "x.db"}"  # command line' in result.stdout
    assert "batch_size = 50  # default" in result.stdout
