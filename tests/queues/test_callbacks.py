"""Callback requests in the centre: the place kept, offers, the call's outcomes, restore."""

from __future__ import annotations

from callserver.queues.agents import AgentState
from callserver.queues.centre import CallCentre
from callserver.queues.events import (
    CallbackAnswered,
    CallbackDialled,
    CallbackDropped,
    CallbackFailed,
    CallbackRequested,
    CallerAnswered,
    RingCancelled,
)
from callserver.queues.log_records import log_records
from callserver.queues.queue import CallbackTarget

from .support import QUEUE, agent, at, logged_in, make_centre, queue

TARGET = CallbackTarget(number="+38761123456", caller_id="+38733100200")


def _two_waiting(**settings: float | int | None) -> CallCentre:
    """One agent (paused), callers c1 and c2 waiting."""
    centre = make_centre(queue(1, wrap_up=0, **settings))
    logged_in(centre, agent(1))
    centre.pause(agent(1), "meeting", 0.0, at(0))
    centre.join(QUEUE, "c1", 1.0, at(1))
    centre.join(QUEUE, "c2", 2.0, at(2))
    centre.drain_events()
    return centre


def test_a_request_keeps_the_callers_place_and_ends_its_live_wait() -> None:
    """c1 asks at position 1: it stays first, a later caller stays behind it, the event says
    so, and its hang-up, leave or max wait no longer remove it."""
    centre = _two_waiting(max_wait=60.0)
    assert centre.request_callback("c1", TARGET, 11.0, at(11))
    (event,) = centre.drain_events()
    assert isinstance(event, CallbackRequested)
    assert (event.kind, event.number, event.wait, event.position) == (
        "callback_requested",
        TARGET.number,
        10.0,
        1,
    )
    assert not centre.abandon("c1", 12.0, at(12))
    assert not centre.leave("c1", "key", 12.0, at(12))
    centre.handle_timer(100.0, at(100))
    assert centre.waiting(QUEUE) == ["c1"]  # c2 timed out
    assert not centre.request_callback("c1", TARGET, 13.0, at(13))


def test_a_request_is_offered_in_turn_and_dialled_when_the_agent_answers() -> None:
    """The offer names the request's target; the agent's answer dials (attempt 1), the number's
    answer ends the request, the agent's call ends as any queue call."""
    centre = _two_waiting()
    centre.request_callback("c1", TARGET, 3.0, at(3))
    centre.unpause(agent(1), 4.0, at(4))
    (offer,) = centre.offers(4.0, at(4))
    assert (offer.caller, offer.agents, offer.callback) == ("c1", (agent(1),), TARGET)
    centre.drain_events()
    assert centre.answered("c1", agent(1), 6.0, at(6))
    events = centre.drain_events()
    assert not [e for e in events if isinstance(e, CallerAnswered)]
    (dialled,) = [e for e in events if isinstance(e, CallbackDialled)]
    assert (dialled.agent, dialled.number, dialled.attempt, dialled.wait) == (
        agent(1),
        TARGET.number,
        1,
        5.0,
    )
    assert centre.stored_callback("c1") is not None
    assert centre.callback_answered(agent(1), 20.0, at(20))
    (answered,) = centre.drain_events()
    assert isinstance(answered, CallbackAnswered) and answered.wait == 19.0
    assert centre.stored_callback("c1") is None
    assert centre.call_ended(agent(1), 80.0, at(80))
    assert centre.agents.state_of(agent(1)) is AgentState.AVAILABLE
    assert centre.waiting(QUEUE) == ["c2"]


def test_a_failed_call_puts_the_request_back_until_its_attempts_are_used_up() -> None:
    """Busy: back at position 1, not offered before callback_retry; the second failure of two
    attempts drops it with reason ``attempts``."""
    centre = _two_waiting(callback_attempts=2, callback_retry=60.0)
    centre.request_callback("c1", TARGET, 3.0, at(3))
    centre.abandon("c2", 3.0, at(3))
    centre.unpause(agent(1), 4.0, at(4))
    centre.offers(4.0, at(4))
    centre.answered("c1", agent(1), 5.0, at(5))
    centre.drain_events()
    assert centre.callback_failed(agent(1), "busy", 9.0, at(9))
    centre.call_ended(agent(1), 9.0, at(9))
    (failed,) = [e for e in centre.drain_events() if isinstance(e, CallbackFailed)]
    assert (failed.reason, failed.attempt) == ("busy", 1)
    assert centre.waiting(QUEUE) == ["c1"]
    stored = centre.stored_callback("c1")
    assert stored is not None and stored.attempts == 1
    assert centre.offers(30.0, at(30)) == []
    assert centre.next_deadline() == 69.0
    centre.handle_timer(69.0, at(69))
    assert [o.caller for o in centre.offers(69.0, at(69))] == ["c1"]
    centre.answered("c1", agent(1), 70.0, at(70))
    centre.drain_events()
    centre.callback_failed(agent(1), "no_answer", 90.0, at(90))
    events = centre.drain_events()
    (dropped,) = [e for e in events if isinstance(e, CallbackDropped)]
    assert (dropped.reason, dropped.attempts, dropped.wait) == ("attempts", 2, 89.0)
    assert centre.waiting(QUEUE) == [] and centre.stored_callback("c1") is None
    for event in events:
        assert log_records(event, lambda: "u") is not None


def test_a_barred_number_is_dropped_at_once() -> None:
    """again=False: no retry whatever the attempts left; the drop keeps the failure's reason."""
    centre = _two_waiting(callback_attempts=5)
    centre.request_callback("c1", TARGET, 3.0, at(3))
    centre.unpause(agent(1), 4.0, at(4))
    centre.offers(4.0, at(4))
    centre.answered("c1", agent(1), 5.0, at(5))
    centre.drain_events()
    centre.callback_failed(agent(1), "barred", 6.0, at(6), again=False)
    (dropped,) = [e for e in centre.drain_events() if isinstance(e, CallbackDropped)]
    assert (dropped.reason, dropped.attempts) == ("barred", 1)


def test_a_request_made_while_rung_cancels_the_ring() -> None:
    """The agent ringing for the caller is stopped (reason ``callback``) and is free again."""
    centre = make_centre(queue(1))
    logged_in(centre, agent(1))
    centre.join(QUEUE, "c1", 1.0, at(1))
    centre.offers(1.0, at(1))
    centre.drain_events()
    centre.request_callback("c1", TARGET, 2.0, at(2))
    cancelled = [e for e in centre.drain_events() if isinstance(e, RingCancelled)]
    assert [(e.agent, e.reason) for e in cancelled] == [(agent(1), "callback")]
    assert centre.agents.state_of(agent(1)) is AgentState.AVAILABLE


def test_a_stored_request_is_restored_in_its_place_with_its_wait() -> None:
    """What stored_callback gives comes back in a new centre: first in its queue, its wait
    going on from the stored join, its attempts kept, offered again."""
    centre = make_centre(queue(1))
    logged_in(centre, agent(1))
    centre.pause(agent(1), "meeting", 0.0, at(0))
    centre.join(QUEUE, "c1", 1.0, at(1))
    centre.request_callback("c1", TARGET, 3.0, at(3))
    stored = centre.stored_callback("c1")
    assert stored is not None and stored.joined_at == at(1)
    fresh = make_centre()
    fresh.define(stored.config)
    logged_in(fresh, agent(1), now=500.0)
    fresh.join(QUEUE, "c9", 500.0, at(1000))
    fresh.restore_callback(stored, 500.0, at(1000))
    assert fresh.waiting(QUEUE) == ["c9", "c1"]  # same priority: behind who is there
    fresh.abandon("c9", 501.0, at(1001))
    (offer,) = fresh.offers(501.0, at(1001))
    assert offer.callback == TARGET
    fresh.drain_events()
    fresh.answered("c1", agent(1), 502.0, at(1002))
    (dialled,) = [e for e in fresh.drain_events() if isinstance(e, CallbackDialled)]
    assert (dialled.wait, dialled.attempt) == (1001.0, 1)
