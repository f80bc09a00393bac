"""The one shared media clock: a single task that ticks every ptime on absolute deadlines.

Tick ``n`` is due at ``t0 + n * period``; the deadline never accumulates the error of the
sleeps before it (FreeSWITCH's timer matrix, not a sleep loop per call). After a stall longer
than a period (a GC pause, a slow callback) the clock resynchronises: it skips the ticks that
are already past instead of firing them in a burst, and logs ``media.tick_late``. The tick
number jumps by the skipped count, so RTP timestamps derived from it stay true to wall time.
A busy loop can also run a due tick from any of its callbacks (``poll``): the server polls
after every datagram, so a burst of SIP requests read in one turn of the loop does not hold
the tick back until the last of them is handled.

The clock measures itself: each tick's lateness (wake-up time minus deadline) and duration
(time spent in the callback) go into ring buffers whose percentiles ``statistics()`` reports.
They are numpy's default (linear interpolation) from a sort of a list: ``np.percentile``
imports ``numpy.ma`` on its first call and numpy's sort pages in 1 MiB of its vectorised code,
2-3 MiB of resident memory that nothing else needs, to save 0.2 ms of CPU once a minute. Two
figures smoothed over the last few ticks are cheap enough to read for every new call
(overload control): ``lag``, the lateness, and ``load``, the share of wall time the event
loop's thread spent on the CPU (``time.thread_time``) — near 1 the loop has no time left, even
while every tick still wakes on time.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import structlog

__all__ = ["ClockStatistics", "MediaClock"]

log = structlog.get_logger("callserver.media")
_WINDOW = 3000  # ticks kept for the percentiles: one minute at 20 ms
_LAG_SMOOTHING = 0.25  # weight of the newest tick in lag (about 80 ms of memory)
_LOAD_SMOOTHING = 0.1  # and in load (about 200 ms: one busy tick is not a busy loop)


@dataclass(frozen=True, slots=True, kw_only=True)
class ClockStatistics:
    """The clock's own timing over the last minute of ticks (seconds)."""

    ticks: int
    resyncs: int
    skipped_ticks: int
    tick_p50: float
    tick_p99: float
    tick_max: float
    lateness_p50: float
    lateness_p99: float
    lateness_max: float


class MediaClock:
    """Calls ``on_tick(n, now)`` every ``period`` seconds; see the module docstring."""

    def __init__(
        self,
        period: float,
        on_tick: Callable[[int, float], None],
        *,
        clock: Callable[[], float] = time.monotonic,
        cpu: Callable[[], float] = time.thread_time,
    ) -> None:
        self.period = period
        self._on_tick = on_tick
        self._clock = clock
        self._durations = np.zeros(_WINDOW)
        self._lateness = np.zeros(_WINDOW)
        self.ticks = 0
        self.resyncs = 0
        self.skipped = 0
        self._cpu = cpu
        self._t0: float | None = None  # when run() started
        self._n = 1  # the number of the next tick, due at t0 + n * period
        self._sampled = (0.0, 0.0)  # (clock, cpu) at the last tick
        self.lag = 0.0  # lateness, smoothed over the last few ticks
        self.load = 0.0  # the loop thread's CPU time per wall time, smoothed over more

    async def run(self) -> None:
        """Tick until cancelled."""
        clock = self._clock
        self._t0, self._n = clock(), 1
        while True:
            deadline = self._t0 + self._n * self.period
            # Await even when late: an overrunning tick must not starve the sockets and SIP.
            await asyncio.sleep(max(deadline - clock(), 0.0))
            self.poll()

    def poll(self) -> None:
        """Run the tick that is due now, if one is: from the clock's own task, or from any
        callback of a busy loop (a burst of datagrams), so that the tick does not wait for
        the whole burst to be read before the clock's task gets its turn."""
        if self._t0 is None:
            return  # not running
        now = self._clock()
        deadline = self._t0 + self._n * self.period
        if now < deadline:
            return
        late = now - deadline
        self._smooth(now, late)
        n = self._n if late < self.period else self._resync(self._n, late)
        self._on_tick(n, now)
        self._record(self._clock() - now, late)
        self._n = n + 1

    def _smooth(self, now: float, late: float) -> None:
        """Fold this tick into ``lag`` and ``load`` (exponentially weighted means)."""
        self.lag += (late - self.lag) * _LAG_SMOOTHING
        cpu = self._cpu()
        at, cpu_at = self._sampled
        if at and now > at:
            self.load += ((cpu - cpu_at) / (now - at) - self.load) * _LOAD_SMOOTHING
        self._sampled = (now, cpu)

    def _resync(self, n: int, late: float) -> int:
        skipped = int(late // self.period)
        self.resyncs += 1
        self.skipped += skipped
        log.warning("media.tick_late", late_ms=round(late * 1000, 1), skipped_ticks=skipped)
        return n + skipped

    def _record(self, duration: float, late: float) -> None:
        slot = self.ticks % _WINDOW
        self._durations[slot] = duration
        self._lateness[slot] = late
        self.ticks += 1

    def statistics(self) -> ClockStatistics:
        """Percentiles of tick duration and lateness over the last ``_WINDOW`` ticks."""
        count = min(self.ticks, _WINDOW)
        durations = self._durations[:count] if count else np.zeros(1)
        lateness = self._lateness[:count] if count else np.zeros(1)
        d50, d99 = _percentiles(durations, 50, 99)
        l50, l99 = _percentiles(lateness, 50, 99)
        return ClockStatistics(
            ticks=self.ticks,
            resyncs=self.resyncs,
            skipped_ticks=self.skipped,
            tick_p50=d50,
            tick_p99=d99,
            tick_max=float(durations.max()),
            lateness_p50=l50,
            lateness_p99=l99,
            lateness_max=float(lateness.max()),
        )


def _percentiles(values: npt.NDArray[np.float64], *percents: float) -> list[float]:
    """The ``percents`` of ``values`` as ``np.percentile`` gives them (linear interpolation
    between the closest ranks, Hyndman and Fan's type 7), from one sort."""
    ordered = sorted(values.tolist())
    last = len(ordered) - 1
    found = []
    for percent in percents:
        position = last * percent / 100
        low = int(position)
        high = min(low + 1, last)
        found.append(float(ordered[low] + (ordered[high] - ordered[low]) * (position - low)))
    return found
