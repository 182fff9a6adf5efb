"""The control socket: how `indexer rescan` and `indexer status` talk to a running service.

A Unix stream socket in a folder only its owner and its group may enter (the
socket itself is 0660 too): the users who may read the catalogue (the service's
group, media servers among them) may ask for its status and a rescan, and no
other user can ask anything. A purge, which deletes rows, is only for the
service's own user and root (the peer's uid, from the kernel). The service
writes the socket's path under its pid in the catalogue's lock file, where
clients find it. One request per connection: a JSON object on one line, at most
64 KiB; answers are JSON lines. A malformed or oversized request gets an error
line, never a crash.

    {"cmd": "status"}                              -> one line: the status
    {"cmd": "rescan", "roots": [...], "full": false} -> progress lines, then
                                                      {"event": "done", ...}
    {"cmd": "purge", "ids": [...]}                 -> {"event": "done", "purged": {...}}
"""

from __future__ import annotations

import json
import logging
import os
import queue
import socket
import struct
import tempfile
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

MAX_REQUEST = 64 * 1024
CLIENT_TIMEOUT_S = 10.0  # a client that reads nothing for this long is dropped
COMMANDS = {"status": set(), "rescan": {"roots", "full"}, "purge": {"ids"}}
OWNER_ONLY = {"purge"}  # commands that change the catalogue's rows: not for its readers


class ControlError(RuntimeError):
    """A request that cannot be sent or was refused; the message says why."""


def socket_path(runtime_dir: str | None = None) -> Path:
    """A fresh socket path in a folder only we and our group may enter."""
    base = runtime_dir or os.environ.get("RUNTIME_DIRECTORY") or os.environ.get("XDG_RUNTIME_DIR")
    if base and os.path.isdir(base):
        folder = Path(tempfile.mkdtemp(prefix="indexer-", dir=base))
    else:
        folder = Path(tempfile.mkdtemp(prefix="indexer-"))
    folder.chmod(0o750)  # mkdtemp made it 0700: no other user sees a moment of it open
    return folder / "control.sock"


def peer_uid(conn: socket.socket) -> int:
    """The uid of the process at the other end, as the kernel tells it."""
    credentials = conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    return struct.unpack("3i", credentials)[1]


def may_ask(request: dict, uid: int) -> None:
    """Refuse a command that changes rows to anyone but the service's user and root."""
    if request["cmd"] in OWNER_ONLY and uid not in (0, os.geteuid()):
        raise ControlError(f"only the service's user or root may {request['cmd']}")


def validate(raw: bytes) -> dict:
    """The request in `raw`, checked: a known command with known, well-typed fields."""
    if len(raw) > MAX_REQUEST:
        raise ControlError(f"request over {MAX_REQUEST} bytes")
    try:
        request = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as error:
        raise ControlError(f"not a JSON request: {error}") from None
    if not isinstance(request, dict) or not isinstance(request.get("cmd"), str) \
            or request["cmd"] not in COMMANDS:
        raise ControlError(f"unknown command; known: {', '.join(sorted(COMMANDS))}")
    unknown = set(request) - {"cmd"} - COMMANDS[request["cmd"]]
    if unknown:
        raise ControlError(f"unknown fields: {', '.join(sorted(map(str, unknown)))}")
    roots = request.get("roots", [])
    if not isinstance(roots, list) or not all(isinstance(r, str) and r for r in roots):
        raise ControlError("roots must be a list of paths")
    if not isinstance(request.get("full", False), bool):
        raise ControlError("full must be true or false")
    ids = request.get("ids", [])
    if not isinstance(ids, list) or not all(isinstance(i, int) and not isinstance(i, bool)
                                            and 0 < i < 1 << 63 for i in ids):
        raise ControlError("ids must be a list of file ids")
    return request


class ControlServer:
    """Accepts one request per connection, each in its own thread, and hands it to
    `handle(request, send)`; `send(obj)` writes one JSON line back."""

    def __init__(self, path: Path, handle: Callable[[dict, Callable[[dict], None]], None]):
        self.path, self.handle = path, handle
        self._socket = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
        old_umask = os.umask(0o117)
        try:
            self._socket.bind(str(path))
        finally:
            os.umask(old_umask)
        os.chmod(path, 0o660)
        self._socket.listen(8)
        self._thread = threading.Thread(target=self._serve, name="control", daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self._socket.accept()
            except OSError:
                return  # closed
            threading.Thread(target=self._answer, args=(conn,), daemon=True).start()

    def _answer(self, conn: socket.socket) -> None:
        with conn:
            send = Sender(conn)
            try:
                request = validate(_read_line(conn))
                may_ask(request, peer_uid(conn))
                self.handle(request, send)
            except ControlError as error:
                send({"event": "error", "error": str(error)})
            except OSError:
                pass  # the client went away
            except Exception:  # a bug must not take the service down
                log.exception("control request failed")
                send({"event": "error", "error": "internal error; see the service log"})
            finally:
                send.close()

    def close(self) -> None:
        self._socket.close()
        for leftover in (self.path, self.path.parent):
            try:
                leftover.unlink() if leftover == self.path else leftover.rmdir()
            except OSError:
                pass


def _read_line(conn: socket.socket) -> bytes:
    data = b""
    while b"\n" not in data:
        chunk = conn.recv(65536)
        if not chunk:
            break
        data += chunk
        if len(data) > MAX_REQUEST:
            raise ControlError(f"request over {MAX_REQUEST} bytes")
    return data.split(b"\n", 1)[0]


class Sender:
    """`send(message)` for one client, callable from any thread without ever blocking it:
    answers are queued and written by a thread of the connection's own. A client that
    stops reading (Ctrl-Z on `indexer rescan`) is dropped once a write has waited
    `CLIENT_TIMEOUT_S` or the queue is full; the work it asked for goes on."""

    def __init__(self, conn: socket.socket, room: int = 1000,
                 timeout: float = CLIENT_TIMEOUT_S):
        self.conn, self.dropped, self.timeout = conn, False, timeout
        conn.settimeout(timeout)
        self._queue: queue.Queue = queue.Queue(room)
        self._thread = threading.Thread(target=self._write, name="control-send", daemon=True)
        self._thread.start()

    def __call__(self, message: dict) -> None:
        if self.dropped:
            return
        try:
            self._queue.put_nowait(json.dumps(message, ensure_ascii=False).encode() + b"\n")
        except queue.Full:
            self._drop("it does not read its answers")

    def close(self) -> None:
        """Write what is queued (a client that reads gets every line), then stop."""
        try:
            self._queue.put(None, timeout=self.timeout)
        except queue.Full:
            self._drop("it does not read its answers")
        self._thread.join(timeout=self.timeout + 1)

    def _write(self) -> None:
        while (line := self._queue.get()) is not None and not self.dropped:
            try:
                self.conn.sendall(line)  # the socket's timeout bounds the wait
            except OSError:
                self._drop("it stopped reading")

    def _drop(self, why: str) -> None:
        if not self.dropped:
            self.dropped = True
            log.info("a control client was dropped: %s", why)


def request(path: Path | str, message: dict, timeout: float | None = None) -> Iterator[dict]:
    """Send one request to a service and yield its answer lines."""
    conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
    try:
        conn.settimeout(5)
        conn.connect(str(path))
        conn.settimeout(timeout)
        conn.sendall(json.dumps(message).encode() + b"\n")
        with conn.makefile("rb") as lines:
            for line in lines:
                answer = json.loads(line)
                if answer.get("event") == "error":
                    raise ControlError(answer.get("error", "refused"))
                yield answer
    except (ConnectionRefusedError, FileNotFoundError) as error:
        raise ControlError(f"no service answers at {path}: {error.strerror}") from None
    finally:
        conn.close()


def service_socket(lock_path: Path) -> Path | None:
    """The control socket of the service holding the catalogue's lock, if one runs."""
    try:
        lines = lock_path.read_text().splitlines()
    except OSError:
        return None
    if len(lines) < 2 or not lines[0].strip().isdigit():
        return None
    try:
        os.kill(int(lines[0]), 0)
    except ProcessLookupError:
        return None  # a stale lock file: its process is gone
    except PermissionError:
        pass  # alive, another user's
    return Path(lines[1]) if lines[1] else None
