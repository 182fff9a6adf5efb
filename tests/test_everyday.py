"""Everyday commands on a real catalogue built by a real scan: doctor, changes, purge,
dupes, export; their text and their JSON."""

from __future__ import annotations

import csv
import io
import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from conftest import DATA, cli_env, connect, files, indexer, wait_for
from indexer import doctor


@pytest.fixture
def env(tmp_path):
    return cli_env(tmp_path, INDEXER_DB=str(tmp_path / "library.db"))


@pytest.fixture
def scanned(library, env):
    indexer("scan", library, env=env, check=True)
    return library


def test_changes_lists_the_feed_in_order_and_from_a_sequence_number(scanned, env, tmp_path):
    song = next(scanned.rglob("*.ogg"))
    with open(song, "ab") as handle:
        handle.write(b"edited")
    indexer("scan", scanned, env=env, check=True)

    feed = [json.loads(line) for line in indexer("changes", "--json", env=env, check=True).stdout.splitlines()]
    since = indexer("changes", "--since", feed[-3]["seq"], env=env, check=True).stdout

    assert [c["kind"] for c in feed if c["kind"] != "tagged"] == ["added"] * 15 + ["modified"]
    assert [c["seq"] for c in feed] == sorted(c["seq"] for c in feed)
    assert len({c["job_id"] for c in feed}) == 2  # the first scan's, the second's
    assert [(c["kind"], c["path"]) for c in feed[-2:]] == [("modified", str(song)),
                                                           ("tagged", str(song))]
    assert since.splitlines()[0].split()[2:4] == ["modified", f"#{feed[-2]['file_id']}"]
    assert since.count("\n") == 2 and "tagged" in since.splitlines()[1]


def test_changes_follow_sees_a_change_made_by_the_running_service(library, tmp_path):
    from indexer import config as config_module
    from indexer.daemon import Service
    db = tmp_path / "library.db"
    service = Service(config_module.load(overrides={
        "database.path": str(db), "library.roots": [str(library)], "watch.debounce_ms": 100,
        "watch.settle_seconds": 0.3, "service.low_priority": False}, env={}))
    thread = threading.Thread(target=service.run, daemon=True)
    thread.start()
    follower = None
    try:
        wait_for(lambda: present_count(db) == 15, timeout=20, what="the service to index the library")
        last = max(json.loads(line)["seq"] for line in indexer(
            "changes", "--json", env=cli_env(tmp_path, INDEXER_DB=str(db)), check=True).stdout.splitlines())
        follower = subprocess.Popen(
            [sys.executable, "-m", "indexer", "changes", "--since", str(last), "--follow", "--json"],
            env=cli_env(tmp_path, INDEXER_DB=str(db)), stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, text=True)
        new = library / "Artist 0" / "fresh.flac"
        shutil.copyfile(DATA / "tone.flac", new)
        line = _read_line_within(follower.stdout, 10)
        assert json.loads(line)["kind"] == "added" and json.loads(line)["path"] == str(new)
        follower.send_signal(signal.SIGINT)
        follower.wait(timeout=5)
        assert follower.returncode == 0 and "Traceback" not in follower.stderr.read()
    finally:
        if follower and follower.poll() is None:
            follower.kill()
        service.stop()
        thread.join(timeout=10)


def present_count(db: Path) -> int:
    try:
        return len(files(db, "present"))
    except sqlite3.OperationalError:  # not created yet
        return 0


def _read_line_within(stream, seconds: float) -> str:
    found: list[str] = []
    reader = threading.Thread(target=lambda: found.append(stream.readline()), daemon=True)
    reader.start()
    reader.join(seconds)
    assert found and found[0], f"no line within {seconds} s"
    return found[0]


def _make_missing(db: Path, paths: list[Path], since: str) -> None:
    with sqlite3.connect(db) as conn:  # as a scan long ago would have left them
        conn.executemany("UPDATE files SET missing_since = ? WHERE path = ?",
                         [(since, str(p)) for p in paths])


def test_purge_deletes_exactly_what_it_listed_and_the_artwork_no_one_uses(scanned, env, tmp_path):
    db = tmp_path / "library.db"
    album = scanned / "Artist 2" / "Album 2 (2002)"
    shutil.copyfile(DATA / "cover.png", album / "folder.png")  # a cover no other album has
    indexer("scan", scanned, env=env, check=True)
    old = sorted(album.iterdir())
    recent = next((scanned / "Artist 0").rglob("*.mp3"))
    shutil.rmtree(album)
    recent.unlink()
    indexer("scan", scanned, env=env, check=True)
    _make_missing(db, [p for p in old if p.suffix != ".nfo"], "2020-01-01T00:00:00.000Z")
    art_before = {r[0] for r in connect(db).execute("SELECT hash FROM artwork")}

    listed = indexer("purge", "--missing-older-than", "30d", "--dry-run", env=env, check=True).stdout
    result = indexer("purge", "--missing-older-than", "30d", "--yes", env=env, check=True).stdout

    doomed = [str(p) for p in old if p.suffix != ".nfo"]
    assert all(p in listed for p in doomed) and "6 rows to delete" in listed  # 4 tracks, 2 images
    assert str(recent) not in listed
    assert "deleted 6 rows and 1 image no file uses" in result
    rows = files(db)
    assert not any(p in rows for p in doomed) and rows[str(recent)]["status"] == "missing"
    with connect(db) as conn:
        assert conn.execute("SELECT count(*) FROM media WHERE file_id NOT IN "
                            "(SELECT id FROM files)").fetchone()[0] == 0
        art_after = {r[0] for r in conn.execute("SELECT hash FROM artwork")}
        feed = [tuple(r) for r in conn.execute(
            "SELECT kind, path FROM changes WHERE kind <> 'tagged' ORDER BY seq")]
    gone = art_before - art_after
    assert len(gone) == 1 and not list((db.parent / "artwork").rglob(f"{gone.pop()}.*"))
    # append-only: 15 added, folder.png added, 7 missing, then one 'purged' per row deleted
    assert len(feed) == 15 + 1 + 7 + 6
    assert sorted(path for kind, path in feed[-6:] if kind == "purged") == sorted(doomed)


def test_purge_asks_and_without_an_answer_deletes_nothing(scanned, env, tmp_path):
    db = tmp_path / "library.db"
    song = next(scanned.rglob("*.flac"))
    song.unlink()
    indexer("scan", scanned, env=env, check=True)
    _make_missing(db, [song], "2020-01-01T00:00:00.000Z")
    result = indexer("purge", env=env)  # stdin is closed: no yes
    assert result.returncode == 0 and "delete this row? [y/N]: nothing deleted" in result.stdout
    assert files(db)[str(song)]["status"] == "missing"


def test_dupes_groups_identical_files_with_the_bytes_they_waste(scanned, env):
    song = next(scanned.rglob("*.flac"))
    for n in range(2):
        shutil.copyfile(song, scanned / f"copy {n}.flac")
    indexer("scan", scanned, env=env, check=True)
    groups = [json.loads(line) for line in indexer("dupes", "--json", env=env, check=True).stdout.splitlines()]
    text = indexer("dupes", env=env, check=True).stdout
    flac = next(g for g in groups if g["size"] == song.stat().st_size)
    assert flac["copies"] == 3 and flac["wasted_bytes"] == 2 * song.stat().st_size
    assert sorted(flac["paths"]) == sorted([str(song), str(scanned / "copy 0.flac"),
                                            str(scanned / "copy 1.flac")])
    covers = next(g for g in groups if g["paths"][0].endswith("cover.jpg"))
    assert covers["copies"] == 3  # make_library gives every album the same cover
    assert groups[0] == flac  # the most bytes wasted first
    assert "3 copies" in text and "wasted" in text


def test_export_streams_every_present_file_with_its_tags_as_json_or_csv(scanned, env, tmp_path):
    lines = indexer("export", env=env, check=True).stdout.splitlines()
    out = tmp_path / "library.csv"
    indexer("export", "--format", "csv", "--output", out, env=env, check=True)
    rows = [json.loads(line) for line in lines]
    table = list(csv.DictReader(io.StringIO(out.read_text())))
    assert len(rows) == len(table) == 15
    flac = next(r for r in rows if r["path"].endswith(".flac"))
    assert (flac["title"], flac["artist"], flac["kind"]) == ("Tone_FLAC", "Artist_B", "audio")
    cover = next(r for r in rows if r["path"].endswith("cover.jpg"))
    assert cover["kind"] == "image" and cover["title"] is None
    assert [r["path"] for r in table] == [r["path"] for r in rows]


def test_doctor_says_a_healthy_setup_is_healthy(scanned, env):
    report = json.loads(indexer("doctor", "--json", env=env).stdout)
    roots = next(c for c in report if c["name"] == "roots")
    assert roots["status"] == "warn"  # scanned by name, not configured: the service would not
    assert roots["fix"] == f'set [library] roots = ["{scanned}"] in the config file, so that ' \
        "the service watches them"

    config = Path(env["INDEXER_CONFIG"]).with_name("real.toml")
    config.write_text(f'[library]\nroots = ["{scanned}"]\n')
    healthy = indexer("doctor", "--config", config, env=env)
    assert healthy.returncode == 0, healthy.stdout
    assert f"OK    root {scanned}: readable" in healthy.stdout
    assert "OK    integrity: quick_check ok" in healthy.stdout


def test_doctor_reports_a_missing_root_with_the_fix(env, tmp_path):
    config = tmp_path / "gone.toml"
    config.write_text(f'[library]\nroots = ["{tmp_path / "unplugged"}"]\n')
    result = indexer("doctor", "--config", config, env=env)
    assert result.returncode == 1
    assert f"FAIL  root {tmp_path / 'unplugged'}: does not exist (not mounted?)  -> mount it" \
        in result.stdout


def test_doctor_reports_an_inotify_limit_too_low_for_the_roots_with_the_fix(tmp_path):
    limit = tmp_path / "max_user_watches"  # as /proc/sys/fs/inotify/max_user_watches reads
    limit.write_text("8192\n")
    check = doctor.watch_limit_check(20_000, limit)
    assert (check.status, check.name) == ("fail", "inotify")
    assert "8,192" in check.message and "20,000 folders" in check.message
    assert "sysctl fs.inotify.max_user_watches=524288" in check.fix
    assert doctor.watch_limit_check(1_000, limit).status == "ok"
