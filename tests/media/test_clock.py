"""Tests for the shared media clock (callserver.media.clock): absolute deadlines and resync.

The clock reads time only through the ``clock`` callable it is given, so a scripted clock
drives it without real waiting: every reading before a tick is at or past its deadline, and
``on_tick`` raises CancelledError to stop ``run()`` after the last scripted tick.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections import deque

import numpy as np
import pytest
from structlog.testing import capture_logs

from callserver.media.clock import MediaClock, _percentiles

P = 1 / 64  # a period that is exact in binary, so deadlines compare exactly
T0 = 1000.0


class ScriptedClock:
    """Returns T0, then for each tick its wake time twice (the sleep check and ``now``) and the
    wake time plus the tick's duration (after ``on_tick``); past the script it stays put."""

    def __init__(self, ticks: list[tuple[float, float]]) -> None:
        self.readings: deque[float] = deque([T0])
        for wake, duration in ticks:
            self.readings.extend((wake, wake, wake + duration))
        self.now = T0

    def __call__(self) -> float:
        if self.readings:
            self.now = self.readings.popleft()
        return self.now


class Recorder:
    """An ``on_tick`` that records ``(n, now)`` and cancels the run after ``stop_after`` ticks."""

    def __init__(self, stop_after: int) -> None:
        self.stop_after = stop_after
        self.calls: list[tuple[int, float]] = []

    def __call__(self, n: int, now: float) -> None:
        self.calls.append((n, now))
        if len(self.calls) == self.stop_after:
            raise asyncio.CancelledError


async def run_script(ticks: list[tuple[float, float]]) -> tuple[MediaClock, Recorder]:
    """Run a clock over ``ticks`` (wake time, duration); the last one stops it unrecorded."""
    recorder = Recorder(stop_after=len(ticks))
    clock = MediaClock(P, recorder, clock=ScriptedClock(ticks))
    with pytest.raises(asyncio.CancelledError):
        await clock.run()
    return clock, recorder


async def test_deadlines_are_absolute() -> None:
    """Tick n is due at t0 + n * period: lateness is measured from there, not from the last wake."""
    ticks = [(T0 + n * P + P / 4, 0.001) for n in range(1, 7)]
    clock, recorder = await run_script(ticks)
    assert recorder.calls == [(n, T0 + n * P + P / 4) for n in range(1, 7)]
    stats = clock.statistics()
    assert stats.ticks == 5
    assert stats.lateness_p50 == stats.lateness_max == pytest.approx(P / 4)
    assert (stats.resyncs, stats.skipped_ticks) == (0, 0)


async def test_on_time_ticks_count_one_by_one() -> None:
    """Ticks woken exactly at their deadlines are numbered 1, 2, 3 ... with no lateness."""
    clock, recorder = await run_script([(T0 + n * P, 0.0) for n in range(1, 9)])
    assert [n for n, _ in recorder.calls] == list(range(1, 9))
    assert clock.statistics().lateness_max == 0.0


async def test_stall_resyncs_instead_of_bursting() -> None:
    """A 5.5-period stall skips 5 ticks: n jumps by 5, the stall is counted and logged."""
    ticks = [(T0 + P, 0.0), (T0 + 2 * P, 0.0), (T0 + 8.5 * P, 0.0), (T0 + 9 * P, 0.0)]
    with capture_logs() as logs:
        clock, recorder = await run_script(ticks)
    assert [n for n, _ in recorder.calls] == [1, 2, 8, 9]
    stats = clock.statistics()
    assert (stats.resyncs, stats.skipped_ticks) == (1, 5)
    late = [entry for entry in logs if entry["event"] == "media.tick_late"]
    assert late == [
        {
            "event": "media.tick_late",
            "log_level": "warning",
            "late_ms": round(5.5 * P * 1000, 1),
            "skipped_ticks": 5,
        }
    ]


async def test_lateness_below_a_period_is_not_a_stall() -> None:
    """A tick late by less than one period keeps its number and logs nothing."""
    with capture_logs() as logs:
        clock, recorder = await run_script([(T0 + P, 0.0), (T0 + 2.9 * P, 0.0), (T0 + 3 * P, 0.0)])
    assert [n for n, _ in recorder.calls] == [1, 2, 3]
    assert clock.resyncs == 0
    assert not [entry for entry in logs if entry["event"] == "media.tick_late"]


async def test_stalls_accumulate() -> None:
    """Two stalls count two resyncs and the sum of the skipped ticks; exactly one period late
    is a stall of one tick."""
    ticks = [(T0 + P, 0.0), (T0 + 3 * P, 0.0), (T0 + 4 * P, 0.0), (T0 + 7.25 * P, 0.0)]
    clock, recorder = await run_script(ticks)
    # Tick 2 due at 2P, woken at 3P: 1 skipped, it is tick 3; tick 5 woken at 7.25P is tick 7.
    assert [n for n, _ in recorder.calls] == [1, 3, 4, 7]
    assert (clock.resyncs, clock.skipped) == (2, 3)


async def test_statistics_percentiles_reflect_durations() -> None:
    """Tick durations and lateness go into the percentiles that statistics() reports."""
    durations = [0.001 * k for k in range(1, 21)]
    ticks = [(T0 + n * P, d) for n, d in enumerate([*durations, 0.0], start=1)]
    clock, _ = await run_script(ticks)
    stats = clock.statistics()
    assert stats.ticks == 20
    assert stats.tick_p50 == pytest.approx(float(np.percentile(durations, 50)))
    assert stats.tick_p99 == pytest.approx(float(np.percentile(durations, 99)))
    assert stats.tick_max == pytest.approx(0.020)
    assert stats.lateness_max == 0.0


@pytest.mark.parametrize("count", [1, 2, 3, 20, 2999, 3000])
def test_percentiles_are_numpys(count: int) -> None:
    """The statistics' percentiles are np.percentile's (linear interpolation) for any count."""
    values = np.random.default_rng(count).exponential(0.002, count)
    found = _percentiles(values, 0, 50, 99, 100)
    assert found == pytest.approx([float(v) for v in np.percentile(values, [0, 50, 99, 100])])


def test_statistics_do_not_import_numpy_ma() -> None:
    """Reporting the statistics loads no numpy.ma (np.percentile would, at its first call)."""
    script = (
        "import sys\n"
        "from callserver.media.clock import MediaClock\n"
        "clock = MediaClock(0.02, lambda n, now: None)\n"
        "clock._record(0.001, 0.0)\n"
        "clock.statistics()\n"
        "print('numpy.ma' in sys.modules)\n"
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert (result.returncode, result.stdout, result.stderr) == (0, "False\n", "")


def test_statistics_before_any_tick() -> None:
    """Before the first tick the statistics are all zero."""
    stats = MediaClock(P, lambda n, now: None).statistics()
    assert (stats.ticks, stats.tick_p99, stats.lateness_max, stats.resyncs) == (0, 0.0, 0.0, 0)


async def test_overrunning_ticks_still_yield_to_the_event_loop() -> None:
    """Ticks that each take longer than a period must still let other tasks (sockets) run."""
    other_ran = 0

    async def other() -> None:
        nonlocal other_ran
        while True:
            other_ran += 1
            await asyncio.sleep(0)

    readings = ScriptedClock([])
    readings.readings.append(T0 + P)  # after t0 the first deadline is reached at once
    seen: list[int] = []

    def on_tick(n: int, now: float) -> None:
        readings.now += 1.5 * P  # every tick overruns its period
        seen.append(other_ran)
        if len(seen) == 50:
            raise asyncio.CancelledError

    task = asyncio.create_task(other())
    await asyncio.sleep(0)
    try:
        with pytest.raises(asyncio.CancelledError):
            await MediaClock(P, on_tick, clock=readings).run()
    finally:
        task.cancel()
    assert seen[-1] > seen[0]


async def test_run_on_the_real_clock_until_cancelled() -> None:
    """On the real monotonic clock run() ticks in order and stops when its task is cancelled."""
    ticked = asyncio.Event()
    numbers: list[int] = []

    def on_tick(n: int, now: float) -> None:
        numbers.append(n)
        if len(numbers) == 3:
            ticked.set()

    clock = MediaClock(0.005, on_tick)
    task = asyncio.create_task(clock.run())
    async with asyncio.timeout(5):
        await ticked.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert numbers == sorted(set(numbers))
    assert clock.ticks == len(numbers)


async def test_lag_and_load_follow_the_ticks_smoothed() -> None:
    """Every tick a quarter period late and the loop thread busy half the time: lag and load
    converge to those values, smoothed (the first tick only starts the load's measurement)."""
    ticks = [(T0 + n * P + P / 4, 0.0) for n in range(1, 161)]
    cpu_readings = iter(n * P / 2 for n in range(1, 400))
    recorder = Recorder(stop_after=len(ticks))
    clock = MediaClock(P, recorder, clock=ScriptedClock(ticks), cpu=lambda: next(cpu_readings))
    with pytest.raises(asyncio.CancelledError):
        await clock.run()
    assert clock.lag == pytest.approx(P / 4, rel=1e-3)
    assert clock.load == pytest.approx(0.5, rel=1e-3)


async def test_a_due_tick_runs_from_a_poll_once() -> None:
    """poll() from another callback runs the tick that is due, once; the clock's task then
    finds it done."""
    now = [T0]
    ticks: list[int] = []
    clock = MediaClock(P, lambda n, _: ticks.append(n), clock=lambda: now[0], cpu=lambda: 0.0)
    clock.poll()  # not running yet: nothing
    task = asyncio.create_task(clock.run())
    await asyncio.sleep(0)  # run() has read t0 and sleeps towards the first deadline
    now[0] = T0 + P
    clock.poll()
    clock.poll()
    now[0] = T0 + 2 * P + P / 2
    clock.poll()
    await asyncio.sleep(2 * P)  # the task wakes, polls, and finds nothing due
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert ticks == [1, 2]
