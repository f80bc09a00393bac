"""Background work on the event loop, paced: a slice at a time, within the loop's spare time.

Work that must not hold the loop for long (a reload compiling hundreds of dialplans, decoding
the prompts again) runs on the loop itself, one small slice at a time, rather than in a
thread: a thread computing in Python holds the interpreter lock the loop needs. Between two
slices the loop serves the media clock, SIP and calls. Yielding once is not enough, though:
back-to-back slices would fill the loop to the brim, ticks would come late on a busy server,
and overload control would read the full loop as overload and refuse calls for as long as
the work lasts. So after a slice that took ``t`` seconds, ``paced`` sleeps
``t * (1 - share) / share``, which leaves the work ``share`` of the loop's time.

The server asks ``spare_share`` for that share after every slice: what the loop has spare
below ``LOOP_TARGET`` of its time (``MediaClock.load``, smoothed over the last ticks, with the
work's own slices in it), between ``MIN_SHARE`` and ``MAX_SHARE``. On an idle loop the work
takes half of it (300 dialplans in about 2 s); on a loop already 60 % busy, a twentieth, so
that background work only ever takes what calls leave.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Iterable
from typing import Any, TypeVar

__all__ = [
    "BACKGROUND_SHARE",
    "LOOP_TARGET",
    "MAX_SHARE",
    "MIN_SHARE",
    "Background",
    "paced",
    "spare_share",
]

BACKGROUND_SHARE = 0.25
"""The share of the loop's time paced work takes when nobody says otherwise."""
LOOP_TARGET = 0.6
"""The loop load (share of its time on the CPU) background work stays under."""
MIN_SHARE = 0.05
MAX_SHARE = 0.5

T = TypeVar("T")


def spare_share(loop_load: float) -> float:
    """The share background work may take of a loop that is ``loop_load`` busy: what is left
    below ``LOOP_TARGET``, but at least ``MIN_SHARE`` (the work ends) and at most
    ``MAX_SHARE``."""
    return min(MAX_SHARE, max(MIN_SHARE, LOOP_TARGET - loop_load))


async def paced(
    items: Iterable[T],
    share: Callable[[], float] = lambda: BACKGROUND_SHARE,
    *,
    clock: Callable[[], float] = time.perf_counter,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
) -> AsyncIterator[T]:
    """Each of ``items`` in turn; after the caller's work on one, a pause in proportion to it,
    so that the work takes ``share()`` of the loop's time.

    Raises:
        ValueError: ``share()`` is not in (0, 1].
    """
    for item in items:
        started = clock()
        yield item  # the caller's slice of work runs here, on the loop
        took, fraction = clock() - started, share()
        if not 0 < fraction <= 1:
            raise ValueError(f"a share of the loop is in (0, 1], not {fraction}")
        await sleep(took * (1 - fraction) / fraction)


class Background:
    """The tasks of background work in progress (reloads), each its own, cancelled together."""

    def __init__(self) -> None:
        self.tasks: set[asyncio.Task[object]] = set()

    def run(self, work: Coroutine[Any, Any, object]) -> asyncio.Task[object]:
        """Start ``work`` as a task, which leaves ``tasks`` when it ends."""
        self.tasks.add(task := asyncio.get_running_loop().create_task(work))
        task.add_done_callback(self.tasks.discard)
        return task

    def cancel(self) -> None:
        """Cancel every task still running."""
        for task in self.tasks:
            task.cancel()
