"""A model-based test: whatever happens to the files, the catalogue equals the disk and
ids follow files, in every scan driver.

The model (tests/model_library.py) is the disk as it should be: two roots, A and B, of
real files with the names real libraries have; each file has an identity (given when
it is created or copied, kept by renames, moves, edits, touches and atomic replaces)
and a content. Hypothesis applies real filesystem operations in random order, the
driver brings the catalogue up to date after each one (a scan, or the running
service's own reaction), and then:

1. The present rows are the files: path text, size and xxh3-128 of the content, for
   every file of an online root; an offline root's rows stay as they were.
2. Ids follow files: an identity keeps the id it was first seen with, for as long as it
   exists.
3. No id is given to two files: a first-seen identity gets a fresh id, or the id of an
   ended identity whose row had the same content (a deleted file coming back) or was at
   the same path (a restore).
4. The change feed, replayed from the start, gives every row's path and status.
5. A scan with nothing changed adds nothing to the feed (the `rescan` rule).
6. Tags held as current (`tags_hash` = `hash`) were read from the current content.

Each root keeps an anchor file the rules never touch: a root without media files is the
documented "not mounted" guard (nothing marked missing), which this model leaves out.

Drivers: `sequential` and `parallel` scans, `workers-survey` (parallel, with rescans
surveyed in worker processes from one file on) and `service` (the real service on real
inotify, with short timings; after each step it is waited for, never slept on).

The default profile is derandomized: CI runs the same examples every time, a failure
replays as it is, and a failure is shrunk for at most 10 s per driver. To search much
harder (about half an hour), with a new seed each run, printed with a failure and
replayed with MODEL_SEED=<seed>:

    HYPOTHESIS_PROFILE=long .venv/bin/python -m pytest -q tests/test_model.py

To look past a known failure, leave its rules out (move_onto_deleted off also keeps
other moves off the paths of deleted files):
`MODEL_RULES_OFF=move_over,move_onto_deleted .venv/bin/python -m pytest tests/test_model.py`.
"""

from __future__ import annotations

import logging
import os
import random
import shutil
import signal
import sqlite3
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

import pytest
from hypothesis import HealthCheck, note, seed, settings, strategies as st
from hypothesis.internal.conjecture import engine
from hypothesis.stateful import (RuleBasedStateMachine, initialize, precondition, rule,
                                 run_state_machine_as_test)

from conftest import connect, wait_for
from indexer import Manager, config as config_module
from indexer.daemon import Request, Service
from model_library import (ANCHOR, CONTENTS, FILE_NAMES, FOLDER_NAMES, MAX_FOLDER_DEPTH, ROOTS,
                           Library, depth, digest, is_under, root_of)

# --- profiles: examples and steps per driver. On 2 cores a step takes about 20 ms in
# the sequential and parallel drivers, 150 ms in workers-survey (worker processes start
# for each rescan) and 750 ms with the service (it waits for the service to see it).

settings.register_profile("model-default", deadline=None, derandomize=True, database=None,
                          suppress_health_check=list(HealthCheck))
settings.register_profile("model-long", deadline=None, database=None, print_blob=True,
                          suppress_health_check=list(HealthCheck))
BUDGET = {  # profile -> driver -> (max_examples, stateful_step_count)
    "default": {"sequential": (40, 12), "parallel": (30, 12), "workers-survey": (15, 12),
                "service": (4, 10), "service-leases": (4, 10)},
    "long": {"sequential": (1000, 40), "parallel": (500, 40), "workers-survey": (150, 30),
             "service": (30, 20), "service-leases": (30, 20)},
}
SHRINK_S = {"default": 10, "long": 300}  # at most, shrinking the failures of one driver
PROFILE = os.environ.get("HYPOTHESIS_PROFILE", "default")
RULES_OFF = set(filter(None, os.environ.get("MODEL_RULES_OFF", "").split(",")))


def profile_for(driver: str) -> settings:
    examples, steps = BUDGET[PROFILE][driver]
    return settings(settings.get_profile(f"model-{PROFILE}"), max_examples=examples,
                    stateful_step_count=steps)


# --- the catalogue, read as the checks need it

class Row(NamedTuple):
    id: int
    path: str
    size: int
    hash: str | None
    status: str


def catalogue(db: Path) -> list[Row]:
    with connect(db) as conn:
        return [Row(*r) for r in conn.execute("SELECT id, path, size, hash, status FROM files")]


def present(rows: list[Row]) -> dict[str, tuple[int, str | None]]:
    return {r.path: (r.size, r.hash) for r in rows if r.status == "present"}


def feed(db: Path, since: int = 0) -> list[tuple[int, str, str]]:
    with connect(db) as conn:
        return [tuple(r) for r in conn.execute(
            "SELECT file_id, kind, path FROM changes WHERE seq > ? ORDER BY seq", (since,))]


def last_seq(db: Path) -> int:
    with connect(db) as conn:
        return conn.execute("SELECT coalesce(max(seq), 0) FROM changes").fetchone()[0]


def replay(changes: list[tuple[int, str, str]]) -> dict[int, tuple[str, str]]:
    """What a media server following the feed believes: id -> (path, status). A `moved`
    file is present at its new path (docs/schema.md: "a missing file that reappears
    elsewhere is `moved`"); a kind it does not know (a purge) removes the id."""
    state: dict[int, tuple[str, str]] = {}
    for file_id, kind, path in changes:
        if kind in ("added", "moved", "restored"):
            state[file_id] = (path, "present")
        elif kind == "missing":
            state[file_id] = (path, "missing")
        elif kind not in ("modified", "tagged"):
            state.pop(file_id, None)
    return state


def poll_until(condition: Callable[[], object], timeout: float) -> bool:
    """Whether `condition` came true before the deadline (a wait, never a sleep)."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


# --- the drivers: bring the catalogue up to date with the disk

SCAN_DRIVERS = {
    "sequential": dict(parallel=False),
    "parallel": dict(parallel=True, workers=2),
    "workers-survey": dict(parallel=True, workers=2, settings={"scan.survey_workers_from": 1}),
}
# "service-leases": the service where the kernel says whether a file is still open for
# writing (writers.py asks once SIGIO is ignored, as `indexer run` has it)
DRIVERS = [*SCAN_DRIVERS, "service", "service-leases"]


class ScanDriver:
    """A scan through the Python API after each step."""

    def __init__(self, base: Path, options: dict, tags: bool):
        self.db = base / "state" / "library.db"
        options = dict(options)
        extra = {**options.pop("settings", {}), "metadata.enabled": tags}
        self.manager = Manager(db_path=self.db, roots=[str(base / r.decode()) for r in ROOTS],
                               config_file=str(empty_config(base)), env={}, settings=extra,
                               **options)

    def sync(self, library: Library) -> None:
        result = self.manager.scan()
        assert result.status == ("completed" if library.online else "failed"), result.message

    def rescan(self, library: Library) -> None:
        self.sync(library)

    def close(self) -> None:
        pass


FAST = {"watch.debounce_ms": 30, "watch.max_wait_ms": 300, "watch.settle_seconds": 0.1,
        "watch.poll_interval_s": 0.5, "service.low_priority": False}


class ServiceDriver:
    """The real service in a thread. After a step, each online root's anchor gets new
    content: once the service has indexed it and is idle, it has seen the step (events
    of a root come in order), so the catalogue must then be right or become so at once."""

    GRACE_S = 3.0

    def __init__(self, base: Path, tags: bool):
        self.db = base / "state" / "library.db"
        self.roots = [str(base / r.decode()) for r in ROOTS]
        config = config_module.load(str(empty_config(base)), env={}, overrides={
            **FAST, "database.path": str(self.db), "library.roots": self.roots,
            "metadata.enabled": tags})
        self.service = Service(config)
        self.failure: BaseException | None = None
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()
        wait_for(lambda: self._alive() and self._reconciled(), timeout=20,
                 what="the service's first reconcile")

    def sync(self, library: Library) -> None:
        stamps = {}
        for root in library.online:
            anchor = root + b"/" + ANCHOR
            library.stamp(root)
            stamps[library.text(anchor)] = digest(library.files[anchor].content)
        wait_for(lambda: self._alive() and self._indexed(stamps) and self._idle(), timeout=20,
                 what="the service to index the step")
        poll_until(lambda: present(catalogue(self.db)) == library.expected(), self.GRACE_S)

    def rescan(self, library: Library) -> None:
        done = threading.Event()
        def reply(answer: dict) -> None:
            if answer["event"] == "done":
                done.set()
        self.service.request(Request("rescan", frozenset(self.roots), replies=[reply]))
        wait_for(lambda: self._alive() and done.is_set(), timeout=20, what="the rescan")

    def close(self) -> None:
        self.service.stop()
        self.thread.join(timeout=10)
        assert not self.thread.is_alive(), "the service did not stop"

    def _run(self) -> None:
        try:
            self.service.run()
        except BaseException as error:  # shown by the next wait, not lost in a thread
            self.failure = error

    def _alive(self) -> bool:
        if self.failure is not None or not self.thread.is_alive():
            raise AssertionError(f"the service stopped: {self.failure!r}")
        return True

    def _reconciled(self) -> bool:
        return self.db.exists() and self._job_count(
            "kind = 'reconcile' AND status = 'completed'") > 0

    def _indexed(self, stamps: dict[str, str]) -> bool:
        shown = present(catalogue(self.db))
        return all(shown.get(path, (0, None))[1] == hashed for path, hashed in stamps.items())

    def _idle(self) -> bool:
        state = self.service.status()["service"]
        return (state["queued"] == 0 and state["pending_places"] == 0
                and self._job_count("status = 'running'") == 0)

    def _job_count(self, where: str) -> int:
        with connect(self.db) as conn:
            try:
                return conn.execute(f"SELECT count(*) FROM scan_jobs WHERE {where}").fetchone()[0]
            except sqlite3.OperationalError:  # the tables are not made yet
                return 0


def empty_config(base: Path) -> Path:
    """No user or system configuration leaks in."""
    path = base / "empty-config.toml"
    path.touch()
    return path


# --- the ids the catalogue gave so far

class Changed(NamedTuple):
    path: str
    identity: int
    first_id: int
    id_now: int


class Taken(NamedTuple):
    path: str
    identity: int
    id: int
    held_by: int


class Ledger:
    """Which id each identity was first seen with, which identity held each id last, and
    the rows as the previous check saw them."""

    def __init__(self):
        self.id_of: dict[int, int] = {}
        self.holder: dict[int, int] = {}
        self.before: dict[int, Row] = {}

    def changed_ids(self, seen: dict[str, int], ids: dict[str, int]) -> list[Changed]:
        """Identities whose row is not the one they were first seen with."""
        return [Changed(path, ident, self.id_of[ident], ids[path]) for path, ident in seen.items()
                if ident in self.id_of and ids[path] != self.id_of[ident]]

    def taken_ids(self, seen: dict[str, int], ids: dict[str, int], contents: dict[str, str],
                  ended: set[int]) -> list[Taken]:
        """First-seen identities given an id that was another's, unless that identity has
        ended and its row had this content (a deleted file coming back; or copied, then
        deleted while its root was offline: a move by hash, as the README says) or was at
        this path (a restore; or deleted and made again there while offline)."""
        taken = []
        for path, ident in seen.items():
            holder = self.holder.get(ids[path])
            if ident in self.id_of or holder is None:
                continue
            row = self.before.get(ids[path])
            back = row is not None and (row.path == path or row.hash == contents[path])
            if holder not in ended or not back:
                taken.append(Taken(path, ident, ids[path], holder))
        return taken

    def record(self, seen: dict[str, int], ids: dict[str, int], rows: list[Row]) -> None:
        for path, ident in seen.items():
            self.id_of.setdefault(ident, ids[path])
            self.holder[ids[path]] = ident
        self.before = {row.id: row for row in rows}


# --- the state machine

class CatalogueModel(RuleBasedStateMachine):
    """Real filesystem operations on the model's tree; after each, sync and check."""

    driver_name = "sequential"
    session: Path = Path(tempfile.gettempdir())

    def __init__(self):
        super().__init__()
        self.base = Path(tempfile.mkdtemp(prefix="example-", dir=self.session))
        self.library = Library(os.fsencode(self.base))
        self.ledger = Ledger()
        self.driver: ScanDriver | ServiceDriver | None = None

    def teardown(self):
        try:
            if self.driver is not None:
                self.driver.close()
        finally:
            shutil.rmtree(self.base)

    @initialize(tags=st.booleans(), tree=st.lists(st.tuples(
        st.sampled_from(ROOTS), st.lists(st.sampled_from(FOLDER_NAMES), max_size=2),
        st.sampled_from(FILE_NAMES), st.sampled_from(CONTENTS)), max_size=8))
    def start(self, tags, tree):
        """A first tree, then the driver on it; `tags`: read tags too (slower)."""
        for root, folders, name, content in tree:
            path = b"/".join([root, *folders, name])
            if self.library.free(path):
                self.library.create(path, content)
                note(f"create ({len(content)} bytes) {path.decode(errors='backslashreplace')}")
        if self.driver_name.startswith("service"):
            self.driver = ServiceDriver(self.base, tags)
        else:
            self.driver = ScanDriver(self.base, SCAN_DRIVERS[self.driver_name], tags)
        self.sync()

    # --- drawing from the state

    def _draw(self, data, choices, label: str):
        return data.draw(st.sampled_from(sorted(choices)), label=label)

    def _draw_folder(self, data, roots: list[bytes], label: str) -> bytes:
        """An existing folder of `roots`, or a new one in one (made when it is used)."""
        parent = self._draw(data, self.library.folders_in(roots, MAX_FOLDER_DEPTH - 1), label)
        child = data.draw(st.sampled_from((None, *FOLDER_NAMES)), label=f"{label}: new folder")
        return parent if child is None else parent + b"/" + child

    def _draw_new_path(self, data, roots: list[bytes], label: str) -> bytes | None:
        """A free file path in `roots`; None if every name is taken in the folder drawn."""
        folder = self._draw_folder(data, roots, label)
        names = [n for n in FILE_NAMES if self._may_land(folder + b"/" + n)]
        return folder + b"/" + self._draw(data, names, f"{label}: name") if names else None

    def _may_land(self, path: bytes) -> bool:
        """Whether a file may be put at `path`: it is free (and, with the rule
        move_onto_deleted off, no file was deleted there)."""
        return self.library.free(path) and (
            "move_onto_deleted" not in RULES_OFF or path not in self.library.deleted)

    def _files(self) -> list[bytes]:
        return self.library.movable(self.library.online)

    def _folders(self) -> list[bytes]:
        return [f for f in self.library.folders_in(self.library.online) if depth(f) > 1]

    def _moving_room(self) -> list[bytes]:
        """Paths of deleted files a file may be moved onto: free, in an online root."""
        return sorted(p for p in self.library.deleted
                      if root_of(p) in self.library.online and self.library.free(p))

    def _step(self, what: str, *paths: bytes) -> None:
        note(f"{what} " + " -> ".join(p.decode(errors="backslashreplace") for p in paths))
        self.sync()

    # --- the rules: each is one real filesystem operation (and the folders it needs)

    @precondition(lambda self: self.library.online and "create" not in RULES_OFF)
    @rule(data=st.data(), content=st.sampled_from(CONTENTS))
    def create(self, data, content):
        path = self._draw_new_path(data, self.library.online, "new file")
        if path is not None:
            self.library.create(path, content)
            self._step(f"create ({len(content)} bytes)", path)

    @precondition(lambda self: self._files() and "copy" not in RULES_OFF)
    @rule(data=st.data(), keep_times=st.booleans())
    def copy(self, data, keep_times):
        src = self._draw(data, self._files(), "copy of")
        dst = self._draw_new_path(data, self.library.online, "to")
        if dst is not None:
            self.library.copy(src, dst, keep_times)
            self._step("cp -p" if keep_times else "cp", src, dst)

    @precondition(lambda self: self._files() and "move" not in RULES_OFF)
    @rule(data=st.data())
    def move(self, data):
        """Within its folder, to another folder, to the other root."""
        src = self._draw(data, self._files(), "move")
        dst = self._draw_new_path(data, self.library.online, "to")
        if dst is not None:
            self.library.move(src, dst)
            self._step("mv", src, dst)

    @precondition(lambda self: self._files() and self._moving_room()
                  and "move_onto_deleted" not in RULES_OFF)
    @rule(data=st.data())
    def move_onto_deleted(self, data):
        src = self._draw(data, self._files(), "move")
        dst = self._draw(data, self._moving_room(), "onto the path of a deleted file")
        self.library.move(src, dst)
        self._step("mv (onto a deleted file's path)", src, dst)

    @precondition(lambda self: len(self._files()) > 1 and "move_over" not in RULES_OFF)
    @rule(data=st.data())
    def move_over(self, data):
        src = self._draw(data, self._files(), "move")
        dst = self._draw(data, [f for f in self._files() if f != src], "over")
        self.library.move(src, dst)
        self._step("mv (over an existing file)", src, dst)

    @precondition(lambda self: self._folders() and "move_folder" not in RULES_OFF)
    @rule(data=st.data())
    def move_folder(self, data):
        src = self._draw(data, self._folders(), "move folder")
        parents = [f for f in self.library.folders_in([root_of(src)])
                   if f != src and not is_under(f, src)]
        inside = [rel[len(src):] for rel in self.library.files if is_under(rel, src)]
        places = [p + b"/" + n for p in parents for n in FOLDER_NAMES
                  if self.library.free(p + b"/" + n)
                  and all(self._may_land(p + b"/" + n + rest) for rest in inside)]
        if places:
            dst = self._draw(data, places, "to")
            self.library.move_folder(src, dst)
            self._step("mv (folder)", src, dst)

    @precondition(lambda self: self._files() and "delete" not in RULES_OFF)
    @rule(data=st.data())
    def delete(self, data):
        path = self._draw(data, self._files(), "delete")
        self.library.delete(path)
        self._step("rm", path)

    @precondition(lambda self: self._folders() and "delete_folder" not in RULES_OFF)
    @rule(data=st.data())
    def delete_folder(self, data):
        folder = self._draw(data, self._folders(), "delete folder")
        self.library.delete_folder(folder)
        self._step("rm -r", folder)

    @precondition(lambda self: self._nonempty() and "edit_keeping_mtime" not in RULES_OFF)
    @rule(data=st.data())
    def edit_keeping_mtime(self, data):
        path = self._draw(data, self._nonempty(), "edit, keeping the mtime")
        size = len(self.library.files[path].content)
        offset = data.draw(st.integers(0, size - 1), label="at byte")
        self.library.edit_keeping_mtime(path, offset)
        self._step(f"edit byte {offset}, mtime kept", path)

    @precondition(lambda self: self._files() and "edit_resizing" not in RULES_OFF)
    @rule(data=st.data())
    def edit_resizing(self, data):
        path = self._draw(data, self._files(), "edit, new size")
        old = len(self.library.files[path].content)
        size = data.draw(st.integers(0, old + 8).filter(lambda n: n != old), label="size")
        self.library.edit_resizing(path, size)
        self._step(f"edit in place to {size} bytes", path)

    @precondition(lambda self: self._files() and "replace_atomically" not in RULES_OFF)
    @rule(data=st.data(), content=st.sampled_from(CONTENTS))
    def replace_atomically(self, data, content):
        path = self._draw(data, self._files(), "replace atomically")
        self.library.replace_atomically(path, content)
        self._step(f"write ~replace.tmp ({len(content)} bytes), rename over", path)

    @precondition(lambda self: self._files() and "touch" not in RULES_OFF)
    @rule(data=st.data())
    def touch(self, data):
        path = self._draw(data, self._files(), "touch")
        self.library.touch(path)
        self._step("touch", path)

    @precondition(lambda self: not self.library.away and "go_offline" not in RULES_OFF)
    @rule(data=st.data())
    def go_offline(self, data):
        """One root at a time (with both away, little is left to do)."""
        root = self._draw(data, self.library.online, "take offline")
        self.library.go_offline(root)
        self._step("offline (renamed away)", root)

    @precondition(lambda self: self._away_files())
    @rule(data=st.data())
    def delete_while_away(self, data):
        path = self._draw(data, self._away_files(), "delete while offline")
        self.library.delete(path)
        self._step("rm (while offline)", path)

    @precondition(lambda self: self.library.away)
    @rule(data=st.data(), content=st.sampled_from(CONTENTS))
    def create_while_away(self, data, content):
        path = self._draw_new_path(data, list(self.library.away), "new file while offline")
        if path is not None:
            self.library.create(path, content)
            self._step(f"create ({len(content)} bytes, while offline)", path)

    @precondition(lambda self: self.library.away)
    @rule(data=st.data())
    def come_back(self, data):
        root = self._draw(data, self.library.away, "bring back")
        self.library.come_back(root)
        self._step("back online", root)

    @rule()
    def rescan(self):
        """5. A scan with nothing changed since the last one adds nothing to the feed."""
        before = last_seq(self.driver.db)
        self.driver.rescan(self.library)
        assert feed(self.driver.db, before) == [], "5. a scan with nothing changed added changes"
        self.check()

    def _nonempty(self) -> list[bytes]:
        return [f for f in self._files() if self.library.files[f].content]

    def _away_files(self) -> list[bytes]:
        return self.library.movable(list(self.library.away))

    # --- sync and check

    def sync(self) -> None:
        assert (self.library.on_disk() == (self.library.contents(), self.library.folders)), \
            "the model differs from the disk: a bug in the test"
        self.driver.sync(self.library)
        self.check()

    def check(self) -> None:
        rows = [r._replace(path=self._short(r.path)) for r in catalogue(self.driver.db)]
        shown = {self._short(self.library.text(rel)): e for rel, e in self.library.shown().items()}
        # 1. The present rows are the files (an offline root's: as they were).
        assert present(rows) == {path: (len(e.content), digest(e.content))
                                 for path, e in shown.items()}, "1. the rows are not the files"

        seen = {path: e.ident for path, e in shown.items()}
        contents = {path: digest(e.content) for path, e in shown.items()}
        ids = {r.path: r.id for r in rows if r.status == "present"}
        # 2. Ids follow files.
        assert self.ledger.changed_ids(seen, ids) == [], "2. an identity's id changed"
        # 3. No id is given to two files.
        assert self.ledger.taken_ids(seen, ids, contents, self.library.ended) == [], \
            "3. a new file was given another file's id"
        self.ledger.record(seen, ids, rows)

        # 4. The feed replayed from the start gives the rows.
        replayed = {i: (self._short(path), status) for i, (path, status)
                    in replay(feed(self.driver.db)).items()}
        assert replayed == {r.id: (r.path, r.status) for r in rows}, \
            "4. the feed, replayed, does not give the rows"
        # 6. Tags held as current are the current content's.
        with connect(self.driver.db) as conn:
            stale = conn.execute("SELECT count(*) FROM files f JOIN media m ON m.file_id = f.id "
                                 "WHERE f.tags_hash IS f.hash AND m.content_hash IS NOT f.hash"
                                 ).fetchone()[0]
        assert stale == 0, "6. a file's tags are another content's"

    def _short(self, text: str) -> str:
        """A catalogue path without the example's folder: `A/Foo/x.mp3`."""
        return text.removeprefix(str(self.base) + "/")


@pytest.fixture(scope="module")
def model_folder():
    """One folder for every example of the module (each makes and removes its own)."""
    folder = Path(tempfile.mkdtemp(prefix="indexer-model-"))
    yield folder
    shutil.rmtree(folder)


@pytest.mark.timeout(900)  # the long profile, or a failure being shrunk
@pytest.mark.parametrize("driver", DRIVERS)
def test_the_catalogue_equals_the_disk_and_ids_follow_files(driver, model_folder, monkeypatch,
                                                            caplog):
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(model_folder))  # the service's control socket
    # Hypothesis' own knob for this (engine.py: "make it monkeypatchable"): in CI a failure
    # is shrunk for a while, not for its default five minutes.
    monkeypatch.setattr(engine, "MAX_SHRINKING_SECONDS", SHRINK_S[PROFILE])
    caplog.set_level(logging.ERROR, logger="indexer")  # tags of random bytes: a warning each
    machine = type(f"Model_{driver.replace('-', '_')}", (CatalogueModel,),
                   {"driver_name": driver, "session": model_folder})
    if PROFILE == "long":  # a new search each run: say how to run this one again
        chosen = int(os.environ.get("MODEL_SEED") or random.randrange(2**32))
        print(f"replay: HYPOTHESIS_PROFILE=long MODEL_SEED={chosen}")
        machine = seed(chosen)(machine)
    breaks = signal.signal(signal.SIGIO, signal.SIG_IGN if driver == "service-leases"
                           else signal.SIG_DFL)
    try:
        run_state_machine_as_test(machine, settings=profile_for(driver))
    finally:
        signal.signal(signal.SIGIO, breaks)


# --- one case on its own: two names that the catalogue shows with the same text

@pytest.mark.parametrize("literal_first", [True, False], ids=["literal-first", "byte-first"])
@pytest.mark.parametrize("driver", list(SCAN_DRIVERS))
def test_two_names_shown_alike_index_the_same_one_scan_after_scan(driver, literal_first,
                                                                   model_folder):
    """`caf\\xe9.mp3` (a backslash, x, e, 9) and `caf<0xE9>.mp3` are both shown as
    `caf\\xe9.mp3`: one is indexed, the other is an error, and rescans keep it so."""
    base = Path(tempfile.mkdtemp(prefix="alike-", dir=model_folder))
    try:
        folder = base / "A" / "Foo"
        folder.mkdir(parents=True)
        (base / "A" / "Bar").mkdir()
        (base / "A" / "Bar" / "other.mp3").write_bytes(b"other")
        names = [os.fsencode(folder / "caf\\xe9.mp3"), os.fsencode(folder) + b"/caf\xe9.mp3"]
        for name in names if literal_first else names[::-1]:
            with open(name, "wb") as handle:
                handle.write(b"literal" if b"\\" in name else b"the byte")
        scanner = ScanDriver(base, SCAN_DRIVERS[driver], tags=False)
        text = f"{folder}/caf\\xe9.mp3"

        def the_row():
            with connect(scanner.db) as conn:
                return tuple(conn.execute("SELECT id, path_raw, hash, status FROM files "
                                          "WHERE path = ?", (text,)).fetchone())

        scanner.manager.scan()
        first, seq = the_row(), last_seq(scanner.db)
        for _ in range(2):
            scanner.manager.scan()
            assert (the_row(), last_seq(scanner.db)) == (first, seq)
        with connect(scanner.db) as conn:
            errors = {tuple(r) for r in conn.execute("SELECT path, stage FROM scan_errors")}
        assert errors == {(text, "walk")}  # the survey tells them apart, before any write
    finally:
        shutil.rmtree(base)
