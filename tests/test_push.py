"""Telling media servers: the service running on a real tree, real HTTP servers on
127.0.0.1 (media_servers.py) that record every request, and every wait a condition with
a deadline."""

from __future__ import annotations

import hashlib
import hmac
import json
import shutil
import sys
import threading
import time
from pathlib import Path

import pytest

from conftest import DATA, connect, files, make_library, wait_for
from indexer import config as config_module
from indexer.daemon import Service
from indexer.push import Change, Pending, folders, ready_prefix, rewritten
from media_servers import Server
from test_daemon import FAST, reconciled

SECRET = "webhook-secret"
QUICK = {"push.delay_s": 0.2, "push.backoff_max_s": 1, "push.tags_wait_s": 10}


def toml(targets: list[dict]) -> str:
    """[[notify]] tables; JSON's strings and arrays are TOML's too."""
    return "".join("[[notify]]\n" + "".join(f"{k} = {json.dumps(v)}\n" for k, v in t.items())
                   for t in targets)


@pytest.fixture
def pushing(tmp_path):
    """Start a service with [[notify]] targets; always stopped at the end."""
    started: list[tuple[Service, threading.Thread]] = []

    def start(roots: list[Path], targets: list[dict], **extra) -> Service:
        path = tmp_path / "config.toml"
        path.write_text(toml(targets))
        values = {**FAST, **QUICK, "database.path": str(tmp_path / "library.db"),
                  "library.roots": [str(r) for r in roots], **extra}
        running = Service(config_module.load(str(path), overrides=values, env={}))
        thread = threading.Thread(target=running.run, daemon=True)
        thread.start()
        started.append((running, thread))
        wait_for(lambda: reconciled(tmp_path / "library.db"), timeout=20,
                 what="the first reconcile")
        return running

    def stop(running: Service) -> None:
        for service, thread in started:
            if service is running:
                service.stop()
                thread.join(timeout=10)
                assert not thread.is_alive(), "the service did not stop"

    start.stop = stop
    yield start
    for running, thread in started:
        running.stop()
        thread.join(timeout=10)
        assert not thread.is_alive(), "the service did not stop"


@pytest.fixture
def music(tmp_path) -> Path:
    root = tmp_path / "music"
    root.mkdir()
    return root


def copy_album(source: Path, root: Path, name: str = "Album") -> list[Path]:
    """An album made beside the library, then copied in as a user does."""
    make_library(source, albums=1, tracks=3)
    shutil.copytree(next(source.glob("*/*")), root / name)
    return sorted(p for p in (root / name).iterdir() if p.suffix != ".nfo")


def all_present(db: Path, paths: list[Path]) -> bool:
    found = files(db, "present")
    return all(str(p) in found for p in paths)


def feed(db: Path, after: int = 0) -> list[dict]:
    with connect(db) as conn:
        return [dict(r) for r in conn.execute(
            "SELECT seq, kind, file_id, path, old_path, at, job_id FROM changes WHERE seq > ? "
            "ORDER BY seq", (after,))]


def webhook_rows(server: Server) -> list[dict]:
    return [row for seen in server.requests() for row in seen.json()["changes"]]


def command_rows(log: Path) -> list[dict]:
    if not log.exists():
        return []
    return [row for line in log.read_text().splitlines() if line
            for row in json.loads(line)["changes"]]


def appender(log: Path) -> list[str]:
    """A command that appends its standard input, one line per run, to `log`."""
    code = ("import sys; data = sys.stdin.buffer.read().replace(b'\\n', b' ');"
            f" open({str(log)!r}, 'ab').write(data + b'\\n')")
    return [sys.executable, "-c", code]


def test_an_album_copied_in_reaches_jellyfin_plex_the_webhook_and_a_command(
        music, tmp_path, pushing):
    db = tmp_path / "library.db"
    jellyfin = Server("jellyfin")
    plex = Server("plex", sections={"1": "/data/music", "2": "/data/movies"})
    hook = Server("webhook")
    log = tmp_path / "command.log"
    rewrite = [[str(music), "/data/music"]]
    pushing([music], [
        {"name": "jellyfin", "type": "jellyfin", "url": jellyfin.url, "token": jellyfin.token,
         "rewrite": rewrite},
        {"name": "plex", "type": "plex", "url": plex.url, "token": plex.token,
         "rewrite": rewrite},
        {"name": "hook", "type": "webhook", "url": hook.url, "secret": SECRET,
         "rewrite": rewrite},
        {"name": "cmd", "type": "command", "command": appender(log)},
    ])
    start = max([c["seq"] for c in feed(db)], default=0)
    album = copy_album(tmp_path / "elsewhere", music)
    folder = album[0].parent
    seen_as = "/data/music/" + folder.name
    wait_for(lambda: all_present(db, album), timeout=20, what="the album in the catalogue")
    changes = feed(db, start)
    assert {c["kind"] for c in changes} >= {"added", "tagged"}
    wait_for(lambda: len(webhook_rows(hook)) >= len(changes) and len(command_rows(log)) >=
             len(changes) and plex.requests("/library/sections/1/refresh") and
             jellyfin.requests("/Library/Media/Updated"), timeout=20, what="every target")

    updates = [u for s in jellyfin.requests("/Library/Media/Updated") for u in s.json()["Updates"]]
    assert {"Path": seen_as, "UpdateType": "Created"} in updates
    assert all(s.headers["X-Emby-Token"] == jellyfin.token
               for s in jellyfin.requests("/Library/Media/Updated"))
    refreshes = [s.query["path"] for s in plex.requests() if s.path.endswith("/refresh")]
    assert refreshes == [seen_as]  # one partial scan of that folder, in section 1
    assert plex.requests("/library/sections/1/refresh")[0].headers["X-Plex-Token"] == plex.token

    for seen in hook.requests():
        digest = hmac.new(SECRET.encode(), seen.body, hashlib.sha256).hexdigest()
        assert seen.headers["X-Indexer-Signature"] == f"sha256={digest}"
        assert seen.headers["Content-Type"] == "application/json"
    expected = [{**c, "path": c["path"].replace(str(music), "/data/music", 1)} for c in changes]
    assert webhook_rows(hook)[:len(changes)] == expected
    assert command_rows(log)[:len(changes)] == changes  # no rewrite for this one


def test_a_target_down_and_a_restart_meanwhile_end_with_every_change_delivered(
        music, tmp_path, pushing):
    db = tmp_path / "library.db"
    hook = Server("webhook")
    hook.stop()  # down from the start: connections refused
    targets = [{"name": "hook", "type": "webhook", "url": hook.url}]
    first = pushing([music], targets)
    album = copy_album(tmp_path / "a", music, "One")
    wait_for(lambda: all_present(db, album), timeout=20, what="the first album")
    wait_for(lambda: first.status()["service"]["push"][0]["last_error"], timeout=10,
             what="the failure in status")
    from conftest import cli_env, indexer
    shown = indexer("status", "--db", db, env=cli_env(tmp_path), check=True).stdout
    line = next(line for line in shown.splitlines() if "push hook" in line)
    assert line.startswith("  push hook (webhook): cursor ") and " changes pending, last " \
        "delivery none since start; last error " in line and "cannot reach" in line
    pushing.stop(first)
    second_album = copy_album(tmp_path / "b", music, "Two")  # while the service is down
    second = pushing([music], targets)
    wait_for(lambda: all_present(db, second_album), timeout=20, what="the second album")
    hook.start()
    wait_for(lambda: {r["seq"] for r in webhook_rows(hook)} >= {c["seq"] for c in feed(db)},
             timeout=20, what="every change at the webhook")
    seqs = [r["seq"] for r in webhook_rows(hook)]
    assert seqs == sorted(seqs)  # in order
    wait_for(lambda: second.status()["service"]["push"][0]["pending"] == 0, timeout=10,
             what="the cursor at the end")
    assert second.status()["service"]["push"][0]["last_error"] is None


def test_a_target_that_sleeps_delays_neither_scanning_nor_the_other_targets(
        music, tmp_path, pushing):
    db = tmp_path / "library.db"
    slow = Server("webhook", sleep_s=4)
    fast = Server("webhook")
    pushing([music], [
        {"name": "slow", "type": "webhook", "url": slow.url, "timeout_s": 0.5},
        {"name": "fast", "type": "webhook", "url": fast.url},
    ])
    album = copy_album(tmp_path / "a", music)
    began = time.monotonic()
    wait_for(lambda: all_present(db, album), timeout=10, what="the album in the catalogue")
    wait_for(lambda: {r["path"] for r in webhook_rows(fast)} >= set(map(str, album)), timeout=10,
             what="the album at the fast target")
    assert time.monotonic() - began < 4  # less than one answer of the slow one
    assert slow.requests()  # it was asked, and is still being asked
    more = music / next(music.iterdir()).name / "99 - Late.flac"
    shutil.copyfile(DATA / "tone.flac", more)
    wait_for(lambda: str(more) in {r["path"] for r in webhook_rows(fast)}, timeout=10,
             what="a second change at the fast target")


def test_a_burst_of_5000_changes_is_coalesced_one_scan_per_folder_and_bounded_batches(
        music, tmp_path, pushing):
    db = tmp_path / "library.db"
    plex = Server("plex", sections={"1": str(music)})
    jellyfin = Server("jellyfin")
    hook = Server("webhook")
    pushing([music], [
        {"name": "plex", "type": "plex", "url": plex.url, "token": plex.token},
        {"name": "jellyfin", "type": "jellyfin", "url": jellyfin.url, "token": jellyfin.token},
        {"name": "hook", "type": "webhook", "url": hook.url},
    ], **{"push.batch_size": 400, "push.delay_s": 1, "watch.settle_seconds": 0.2})
    staging = tmp_path / "staging" / "Photos"
    picture = (DATA / "cover.jpg").read_bytes()
    for f in range(50):
        (staging / f"Folder {f:02d}").mkdir(parents=True)
        for n in range(100):
            (staging / f"Folder {f:02d}" / f"p{n:03d}.jpg").write_bytes(picture + b"%d-%d" % (f, n))
    staging.rename(music / "Photos")  # one event: 5,000 files at once
    wait_for(lambda: len(files(db, "present")) == 5000, timeout=60, what="5,000 files indexed")
    wait_for(lambda: len(webhook_rows(hook)) >= 5000, timeout=30, what="5,000 rows at the hook")
    wait_for(lambda: len({s.query["path"] for s in plex.requests() if "refresh" in s.path}) == 50,
             timeout=30, what="a scan of each folder")
    refreshes = [s.query["path"] for s in plex.requests() if s.path.endswith("/refresh")]
    assert len(refreshes) == len(set(refreshes)) == 50  # one partial scan per folder
    assert all(len(s.json()["changes"]) <= 400 for s in hook.requests())
    def updates():
        return [u["Path"] for s in jellyfin.requests("/Library/Media/Updated")
                for u in s.json()["Updates"]]
    wait_for(lambda: len(set(updates())) == 50, timeout=30, what="each folder at Jellyfin")
    assert len(updates()) == 50  # each once


# --- the rules, as plain functions


def change(seq: int, kind: str, path: str, old_path: str | None = None,
           file_kind: str = "audio") -> Change:
    return Change(seq, kind, seq, path, old_path, "2026-01-01T00:00:00Z", 1, file_kind)


def test_a_change_waiting_for_its_tags_holds_back_the_changes_after_it():
    pending = [Pending(change(1, "added", "/m/a.flac"), True),
               Pending(change(2, "added", "/m/b.flac"), False),
               Pending(change(3, "added", "/m/c.flac"), True)]
    assert [c.seq for c in ready_prefix(pending, {1: 0, 2: 0, 3: 0}, 5, 10)] == [1]
    assert [c.seq for c in ready_prefix(pending, {1: 0, 2: 0, 3: 0}, 10, 10)] == [1, 2, 3]


def test_paths_are_rewritten_by_prefix_on_a_folder_boundary():
    rules = (("/srv/media", "/data"), ("/", "/host"))
    assert rewritten("/srv/media/a/b.flac", rules) == "/data/a/b.flac"
    assert rewritten("/srv/media", rules) == "/data"
    assert rewritten("/srv/mediaX/b.flac", rules) == "/host/srv/mediaX/b.flac"
    assert rewritten("/x", ()) == "/x"


def test_a_move_touches_the_folder_it_left_and_the_one_it_reached(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    b.mkdir()
    found = folders([change(1, "added", f"{b}/1.flac"), change(2, "moved", f"{b}/2.flac",
                                                                 old_path=f"{a}/2.flac"),
                     change(3, "tagged", f"{b}/1.flac")], ())
    assert [(f.path, f.how, f.scan) for f in found] == [
        (str(b), "Created", str(b)), (str(a), "Deleted", str(tmp_path))]


def test_an_album_copied_in_reaches_kodi_and_navidrome_at_most_once_per_interval(
        music, tmp_path, pushing):
    db = tmp_path / "library.db"
    kodi = Server("kodi")
    navidrome = Server("navidrome", password="s3cret")
    pushing([music], [
        {"name": "kodi", "type": "kodi", "url": kodi.url, "rewrite": [[str(music), "/m"]]},
        {"name": "navidrome", "type": "navidrome", "url": navidrome.url, "user": "admin",
         "password": "s3cret", "min_interval_s": 3},
    ])
    album = copy_album(tmp_path / "a", music, "One")
    wait_for(lambda: all_present(db, album), timeout=20, what="the album")
    wait_for(lambda: kodi.requests("/jsonrpc") and navidrome.requests("/rest/startScan"),
             timeout=20, what="Kodi and Navidrome")
    assert [(s.json()["method"], s.json()["params"]) for s in kodi.requests()] == [
        ("AudioLibrary.Scan", {"directory": "/m/One/"})]
    scan = navidrome.requests("/rest/startScan")[0].query
    assert scan["u"] == "admin" and scan["t"] == hashlib.md5(
        ("s3cret" + scan["s"]).encode()).hexdigest()
    asked = time.monotonic()
    second = copy_album(tmp_path / "b", music, "Two")
    wait_for(lambda: len(navidrome.requests("/rest/startScan")) == 2, timeout=20,
             what="a second scan")
    assert all_present(db, second)
    assert time.monotonic() - asked >= 2.5  # not before min_interval_s after the first


@pytest.mark.parametrize("table, message", [
    ({"name": "x", "type": "jelly", "url": "http://h"}, "notify[1].type: must be one of"),
    ({"name": "x", "type": "plex", "url": "http://h"}, "notify[1].token: missing; type 'plex'"),
    ({"name": "x", "type": "webhook", "url": "ftp://h"}, "notify[1].url: must be an http"),
    ({"name": "x", "type": "command", "command": "hook --flag"}, "notify[1].command: must be"),
    ({"name": "x", "type": "kodi", "url": "http://h", "colour": 1}, "notify[1].colour: unknown"),
    ({"name": "x", "type": "kodi", "url": "http://h", "rewrite": [["a", "/b"]]},
     "notify[1].rewrite: must be a list of"),
])
def test_a_bad_notify_table_is_one_line_naming_the_key_and_exit_2(tmp_path, table, message):
    from conftest import cli_env, indexer
    path = tmp_path / "config.toml"
    path.write_text(toml([table]))
    result = indexer("config", "--config", path, env=cli_env(tmp_path))
    assert result.returncode == 2
    assert message in result.stderr and len(result.stderr.strip().splitlines()) == 1


def test_two_targets_of_one_name_are_refused(tmp_path):
    path = tmp_path / "config.toml"
    path.write_text(toml([{"name": "x", "type": "kodi", "url": "http://h"}] * 2))
    with pytest.raises(config_module.ConfigError, match=r"notify\[2\].name: 'x' is used twice"):
        config_module.load(str(path), env={})


def test_a_token_is_never_in_status_logs_or_errors(music, tmp_path, pushing, caplog):
    jellyfin = Server("jellyfin", token="the-right-one")
    running = pushing([music], [{"name": "j", "type": "jellyfin", "url": jellyfin.url,
                                 "token": "TOPSECRET-TOKEN"}])
    copy_album(tmp_path / "a", music)
    wait_for(lambda: running.status()["service"]["push"][0]["last_error"], timeout=20,
             what="the refusal")
    said = json.dumps(running.status()) + caplog.text + repr(running.config)
    assert "HTTP 401" in said and "TOPSECRET" not in said


def test_notify_test_checks_each_target_now_one_line_each_with_the_fix(music, tmp_path):
    from conftest import cli_env, indexer
    plex = Server("plex", sections={"1": "/data/music"})
    jellyfin = Server("jellyfin")
    hook = Server("webhook")
    other = music.parent / "films"
    other.mkdir()
    token_file = tmp_path / "plex.token"
    token_file.write_text(plex.token + "\n")
    path = tmp_path / "config.toml"
    path.write_text(f"[library]\nroots = {json.dumps([str(music), str(other)])}\n" + toml([
        {"name": "plex", "type": "plex", "url": plex.url, "token_file": str(token_file),
         "rewrite": [[str(music), "/data/music"]]},
        {"name": "jelly", "type": "jellyfin", "url": jellyfin.url, "token": "wrong"},
        {"name": "hook", "type": "webhook", "url": hook.url},
        {"name": "gone", "type": "emby", "url": "http://127.0.0.1:9", "token_file":
         str(tmp_path / "missing.token")},
    ]))
    result = indexer("notify", "test", "--config", path, env=cli_env(tmp_path))
    lines = result.stdout.splitlines()
    assert result.returncode == 1
    assert lines[0].startswith("OK    notify plex: token taken")
    assert lines[1].startswith(f"FAIL  notify plex: root {other} (in Plex {other}) is in no "
                               "Plex library  -> add the folder")
    assert lines[2].startswith("FAIL  notify jelly:") and "HTTP 401" in lines[2]
    assert "-> check url and token" in lines[2] and "wrong" not in lines[2]
    assert lines[3].startswith("OK    notify hook: a test POST")
    assert lines[4].startswith("FAIL  notify gone: cannot read token_file")
    assert len(lines) == 5
    assert hook.requests()[0].json() == {"changes": []}

    one = indexer("notify", "test", "hook", "--config", path, env=cli_env(tmp_path))
    assert one.returncode == 0 and len(one.stdout.splitlines()) == 1
    unknown = indexer("notify", "test", "nope", "--config", path, env=cli_env(tmp_path))
    assert unknown.returncode == 2 and "no [[notify]] named 'nope'" in unknown.stderr
    doctor = indexer("doctor", "--config", path, "--db", tmp_path / "x.db", env=cli_env(tmp_path))
    assert "FAIL  notify jelly:" in doctor.stdout


def test_the_example_config_names_every_notify_key_and_its_examples_load():
    import tomllib
    from indexer import push_config
    text = (Path(__file__).parent.parent / "config.example.toml").read_text()
    block = text.split("# The media servers and hooks to tell")[1]
    for key in push_config.KEYS:
        assert f"{key} " in block or f"{key}," in block or f"{key})" in block, key
    examples = block[block.index("# [[notify]]"):]
    document = tomllib.loads("\n".join(line[2:] for line in examples.splitlines()))
    found = push_config.targets(document["notify"])
    assert {t.type for t in found} == set(push_config.TYPES) - {"emby"}


def test_changes_go_at_once_when_the_service_has_no_work_left_not_after_delay_s(
        music, tmp_path, pushing):
    db = tmp_path / "library.db"
    hook = Server("webhook")
    pushing([music], [{"name": "hook", "type": "webhook", "url": hook.url}],
            **{"push.delay_s": 30})
    album = copy_album(tmp_path / "a", music)
    wait_for(lambda: all_present(db, album), timeout=20, what="the album")
    committed = time.monotonic()
    wait_for(lambda: {r["path"] for r in webhook_rows(hook)} >= set(map(str, album)),
             timeout=10, what="the album at the webhook")
    assert time.monotonic() - committed < 5  # far less than delay_s: nothing more was coming
    assert len(hook.requests()) == 1


def test_a_target_is_told_only_of_the_kinds_of_file_it_wants(music, tmp_path, pushing):
    db = tmp_path / "library.db"
    covers, tracks = Server("webhook"), Server("webhook")
    pushing([music], [{"name": "covers", "type": "webhook", "url": covers.url,
                       "kinds": ["image"]},
                      {"name": "tracks", "type": "webhook", "url": tracks.url,
                       "kinds": ["audio"]}])
    album = copy_album(tmp_path / "a", music)
    wait_for(lambda: all_present(db, album), timeout=20, what="the album")
    cover = str(music / "Album" / "cover.jpg")
    wait_for(lambda: cover in {r["path"] for r in webhook_rows(covers)} and
             {r["path"] for r in webhook_rows(tracks)} == {str(p) for p in album} - {cover},
             timeout=10, what="each its kind")
    assert {r["path"] for r in webhook_rows(covers)} == {cover}
