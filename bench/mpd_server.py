"""One MPD server for the bench, and the few protocol commands the bench sends it.

MPD (Debian packages `mpd` and `mpc`) runs in the foreground (`--no-daemon`) as
a child of the bench, so its pid is known. Its config (`config_text`) makes it
read the library and write nothing outside its own folder: music_directory is
the library; db_file, state_file, pid_file, log_file and a Unix socket are in
FOLDER; it listens on 127.0.0.1 on a free port; one audio output of type
"null"; no zeroconf; auto_update only when asked. MPD never writes into the
music directory: it reads tags and keeps its database in memory, saved to
db_file after an update that changed something.

Its CPU time comes from /proc/PID/stat (all threads, the update thread's
included), read before and after a request; its peak RSS is VmHWM, the
process's high-water mark since it started.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

INSTALL = "apt-get install mpd mpc"


@dataclass(frozen=True)
class Mpd:
    """The installed programs and the version they say."""

    mpd: str
    mpc: str
    version: str  # of mpd (`mpd --version`)
    mpc_version: str


def find_mpd() -> Mpd | None:
    """mpd and mpc from PATH (Debian puts mpd in /usr/bin), or None if either is missing."""
    mpd = shutil.which("mpd") or next((p for p in ("/usr/bin/mpd", "/usr/sbin/mpd")
                                       if os.access(p, os.X_OK)), None)
    mpc = shutil.which("mpc")
    if not (mpd and mpc):
        return None
    said = subprocess.run([mpd, "--version"], capture_output=True, text=True).stdout
    return Mpd(mpd, mpc, parse_version(said), _package_version("mpc"))


def _package_version(package: str) -> str:
    """The Debian package's version (mpc has no --version), or '?' elsewhere."""
    try:
        said = subprocess.run(["dpkg-query", "-W", "-f", "${Version}", package],
                              capture_output=True, text=True)
    except FileNotFoundError:
        return "?"
    return said.stdout.strip() if said.returncode == 0 and said.stdout.strip() else "?"


def parse_version(text: str) -> str:
    """'Music Player Daemon 0.23.12 (0.23.12)' -> '0.23.12'; '?' if the first line is not that."""
    found = re.match(r"Music Player Daemon (\S+)", text.strip())
    return found.group(1) if found else "?"


def quote_path(path: Path) -> str:
    """A path as a quoted value of mpd.conf; refused if it holds what would need escaping."""
    text = str(path)
    if any(c in text for c in '"\\\n'):
        raise SystemExit(f"bench: {text!r}: a path for mpd.conf must not hold quotes, "
                         "backslashes or newlines")
    return f'"{text}"'


def config_text(folder: Path, music: Path, port: int, *, auto_update: bool,
                depth: int | None = None) -> str:
    """mpd.conf: everything MPD writes in `folder`, only read access to `music`."""
    q = quote_path
    lines = [
        "# Written by bench/mpd_server.py: MPD reads the library and writes only here.",
        f"music_directory {q(music)}",
        f"db_file {q(folder / 'database')}",
        f"state_file {q(folder / 'state')}",
        f"pid_file {q(folder / 'pid')}",
        f"log_file {q(folder / 'log')}",
        'bind_to_address "127.0.0.1"',
        f'port "{port}"',
        f"bind_to_address {q(folder / 'socket')}",
        'zeroconf_enabled "no"',
        f'auto_update "{"yes" if auto_update else "no"}"',
        *([f'auto_update_depth "{depth}"'] if depth is not None else []),
        "audio_output {", '  type "null"', '  name "bench null output"', '  mixer_type "none"', "}",
    ]
    return "\n".join(lines) + "\n"


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now (the kernel's choice)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class MpdError(Exception):
    """MPD answered a command with ACK, or went away."""


def parse_response(lines: list[str]) -> list[tuple[str, str]]:
    """The `key: value` lines of one answer, up to its final OK; ACK raises MpdError."""
    pairs = []
    for line in lines:
        if line == "OK":
            return pairs
        if line.startswith("ACK "):
            raise MpdError(line)
        key, _, value = line.partition(": ")
        pairs.append((key, value))
    raise MpdError("the answer ended before its OK")


def quote_arg(arg: str) -> str:
    """One argument of a protocol command: double-quoted, backslash and quote escaped."""
    return '"' + arg.replace("\\", "\\\\").replace('"', '\\"') + '"'


class Client:
    """One connection to MPD: a command in, its answer's pairs out."""

    def __init__(self, port: int, timeout: float = 30.0):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.lines = self.sock.makefile("r", encoding="utf-8", newline="\n")
        greeting = self.lines.readline()
        if not greeting.startswith("OK MPD "):
            raise MpdError(f"not MPD: {greeting!r}")

    def command(self, name: str, *args: str) -> list[tuple[str, str]]:
        self.sock.sendall((" ".join([name, *map(quote_arg, args)]) + "\n").encode())
        answer = []
        while True:
            line = self.lines.readline()
            if not line:
                raise MpdError(f"{name}: MPD closed the connection")
            answer.append(line.rstrip("\n"))
            if answer[-1] == "OK" or answer[-1].startswith("ACK "):
                return parse_response(answer)

    def close(self) -> None:
        self.lines.close()
        self.sock.close()


class MpdServer:
    """MPD on `music`, its files in `folder`; started and stopped by the bench."""

    def __init__(self, mpd: Mpd, folder: Path, music: Path, *, auto_update: bool = False,
                 depth: int | None = None):
        self.mpd, self.folder, self.music = mpd, folder, music
        folder.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.conf = folder / "mpd.conf"
        self.conf.write_text(config_text(folder, music, self.port, auto_update=auto_update,
                                         depth=depth))
        self.db, self.log = folder / "database", folder / "log"
        self.proc: subprocess.Popen | None = None

    def start(self, database: Path | None = None, timeout: float = 30.0) -> None:
        """Start MPD, first with a copy of `database` if given; return once it answers.

        Without a database file MPD starts an update of its own at start-up, so a
        first update to be timed starts from a copy of an empty one (`empty_database`).
        """
        self.stop()
        if database is not None:
            shutil.copyfile(database, self.db)
        out = open(self.folder / "stderr", "ab")  # before the log file opens: plugin notes
        with out:
            self.proc = subprocess.Popen([self.mpd.mpd, "--no-daemon", str(self.conf)],
                                         stdin=subprocess.DEVNULL, stdout=out, stderr=out)
        deadline = time.monotonic() + timeout
        while True:
            try:
                Client(self.port, timeout=1).close()
                return
            except OSError:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    raise SystemExit(f"bench: mpd did not start (exit {self.proc.poll()}); see "
                                     f"{self.folder / 'stderr'} and {self.log}")
                time.sleep(0.01)

    def stop(self) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def client(self) -> Client:
        return Client(self.port)

    def update_cmd(self) -> list[str]:
        """`mpc update --wait`: returns when MPD says the update it started has finished."""
        return [self.mpd.mpc, "-q", "--host", "127.0.0.1", "--port", str(self.port),
                "update", "--wait"]

    def cpu_seconds(self) -> float:
        """User + system time of every thread MPD has run, from /proc/PID/stat."""
        fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def peak_rss_mib(self) -> float:
        return vm_hwm_mib(self.proc.pid)

    def log_size(self) -> int:
        return self.log.stat().st_size if self.log.exists() else 0

    def log_count(self, since: int, what: str) -> int:
        """Lines of the log written after byte `since` saying `update: WHAT ` (added, updating)."""
        with open(self.log, "rb") as handle:
            handle.seek(since)
            text = handle.read().decode(errors="replace")
        return sum(1 for line in text.splitlines() if f" : update: {what} " in line)


def vm_hwm_mib(pid: int) -> float:
    """A process's peak RSS since it started (VmHWM), MiB; its children not included."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


def empty_database(mpd: Mpd, folder: Path) -> Path:
    """The database MPD writes for an empty music directory: a first update starts from it."""
    empty = folder / "empty-music"
    empty.mkdir(parents=True, exist_ok=True)
    server = MpdServer(mpd, folder, empty)
    server.db.unlink(missing_ok=True)
    server.start()  # no database file: MPD updates at once, from nothing
    try:
        _wait_idle(server)
    finally:
        server.stop()
    kept = folder / "empty-database"
    shutil.copyfile(server.db, kept)
    return kept


def _wait_idle(server: MpdServer, timeout: float = 30.0) -> None:
    """Until MPD's status shows no update running and its database file exists."""
    client = server.client()
    try:
        deadline = time.monotonic() + timeout
        while "updating_db" in dict(client.command("status")) or not server.db.exists():
            if time.monotonic() > deadline:
                raise SystemExit(f"bench: mpd's update did not end in {timeout:.0f} s")
            time.sleep(0.01)
    finally:
        client.close()


def song_count(server: MpdServer) -> int:
    client = server.client()
    try:
        return int(dict(client.command("stats"))["songs"])
    finally:
        client.close()
