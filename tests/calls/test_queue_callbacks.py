"""QueueCallbacks with a real centre and driver on the test's event loop: the callback key,
the agent's ring for the request, the call back and its outcomes, with a fake ``Calling``.

The SIP side (the agent's phone, the call to the number through a route, the bridge) is
covered end to end in tests/e2e/test_queue_callback.py.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

from callserver.calls.customer_calls import CustomerCall
from callserver.calls.session_host import ForwardOutcome
from callserver.media.prompts import Play
from callserver.policy.caller import CallerId
from callserver.queues.agents import AgentState
from callserver.queues.events import CallbackAnswered, CallbackFailed, CentreEvent
from tests.calls.test_queue_calls import FakePlacing, FakeSession, _call, _calls, _request, _settled
from tests.queues.support import QUEUE


@dataclass
class FakeCalling(FakePlacing):
    """FakePlacing that also calls numbers back: ``outcome`` settles the call (a
    ForwardOutcome, or "answered" to bridge until ``talked`` is set)."""

    calls_out: list[CustomerCall] = field(default_factory=list)
    outcome: asyncio.Future[object] | None = None
    joined: list[tuple[object, object]] = field(default_factory=list)
    talked: asyncio.Event = field(default_factory=asyncio.Event)

    async def call_out(self, request: CustomerCall, use: Callable[[Any], Awaitable[Any]]) -> Any:
        self.calls_out.append(request)
        self.outcome = asyncio.get_running_loop().create_future()
        result = await self.outcome
        if isinstance(result, ForwardOutcome):
            return result
        return await use("number-leg")

    async def join_legs(self, one: Any, other: Any) -> None:
        self.joined.append((one, other))
        await self.talked.wait()


def _agent_leg() -> Any:
    return SimpleNamespace(ended=asyncio.Event())


async def _requested(calling: FakeCalling, session: FakeSession) -> tuple[Any, str]:
    """Caller c1 waits, presses 1; the request rings an agent: (driver, agent)."""
    calls, driver = _calls(calling)
    request = _request(callback_key="1", callback_confirm=[Play("queue_callback")])
    waiting = asyncio.create_task(calls.wait(_call(), session, request))  # type: ignore[arg-type]
    await _settled(lambda: bool(calling.rings))
    calling.shown.clear()
    session.press("1")
    outcome = await waiting
    assert (outcome.result, session.played[-1]) == ("callback", [Play("queue_callback")])
    await _settled(lambda: bool(calling.shown))
    (shown,) = calling.shown
    assert shown.display == "Callback: +38761123456"
    agent = next(a for a, ring in calling.rings.items() if not ring.done())
    return driver, agent


@dataclass
class Answered:
    """A request whose agent answered: the number is being called (``calling.outcome``)."""

    calling: FakeCalling
    driver: Any
    agent: str
    leg: Any  # the agent's
    seen: list[CentreEvent]  # the centre's events from the agent's ring on

    @property
    def outcome(self) -> asyncio.Future[object]:
        assert self.calling.outcome is not None
        return self.calling.outcome


async def _agent_answered() -> Answered:
    """c1's request (``_requested``) rings an agent, who answers: the number is called."""
    calling, session = FakeCalling(), FakeSession()
    session.called = "38733100200"  # type: ignore[attr-defined]
    driver, agent = await _requested(calling, session)
    seen: list[CentreEvent] = []
    driver.on_event(seen.append)
    leg = _agent_leg()
    calling.rings[agent].set_result(leg)
    await _settled(lambda: calling.outcome is not None)
    return Answered(calling, driver, agent, leg, seen)


async def test_a_request_rings_an_agent_and_the_answered_number_is_bridged() -> None:
    """The key ends the wait (callback, the confirmation heard); an agent rings showing the
    number; its answer calls the number as the customer's call presenting the number called,
    the CDR naming queue and agent; answered, the two are bridged; then the agent wraps up
    and the request is gone."""
    answered = await _agent_answered()
    calling, driver, agent, leg = answered.calling, answered.driver, answered.agent, answered.leg
    (out,) = calling.calls_out
    assert (out.customer, out.number, out.caller_id) == ("acme", "+38761123456", "+38733100200")
    assert dict(out.extra) == {"queue": "sales", "answered_by": agent}
    answered.outcome.set_result("answered")
    await _settled(lambda: bool(calling.joined))
    assert calling.joined == [(leg, "number-leg")]
    assert [e.agent for e in answered.seen if isinstance(e, CallbackAnswered)] == [agent]
    calling.talked.set()
    await _settled(lambda: driver.centre.agents.state_of(agent) is AgentState.WRAP_UP)
    assert calling.released == ["number-leg", leg]
    assert driver.centre.waiting(QUEUE) == [] and driver.centre.stored_callback("c1") is None


async def test_a_busy_number_puts_the_request_back_in_its_place() -> None:
    """Busy: the agent's leg is released and it wraps up; the request waits again, one
    attempt made."""
    answered = await _agent_answered()
    driver, agent = answered.driver, answered.agent
    answered.outcome.set_result(ForwardOutcome(result="busy", sip_code=486))
    await _settled(lambda: driver.centre.agents.state_of(agent) is AgentState.WRAP_UP)
    assert answered.calling.released == [answered.leg]
    failed = [(e.reason, e.attempt) for e in answered.seen if isinstance(e, CallbackFailed)]
    assert failed == [("busy", 1)]
    stored = driver.centre.stored_callback("c1")
    assert driver.centre.waiting(QUEUE) == ["c1"] and stored is not None and stored.attempts == 1


async def test_the_agent_hanging_up_while_the_number_rings_cancels_the_call() -> None:
    """The agent's BYE before the number answers: the call back is cancelled, the request
    waits again (reason agent_hung_up), the agent wraps up."""
    answered = await _agent_answered()
    driver, agent = answered.driver, answered.agent
    answered.leg.ended.set()
    await _settled(lambda: driver.centre.agents.state_of(agent) is AgentState.WRAP_UP)
    assert [e.reason for e in answered.seen if isinstance(e, CallbackFailed)] == ["agent_hung_up"]
    assert driver.centre.waiting(QUEUE) == ["c1"]


async def test_an_anonymous_caller_hears_the_refusal_and_waits_on() -> None:
    """A withheld number: the callback key plays the refusal, no request is made and the
    caller still waits in its place."""
    calling, session = FakeCalling(), FakeSession()
    session.caller = CallerId(raw="anonymous", withheld=True)
    session.called = "38733100200"  # type: ignore[attr-defined]
    calls, driver = _calls(calling)
    request = _request(callback_key="1", callback_refused=[Play("queue_callback_anonymous")])
    waiting = asyncio.create_task(calls.wait(_call(), session, request))  # type: ignore[arg-type]
    await _settled(lambda: bool(calling.rings))
    session.press("1")
    await _settled(lambda: [Play("queue_callback_anonymous")] in session.played)
    assert driver.centre.status("c1") is not None
    assert driver.centre.stored_callback("c1") is None
    waiting.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await waiting
