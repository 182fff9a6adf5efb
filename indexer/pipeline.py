"""Drivers that run a per-item stage, and the writer's thread: the only module with threads.

A stage is a plain function of one item returning a result (or None for "drop
it"); a sink takes a list of results. `Inline` runs the stage in the caller's
thread; `ThreadPool` runs it in N threads fed through a bounded queue, so
memory stays flat however large the library. Work moves between threads in
batches (see `batches`): a queue hand-off costs microseconds and the GIL, and
per file that was a third of a first scan.

Both drivers honour one stop event: once it is set, queued items are dropped
and `submit` returns at once. An exception from a stage or a sink (a writer
that cannot write) stops the pool and is raised again to whoever submits or
drains next.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Any

log = logging.getLogger(__name__)

Stage = Callable[[Any], Any]
Sink = Callable[[Any], None]
_DONE = object()
# A chunk is sent to a worker ahead of time only if it fits in a pipe (64 KiB on Linux).
PIPE_ROOM = 60 << 10


def batches(items: list, size_of: Callable[[Any], int], max_items: int = 64,
            max_size: int = 1 << 20) -> list[list]:
    """Cut items into batches of at most `max_items`, or `max_size` by `size_of` (a big
    file travels alone, so the progress of a slow batch is never hidden for long)."""
    cut, current, total = [], [], 0
    for item in items:
        if current and (len(current) >= max_items or total + size_of(item) > max_size):
            cut.append(current)
            current, total = [], 0
        current.append(item)
        total += size_of(item)
    if current:
        cut.append(current)
    return cut


def _run_stage(stage: Stage, items: list, stop: threading.Event) -> list:
    results = []
    for item in items:
        if stop.is_set():
            break
        result = stage(item)
        if result is not None:
            results.append(result)
    return results


class Inline:
    """Runs the stage in the calling thread: the sequential mode."""

    def __init__(self, stage: Stage, sink: Sink, stop: threading.Event):
        self.stage, self.sink, self.stop = stage, sink, stop

    def submit(self, items: list) -> None:
        results = _run_stage(self.stage, items, self.stop)
        if results:
            self.sink(results)

    def drain(self) -> None:
        pass

    def close(self) -> None:
        pass


class ThreadPool:
    """Runs the stage in `workers` threads; results go to `sink` from those threads."""

    def __init__(self, stage: Stage, sink: Sink, stop: threading.Event, *, workers: int,
                 queue_size: int | None = None, name: str = "worker"):
        self.stage, self.sink, self.stop = stage, sink, stop
        self.error: BaseException | None = None
        self._queue: queue.Queue = queue.Queue(queue_size or workers * 4)
        self._threads = [threading.Thread(target=self._work, name=f"{name}-{i}", daemon=True)
                         for i in range(workers)]
        for thread in self._threads:
            thread.start()

    def submit(self, chunk: list) -> None:
        """Queue a batch for one worker; blocks while the queue is full, never past a stop."""
        self._raise()
        while not self.stop.is_set():
            try:
                self._queue.put(chunk, timeout=0.1)
                return
            except queue.Full:
                self._raise()

    def drain(self) -> None:
        """Wait until every queued item is handled (or dropped after a stop)."""
        self._queue.join()
        self._raise()

    def close(self) -> None:
        for _ in self._threads:
            self._queue.put(_DONE)
        for thread in self._threads:
            thread.join()
        self._raise()

    def _work(self) -> None:
        while (chunk := self._queue.get()) is not _DONE:
            try:
                if not self.error:
                    results = _run_stage(self.stage, chunk, self.stop)
                    if results:
                        self.sink(results)
            except BaseException as error:  # handed to the submitting thread
                self.error = self.error or error
            finally:
                self._queue.task_done()
        self._queue.task_done()

    def _raise(self) -> None:
        if self.error is not None:
            raise self.error


class WriterThread:
    """Gives a writer its own thread: `put` queues, the thread applies and flushes.

    The writer's `tick` runs whenever the queue is idle for `idle` seconds, so a
    lone result is committed after the writer's `max_delay` rather than waiting
    for a full batch.
    """

    def __init__(self, writer: Any, *, queue_size: int = 64, idle: float = 0.1):
        self.writer = writer
        self.error: BaseException | None = None
        self._idle = idle
        self._queue: queue.Queue = queue.Queue(queue_size)
        self._thread = threading.Thread(target=self._run, name="writer", daemon=True)
        self._thread.start()

    def put(self, item: Any) -> None:
        self.put_all([item])

    def put_all(self, items: list) -> None:
        """Queue a batch of results: one hand-off, applied in order."""
        if self.error is not None:
            raise self.error
        self._queue.put(items)

    def drain(self) -> None:
        self._queue.join()
        if self.error is not None:
            raise self.error

    def close(self) -> None:
        """Apply what is queued, then stop the thread; the writer is the caller's again."""
        self._queue.put(_DONE)
        self._thread.join()
        if self.error is not None:
            raise self.error

    def _run(self) -> None:
        while True:
            try:
                item = self._queue.get(timeout=self._idle)
            except queue.Empty:
                self._safely(self.writer.tick)
                continue
            try:
                if item is _DONE:
                    return
                self._safely(self._apply, item)
            finally:
                self._queue.task_done()

    def _apply(self, items: list) -> None:
        for item in items:
            self.writer.put(item)

    def _safely(self, call: Callable, *args: Any) -> None:
        if self.error is not None:
            return  # a failed writer takes nothing more; the producer learns on its next put
        try:
            call(*args)
        except BaseException as error:
            self.error = error


class ProcessPool:
    """Runs a stage in worker processes, each minded by a thread of this process.

    For CPU-bound pure Python (tag parsing): 2 processes ran 1.9x faster than
    one here, 2 threads 1.6x slower. Workers start on the first batch, so a
    scan with nothing to parse starts none. An item that takes longer than
    `timeout` seconds gets its worker killed; `on_timeout(item)` stands in for
    its result and a fresh worker takes the rest of the batch. A worker that
    dies (a crash in C code, its memory limit) is replaced the same way, with
    `on_crash(item, reason)`. `stage` names a module-level function as
    "module:function", imported by the workers only (mutagen need not load here).

    Workers are `python -m indexer.worker`, not multiprocessing children: those
    run the parent's main script again, so a script without an
    `if __name__ == "__main__"` guard would start scans in its own workers.
    """

    def __init__(self, stage: str, sink: Sink, stop: threading.Event, *, workers: int,
                 timeout: float, on_timeout: Callable[[Any], Any],
                 on_crash: Callable[[Any, str], Any],
                 on_unplaced: Callable[[Any, str], Any] | None = None, name: str = "process"):
        self.stage, self.sink, self.stop = stage, sink, stop
        self.timeout, self.on_timeout, self.on_crash = timeout, on_timeout, on_crash
        self.on_unplaced = on_unplaced or on_crash
        self.error: BaseException | None = None
        self.replaced = 0
        self._unavailable: str | None = None  # why the last worker could not start
        self._queue: queue.Queue = queue.Queue(workers * 2)
        self._threads = [threading.Thread(target=self._mind, name=f"{name}-{i}", daemon=True)
                         for i in range(workers)]
        for thread in self._threads:
            thread.start()

    submit = ThreadPool.submit
    drain = ThreadPool.drain
    close = ThreadPool.close
    _raise = ThreadPool._raise

    def _mind(self) -> None:
        from .worker import Worker
        worker, sent, closed = Worker(self.stage), deque(), False
        try:
            while True:
                try:
                    closed = self._fill(worker, sent, closed)
                except BaseException as error:  # every chunk taken is in `sent`: done below
                    self.error = self.error or error
                if not sent:
                    return
                chunk, in_pipe = sent.popleft()
                try:
                    if not self.error and not self.stop.is_set():
                        results = self._run(worker, chunk, sent) if in_pipe or self._send(
                            worker, chunk) else self._unplaced(chunk)
                        if results:
                            self.sink(results)
                except BaseException as error:
                    self.error = self.error or error
                finally:
                    self._queue.task_done()
        finally:
            worker.stop()

    def _fill(self, worker: Any, sent: deque, closed: bool) -> bool:
        """Take up to two chunks and send them, the second ahead: the worker parses it
        while this thread hands on the results of the first (one at a time, a worker
        waited for this thread after every chunk, and this thread for the GIL).
        Returns True once this thread took its end-of-work mark.

        A chunk goes ahead only if it fits in the pipe whole, and only behind chunks
        that are in the pipe (the worker takes them in order). The worker empties the
        pipe of the chunk before it without waiting for us, so such a send cannot
        block while the worker blocks on writing results that we are not reading."""
        from .worker import frame
        if sent and not sent[0][1] and not self.error and not self.stop.is_set():
            # a chunk left out of the pipe (its worker died, or it was too big to go
            # ahead) goes now, so that the next can go ahead of it again
            sent[0] = (sent[0][0], self._send(worker, sent[0][0]))
        while len(sent) < 2 and not closed:
            try:
                chunk = self._queue.get(block=not sent)
            except queue.Empty:
                break
            if chunk is _DONE:
                self._queue.task_done()
                return True
            sent.append((chunk, False))  # first: whatever fails below, it is answered for
            packed = frame(chunk) if len(sent) > 1 else None
            ahead = len(sent) == 1 or (sent[0][1] and len(packed) <= PIPE_ROOM)
            if ahead and not self.error and not self.stop.is_set():
                sent[-1] = (chunk, self._send(worker, chunk, packed, restart=len(sent) == 1))
        return closed

    def _send(self, worker: Any, chunk: list, packed: bytes | None = None,
              restart: bool = True) -> bool:
        """Give the worker a chunk; False if none could take it (no process could be
        started; without `restart`, the worker is dead) or the pool was stopped while it
        would not read."""
        from .worker import WorkerUnavailable
        try:
            return worker.send(chunk, packed, self.stop, restart)
        except WorkerUnavailable as error:
            self._unavailable = str(error)
            return False

    def _unplaced(self, chunk: list) -> list:
        """The results of a chunk no worker took: each its `on_unplaced`, no verdict."""
        if self.stop.is_set():
            return []
        reason = self._unavailable or "no worker could take it"
        log.warning("%s: %d items not processed, left for the next scan", reason, len(chunk))
        return [self.on_unplaced(item, reason) for item in chunk]

    def _run(self, worker: Any, chunk: list, later: deque) -> list:
        """The results of a chunk the worker has; one that hangs or dies is replaced,
        and what it had not done, this chunk's rest and what went ahead, is sent again.
        The item blamed is the one the worker was on (it says which: worker.py); those
        before it whose results it had not sent yet are sent again, not blamed."""
        results, todo = [], list(chunk)
        while todo and not self.stop.is_set():
            for done in range(len(todo)):
                outcome, value = worker.receive(self.timeout, self.stop)
                if outcome == "result":
                    results.append(value)
                    continue
                if outcome == "stopped":
                    return results
                lost, working = worker.stop()
                self.replaced += 1
                if working is False:  # it stopped with no item begun and not answered:
                    self._unavailable = (  # no item's doing (dead at its start, or idle)
                        f"the worker stopped with no item in hand ({value})" if value
                        else "the worker took no item in time")
                    _not_in_pipe(later)
                    return results + self._unplaced(todo[done:])
                blamed = min(done + lost, len(todo) - 1)
                item = todo[blamed]
                results.append(self.on_timeout(item) if outcome == "timeout"
                               else self.on_crash(item, value))
                todo = todo[done:blamed] + todo[blamed + 1:]
                if todo and not self._send(worker, todo):
                    _not_in_pipe(later)
                    return results + self._unplaced(todo)
                sent = True  # the chunks that went ahead, sent again in order until one fails
                for index, (ahead, in_pipe) in enumerate(later):  # (never to a worker
                    sent = sent and in_pipe and self._send(worker, ahead, restart=False)
                    later[index] = (ahead, sent)  # started meanwhile: see _fill)
                break
            else:
                todo = []
        return results


def _not_in_pipe(later: deque) -> None:
    """The chunks that went ahead to a worker now gone: each is sent again in its turn."""
    for index, (ahead, _) in enumerate(later):
        later[index] = (ahead, False)


def named(stage: str) -> Stage:
    """The function "module:function" names."""
    import importlib
    module, _, function = stage.partition(":")
    return getattr(importlib.import_module(module), function)


def with_alarm(stage: Stage, timeout: float, on_timeout: Callable[[Any], Any]) -> Stage:
    """The stage with a time limit, for sequential mode: SIGALRM interrupts a parse
    that hangs. Only the main thread receives signals; elsewhere there is no limit."""
    import signal

    class _Late(BaseException):  # not an Exception: the stage's own catch-all must not eat it
        pass

    def alarm(signum: int, frame: Any) -> None:
        raise _Late()

    def guarded(item: Any) -> Any:
        if threading.current_thread() is not threading.main_thread():
            return stage(item)
        previous = signal.signal(signal.SIGALRM, alarm)
        signal.setitimer(signal.ITIMER_REAL, timeout)
        try:
            return stage(item)
        except _Late:
            return on_timeout(item)
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, previous)
    return guarded
