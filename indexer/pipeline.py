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
from collections.abc import Callable
from typing import Any

log = logging.getLogger(__name__)

Stage = Callable[[Any], Any]
Sink = Callable[[Any], None]
_DONE = object()


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
