"""The deployment of the README: a service user writes the catalogue with the unit's
umask; a media server, a user of its own in the service's group, reads it (and its
artwork) whether the writer runs, stopped cleanly or was killed, and can never
write it; root's commands on the service's catalogue leave nothing of root's.

Real users (made here, removed after), real processes of the real command line,
run from a venv of /usr/bin/python3 that every user may run, in a folder every
user may enter. Needs root; skipped otherwise."""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import os
import pwd
import shutil
import signal
import subprocess
import sys
import tempfile
from pathlib import Path
from urllib.parse import quote

import pytest

import indexer as indexer_package
from conftest import DATA, make_library, wait_for

SYSTEM_PYTHON = Path("/usr/bin/python3")
SQLITE3 = shutil.which("sqlite3")
UMASK = "0027"  # the unit's

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root, to make users")


# --- users, a Python they may run, a place they may enter


class Users:
    """The service's user and group, a media server's user in that group, and a user
    in neither (all removed at the end)."""

    def __init__(self):
        tag = os.getpid() % 100000
        self.service, self.media, self.stranger = f"ixs{tag}", f"ixm{tag}", f"ixo{tag}"
        self._made: list[str] = []
        self._add(self.service)
        self._add(self.media, "-G", self.service)
        self._add(self.stranger)

    def _add(self, name: str, *extra: str) -> None:
        subprocess.run(["useradd", "--system", "--user-group", "--no-create-home",
                        "--home-dir", "/nonexistent", "--shell", "/usr/sbin/nologin",
                        *extra, name], check=True, capture_output=True)
        self._made.append(name)

    def uid(self, name: str) -> int:
        return pwd.getpwnam(name).pw_uid

    def remove(self) -> None:
        for name in reversed(self._made):
            subprocess.run(["userdel", name], capture_output=True)
            subprocess.run(["groupdel", name], capture_output=True)  # if userdel left it


@pytest.fixture(scope="module")
def users():
    made = Users()
    yield made
    made.remove()


def _needed(name: str, seen: set[str]) -> set[str]:
    """`name` and every distribution it needs, without extras, by distribution name."""
    from packaging.requirements import Requirement
    key = name.lower().replace("_", "-")
    if key in seen:
        return seen
    seen.add(key)
    for text in importlib.metadata.requires(name) or []:
        requirement = Requirement(text)
        if requirement.marker is None or requirement.marker.evaluate({"extra": ""}):
            _needed(requirement.name, seen)
    return seen


@pytest.fixture(scope="module")
def python(open_place_root):
    """A Python every user may run: a venv of /usr/bin/python3 holding copies of this
    indexer and of the distributions it needs, from this test run's own environment
    (the Python running the tests may live under /root, which no other user enters)."""
    if not SYSTEM_PYTHON.exists():
        pytest.skip("no /usr/bin/python3 to build a venv every user may run")
    version = subprocess.run([SYSTEM_PYTHON, "-c", "import sys; print(sys.version_info[:2])"],
                             capture_output=True, text=True).stdout.strip()
    if version != str(sys.version_info[:2]):
        pytest.skip(f"/usr/bin/python3 is {version}, not this Python's version")
    venv = open_place_root / "venv"
    subprocess.run([SYSTEM_PYTHON, "-m", "venv", "--without-pip", venv], check=True)
    site = next((venv / "lib").glob("python3*/site-packages"))
    for name in _needed("indexer", set()) - {"indexer"}:
        dist = importlib.metadata.distribution(name)
        for file in dist.files or []:
            source = Path(dist.locate_file(file))
            if ".." in file.parts or "__pycache__" in file.parts or not source.is_file():
                continue
            (site / file).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source, site / file)
    shutil.copytree(Path(indexer_package.__file__).parent, site / "indexer",
                    ignore=shutil.ignore_patterns("__pycache__"))
    for folder, dirs, names in os.walk(open_place_root):
        os.chmod(folder, 0o755)
    return venv / "bin" / "python"


@pytest.fixture(scope="module")
def open_place_root():
    """A folder in /tmp every user may enter, removed at the end."""
    path = Path(tempfile.mkdtemp(prefix="indexer-deploy-", dir="/tmp"))
    path.chmod(0o755)
    yield path
    shutil.rmtree(path)


class Place:
    """One deployment: the media (readable by all), the service's state folder (0750, its
    user's), a runtime folder for its control socket, and a home for each user."""

    def __init__(self, top: Path, users: Users, python: Path):
        self.top, self.users, self.python = top, users, python
        self.music, self.state = top / "music", top / "state"
        self.db = self.state / "library.db"
        self.music.mkdir()
        make_library(self.music, albums=1, tracks=2)
        self.config = top / "config.toml"
        self.config.write_text(f"[library]\nroots = [{json.dumps(str(self.music))}]\n"
                               "[watch]\ndebounce_ms = 100\nmax_wait_ms = 1000\n"
                               "settle_seconds = 0.4\n[service]\nlow_priority = false\n")
        service = pwd.getpwnam(users.service)
        self.state.mkdir(mode=0o750)  # what StateDirectory= with StateDirectoryMode=0750 makes
        os.chown(self.state, service.pw_uid, service.pw_gid)
        self.runtime = top / "run"
        self.runtime.mkdir()
        os.chown(self.runtime, service.pw_uid, service.pw_gid)
        for folder, _, names in os.walk(top):
            for name in names:
                os.chmod(os.path.join(folder, name), 0o644)
            if not Path(folder).is_relative_to(self.state):
                os.chmod(folder, 0o755)

    def env(self, user: str) -> dict[str, str]:
        home = self.top / f"home-{user}"
        home.mkdir(exist_ok=True)
        if user != "root":
            os.chown(home, self.users.uid(user), -1)
        return {"PATH": "/usr/bin:/bin:/usr/sbin:/sbin", "HOME": str(home), "LANG": "C.UTF-8",
                "XDG_CONFIG_HOME": str(home / "config"), "XDG_DATA_HOME": str(home / "data"),
                "XDG_CACHE_HOME": str(home / "cache"), "PYTHONDONTWRITEBYTECODE": "1",
                "INDEXER_CONFIG": str(self.config), "INDEXER_DB": str(self.db),
                "RUNTIME_DIRECTORY": str(self.runtime)}

    def command(self, user: str, *args: str, umask: str = UMASK) -> list[str]:
        """`args` as `user` with that user's groups and the unit's umask."""
        shell = ["sh", "-c", f'umask {umask} && exec "$@"', "sh", *map(str, args)]
        if user == "root":
            return shell
        return ["setpriv", f"--reuid={user}", f"--regid={user}", "--init-groups", "--", *shell]

    def run(self, user: str, *args: str, timeout: float = 60,
            umask: str = UMASK) -> subprocess.CompletedProcess:
        return subprocess.run(self.command(user, *args, umask=umask), env=self.env(user),
                              cwd=self.top, capture_output=True, text=True, timeout=timeout,
                              stdin=subprocess.DEVNULL)

    def indexer(self, user: str, *args: str, **how) -> subprocess.CompletedProcess:
        return self.run(user, self.python, "-m", "indexer", *args, **how)

    def start_service(self) -> subprocess.Popen:
        service = subprocess.Popen(
            self.command(self.users.service, self.python, "-m", "indexer", "run"),
            env=self.env(self.users.service), cwd=self.top, stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        wait_for(lambda: self.lock_names_a_socket(service), timeout=30, what="the service")
        return service

    def lock_names_a_socket(self, service: subprocess.Popen) -> bool:
        assert service.poll() is None, service.stderr.read()
        try:
            lines = self.db.with_name("library.db.lock").read_text().splitlines()
        except OSError:
            return False
        return len(lines) == 2 and lines[0] == str(service.pid)

    def owners(self) -> dict[str, str]:
        """Everything in the state folder, by path relative to it: its owner's name."""
        found = {}
        for folder, dirs, names in os.walk(self.state):
            for name in dirs + names:
                path = Path(folder, name)
                found[str(path.relative_to(self.state))] = pwd.getpwuid(path.lstat().st_uid).pw_name
        return found


@pytest.fixture
def place(open_place_root, users, python):
    top = Path(tempfile.mkdtemp(prefix="", dir=open_place_root))  # short: a socket's path is
    made = Place(top, users, python)
    yield made
    shutil.rmtree(top)


# --- what a media server does

READ = r"""
import json, sqlite3, sys
from urllib.parse import quote
db = sys.argv[1]
out = {}
ro = sqlite3.connect(f"file:{quote(db)}?mode=ro", uri=True)
out["ro"] = sorted(r[0] for r in ro.execute("SELECT path FROM files WHERE status = 'present'"))
ro.close()
plain = sqlite3.connect(db)  # asks for read-write: SQLite falls back to read-only
out["plain"] = sorted(r[0] for r in plain.execute("SELECT path FROM files WHERE status = 'present'"))
try:
    plain.execute("DELETE FROM files")
    plain.commit()
    out["write"] = "written"
except sqlite3.Error as error:
    out["write"] = str(error)
plain.close()
print(json.dumps(out))
"""


def read_as(place: Place, user: str) -> list[str] | None:
    """The present files as `user` reads them by every way a media server opens the
    catalogue (Python's mode=ro, a plain connection, `sqlite3 -readonly`), if all agree
    (None if they differ: a writer committed between them); its writes all fail."""
    result = place.run(user, SYSTEM_PYTHON, "-c", READ, place.db)
    assert result.returncode == 0, result.stderr
    seen = json.loads(result.stdout)
    assert seen["write"] == "attempt to write a readonly database"
    listings = [seen["ro"], seen["plain"]]
    if SQLITE3:
        listed = place.run(user, SQLITE3, "-readonly", place.db,
                           "SELECT path FROM files WHERE status = 'present' ORDER BY path")
        assert (listed.returncode, listed.stderr) == (0, ""), listed.stderr
        listings.append(sorted(listed.stdout.splitlines()))
        written = place.run(user, SQLITE3, place.db, "DELETE FROM files")
        assert written.returncode != 0 and "readonly database" in written.stderr
    return listings[0] if all(listing == listings[0] for listing in listings) else None


def media_files(root: Path) -> list[str]:
    return sorted(str(p) for p in root.rglob("*") if p.is_file() and p.suffix != ".nfo")


def assert_group_readable_and_never_writable(place: Place) -> None:
    """What the service made is its own and its group's to read, no one else's."""
    for name, owner in place.owners().items():
        path = place.state / name
        mode = path.stat().st_mode & 0o777
        assert owner == place.users.service, name
        assert mode & 0o040 and not mode & 0o020 and not mode & 0o007, (name, oct(mode))
    cover = next((place.state / "artwork").rglob("*.jpg"))
    read = place.run(place.users.media, "sha256sum", cover)
    assert read.stdout.split()[0] == hashlib.sha256(cover.read_bytes()).hexdigest()
    assert place.run(place.users.media, "touch", place.state / "artwork" / "x").returncode != 0


# --- the tests


def test_a_media_server_in_the_group_reads_what_a_scan_wrote_and_can_never_write_it(place):
    scanned = place.indexer(place.users.service, "scan")
    assert scanned.returncode == 0, scanned.stderr

    assert read_as(place, place.users.media) == media_files(place.music)
    assert_group_readable_and_never_writable(place)
    stranger = place.run(place.users.stranger, SYSTEM_PYTHON, "-c", READ, place.db)
    assert stranger.returncode != 0 and "unable to open database file" in stranger.stderr


def test_a_media_server_reads_the_catalogue_while_the_service_runs_after_it_stops_and_after_a_kill(
        place):
    media = place.users.media
    service = place.start_service()
    try:
        wait_for(lambda: read_as(place, media) == media_files(place.music), timeout=30,
                 what="the first reconcile, read by the media server")
        shutil.copyfile(DATA / "tone.flac", place.music / "new.flac")
        os.chmod(place.music / "new.flac", 0o644)
        wait_for(lambda: str(place.music / "new.flac") in (read_as(place, media) or ()),
                 timeout=30,
                 what="a new file, read by the media server while the service runs")
        service.send_signal(signal.SIGTERM)
        assert service.wait(timeout=30) == 0
        assert read_as(place, media) == media_files(place.music)  # stopped cleanly

        service = place.start_service()
        (place.music / "new.flac").rename(place.music / "renamed.flac")
        wait_for(lambda: str(place.music / "renamed.flac") in (read_as(place, media) or ()),
                 timeout=30,
                 what="a rename, read while the service runs again")
        service.send_signal(signal.SIGKILL)
        service.wait(timeout=30)
        assert read_as(place, media) == media_files(place.music)  # killed
    finally:
        if service.poll() is None:
            service.kill()
            service.wait()
    assert_group_readable_and_never_writable(place)


def test_a_group_member_may_ask_the_service_for_its_status_and_a_rescan_but_not_a_purge(place):
    media = place.users.media
    assert place.indexer(place.users.service, "scan").returncode == 0
    gone = media_files(place.music)[0]
    os.unlink(gone)
    service = place.start_service()
    try:
        status = place.indexer(media, "status", "--json")
        assert status.returncode == 0, status.stderr
        assert json.loads(status.stdout)["service"]["roots"]
        rescan = place.indexer(media, "rescan")
        assert rescan.returncode == 0, rescan.stderr
        assert read_as(place, media) == media_files(place.music)  # without the one gone

        def purge():  # once the file has been missing for a second
            return place.indexer(media, "purge", "--missing-older-than", "1s", "--yes")
        refused = wait_for(lambda: (result := purge()).returncode != 0 and result,
                           what="a purge to ask for")
        assert refused.stderr.strip() == ("indexer: error: the service answered: only the "
                                          "service's user or root may purge")
        by_root = place.indexer("root", "rescan")  # asks the service
        assert by_root.returncode == 0 and "scanning here" not in by_root.stderr
        stranger = place.indexer(place.users.stranger, "status")
        assert stranger.returncode == 1 and "may not enter its folder" in stranger.stderr
    finally:
        service.terminate()
        service.wait(timeout=30)

    refused = place.indexer(media, "rescan")  # no service to ask now, and it may not write
    assert refused.returncode == 1
    assert refused.stderr.strip() == (
        f"indexer: error: cannot write the catalogue {place.db}: it belongs to "
        f"{place.users.service}, and this user ({media}) may only read it; ask the service "
        f"(`indexer rescan`, once it runs), or run this as {place.users.service} or root")


def cover_folder() -> str:
    """The artwork cache's folder for cover.jpg (also embedded in art.mp3)."""
    return hashlib.blake2b((DATA / "cover.jpg").read_bytes(), digest_size=16).hexdigest()[:2]


@pytest.mark.parametrize("command", ["scan", "rescan"])
def test_root_writing_the_services_catalogue_leaves_nothing_of_roots(place, command):
    assert place.indexer(place.users.service, "scan").returncode == 0
    shutil.rmtree(place.state / "artwork")  # every cover is stored again, as root would
    shutil.copyfile(DATA / "art.mp3", place.music / "art.mp3")

    result = place.indexer("root", command)

    assert result.returncode == 0, result.stderr
    owners = place.owners()
    assert f"artwork/{cover_folder()}" in owners
    assert set(owners.values()) == {place.users.service}, owners
    assert read_as(place, place.users.media) == media_files(place.music)
    checks = json.loads(place.indexer("root", "doctor", "--json").stdout)
    assert next(c for c in checks if c["name"] == "ownership")["status"] == "ok"


def test_a_cover_folder_root_made_is_a_doctor_failure_with_its_fix_and_the_files_error(place):
    blocked = place.state / "artwork" / cover_folder()
    blocked.mkdir(parents=True)  # root's, as an older `sudo indexer rescan` left it
    shutil.chown(blocked.parent, place.users.service, place.users.service)
    os.chmod(blocked.parent, 0o750)
    shutil.copyfile(DATA / "art.mp3", place.music / "art.mp3")

    scanned = place.indexer(place.users.service, "scan")
    doctor = place.indexer(place.users.media, "doctor")
    errors = place.indexer(place.users.media, "ls", "--errors", "--json")

    assert "1 folder beside the catalogue not writable by this user" in scanned.stderr
    line = next(l for l in doctor.stdout.splitlines() if "ownership" in l)
    assert doctor.returncode == 1 and f"artwork/{cover_folder()} (root's)" in line
    assert f"chown -R {place.users.service}:{place.users.service} {place.state}" in line
    [failed] = [json.loads(l) for l in errors.stdout.splitlines()]
    assert failed["path"] == str(place.music / "art.mp3")
    assert f"the artwork cache folder {blocked} belongs to root" in failed["error"]

    subprocess.run(["chown", "-R", f"{place.users.service}:{place.users.service}", place.state],
                   check=True)  # the fix doctor gave
    again = place.indexer(place.users.service, "scan")
    assert again.returncode == 0 and "not writable" not in again.stderr
    assert place.indexer(place.users.media, "ls", "--errors").stdout == ""
    assert place.indexer(place.users.media, "doctor").returncode in (0, 1)
    assert list(blocked.iterdir())  # the cover is stored now


def test_a_writer_names_each_cache_folder_root_made_where_covers_and_thumbnails_go(place):
    service = place.users.uid(place.users.service)
    cache = place.state / "artwork"
    for folder in ("ab", "cd", "thumbnails/300/ef"):
        (cache / folder).mkdir(parents=True)
    for mine in (cache, cache / "cd", cache / "thumbnails", cache / "thumbnails/300"):
        os.chown(mine, service, service)  # the others stay root's
    (cache / "cd" / "deeper").mkdir()  # not where a writer writes: not named
    (place.state / "other-disk").mkdir()  # root's: a shard moved there, behind a link
    os.symlink(place.state / "other-disk", cache / "12")

    scanned = place.indexer(place.users.service, "scan")

    assert scanned.returncode == 0, scanned.stderr
    assert "3 folders beside the catalogue not writable by this user" in scanned.stderr
    assert "/12: covers to be stored there fail" in scanned.stderr  # the first by name


def test_what_an_earlier_units_umask_hid_from_the_group_is_a_doctor_warning_with_its_chmod(
        place):
    assert place.indexer(place.users.service, "scan", umask="0077").returncode == 0
    media = place.users.media
    assert place.run(media, SYSTEM_PYTHON, "-c", READ, place.db).returncode != 0

    doctor = place.indexer("root", "doctor")
    line = next(l for l in doctor.stdout.splitlines() if " group: " in l)
    assert line.startswith("WARN  group: ") and f"not readable by the group {place.users.service}" \
        in line and line.endswith(f"-> chmod -R g+rX {place.state}")
    subprocess.run(["chmod", "-R", "g+rX", place.state], check=True)  # the fix doctor gave

    assert read_as(place, media) == media_files(place.music)
    again = place.indexer(media, "doctor")
    assert "OK    group: the members of" in again.stdout
