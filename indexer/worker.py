"""A worker process of the process pool: `python -m indexer.worker module:function`.

It reads batches of items from stdin and writes one result per item to
stdout, each a pickle framed by its length. The parent (pipeline.ProcessPool)
minds the time each item takes and kills a worker that overruns; the worker
itself limits its address space, so a runaway parse fails here, not the host.
Where it may not (the unit's system call filter refuses setrlimit), it offers
itself first to the out-of-memory killer, so that a runaway parse kills it alone.

Results go to the parent in bursts (`_Results`), and the worker writes, before
each item, when it began it and how many it has begun, in a word of memory it
shares with the parent (`_PROGRESS`, a memfd): when a worker hangs or dies, the
parent reads there which item it was on, and the results it had made and not yet
sent are lost with it, not blamed. Where that memory cannot be had, the worker
writes each result as it is made.
"""

from __future__ import annotations

import logging
import mmap
import os
import pickle
import select
import signal
import struct
import subprocess
import sys
import threading
import time
from typing import Any

MEMORY_LIMIT = 2 << 30  # bytes of address space per worker
STOP_WAIT_S = 2.0  # a killed worker stuck in uninterruptible I/O is waited for this long
_LENGTH = struct.Struct("<Q")
# The word a worker shares with its parent: when it began its last item (CLOCK_MONOTONIC,
# one clock for all processes, ns), and how many items it has begun.
_PROGRESS = struct.Struct("<qQ")
log = logging.getLogger(__name__)


class WorkerUnavailable(OSError):
    """No worker process could be started (the process limit, memory): no verdict on
    the items it was to take."""


def frame(value: Any) -> bytes:
    """A value as the pipes carry it: its pickle, after the pickle's length."""
    data = pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)
    return _LENGTH.pack(len(data)) + data


def write_frame(stream: Any, value: Any, packed: bytes | None = None) -> None:
    view = memoryview(packed if packed is not None else frame(value))
    while view:  # a raw stream may take part of it
        view = view[stream.write(view):]
    stream.flush()


def read_frame(stream: Any) -> Any:
    """One frame from a stream (the worker's side: it simply blocks)."""
    size = _LENGTH.unpack(_read_exactly(stream, _LENGTH.size))[0]
    return pickle.loads(_read_exactly(stream, size))


def _read_exactly(stream: Any, size: int) -> bytes:
    chunks, left = [], size
    while left:
        chunk = stream.read(left)
        if not chunk:
            raise EOFError("the other end closed the pipe")
        chunks.append(chunk)
        left -= len(chunk)
    return b"".join(chunks)


class Worker:
    """One worker process and its pipes, started on first use (parent side).

    Results are read in large chunks into a buffer and cut into frames here: a
    select and two reads per result cost this process a tenth of a worker's time."""

    CHUNK = 1 << 16

    def __init__(self, stage: str):
        self.stage = stage
        self.process: subprocess.Popen | None = None
        self._buffer = bytearray()
        self._progress: mmap.mmap | None = None  # the worker's item in progress (_PROGRESS)
        self._received = 0  # results taken from this worker

    def send(self, items: list, packed: bytes | None = None, stop: Any = None,
             restart: bool = True) -> bool:
        """Write a batch to the worker (`packed`: its `frame`, if made already); False if
        `stop` was set while a worker that does not read kept the pipe full. Raises
        WorkerUnavailable when no worker can be started. Without `restart`, False if the
        worker is dead: a batch sent ahead must not go to a new worker while the dead
        one's batches still wait for their results."""
        data = packed if packed is not None else frame(items)
        if self.process is None or self.process.poll() is not None:
            if not restart:
                return False
            self._start()
        try:
            return self._write(data, stop)
        except OSError:  # it died between the check and the send
            if not restart:
                return False
            self._start()
            try:
                return self._write(data, stop)
            except OSError as error:  # and so did its replacement, as it started
                raise WorkerUnavailable(f"the worker died as it started: "
                                        f"{error.strerror or error}") from error

    def _write(self, data: bytes, stop: Any) -> bool:
        fd, view = self.process.stdin.fileno(), memoryview(data)
        while view:
            if select.select([], [fd], [], 0.1)[1]:
                view = view[os.write(fd, view):]  # (the pipe is non-blocking: see _start)
            elif stop is not None and stop.is_set():
                return False
        return True

    def receive(self, timeout: float, stop: Any) -> tuple[str, Any]:
        """("result", value), or ("timeout" | "crash", reason), or ("stopped", None)."""
        deadline = time.monotonic() + timeout
        fd = self.process.stdout.fileno()
        while (frame := self._frame()) is None:
            if stop.is_set():
                self.stop()
                return "stopped", None
            wait = min(0.1, max(deadline - time.monotonic(), 0))
            if select.select([fd], [], [], wait)[0]:
                chunk = os.read(fd, self.CHUNK)
                if not chunk:
                    code = self.process.wait()
                    return "crash", f"the worker died (exit code {code})"
                self._buffer += chunk
            elif time.monotonic() >= deadline:
                began = self._progressing()
                if began is not None and began[1] and began[0] / 1e9 + timeout > time.monotonic():
                    deadline = began[0] / 1e9 + timeout  # the limit is the item's own time:
                    continue  # this result may have waited behind it in a burst
                return "timeout", None
        self._received += 1
        try:
            return "result", pickle.loads(frame)
        except pickle.UnpicklingError as error:
            return "crash", f"the worker sent garbage: {error}"

    def _frame(self) -> bytes | None:
        """The next whole frame in the buffer, taken out of it, if there is one."""
        if len(self._buffer) < _LENGTH.size:
            return None
        size = _LENGTH.unpack_from(self._buffer)[0]
        end = _LENGTH.size + size
        if len(self._buffer) < end:
            return None
        frame = bytes(self._buffer[_LENGTH.size:end])
        del self._buffer[:end]
        return frame

    def _start(self) -> None:
        self.stop()
        # The worker finds the same modules as this process, wherever they came from.
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
        fd, self._progress = _shared_word()
        try:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "indexer.worker", self.stage,
                 *([str(fd)] if fd is not None else [])], env=env, bufsize=0,
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, close_fds=True,
                pass_fds=(fd,) if fd is not None else ())
        except OSError as error:  # EAGAIN under `ulimit -u`, ENOMEM, ...
            raise WorkerUnavailable(f"no worker process could be started: "
                                    f"{error.strerror or error}") from error
        finally:
            if fd is not None:
                os.close(fd)  # (the mapping stays)
        os.set_blocking(self.process.stdin.fileno(), False)

    def stop(self) -> tuple[int, bool | None]:
        """Kill the worker; wait for it at most STOP_WAIT_S (one stuck in uninterruptible
        I/O, a hung NFS read, dies when that ends: a thread reaps it then). Returns how
        many results it had made and not sent: those of the items before the one it
        was on, lost with it (the items are to be sent again, not blamed); and whether
        it was on an item (it had begun one it had not answered; None: it does not
        say)."""
        lost, working = 0, None
        if self.process is not None:
            process, self.process = self.process, None
            process.kill()
            for stream in (process.stdin, process.stdout):
                stream.close()
            try:
                process.wait(timeout=STOP_WAIT_S)
            except subprocess.TimeoutExpired:
                log.warning("worker %d does not die (stuck in I/O?): left to end by itself",
                            process.pid)
                threading.Thread(target=process.wait, name="reaper", daemon=True).start()
            if self._progress is not None:  # read once it can no longer move
                unanswered = self._progressing()[1] - self._received  # the last: in hand
                lost, working = max(0, unanswered - 1), unanswered > 0
        self._buffer.clear()
        if self._progress is not None:
            self._progress.close()
            self._progress = None
        self._received = 0
        return lost, working

    def _progressing(self) -> tuple[int, int] | None:
        """(when the worker began its item in progress, how many items it has begun),
        None if it does not say. Read until two reads agree: it writes as it goes."""
        if self._progress is None:
            return None
        while (read := _PROGRESS.unpack_from(self._progress)) != _PROGRESS.unpack_from(
                self._progress):
            pass
        return read


def _shared_word() -> tuple[int | None, mmap.mmap | None]:
    """A word of memory a worker shares with this process (a memfd), or (None, None)."""
    try:
        fd = os.memfd_create("indexer-worker-progress", os.MFD_CLOEXEC)
    except (AttributeError, OSError):  # not Linux, or refused (a system call filter)
        return None, None
    try:
        os.ftruncate(fd, _PROGRESS.size)
        return fd, mmap.mmap(fd, _PROGRESS.size)
    except OSError:
        os.close(fd)
        return None, None


def _limit_memory(resource: Any) -> None:
    try:
        resource.setrlimit(resource.RLIMIT_AS, (MEMORY_LIMIT, MEMORY_LIMIT))
    except (OSError, ValueError):  # refused (seccomp), or a lower hard limit already holds
        pass
    try:  # raising one's own score needs no privilege
        with open("/proc/self/oom_score_adj", "w") as score:
            score.write("500")
    except OSError:
        pass


class _Results:
    """The worker's results, written to the parent in bursts: at the end of each batch,
    and by a thread that sends what has waited FLUSH_S (so a result never waits long
    behind a slow item). A write per result cost a first scan 5 to 7% of its CPU: the
    write, and the parent's thread woken for each. Only with the shared `_PROGRESS`
    word beside it: what a burst holds back is lost if the worker hangs or dies."""

    FLUSH_S = 0.02

    def __init__(self, stream: Any):
        self._stream, self._lock = stream, threading.Lock()
        self._pending: list[bytes] = []
        self._since = 0.0  # when the oldest pending result was made
        threading.Thread(target=self._flush_late, name="results", daemon=True).start()

    def add(self, value: Any) -> None:
        packed = frame(value)
        with self._lock:
            if not self._pending:
                self._since = time.monotonic()
            self._pending.append(packed)

    def flush(self) -> None:
        with self._lock:
            if self._pending:
                write_frame(self._stream, None, b"".join(self._pending))
                self._pending.clear()

    def _flush_late(self) -> None:
        try:
            while True:
                time.sleep(self.FLUSH_S)
                if self._pending and time.monotonic() - self._since >= self.FLUSH_S:
                    self.flush()
        except OSError:  # the parent is gone: the main thread ends on its closed pipe
            pass


def main(stage_name: str, progress_fd: int | None = None) -> None:
    """The worker's side: apply the stage to each item it is sent."""
    import resource
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle
    _limit_memory(resource)
    from .pipeline import named
    stage = named(stage_name)
    reader = sys.stdin.buffer
    # The frames get a descriptor of their own, and fd 1 becomes stderr: a stray print, or
    # a C library writing to fd 1, must not corrupt the pipe.
    writer = os.fdopen(os.dup(sys.stdout.fileno()), "wb")
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())
    sys.stdout = sys.stderr
    progress = None
    if progress_fd is not None:
        progress = mmap.mmap(progress_fd, _PROGRESS.size)
        os.close(progress_fd)  # (the mapping stays)
    results = _Results(writer) if progress is not None else None
    begun = 0
    try:
        while True:
            for item in read_frame(reader):
                if results is None:
                    write_frame(writer, stage(item))
                    continue
                begun += 1  # said before the item: the parent reads it (Worker._progressing)
                _PROGRESS.pack_into(progress, 0, time.monotonic_ns(), begun)
                results.add(stage(item))
            if results is not None:
                results.flush()
    except (EOFError, BrokenPipeError, KeyboardInterrupt):
        pass


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else None)
