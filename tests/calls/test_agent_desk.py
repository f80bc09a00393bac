"""AgentDesk: an agent's own requests give one outcome, from a phone or the control channel."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from callserver.calls.agent_desk import AgentDesk
from callserver.calls.centre_driver import CentreDriver
from tests.queues.support import QUEUE, START, agent, centrex, queue

PHONES = centrex(5)


async def _desk(tmp_path: Path) -> tuple[AgentDesk, CentreDriver]:
    """A desk on a driver of acme's 5 phones with 2 licences."""
    driver = CentreDriver(
        centrex=lambda: PHONES,
        licences=lambda customer: 2,
        phone_busy=lambda number: False,
        loop=asyncio.get_running_loop(),
        wall=lambda: START,
    )
    driver.open(tmp_path, None)
    return AgentDesk(driver, lambda: PHONES), driver


async def test_each_request_gives_the_state_it_leaves(tmp_path: Path) -> None:
    """Login, again, the third login, pause, a new reason, unpause, logout, again: each
    outcome names the state the agent is in after it."""
    desk, driver = await _desk(tmp_path)
    outcomes = [
        desk.act(agent(1), "login").outcome,
        desk.act(agent(1), "login").outcome,
        desk.act(agent(2), "login").outcome,
        desk.act(agent(3), "login").outcome,
        desk.act(agent(1), "pause", "3").outcome,
        desk.act(agent(1), "pause", "4").reason,
        desk.act(agent(1), "unpause").outcome,
        desk.act(agent(1), "unpause").outcome,
        desk.act(agent(1), "logout").outcome,
        desk.act(agent(1), "logout").outcome,
        desk.act(agent(1), "pause", "3").outcome,
    ]
    await driver.close()
    assert outcomes == [
        "logged_in",
        "logged_in",
        "logged_in",
        "no_licence",
        "paused",
        "4",
        "available",
        "available",
        "logged_out",
        "logged_out",
        "logged_out",
    ]


async def test_a_ringing_agent_cannot_pause_or_log_out(tmp_path: Path) -> None:
    """An agent whose phone rings for a queue caller is refused a pause and a logout; a login
    says it is logged in."""
    desk, driver = await _desk(tmp_path)
    driver.centre.define(queue(1))
    driver.on_offers(lambda offers: None)
    desk.act(agent(1), "login")
    now, at = driver.moment()
    driver.centre.join(QUEUE, "c1", now, at)
    driver.changed()
    paused = desk.act(agent(1), "pause", "3")
    out = desk.act(agent(1), "logout")
    again = desk.act(agent(1), "login")
    await driver.close()
    assert (paused.outcome, paused.state) == ("refused", "ringing")
    assert out.outcome == "refused" and "cannot logout while ringing" in out.detail
    assert (again.outcome, again.state) == ("logged_in", "ringing")


async def test_the_control_handlers_check_their_request(tmp_path: Path) -> None:
    """agents.pause takes the agent and its reason, or none; a reason to another action or a
    number that is no subscriber is a ValueError the channel answers with."""
    desk, driver = await _desk(tmp_path)
    handlers = desk.handlers()
    handlers["agents.login"]({"agent": agent(1)})
    answer = handlers["agents.pause"]({"agent": agent(1), "reason": "2"})
    bare = handlers["agents.pause"]({"agent": agent(1)})
    with pytest.raises(ValueError, match="a reason only with a pause"):
        handlers["agents.unpause"]({"agent": agent(1), "reason": "2"})
    with pytest.raises(ValueError, match="not a Centrex subscriber"):
        handlers["agents.login"]({"agent": "+38761000000"})
    with pytest.raises(ValueError, match='names its "agent"'):
        handlers["agents.login"]({"agent": 38733100201})
    await driver.close()
    assert (answer["outcome"], answer["reason"]) == ("paused", "2")
    assert (bare["outcome"], bare["state"], bare["reason"]) == ("paused", "paused", None)
