"""One loop timer that follows a sans-IO layer's earliest deadline.

The SIP endpoint and the registrar keep their timers themselves and say, through
``get_timer()``, when they next need to be woken. ``Alarm`` holds the one asyncio timer
that wakes them: ``arm(deadline)`` after every call into the layer, which re-arms the loop's
timer only when the deadline moved, and ``fire(deadline)`` when it is due.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

__all__ = ["Alarm"]


class Alarm:
    """A loop timer at a layer's earliest deadline (loop time); ``fire`` gets that deadline.

    Args:
        loop: the event loop whose ``call_at`` arms it.
        fire: called once the armed deadline is due, with the deadline; the alarm is then
            unarmed until the next ``arm``.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop, fire: Callable[[float], None]) -> None:
        self._loop, self._fire = loop, fire
        self._handle: asyncio.TimerHandle | None = None
        self._deadline: float | None = None

    def arm(self, deadline: float | None) -> None:
        """Be due at ``deadline`` (None: never); a no-op when that is already the deadline."""
        if deadline == self._deadline:
            return
        self.cancel()
        self._deadline = deadline
        if deadline is not None:
            self._handle = self._loop.call_at(deadline, self._due)

    def cancel(self) -> None:
        """Disarm it."""
        if self._handle is not None:
            self._handle.cancel()
        self._handle = self._deadline = None

    def _due(self) -> None:
        deadline = self._deadline
        self._handle = self._deadline = None
        assert deadline is not None  # armed with one
        self._fire(deadline)
