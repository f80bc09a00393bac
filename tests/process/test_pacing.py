"""callserver.process.pacing: background work a slice at a time, pausing in proportion to each
slice so that it takes only the loop's spare time, and the tasks that run it."""

from __future__ import annotations

import asyncio

import pytest

from callserver.process.pacing import MAX_SHARE, MIN_SHARE, Background, paced, spare_share


async def test_each_slice_is_followed_by_a_pause_in_proportion_to_it() -> None:
    """At a quarter of the loop a slice of 2 ms is followed by 6 ms of sleep; at a half, one
    of 4 ms by 4 ms; the share is asked after every slice; the items come in order."""
    now = [0.0]
    shares = iter([0.25, 0.5])
    slept: list[float] = []

    async def sleep(seconds: float) -> None:
        slept.append(round(seconds, 9))

    seen: list[str] = []
    slices = [("a", 0.002), ("b", 0.004)]
    async for item, took in paced(slices, lambda: next(shares), clock=lambda: now[0], sleep=sleep):
        seen.append(item)
        now[0] += took  # the caller's slice of work
    assert seen == ["a", "b"]
    assert slept == [0.006, 0.004]


async def test_the_whole_loop_means_no_pause_but_still_a_turn() -> None:
    """A share of 1 sleeps 0 s after each slice: other tasks still get their turn."""
    slept: list[float] = []

    async def sleep(seconds: float) -> None:
        slept.append(seconds)

    async for _ in paced(range(3), lambda: 1.0, clock=lambda: 5.0, sleep=sleep):
        pass
    assert slept == [0.0, 0.0, 0.0]


@pytest.mark.parametrize("share", [0.0, -0.5, 1.5])
async def test_a_share_outside_zero_to_one_is_refused(share: float) -> None:
    """A share of the loop must be in (0, 1]: anything else is a ValueError naming it."""
    with pytest.raises(ValueError, match="share"):
        async for _ in paced([1], lambda: share):
            pass


def test_the_spare_share_is_what_the_loop_leaves_below_its_target() -> None:
    """An idle loop gives the most, a 30 % busy one 30 %, a busy one the least (never none)."""
    assert spare_share(0.0) == MAX_SHARE
    assert spare_share(0.3) == pytest.approx(0.3)
    assert spare_share(0.7) == spare_share(1.0) == MIN_SHARE


async def test_background_tasks_leave_when_done_and_are_cancelled_together() -> None:
    """A finished task leaves the set; cancel() stops the ones still running."""
    background = Background()
    done = background.run(asyncio.sleep(0))
    waiting = background.run(asyncio.Event().wait())
    await done
    await asyncio.sleep(0)  # the done callback's turn
    assert background.tasks == {waiting}
    background.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiting
    assert background.tasks == set()
