"""Whom each strategy rings, and ring_all's first answer taking the call."""

from __future__ import annotations

from types import MappingProxyType

from callserver.queues.agents import AgentState
from callserver.queues.centre import CallCentre
from callserver.queues.events import Offer, RingCancelled
from callserver.queues.queue import QueueAgent, Strategy

from .support import QUEUE, agent, at, logged_in, make_centre, queue


def offered(
    centre: CallCentre, caller: str, now: float, priority: int = 0, skills: tuple[str, ...] = ()
) -> list[Offer]:
    """``caller`` joins at ``now`` and the offers made then."""
    centre.join(QUEUE, caller, now, at(now), priority=priority, skills=skills)
    return centre.offers(now, at(now))


def served(centre: CallCentre, caller: str, now: float, talk: float = 30.0) -> str:
    """``caller`` joins, its one offer is answered and the call ends ``talk`` seconds later;
    the agent that took it."""
    (offer,) = offered(centre, caller, now)
    (number,) = offer.agents
    assert centre.answered(caller, number, now, at(now))
    assert centre.call_ended(number, now + talk, at(now + talk))
    return number


def test_ring_all_rings_every_free_agent_and_the_first_answer_wins() -> None:
    """Every free agent rings for the head caller; one answers, the others' rings stop."""
    centre = make_centre(queue(3, Strategy.RING_ALL))
    logged_in(centre, agent(1), agent(2), agent(3))
    centre.pause(agent(3), "lunch", 0.0, at(0))
    assert offered(centre, "c1", 1.0) == [
        Offer(queue="sales", customer="acme", caller="c1", agents=(agent(1), agent(2)))
    ]
    centre.drain_events()
    assert centre.answered("c1", agent(2), 4.0, at(4))
    cancelled = [e for e in centre.drain_events() if isinstance(e, RingCancelled)]
    assert [(e.agent, e.reason) for e in cancelled] == [(agent(1), "answered_elsewhere")]
    assert centre.agents.state_of(agent(1)) is AgentState.AVAILABLE
    assert not centre.answered("c1", agent(1), 5.0, at(5))


def test_ring_all_adds_agents_freed_while_the_caller_rings() -> None:
    """An agent freed while the head caller rings others rings for it too."""
    centre = make_centre(queue(2, Strategy.RING_ALL))
    logged_in(centre, agent(1))
    offered(centre, "c1", 1.0)
    logged_in(centre, agent(2), now=2.0)
    assert centre.offers(2.0, at(2)) == [
        Offer(queue="sales", customer="acme", caller="c1", agents=(agent(2),))
    ]


def test_longest_idle_rings_the_agent_whose_last_call_ended_longest_ago() -> None:
    """Idle since the last call's end, or since login for an agent without a call yet."""
    centre = make_centre(queue(3, Strategy.LONGEST_IDLE, wrap_up=0))
    logged_in(centre, agent(1), now=0.0)
    logged_in(centre, agent(2), now=1.0)
    logged_in(centre, agent(3), now=2.0)
    assert served(centre, "c1", 10.0) == agent(1)
    assert served(centre, "c2", 50.0) == agent(2)
    assert served(centre, "c3", 100.0) == agent(3)
    assert served(centre, "c4", 200.0) == agent(1)  # its call ended at 40, agent 2's at 80


def test_round_robin_goes_down_the_list_and_wraps() -> None:
    """Each caller gets the next agent after the one rung last, skipping a paused one."""
    centre = make_centre(queue(3, Strategy.ROUND_ROBIN, wrap_up=0))
    logged_in(centre, agent(1), agent(2), agent(3))
    got = [served(centre, f"c{n}", 10.0 * n, talk=1.0) for n in range(1, 5)]
    assert got == [agent(1), agent(2), agent(3), agent(1)]
    centre.pause(agent(2), "break", 45.0, at(45))
    assert served(centre, "c5", 50.0, talk=1.0) == agent(3)


def test_fewest_calls_rings_the_agent_with_the_fewest_answered_then_longest_idle() -> None:
    """Agent 1 answered two, agent 2 one: a new caller goes to agent 3, then to agent 2."""
    config = queue(3, Strategy.FEWEST_CALLS, wrap_up=0)
    centre = make_centre(config)
    logged_in(centre, agent(1))
    served(centre, "a", 1.0, talk=1.0)
    served(centre, "b", 3.0, talk=1.0)
    logged_in(centre, agent(2), now=5.0)
    served(centre, "c", 6.0, talk=1.0)
    logged_in(centre, agent(3), now=20.0)
    assert served(centre, "d", 30.0, talk=1.0) == agent(3)
    assert served(centre, "e", 40.0, talk=1.0) == agent(2)


def test_skills_rings_the_highest_level_of_those_with_every_skill() -> None:
    """A German caller never goes to the agent without German; the best German speaker first."""
    members = [
        QueueAgent(number=agent(1), skills=MappingProxyType({"en": 90})),
        QueueAgent(number=agent(2), skills=MappingProxyType({"de": 30, "en": 50})),
        QueueAgent(number=agent(3), skills=MappingProxyType({"de": 90})),
    ]
    centre = make_centre(queue(members, Strategy.SKILLS))
    logged_in(centre, agent(1), agent(2), agent(3))
    assert offered(centre, "de1", 1.0, skills=("de",))[0].agents == (agent(3),)
    assert offered(centre, "de2", 2.0, skills=("de",))[0].agents == (agent(2),)
    assert offered(centre, "de3", 3.0, skills=("de",)) == []
    assert offered(centre, "en1", 4.0, skills=("en",))[0].agents == (agent(1),)
    assert centre.waiting(QUEUE) == ["de1", "de2", "de3", "en1"]  # rung callers wait on


def test_a_vip_is_offered_before_those_who_waited_longer() -> None:
    """With one agent free, the priority caller who joined last is rung first."""
    centre = make_centre(queue(2))
    logged_in(centre, agent(1))
    centre.pause(agent(1), "brief", 0.0, at(0))
    for n in range(3):
        centre.join(QUEUE, f"c{n}", float(n), at(n))
    centre.join(QUEUE, "vip", 5.0, at(5), priority=1)
    assert centre.waiting(QUEUE) == ["vip", "c0", "c1", "c2"]
    centre.unpause(agent(1), 6.0, at(6))
    assert [o.caller for o in centre.offers(6.0, at(6))] == ["vip"]
