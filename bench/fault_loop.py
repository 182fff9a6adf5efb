"""The fault loop: `indexer run` under churn and faults, checked against the disk.

A user changes the library without pause (soak_disk.Library). Every `churn_s`
seconds one fault is injected, in a seeded order that goes through all of them:

  kill-service   SIGKILL of the service, restarted after `restart_s` (systemd's
                 Restart=on-failure); the user goes on meanwhile
  kill-worker    SIGKILL of a tag-reading worker (an album is copied in to have one)
  stop-worker    SIGSTOP of a tag-reading worker: the service must kill it itself
  full-disk      the catalogue's file system filled for `fault_s` seconds
  remount        the root unmounted, changed on another mount point, mounted again
  overflow       a burst of `burst_events` inotify events (attribute changes and
                 real changes) on the whole root at once

After each fault the user pauses, and the loop measures how long the service takes
until the catalogue equals the disk (paths, sizes, hashes) and checks that every
file kept its id. Meanwhile a sampler asks `indexer status --json` every
`sample_s` seconds: the service must never say idle while the catalogue has
differed from the disk for longer than debounce + settle + 5 s. The service's RSS,
descriptors and threads are sampled every minute.

Used by bench/soak.py (30 minutes on a 25,000-file root) and tests/test_soak.py
(a seeded minute). The mount faults need root; without it they are left out.
"""

from __future__ import annotations

import errno
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from soak_disk import Library, Truth

FAULTS = ("kill-service", "kill-worker", "stop-worker", "full-disk", "remount", "overflow")
NEEDS_MOUNTS = {"full-disk", "remount"}


@dataclass
class Settings:
    workdir: Path
    files: int = 25_000
    seed: int = 1
    minutes: float = 30
    churn_s: float = 150  # the user at work between faults
    fault_s: float = 60  # a full disk lasts this long; an unmounted root a third of it
    burst_events: int = 100_000
    debounce_ms: int = 1000  # the service's defaults
    settle_s: float = 5
    tag_timeout_s: float = 30
    converge_s: float = 300  # a fault not recovered from by then is a failure
    restart_s: float = 2
    sample_s: float = 2
    pace_s: float = 0.01  # between two changes of the user
    queue_events: int = 0  # fs.inotify.max_queued_events for the service's watcher (0: as is)
    faults: tuple[str, ...] = FAULTS
    python: str = sys.executable
    fail_fast: bool = False  # end at the first fault not recovered from (tests)

    @property
    def behind_limit_s(self) -> float:
        return self.debounce_ms / 1000 + self.settle_s + 5


@dataclass
class Report:
    settings: dict
    recoveries: list[dict] = field(default_factory=list)
    idle_while_behind: list[dict] = field(default_factory=list)
    resources: list[dict] = field(default_factory=list)
    samples: int = 0
    idle_samples: int = 0
    changes: int = 0
    rows_wrong_at_end: int = -1
    ids_lost_at_end: int = -1
    ids_lost_examples: list = field(default_factory=list)
    without_tags_at_end: int = -1
    overflows_logged: int = 0
    errors_logged: int = 0
    service_died: int = 0
    harness_error: str = ""

    def as_dict(self) -> dict:
        return dict(self.__dict__)


class Service:
    """`indexer run` in a child process, as systemd would run it."""

    def __init__(self, settings: Settings, env: dict[str, str], log: Path):
        self.settings, self.env, self.log = settings, env, log
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        queue = Path("/proc/sys/fs/inotify/max_queued_events")
        before = queue.read_text() if self.settings.queue_events else ""
        if before:
            queue.write_text(str(self.settings.queue_events))  # read when the watcher starts
        try:
            with open(self.log, "a") as log:
                self.process = subprocess.Popen([self.settings.python, "-m", "indexer", "run"],
                                                env=self.env, stdout=log, stderr=log,
                                                stdin=subprocess.DEVNULL)
            _until(lambda: self.status() is not None, 60, "the service to answer")
        finally:
            if before:
                queue.write_text(before)  # the rest of the machine needs its queue

    @property
    def pid(self) -> int:
        return self.process.pid

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def status(self) -> dict | None:
        """The service's part of `indexer status --json`; None when it does not answer."""
        try:
            done = subprocess.run([self.settings.python, "-m", "indexer", "status", "--json"],
                                  env=self.env, capture_output=True, text=True, timeout=30,
                                  stdin=subprocess.DEVNULL)
            service = json.loads(done.stdout)["service"]
        except (subprocess.TimeoutExpired, ValueError, KeyError, TypeError):
            return None
        return service if service and "pid" in service else None

    def tag_workers(self) -> list[int]:
        return [pid for pid in self.children() if "indexer.metadata:read_tags" in _cmdline(pid)]

    def children(self) -> list[int]:
        found = []
        for task in os.listdir(f"/proc/{self.pid}/task"):
            try:
                found += map(int, Path(f"/proc/{self.pid}/task/{task}/children").read_text().split())
            except OSError:
                continue
        return found

    def resources(self) -> dict:
        status = dict(line.split(":", 1) for line in
                      Path(f"/proc/{self.pid}/status").read_text().splitlines())
        return {"rss_mib": round(int(status["VmRSS"].split()[0]) / 1024, 1),
                "fds": len(os.listdir(f"/proc/{self.pid}/fd")),
                "threads": int(status["Threads"]), "children": len(self.children())}

    def kill(self) -> None:
        self.process.kill()
        self.process.wait()

    def stop(self) -> None:
        if self.alive():
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.kill()


def idle(service: dict | None) -> bool:
    """What `indexer status` says: nothing queued, waiting, running or left unsure."""
    return bool(service) and not (service["queued"] or service["pending_places"]
                                  or service["current"] or service["unreconciled"]
                                  or service["waiting_for_room"])


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def _until(condition, timeout: float, what: str, every: float = 0.05):
    deadline = time.monotonic() + timeout
    while not (value := condition()):
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(every)
    return value


def _mount(*args: str) -> None:
    subprocess.run(["mount", *args], check=True, capture_output=True)


def _umount(path: Path) -> None:
    """Unmount; a file the service still reads there makes it lazy (as `umount -l`)."""
    for _ in range(20):
        if subprocess.run(["umount", str(path)], capture_output=True).returncode == 0:
            return
        time.sleep(0.1)
    subprocess.run(["umount", "-l", str(path)], check=True, capture_output=True)


class Soak:
    """One run of the fault loop: set up, churn and inject, check, tear down."""

    def __init__(self, settings: Settings):
        self.s = settings
        self.mounts = os.geteuid() == 0
        work = settings.workdir
        self.root, self.state, self.staging = work / "music", work / "state", work / "staging"
        self.image = work / "music.img"
        self.db = self.state / "library.db"
        self.log = work / "service.log"
        self.library = Library(self.root, settings.seed)
        self.truth = Truth(self.library, self.db)
        self.report = Report({k: str(v) for k, v in settings.__dict__.items()})
        self.rng = random.Random(settings.seed)
        self._go, self._quit = threading.Event(), threading.Event()
        self._first_seen: dict[tuple, float] = {}
        self._comparable = True  # False while the root is away (see `_remount`)
        self.faults = [f for f in settings.faults if self.mounts or f not in NEEDS_MOUNTS]

    def run(self) -> Report:
        self._set_up()
        threads = [threading.Thread(target=self._user, daemon=True),
                   threading.Thread(target=self._sampler, daemon=True)]
        try:
            self.service.start()
            _until(lambda: not self.truth.differences(), self.s.converge_s, "the first scan", 0.5)
            self.truth.ids_kept()
            for thread in threads:
                thread.start()
            self._loop()
            self._end()
        finally:
            self._quit.set()
            self._go.set()
            for thread in threads:
                if thread.is_alive():
                    thread.join(timeout=30)
            self.service.stop()
            self._tear_down()
        return self.report

    # --- the loop

    def _loop(self) -> None:
        """Rounds of every fault in a seeded order until `minutes` have passed (the last
        round is finished), the user at work before each fault and after the last."""
        started, order = time.monotonic(), []
        while order or not self.report.recoveries or time.monotonic() - started < self.s.minutes * 60:
            order = order or self.rng.sample(self.faults, len(self.faults))
            if self._churn():
                return
            fault = order.pop(0)
            at = time.monotonic() - started
            self.library.history.append(f"fault\t{fault}")
            detail = getattr(self, "_" + fault.replace("-", "_"))()
            ended = self._pause()
            self._comparable = True
            recovery = {"fault": fault, "at_min": round(at / 60, 2), **detail,
                        **self._recovery(ended)}
            self.report.recoveries.append(recovery)
            if self.s.fail_fast and (recovery["rows_wrong"] or recovery.get("ids_lost")):
                raise AssertionError(f"seed {self.s.seed}: not recovered: {recovery}")
            self._resources(f"after {fault}")
        self._churn()

    def _churn(self) -> bool:
        """The user at work for `churn_s`; True if the loop is to end. A service that
        died by itself meanwhile is counted, and started again (as systemd would)."""
        self._go.set()
        ended = self._quit.wait(self.s.churn_s)
        if not self.service.alive():
            self.report.service_died += 1
            self.service.start()
        return ended

    def _pause(self) -> float:
        """Pause the user; when its last change was whole."""
        self._go.clear()
        with self.library.lock:
            return time.monotonic()

    def _recovery(self, ended: float) -> dict:
        try:
            _until(lambda: not self.truth.differences(), self.s.converge_s, "agreement", 0.25)
            agreed = time.monotonic() - ended
        except TimeoutError:
            return {"converged_s": None, "rows_wrong": len(self.truth.differences())}
        lost, examples = self.truth.ids_kept()
        return {"converged_s": round(agreed, 2), "rows_wrong": 0, "ids_lost": lost,
                **({"ids_lost_examples": examples} if lost else {})}

    def _end(self) -> None:
        final = self._recovery(self._pause())
        self.report.rows_wrong_at_end = final["rows_wrong"]
        self.report.ids_lost_at_end = final.get("ids_lost", -1)
        self.report.ids_lost_examples = final.get("ids_lost_examples", [])
        try:
            _until(lambda: idle(self.service.status()), self.s.converge_s, "idle", 0.5)
        except TimeoutError:
            pass
        self.report.without_tags_at_end = self.truth.without_tags()
        self.report.changes = self.library.actions
        text = self.log.read_text(errors="replace")
        self.report.overflows_logged = text.count("inotify queue overflow")
        self.report.errors_logged = sum(1 for line in text.splitlines() if " ERROR " in line
                                        or line.startswith("Traceback"))
        self._resources("end")

    # --- the user, the sampler

    def _user(self) -> None:
        try:
            while not self._quit.is_set():
                self._go.wait()
                if self._quit.is_set():
                    return
                self.library.change(go=self._go)
                time.sleep(self.s.pace_s)
        except Exception as error:  # the soak's own fault: it ends, saying so
            self.report.harness_error = f"the user's changes failed: {error!r}"
            self._quit.set()

    def _sampler(self) -> None:
        """Says idle while behind? `differences` keys stay the same while one fault lasts,
        so how long the catalogue has been wrong is how long ago a key was first seen."""
        last_resources = time.monotonic()
        while not self._quit.wait(self.s.sample_s):
            said = self.service.status() if self.service.alive() else None
            now = time.monotonic()
            if not self._comparable:  # the root unmounted: its rows are kept, rightly
                self._first_seen = {}
                continue
            try:
                wrong = self.truth.differences()
            except Exception:  # the catalogue being replaced by a restart: next time
                continue
            self._first_seen = {k: self._first_seen.get(k, now) for k in wrong}
            self.report.samples += 1
            if idle(said):
                self.report.idle_samples += 1
                oldest = max((now - t for t in self._first_seen.values()), default=0)
                if oldest > self.s.behind_limit_s:
                    self.report.idle_while_behind.append(
                        {"at_s": round(now, 1), "behind_s": round(oldest, 1),
                         "rows_wrong": len(wrong), "example": str(min(wrong))[:200]})
            if now - last_resources >= 60:
                last_resources = now
                self._resources("minute")

    def _resources(self, when: str) -> None:
        if self.service.alive():
            self.report.resources.append({"when": when, "pid": self.service.pid,
                                          **self.service.resources()})

    # --- the faults: each returns what it did

    def _kill_service(self) -> dict:
        self.service.kill()
        time.sleep(self.s.restart_s)  # systemd's RestartSec (the user goes on meanwhile)
        self.service.start()
        return {}

    def _a_tag_worker(self) -> int | None:
        """Copy an album in and catch one of the workers that read its tags."""
        with self.library.lock:
            self.library.add_album(f"Fault/Album {time.monotonic_ns()}", 60)
        try:
            return _until(self.service.tag_workers, 30, "a tag worker", 0.005)[0]
        except TimeoutError:
            return None

    def _kill_worker(self) -> dict:
        pid = self._a_tag_worker()
        if pid is not None:
            os.kill(pid, signal.SIGKILL)
        return {"worker": "killed" if pid else "none seen"}

    def _stop_worker(self) -> dict:
        pid = self._a_tag_worker()
        if pid is None:
            return {"worker": "none seen"}
        os.kill(pid, signal.SIGSTOP)
        try:
            _until(lambda: not Path(f"/proc/{pid}").exists() or _zombie(pid),
                   self.s.tag_timeout_s + 30, "the service to end the stopped worker", 0.1)
            return {"worker": "stopped, then ended by the service"}
        except TimeoutError:
            os.kill(pid, signal.SIGCONT)
            return {"worker": "stopped, NOT ended by the service"}

    def _full_disk(self) -> dict:
        ballast = self.state / "ballast"
        with open(ballast, "wb", buffering=0) as out:
            for size in (1 << 20, 1 << 12):
                try:
                    while True:
                        out.write(b"\0" * size)
                except OSError as error:
                    if error.errno != errno.ENOSPC:
                        raise
        said = []
        deadline = time.monotonic() + self.s.fault_s
        while time.monotonic() < deadline:
            said.append((self.service.status() or {}).get("waiting_for_room"))
            time.sleep(1)
        ballast.unlink()
        return {"said_waiting_for_room": any(said)}

    def _remount(self) -> dict:
        self._pause()
        with self.library.lock:
            self._comparable = False
            device = os.stat(self.root).st_dev
            _umount(self.root)
            time.sleep(self.s.fault_s / 3)  # offline for a while, as a NAS that rebooted
            _mount("-o", "loop", str(self.image), str(self.staging))
            self.library.base = self.staging
        try:
            self.library.change(100)  # changed elsewhere meanwhile
        finally:
            with self.library.lock:
                self.library.base = self.root
                _umount(self.staging)
                _mount("-o", "loop", str(self.image), str(self.root))
        # (with other loop devices in use, by another soak or a benchmark, the image may be
        # mounted again on another one: another device number, the same files to the service)
        return {"changed_while_away": 100,
                "device_number": "same" if os.stat(self.root).st_dev == device else "another"}

    def _overflow(self) -> dict:
        self._pause()
        real = max(10, self.s.files // 100)
        self.library.change(real)
        with self.library.lock:
            self.library.touch_storm(self.s.burst_events)
        return {"burst_events": self.s.burst_events, "real_changes": real}

    # --- the stage

    def _set_up(self) -> None:
        work = self.s.workdir
        for folder in (self.root, self.state, self.staging, work / "run", work / "home"):
            folder.mkdir(parents=True, exist_ok=True)
        if self.mounts:
            with open(self.image, "wb") as image:
                image.truncate((self.s.files * 24 << 10) + (256 << 20))
            subprocess.run(["mkfs.ext4", "-q", "-F", str(self.image)], check=True,
                           capture_output=True)
            _mount("-o", "loop", str(self.image), str(self.root))
            size = max(64, self.s.files // 50)  # MiB: the catalogue is ~1.5 KB a file
            _mount("-t", "tmpfs", "-o", f"size={size}m", "tmpfs", str(self.state))
        self.library.make(self.s.files)
        config = work / "config.toml"
        config.write_text(f'[library]\nroots = ["{self.root}"]\n[watch]\n'
                          f"debounce_ms = {self.s.debounce_ms}\n"
                          f"settle_seconds = {self.s.settle_s}\n"
                          f"[metadata]\ntimeout_s = {self.s.tag_timeout_s}\n")
        env = {k: v for k, v in os.environ.items() if not k.startswith(("INDEXER_", "XDG_"))}
        env.update(INDEXER_CONFIG=str(config), INDEXER_DB=str(self.db), HOME=str(work / "home"),
                   XDG_RUNTIME_DIR=str(work / "run"), PYTHONPATH=str(Path(__file__).parents[1]))
        self.service = Service(self.s, env, self.log)

    def _tear_down(self) -> None:
        """Unmount all; the catalogue is kept beside the log, to look into what went wrong."""
        evidence = self.s.workdir / "evidence"
        evidence.mkdir(exist_ok=True)
        (evidence / "history.tsv").write_text("\n".join(self.library.history) + "\n")
        for name in ("library.db", "library.db-wal", "library.db-shm"):
            if (self.state / name).exists():
                shutil.copyfile(self.state / name, evidence / name)
        if self.mounts:
            for mount in (self.staging, self.root, self.state):
                if os.path.ismount(mount):
                    _umount(mount)


def _zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return True
