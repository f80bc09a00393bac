"""process/alarm.Alarm: one loop timer that follows a layer's earliest deadline."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import cast

from callserver.process.alarm import Alarm


class _Handle:
    def __init__(self, when: float, callback: Callable[[], None]) -> None:
        self.when, self.callback, self.cancelled = when, callback, False

    def cancel(self) -> None:
        self.cancelled = True


class _Loop:
    """The part of a loop an Alarm uses: ``call_at``, recorded instead of scheduled."""

    def __init__(self) -> None:
        self.handles: list[_Handle] = []

    def call_at(self, when: float, callback: Callable[[], None]) -> _Handle:
        self.handles.append(_Handle(when, callback))
        return self.handles[-1]

    def live(self) -> list[float]:
        return [h.when for h in self.handles if not h.cancelled]


def _alarm() -> tuple[Alarm, _Loop, list[float]]:
    loop, fired = _Loop(), []
    return Alarm(cast(asyncio.AbstractEventLoop, loop), fired.append), loop, fired


def test_the_same_deadline_arms_one_timer() -> None:
    """Arming the deadline already armed schedules nothing more."""
    alarm, loop, _ = _alarm()
    alarm.arm(5.0)
    alarm.arm(5.0)
    assert [h.when for h in loop.handles] == [5.0]


def test_a_moved_deadline_replaces_the_timer_and_none_disarms() -> None:
    """A new deadline cancels the old timer; None leaves no timer."""
    alarm, loop, _ = _alarm()
    alarm.arm(5.0)
    alarm.arm(3.0)
    assert loop.live() == [3.0]
    alarm.arm(None)
    assert loop.live() == []


def test_firing_passes_the_deadline_and_unarms() -> None:
    """When due, ``fire`` gets the armed deadline; the same deadline can then be armed again."""
    alarm, loop, fired = _alarm()
    alarm.arm(7.5)
    loop.handles[-1].callback()
    assert fired == [7.5]
    alarm.arm(7.5)
    assert loop.live() == [7.5, 7.5]  # the first one ran; a new one is armed


def test_cancel_disarms() -> None:
    """``cancel`` cancels the loop's timer."""
    alarm, loop, fired = _alarm()
    alarm.arm(1.0)
    alarm.cancel()
    assert loop.live() == [] and fired == []
