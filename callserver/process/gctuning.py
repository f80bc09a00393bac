"""Garbage-collector tuning of the server process (bench/RESULTS.md, sip_cps)."""

from __future__ import annotations

import asyncio
import gc

import structlog

__all__ = ["FULL_GC_INTERVAL", "FullCollections", "tune_gc"]

log = structlog.get_logger("callserver.gc")

# A full collection walks every live dialog and transaction (a few hundred ms at 700 calls/s),
# so it runs on this schedule rather than whenever CPython's heuristics decide.
FULL_GC_INTERVAL = 600.0


def tune_gc() -> None:
    """Keep full garbage-collector passes off the call path.

    Young generations keep CPython's thresholds, so short-lived cycles go as before and each
    pass stays small. Full passes are left to ``FullCollections`` (FULL_GC_INTERVAL): at
    700 calls/s they were what pushed INVITE->200 p99 to 212 ms, against 4 ms without them
    (bench/RESULTS.md). Objects from start-up are frozen out of the collector's view, so call
    it once start-up is done: the server freezes its prompts, dialplans and holiday calendars
    this way, and a full pass of an idle server takes 1-2 ms.
    """
    gc.freeze()
    gc.set_threshold(700, 10, 1_000_000)


class FullCollections:
    """The scheduled full passes: one every ``interval`` seconds on ``loop``, each logged as
    ``gc.full_collection`` with the unreachable objects it found and its pause."""

    def __init__(self, loop: asyncio.AbstractEventLoop, interval: float = FULL_GC_INTERVAL) -> None:
        self._loop, self._interval = loop, interval
        self._timer: asyncio.TimerHandle | None = None

    def start(self) -> None:
        """Arm the first pass."""
        self._timer = self._loop.call_later(self._interval, self.collect)

    def stop(self) -> None:
        """Cancel the next pass."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def collect(self) -> None:
        """A full pass now, logged for operators to see; then the next one is armed."""
        started = self._loop.time()
        found = gc.collect()
        pause_ms = round(1000 * (self._loop.time() - started), 1)
        log.info("gc.full_collection", unreachable=found, pause_ms=pause_ms)
        self._timer = self._loop.call_later(self._interval, self.collect)
