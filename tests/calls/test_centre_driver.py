"""CentreDriver: a real CallCentre on a real event loop, its log, its store and its timer."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import structlog

from callserver.calls.centre_driver import CentreDriver
from callserver.queues.agents import AgentState, AgentStateChanged
from callserver.queues.callback_store import SqliteCallbackStore
from callserver.queues.callbacks import StoredCallback
from callserver.queues.eventlog import QueueEventLog
from callserver.queues.events import CentreEvent, Offer, RingNoAnswer
from callserver.queues.queue import CallbackTarget, QueueAgent, QueueConfig
from callserver.queues.store import SqliteAgentStore
from tests.queues.support import QUEUE, START, agent, centrex, queue

PHONES = centrex(5)


def _driver(
    licences: dict[str, int] | None = None, busy: frozenset[str] = frozenset()
) -> CentreDriver:
    """A driver of acme's 5 phones with ``licences`` (acme: 2), the wall clock pinned."""
    allowed = licences if licences is not None else {"acme": 2}
    return CentreDriver(
        centrex=lambda: PHONES,
        licences=lambda customer: allowed.get(customer, 0),
        phone_busy=busy.__contains__,
        loop=asyncio.get_running_loop(),
        wall=lambda: START,
    )


def _lines(log: QueueEventLog) -> list[dict[str, object]]:
    """Every line of the log once what was queued is on disk."""
    assert log.flush().result(timeout=10)
    return [
        json.loads(line)
        for path in sorted(log.directory.glob("*.jsonl"))
        for line in path.read_text().splitlines()
    ]


def _stored(data: Path) -> dict[str, AgentState]:
    """The agents' states in data/agents.sqlite."""
    store = SqliteAgentStore.open(data)
    try:
        return {a.number: a.state for a in store.load(0.0, START)}
    finally:
        store.close()


async def test_a_login_is_logged_saved_and_told_to_listeners(tmp_path: Path) -> None:
    """A login given to the centre is written to the queue event log, saved to agents.sqlite
    by close, and handed to every listener, one that raises not stopping the next."""
    driver, seen = _driver(), []
    with QueueEventLog(tmp_path / "events") as log:
        driver.open(tmp_path / "data", log)

        def broken(event: CentreEvent) -> None:
            raise RuntimeError("a listener's bug")

        driver.on_event(broken)
        driver.on_event(seen.append)
        now, at = driver.moment()
        assert at == START
        with structlog.testing.capture_logs() as logs:
            driver.centre.login(agent(1), now, at)
            driver.changed()
        await driver.close()
        lines = _lines(log)
    assert [(e.agent, e.state) for e in seen if isinstance(e, AgentStateChanged)] == [
        (agent(1), AgentState.AVAILABLE)
    ]
    assert [log["event"] for log in logs] == ["queues.listener_failed"]
    assert [(line["kind"], line["agent"]) for line in lines] == [("login", agent(1))]
    assert _stored(tmp_path / "data") == {agent(1): AgentState.AVAILABLE}


async def test_offers_ring_and_the_ring_timeout_fires_on_the_loop_timer(tmp_path: Path) -> None:
    """A caller joining with a free agent is offered to the ringer; nothing else is called,
    yet the agent's ring timeout comes from the one loop timer, is logged as ring_noanswer,
    and re-arms the timer for the caller's next round (its retry)."""
    driver, offers = _driver(), []
    timed_out = asyncio.Event()
    with QueueEventLog(tmp_path / "events") as log:
        driver.open(tmp_path / "data", log)
        driver.centre.define(queue(1, ring_timeout=0.05))
        driver.on_offers(offers.append)
        driver.on_event(lambda e: timed_out.set() if isinstance(e, RingNoAnswer) else None)
        now, at = driver.moment()
        driver.centre.login(agent(1), now, at)
        driver.centre.join(QUEUE, "c1", now, at, number="+38761000000")
        driver.changed()
        assert offers == [[Offer(queue="sales", customer="acme", caller="c1", agents=(agent(1),))]]
        assert driver.centre.agents.state_of(agent(1)) is AgentState.RINGING
        await asyncio.wait_for(timed_out.wait(), 10)
        assert driver.centre.next_deadline() is not None  # the next round's retry is armed
        await driver.close()
        kinds = [line["kind"] for line in _lines(log)]
    assert kinds[:4] == ["login", "join", "ring", "ring_noanswer"]


async def test_a_ringer_answering_at_once_keeps_the_events_in_order(tmp_path: Path) -> None:
    """A ringer that answers inside changed() calls changed() again: the answer's events
    come after the ring's, each once, and the agent is in the call."""
    driver, seen = _driver(), []
    driver.open(tmp_path / "data", None)
    driver.centre.define(queue(1))

    def answer(offers: list[Offer]) -> None:
        now, at = driver.moment()
        driver.centre.answered(offers[0].caller, offers[0].agents[0], now, at)
        driver.changed()

    driver.on_offers(answer)
    driver.on_event(seen.append)
    now, at = driver.moment()
    driver.centre.login(agent(1), now, at)
    driver.centre.join(QUEUE, "c1", now, at)
    driver.changed()
    await driver.close()
    kinds = [e.kind if not isinstance(e, AgentStateChanged) else e.event.value for e in seen]
    assert kinds == ["login", "join", "ring", "ring", "answer", "answer"]
    assert driver.centre.agents.state_of(agent(1)) is AgentState.IN_CALL


async def test_a_busy_phone_is_not_offered(tmp_path: Path) -> None:
    """An agent whose phone is on a call of its own (phone_busy) is not rung."""
    driver, offers = _driver(busy=frozenset({agent(1)})), []
    driver.open(tmp_path / "data", None)
    driver.centre.define(queue(1))
    driver.on_offers(offers.append)
    now, at = driver.moment()
    driver.centre.login(agent(1), now, at)
    driver.centre.join(QUEUE, "c1", now, at)
    driver.changed()
    await driver.close()
    assert offers == [] and driver.centre.agents.state_of(agent(1)) is AgentState.AVAILABLE


async def test_a_restart_restores_agents_and_logs_those_beyond_lowered_licences(
    tmp_path: Path,
) -> None:
    """Two logged-in agents (one paused) come back as they were; with the licences lowered
    to one, the second is logged out and ``queues.agent_no_licence`` says so."""
    first = _driver()
    first.open(tmp_path / "data", None)
    now, at = first.moment()
    first.centre.login(agent(1), now, at)
    first.centre.login(agent(2), now, at)
    first.centre.pause(agent(2), "3", now, at)
    first.changed()
    await first.close()
    again = _driver()
    again.open(tmp_path / "data", None)
    states = {a.number: (a.state, a.reason) for a in again.centre.agents}
    await again.close()
    assert states == {agent(1): (AgentState.AVAILABLE, None), agent(2): (AgentState.PAUSED, "3")}
    lowered = _driver({"acme": 1})
    with structlog.testing.capture_logs() as logs:
        lowered.open(tmp_path / "data", None)
    await lowered.close()
    refused = [log for log in logs if log["event"] == "queues.agent_no_licence"]
    assert [(log["agent"], log["licences"]) for log in refused] == [(agent(2), 1)]
    assert _stored(tmp_path / "data")[agent(2)] is AgentState.LOGGED_OUT


async def test_the_licences_in_force_are_read_at_each_login(tmp_path: Path) -> None:
    """A reload that raises the customer's licences lets the next login in."""
    licences = {"acme": 1}
    driver = _driver(licences)
    driver.open(tmp_path / "data", None)
    now, at = driver.moment()
    driver.centre.login(agent(1), now, at)
    refused = driver.centre.login(agent(2), now, at)
    licences["acme"] = 2
    allowed = driver.centre.login(agent(2), now, at)
    driver.changed()
    await driver.close()
    assert not isinstance(refused, AgentStateChanged) and isinstance(allowed, AgentStateChanged)


async def test_a_reload_with_lowered_licences_logs_the_latest_login_out(tmp_path: Path) -> None:
    """Licences 2 -> 1 then reload: the later of two logins is logged out, with a logout line
    naming the licence in the queue event log and a queues.agent_logged_out log line."""
    allowed = {"acme": 2}
    driver = _driver(allowed)
    with QueueEventLog(tmp_path / "events") as log:
        driver.open(tmp_path / "data", log)
        for n in (1, 2):
            now, at = driver.moment()
            driver.centre.login(agent(n), now, at)
            driver.changed()
        allowed["acme"] = 1
        with structlog.testing.capture_logs() as logs:
            driver.reload()
        await driver.close()
        lines = _lines(log)
    assert [(x["event"], x["agent"], x["reason"]) for x in logs] == [
        ("queues.agent_logged_out", agent(2), "licence")
    ]
    assert [(x["kind"], x["agent"], x["reason"]) for x in lines] == [
        ("login", agent(1), None),
        ("login", agent(2), None),
        ("logout", agent(2), "licence"),
    ]
    assert _stored(tmp_path / "data") == {
        agent(1): AgentState.AVAILABLE,
        agent(2): AgentState.LOGGED_OUT,
    }


async def test_a_callback_request_survives_a_restart_until_it_is_answered(tmp_path: Path) -> None:
    """A request made, then a failed call to its number: after a restart (no caller has run the
    queue's step) it waits in its queue with its attempts, its wait going on; once its number
    answers it is gone from agents.sqlite, and a later restart finds nothing."""
    config = queue(2, callback_attempts=3, callback_retry=1.0)
    target = CallbackTarget(number="+38761123456", caller_id="+38733100200")
    first = _driver()
    first.open(tmp_path / "data", None)
    now, at = first.moment()
    first.centre.define(config)
    first.centre.login(agent(1), now, at)
    first.centre.join(QUEUE, "c1", now, at)
    first.centre.request_callback("c1", target, now, at)
    assert [o.caller for o in first.centre.offers(now, at)] == ["c1"]
    assert first.centre.answered("c1", agent(1), now, at)
    first.centre.callback_failed(agent(1), "busy", now, at)
    first.changed()
    await first.close()
    again = _driver()
    again.open(tmp_path / "data", None)
    assert again.centre.waiting(QUEUE) == ["c1"]
    stored = again.centre.stored_callback("c1")
    assert stored is not None and (stored.target, stored.attempts) == (target, 1)
    assert stored.config == config and stored.joined_at == START
    now, at = again.moment()
    again.centre.login(agent(2), now, at)
    again.centre.handle_timer(now + 2.0, at)
    (offer,) = again.centre.offers(now + 2.0, at)
    again.centre.answered("c1", offer.agents[0], now + 2.0, at)
    again.centre.callback_answered(offer.agents[0], now + 3.0, at)
    again.changed()
    await again.close()
    third = _driver()
    third.open(tmp_path / "data", None)
    assert third.centre.config_of(QUEUE) is None  # nothing restored: not even its queue
    await third.close()


async def test_an_unrestorable_request_is_logged_and_kept(tmp_path: Path) -> None:
    """A stored request whose queue's agent is no subscriber any more is logged as
    ``queues.callback_not_restored`` and stays on disk."""
    store = SqliteCallbackStore.open(tmp_path / "data")
    gone = QueueAgent(number="+38733100299")  # not one of the 5 phones
    config = QueueConfig(customer="acme", name="sales", agents=(gone,))
    target = CallbackTarget(number="+38761123456", caller_id="+38733100200")
    request = StoredCallback(
        caller="c1",
        config=config,
        target=target,
        priority=0,
        skills=frozenset(),
        joined_at=START,
        attempts=0,
    )
    store.put([request])
    store.close()
    driver = _driver()
    with structlog.testing.capture_logs() as logs:
        driver.open(tmp_path / "data", None)
    await driver.close()
    assert [log["caller"] for log in logs if log["event"] == "queues.callback_not_restored"] == [
        "c1"
    ]
    store = SqliteCallbackStore.open(tmp_path / "data")
    assert store.load() == ([request], [])
    store.close()
