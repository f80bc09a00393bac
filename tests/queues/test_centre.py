"""The CallCentre facade: joining, skipping busy agents, ring timeouts, wrap-up, max wait."""

from __future__ import annotations

import pytest

from callserver.queues.agents import AgentState, NoLicence, UnknownAgent
from callserver.queues.events import (
    AgentRung,
    CallerAbandoned,
    CallerAnswered,
    CallerJoined,
    CallerLeft,
    CallerRefused,
    CallerTimedOut,
    Full,
    Joined,
    NoAgents,
    Offer,
    QueueCallEnded,
    RingCancelled,
    RingNoAnswer,
)
from callserver.queues.queue import QueueAgent, QueueConfig

from .support import QUEUE, agent, at, logged_in, make_centre, queue


def test_join_without_a_logged_in_agent_is_no_agents() -> None:
    """Nobody logged in: NoAgents and a ``refused`` event; a paused agent counts as in."""
    centre = make_centre(queue(2))
    assert centre.join(QUEUE, "c1", 1.0, at(1)) == NoAgents()
    (refused,) = centre.drain_events()
    assert isinstance(refused, CallerRefused)
    assert (refused.kind, refused.reason, refused.caller) == ("refused", "no_agents", "c1")
    logged_in(centre, agent(1))
    centre.pause(agent(1), "lunch", 2.0, at(2))
    assert centre.join(QUEUE, "c2", 3.0, at(3)) == Joined(position=1, estimated_wait=None)


def test_join_needing_a_skill_no_logged_in_agent_has_is_no_agents() -> None:
    """Required skills nobody logged in has: NoAgents."""
    centre = make_centre(queue(2))
    logged_in(centre, agent(1))
    assert centre.join(QUEUE, "c1", 1.0, at(1), skills=["de"]) == NoAgents()


def test_a_full_queue_refuses_the_next_caller() -> None:
    """max_waiting callers wait; the next gets Full and a ``refused`` event."""
    centre = make_centre(queue(1, max_waiting=2))
    logged_in(centre, agent(1))
    assert isinstance(centre.join(QUEUE, "c1", 1.0, at(1)), Joined)
    assert isinstance(centre.join(QUEUE, "c2", 2.0, at(2)), Joined)
    assert centre.join(QUEUE, "c3", 3.0, at(3)) == Full(max_waiting=2)
    assert [e.reason for e in centre.drain_events() if isinstance(e, CallerRefused)] == ["full"]


def test_joining_twice_or_an_unknown_queue_is_an_error() -> None:
    """The same caller twice is a ValueError; an undefined queue a LookupError."""
    centre = make_centre(queue(1))
    logged_in(centre, agent(1))
    centre.join(QUEUE, "c1", 1.0, at(1))
    with pytest.raises(ValueError, match="caller c1 is already waiting"):
        centre.join(QUEUE, "c1", 2.0, at(2))
    with pytest.raises(LookupError, match="no queue 'support' of customer 'acme'"):
        centre.join(("acme", "support"), "c2", 2.0, at(2))


def test_a_queue_takes_only_its_customers_subscribers() -> None:
    """An agent of another customer, or no subscriber at all, is refused when defining; a
    number written without + is the subscriber's."""
    centre = make_centre()
    beta = QueueConfig(customer="acme", name="x", agents=(QueueAgent(number=agent(1, "beta")),))
    with pytest.raises(ValueError, match="agent \\+38733101201 is a subscriber of customer 'beta'"):
        centre.define(beta)
    plain = QueueConfig(customer="acme", name="y", agents=(QueueAgent(number="38733100201"),))
    centre.define(plain)
    logged_in(centre, agent(1))
    centre.join(("acme", "y"), "c1", 1.0, at(1))
    assert centre.offers(1.0, at(1))[0].agents == (agent(1),)  # written without +: the same
    stranger = QueueConfig(customer="acme", name="x", agents=(QueueAgent(number="+38761000000"),))
    with pytest.raises(UnknownAgent):
        centre.define(stranger)


def test_joined_tells_position_and_estimate_and_status_follows_the_queue() -> None:
    """Estimate = handle time x position / serving agents; status moves as callers ahead go."""
    centre = make_centre(queue(2, handle_seconds=120.0))
    logged_in(centre, agent(1), agent(2))
    centre.pause(agent(2), "lunch", 0.0, at(0))
    assert centre.join(QUEUE, "c1", 1.0, at(1)) == Joined(position=1, estimated_wait=120.0)
    assert centre.join(QUEUE, "c2", 2.0, at(2)) == Joined(position=2, estimated_wait=240.0)
    centre.unpause(agent(2), 3.0, at(3))
    assert centre.status("c2") == Joined(position=2, estimated_wait=120.0)
    assert centre.abandon("c1", 4.0, at(4))
    assert centre.status("c2") == Joined(position=1, estimated_wait=60.0)
    assert centre.status("c1") is None


def test_busy_paused_logged_out_and_wrapping_up_agents_are_skipped() -> None:
    """Only an available agent whose phone is free is offered."""
    busy = {agent(3)}
    centre = make_centre(queue(5, wrap_up=30.0), phone_busy=busy.__contains__)
    logged_in(centre, agent(1), agent(2), agent(3), agent(4))
    centre.pause(agent(2), "lunch", 0.0, at(0))
    centre.join(QUEUE, "c1", 1.0, at(1))
    assert centre.offers(1.0, at(1))[0].agents == (agent(1),)
    centre.answered("c1", agent(1), 2.0, at(2))
    centre.call_ended(agent(1), 10.0, at(10))  # agent 1 in wrap-up until 40
    centre.join(QUEUE, "c2", 11.0, at(11))
    centre.join(QUEUE, "c3", 12.0, at(12))
    assert [(o.caller, o.agents) for o in centre.offers(12.0, at(12))] == [("c2", (agent(4),))]
    assert centre.offers(13.0, at(13)) == []  # agent 4 rings for c2: not for c3 too


def test_answer_event_and_call_end_carry_wait_position_and_talk() -> None:
    """answer: agent, wait, position; call_end: talk and wait; the caller left the queue."""
    centre = make_centre(queue(1, wrap_up=0))
    logged_in(centre, agent(1))
    centre.join(QUEUE, "c1", 10.0, at(10))
    centre.offers(12.0, at(12))
    centre.drain_events()
    assert centre.answered("c1", agent(1), 15.0, at(15))
    answered = [e for e in centre.drain_events() if isinstance(e, CallerAnswered)]
    assert [(e.kind, e.agent, e.wait, e.position, e.at) for e in answered] == [
        ("answer", agent(1), 5.0, 1, at(15))
    ]
    assert centre.waiting(QUEUE) == []
    assert centre.call_ended(agent(1), 75.0, at(75))
    ended = [e for e in centre.drain_events() if isinstance(e, QueueCallEnded)]
    assert [(e.kind, e.talk, e.wait) for e in ended] == [("call_end", 60.0, 5.0)]
    assert centre.agents.state_of(agent(1)) is AgentState.AVAILABLE  # no wrap-up
    assert not centre.call_ended(agent(1), 80.0, at(80))


def test_wrap_up_is_a_deadline_after_which_the_agent_takes_calls() -> None:
    """After a call the agent wraps up for the queue's seconds, then the waiting caller rings."""
    centre = make_centre(queue(1, wrap_up=20.0, ring_timeout=15.0))
    logged_in(centre, agent(1))
    centre.join(QUEUE, "c1", 1.0, at(1))
    centre.offers(1.0, at(1))
    centre.answered("c1", agent(1), 3.0, at(3))
    centre.join(QUEUE, "c2", 4.0, at(4))
    centre.call_ended(agent(1), 50.0, at(50))
    assert centre.agents.state_of(agent(1)) is AgentState.WRAP_UP
    assert centre.next_deadline() == 70.0
    centre.handle_timer(69.9, at(69.9))
    assert centre.offers(69.9, at(69.9)) == []
    centre.handle_timer(70.0, at(70))
    assert centre.agents.state_of(agent(1)) is AgentState.AVAILABLE
    assert centre.offers(70.0, at(70)) == [
        Offer(queue="sales", customer="acme", caller="c2", agents=(agent(1),))
    ]


def test_pausing_in_wrap_up_drops_its_deadline() -> None:
    """An agent paused during wrap-up stays paused when the wrap-up would have ended."""
    centre = make_centre(queue(1, wrap_up=20.0))
    logged_in(centre, agent(1))
    centre.join(QUEUE, "c1", 1.0, at(1))
    centre.offers(1.0, at(1))
    centre.answered("c1", agent(1), 2.0, at(2))
    centre.call_ended(agent(1), 10.0, at(10))
    centre.pause(agent(1), "coffee", 12.0, at(12))
    assert centre.next_deadline() is None
    centre.handle_timer(40.0, at(40))
    assert centre.agents.get(agent(1)).reason == "coffee"


def test_an_unanswered_ring_moves_on_and_rounds_wait_before_ringing_again() -> None:
    """A ring timeout tries the next agent; when all failed, the caller waits ``retry``."""
    centre = make_centre(queue(2, ring_timeout=15.0, retry=10.0))
    logged_in(centre, agent(1), agent(2))
    centre.join(QUEUE, "c1", 0.0, at(0))
    assert centre.offers(0.0, at(0))[0].agents == (agent(1),)
    assert centre.next_deadline() == 15.0
    centre.handle_timer(15.0, at(15))
    noanswer = [e for e in centre.drain_events() if isinstance(e, RingNoAnswer)]
    assert [(e.kind, e.agent, e.ring, e.wait, e.reason) for e in noanswer] == [
        ("ring_noanswer", agent(1), 15.0, 15.0, "timeout")
    ]
    assert centre.offers(15.0, at(15))[0].agents == (agent(2),)
    centre.handle_timer(30.0, at(30))
    assert centre.offers(30.0, at(30)) == []  # every agent tried: a new round at 40
    assert centre.next_deadline() == 40.0
    centre.handle_timer(40.0, at(40))
    assert centre.offers(40.0, at(40))[0].agents in {(agent(1),), (agent(2),)}


def test_a_phone_refusing_at_once_is_not_rung_again_before_retry() -> None:
    """One agent whose phone answers 486 at once rings at most once per retry seconds."""
    centre = make_centre(queue(1, retry=5.0))
    logged_in(centre, agent(1))
    centre.join(QUEUE, "c1", 0.0, at(0))
    rings = 0
    for tenth in range(120):
        now = tenth / 10
        centre.handle_timer(now, at(now))
        for offer in centre.offers(now, at(now)):
            rings += 1
            assert centre.ring_failed(offer.caller, agent(1), "busy", now, at(now))
    assert rings == 3  # at 0, about 5 and about 10
    assert not centre.ring_failed("c1", agent(1), "busy", 12.0, at(12))


def test_max_wait_times_the_caller_out_and_stops_its_ring() -> None:
    """At max_wait the caller gets ``timeout`` (wait, position); its ringing agent is freed."""
    centre = make_centre(queue(1, max_wait=60.0, ring_timeout=30.0, retry=30.0))
    logged_in(centre, agent(1))
    centre.join(QUEUE, "c1", 0.0, at(0))
    centre.join(QUEUE, "c2", 1.0, at(1))
    centre.offers(40.0, at(40))
    centre.drain_events()
    assert centre.next_deadline() == 60.0
    centre.handle_timer(60.0, at(60))
    events = centre.drain_events()
    cancelled = [(e.agent, e.reason) for e in events if isinstance(e, RingCancelled)]
    assert cancelled == [(agent(1), "timeout")]
    timed_out = [
        (e.kind, e.caller, e.wait, e.position) for e in events if isinstance(e, CallerTimedOut)
    ]
    assert timed_out == [("timeout", "c1", 60.0, 1)]
    assert centre.agents.state_of(agent(1)) is AgentState.AVAILABLE
    assert not centre.answered("c1", agent(1), 61.0, at(61))
    assert centre.waiting(QUEUE) == ["c2"]


def test_abandon_and_leave_give_their_wait_position_and_reason() -> None:
    """A hang-up is ``abandon``; a key to voicemail is ``leave`` with its reason."""
    centre = make_centre(queue(1))
    logged_in(centre, agent(1))
    centre.pause(agent(1), "x", 0.0, at(0))
    for n in range(3):
        centre.join(QUEUE, f"c{n}", float(n), at(n))
    centre.drain_events()
    assert centre.abandon("c1", 31.0, at(31))
    assert centre.leave("c2", "voicemail", 42.0, at(42))
    assert not centre.abandon("c1", 43.0, at(43))
    events = centre.drain_events()
    assert [
        (e.kind, e.caller, e.wait, e.position) for e in events if isinstance(e, CallerAbandoned)
    ] == [("abandon", "c1", 30.0, 2)]
    assert [
        (e.kind, e.wait, e.position, e.reason) for e in events if isinstance(e, CallerLeft)
    ] == [("leave", 40.0, 2, "voicemail")]


def test_a_caller_abandoning_while_rung_cancels_the_ring() -> None:
    """The ringing agent's ring is cancelled (``abandon``), the agent is free again."""
    centre = make_centre(queue(1))
    logged_in(centre, agent(1))
    centre.join(QUEUE, "c1", 0.0, at(0))
    centre.offers(0.0, at(0))
    centre.drain_events()
    centre.abandon("c1", 3.0, at(3))
    kinds = [e.kind for e in centre.drain_events()]
    assert kinds == ["agent", "ring_cancelled", "abandon"]
    assert centre.agents.state_of(agent(1)) is AgentState.AVAILABLE
    assert centre.next_deadline() is None


def test_events_name_queue_customer_caller_and_times() -> None:
    """join and ring carry queue, customer, caller, position, wait, now and at."""
    centre = make_centre(queue(1))
    logged_in(centre, agent(1))
    centre.join(QUEUE, "c1", 2.0, at(2), priority=3)
    centre.offers(5.0, at(5))
    joined, _, rung = centre.drain_events()
    assert joined == CallerJoined(
        queue="sales",
        customer="acme",
        caller="c1",
        now=2.0,
        at=at(2),
        position=1,
        priority=3,
        estimated_wait=180.0,
    )
    assert rung == AgentRung(
        queue="sales",
        customer="acme",
        caller="c1",
        now=5.0,
        at=at(5),
        agent=agent(1),
        wait=3.0,
        position=1,
    )


def test_logins_beyond_the_licences_are_refused_by_the_centre() -> None:
    """The centre's login returns NoLicence past the customer's agents."""
    centre = make_centre(queue(3), licences={"acme": 2})
    logged_in(centre, agent(1), agent(2))
    assert centre.login(agent(3), 1.0, at(1)) == NoLicence(
        agent=agent(3), customer="acme", licences=2
    )
    assert centre.join(QUEUE, "c1", 2.0, at(2)) == Joined(position=1, estimated_wait=90.0)


def test_restored_agents_are_offered_again() -> None:
    """Agents restored after a restart (ringing ones available) take calls at once; one
    beyond the licences in force is returned, logged out."""
    before = make_centre(queue(2))
    logged_in(before, agent(1), agent(2))
    before.join(QUEUE, "c1", 0.0, at(0))
    before.offers(0.0, at(0))
    after = make_centre(queue(2), licences={"acme": 1})
    refused = after.restore(list(before.agents), 100.0, at(100))
    assert refused == [NoLicence(agent=agent(2), customer="acme", licences=1)]
    assert after.agents.state_of(agent(2)) is AgentState.LOGGED_OUT
    assert after.agents.state_of(agent(1)) is AgentState.AVAILABLE
    after.join(QUEUE, "c9", 101.0, at(101))
    assert len(after.offers(101.0, at(101))) == 1
