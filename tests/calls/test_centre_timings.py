"""The call centre's decisions timed inside the server: the window, the figures, the request."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from callserver.calls.agent_desk import AgentDesk
from callserver.calls.centre_driver import CentreDriver
from callserver.calls.centre_timings import ENTRY_POINTS, TimedCentre, Timings
from callserver.process.control import ControlServer
from callserver.queues.centre import CallCentre
from callserver.queues.events import Joined
from tests.queues.support import QUEUE, START, agent, centrex, queue

PHONES = centrex(5)


def test_the_figures_are_percentiles_of_the_durations_kept() -> None:
    """100 durations of 1..100 µs give p50 51 µs, p99 100 µs and max 100 µs, for the entry
    point and for all together; entry points never called are left out."""
    timings = Timings()
    for n in range(1, 101):
        timings.add("join", n * 1000)
    figures = timings.figures()
    expected = {"calls": 100, "kept": 100, "p50_us": 51.0, "p99_us": 100.0, "max_us": 100.0}
    assert figures["all"] == expected
    assert figures["entry_points"] == {"join": expected}
    assert figures["window"] == 10_000


def test_the_window_keeps_the_last_durations_and_counts_every_call() -> None:
    """A window of 3 keeps the last 3 durations while the count goes on; clear forgets
    both, after the figures it was asked with."""
    timings = Timings(window=3)
    for ns in (9_000_000, 1000, 2000, 3000):
        timings.add("offers", ns)
    timings.add("answered", 5000)
    figures = timings.figures(clear=True)
    assert figures["entry_points"]["offers"] == {  # type: ignore[index]
        "calls": 4,
        "kept": 3,
        "p50_us": 2.0,
        "p99_us": 3.0,
        "max_us": 3.0,
    }
    assert figures["all"] == {"calls": 5, "kept": 3, "p50_us": 3.0, "p99_us": 5.0, "max_us": 5.0}
    assert timings.figures() == {
        "window": 3,
        "all": {"calls": 0, "kept": 0},
        "entry_points": {},
    }


def test_a_window_of_nothing_is_refused() -> None:
    """A window must hold at least one duration."""
    with pytest.raises(ValueError, match="1 duration or more"):
        Timings(window=0)


async def test_the_driver_times_every_call_into_the_centre(tmp_path: Path) -> None:
    """A login, a queue defined, a caller joining, the offers asked by the driver's passes,
    the answer, the call's end, the wrap-up's timer and a reload's refresh: each is counted
    under its entry point, and the centre answers as an untimed one would."""
    driver = CentreDriver(
        centrex=lambda: PHONES,
        licences=lambda customer: 2,
        phone_busy=lambda number: False,
        loop=asyncio.get_running_loop(),
        wall=lambda: START,
    )
    offers: list[object] = []
    driver.on_offers(offers.extend)
    driver.open(tmp_path, None)
    centre = driver.centre
    centre.login(agent(1), 0.0, START)
    centre.define(queue(1, wrap_up=1.0))
    assert isinstance(centre.join(QUEUE, "c1", 0.0, START), Joined)
    driver.changed()
    assert centre.answered("c1", agent(1), 1.0, START)
    assert centre.call_ended(agent(1), 2.0, START)
    centre.handle_timer(3.0, START)
    assert centre.refresh(4.0, START) == []
    await driver.close()
    calls = {
        name: figures["calls"]
        for name, figures in driver.timings.figures()["entry_points"].items()  # type: ignore[attr-defined]
    }
    assert len(offers) == 1
    assert calls == {
        "login": 1,
        "define": 1,
        "join": 1,
        "offers": 3,  # open's pass, the join's pass and its round after the offer
        "answered": 1,
        "call_ended": 1,
        "handle_timer": 1,
        "refresh": 1,
    }


async def test_the_control_channel_answers_the_timings_and_clears_them(tmp_path: Path) -> None:
    """``centre.timings`` over the control channel gives the figures of a login; with
    ``clear`` the next answer starts from nothing; a ``clear`` that is no boolean is refused."""
    driver = CentreDriver(
        centrex=lambda: PHONES,
        licences=lambda customer: 2,
        phone_busy=lambda number: False,
        loop=asyncio.get_running_loop(),
        wall=lambda: START,
    )
    driver.open(tmp_path, None)
    desk = AgentDesk(driver, lambda: PHONES)
    control = ControlServer(tmp_path, desk.handlers())
    desk.act(agent(1), "login")
    request = json.dumps({"command": "centre.timings", "clear": True}).encode()
    first = control.answer(request)
    second = control.answer(request)
    refused = control.answer(b'{"command": "centre.timings", "clear": "yes"}')
    await driver.close()
    assert first["ok"] is True
    assert first["result"]["entry_points"]["login"]["calls"] == 1  # type: ignore[index]
    assert second["result"]["all"] == {"calls": 0, "kept": 0}  # type: ignore[index]
    assert refused == {"ok": False, "error": '"clear" is true or false'}


def test_every_entry_point_is_the_centres_own_method_timed() -> None:
    """Each name of ENTRY_POINTS (callback requests too) wraps CallCentre's method of that
    name, so a new entry point of the centre needs only its name in the list."""
    for name in ENTRY_POINTS:
        assert getattr(TimedCentre, name).__wrapped__ is getattr(CallCentre, name)
