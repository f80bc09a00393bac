"""One writer thread that commits what is queued in batches: group commit for durable logs.

Theory of operation
-------------------
Producers ``submit`` items from any thread (the event loop among them); the call never blocks
and never touches the disk. One thread takes the items and hands them to ``commit`` in
batches. A thread, not asyncio's executor, because group commit needs one writer that sees
the whole queue, and an fsync releases the interpreter lock, so the loop runs while the disk
works.

Group commit: the writer commits at most once per ``max_delay``. It takes the first queued
item; if the last commit was less than ``max_delay`` ago it sleeps out the rest of that
interval (without waking for each item queued meanwhile), then takes everything queued, up to
``max_batch`` items. So a lone item after a quiet spell never waits, and a steady stream or a
burst shares its fsyncs, with one wake-up a commit, not one an item. ``max_batch=1`` makes
every item its own batch.

When nothing comes for ``idle`` seconds, ``commit`` is called with an empty batch, so the
owner can retry what it holds or write a heartbeat. ``close`` queues a stop mark behind what
is queued: everything submitted before is committed, then ``stopped`` runs on the writer
thread and the thread ends. ``submit`` after ``close`` returns False and queues nothing.

``commit`` owns its errors: whatever it raises ends the batch, not the writer (logged as
``process.group_commit_error``); the owner resolves its own futures.
"""

from __future__ import annotations

import contextlib
import queue
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, InvalidStateError
from typing import Generic, TypeVar

import structlog

__all__ = ["GroupCommit", "settle"]

log = structlog.get_logger("callserver.process")

ItemT = TypeVar("ItemT")


class _Stop:
    """The mark ``close`` queues behind the last item."""


_STOP = _Stop()


class GroupCommit(Generic[ItemT]):
    """A writer thread committing queued items in batches (see the module docstring).

    Args:
        commit: Called on the writer thread with each batch (possibly empty when idle).
        name: The thread's name.
        max_batch: Most items a batch.
        max_delay: Shortest interval between two commits (the longest an item waits).
        idle: Seconds without items after which ``commit`` gets an empty batch.
        stopped: Called on the writer thread after the last batch, before it ends.

    Raises:
        ValueError: for a non-positive ``max_batch`` or ``idle``.
    """

    def __init__(
        self,
        commit: Callable[[list[ItemT]], None],
        *,
        name: str,
        max_batch: int = 256,
        max_delay: float = 0.005,
        idle: float = 10.0,
        stopped: Callable[[], None] = lambda: None,
    ) -> None:
        if max_batch < 1 or idle <= 0:
            raise ValueError("max_batch and idle must be positive")
        self._commit, self._stopped = commit, stopped
        self._batch, self._idle = max_batch, idle
        self._max_delay = max(0.0, max_delay)
        self._committed_at = -self._max_delay  # monotonic time of the last commit's start
        self._queue: queue.SimpleQueue[ItemT | _Stop] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._closed = False
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    def start(self) -> None:
        """Start the writer thread."""
        self._thread.start()

    def queued(self) -> int:
        """About how many items wait for the writer thread now (``SimpleQueue.qsize``)."""
        return self._queue.qsize()

    def submit(self, item: ItemT) -> bool:
        """Queue ``item`` for the next batch; False (nothing queued) once closed."""
        with self._lock:
            if self._closed:
                return False
            self._queue.put(item)
            return True

    def close(self, timeout: float | None = None) -> None:
        """Commit what is queued, run ``stopped`` and end the thread (waiting ``timeout``)."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            self._queue.put(_STOP)
        if self._thread.is_alive():
            self._thread.join(timeout)
        else:  # never started: nothing can be queued before the mark
            self._stopped()

    def _run(self) -> None:
        running = True
        while running:
            batch = self._collect()
            running = not (batch and batch[-1] is _STOP)
            items = [item for item in batch if not isinstance(item, _Stop)]
            if items:  # the interval runs from a commit's start: a slow disk adds no wait
                self._committed_at = time.monotonic()
            try:
                self._commit(items)
            except Exception:  # a bug must not kill the writer
                log.exception("process.group_commit_error")
        self._stopped()

    def _collect(self) -> list[ItemT | _Stop]:
        try:
            batch = [self._queue.get(timeout=self._idle)]
        except queue.Empty:
            return []
        if self._batch > 1 and batch[0] is not _STOP:
            rest = self._committed_at + self._max_delay - time.monotonic()
            if rest > 0:
                time.sleep(rest)  # one commit per max_delay: what comes meanwhile joins this one
        while len(batch) < self._batch and batch[-1] is not _STOP:
            try:
                batch.append(self._queue.get_nowait())
            except queue.Empty:
                break
        return batch


def settle(future: Future[bool] | None, value: bool) -> None:
    """Resolve ``future`` with ``value`` unless it is None or already done (or cancelled)."""
    if future is None or future.done():
        return
    with contextlib.suppress(InvalidStateError):  # cancelled via asyncio.wrap_future meanwhile
        future.set_result(value)
