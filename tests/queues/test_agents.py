"""Agents: the one transition table, refusals, counters and licences."""

from __future__ import annotations

import itertools

import pytest

from callserver.queues.agents import (
    TRANSITIONS,
    AgentEvent,
    Agents,
    AgentState,
    AgentStateChanged,
    NoLicence,
    TransitionRefused,
    UnknownAgent,
    next_state,
)

from .support import START, agent, at, centrex

S, E = AgentState, AgentEvent


def agents(acme: int = 2) -> Agents:
    """acme with ``acme`` licences, beta with 1."""
    licences = {"acme": acme, "beta": 1}
    phones = centrex(5)
    return Agents(lambda: phones, lambda customer: licences.get(customer, 0))


def test_every_state_and_event_transitions_or_is_refused() -> None:
    """Each (state, event) pair leads where the table says or raises TransitionRefused."""
    for state, event in itertools.product(AgentState, AgentEvent):
        if (state, event) in TRANSITIONS:
            assert next_state("+1", state, event) is TRANSITIONS[state, event]
        else:
            with pytest.raises(TransitionRefused) as refused:
                next_state("+38733100201", state, event)
            assert str(refused.value) == (
                f"agent +38733100201: cannot {event.value} while {state.value}"
            )
            assert (refused.value.state, refused.value.event) == (state, event)


REFUSED = sorted(
    (
        (state, event)
        for state, event in itertools.product(AgentState, AgentEvent)
        if (state, event) not in TRANSITIONS
    ),
    key=lambda pair: (pair[0].value, pair[1].value),
)


@pytest.mark.parametrize(("state", "event"), REFUSED, ids=lambda v: v.value)
def test_each_refused_pair_leaves_the_agent_as_it_was(state: AgentState, event: AgentEvent) -> None:
    """A refused event changes nothing: not the state, the stamp, nor the licence count."""
    book = agents()
    path = {
        S.LOGGED_OUT: [],
        S.AVAILABLE: [E.LOGIN],
        S.RINGING: [E.LOGIN, E.RING],
        S.IN_CALL: [E.LOGIN, E.RING, E.ANSWER],
        S.WRAP_UP: [E.LOGIN, E.RING, E.ANSWER, E.HANG_UP],
        S.PAUSED: [E.LOGIN, E.PAUSE],
    }[state]
    for step, move in enumerate(path):
        book.change(agent(1), move, float(step), at(step), "lunch")
    before = book.get(agent(1))
    with pytest.raises(TransitionRefused):
        book.change(agent(1), event, 50.0, at(50), "lunch")
    assert book.get(agent(1)) == before
    assert book.logged_in("acme") == (state is not S.LOGGED_OUT)


def test_a_queue_call_goes_round_the_table() -> None:
    """Login, ring, answer, hang up, wrap-up end: each change stamped and counted."""
    book = agents()
    moves = [E.LOGIN, E.RING, E.ANSWER, E.HANG_UP, E.WRAP_UP_DONE]
    states = [
        book.change(agent(1), move, 10.0 * n, at(10 * n)).state for n, move in enumerate(moves)
    ]
    assert states == [S.AVAILABLE, S.RINGING, S.IN_CALL, S.WRAP_UP, S.AVAILABLE]
    now = book.get(agent(1))
    assert (now.since, now.at, now.calls_answered) == (40.0, at(40), 1)
    assert (now.idle_since, now.last_call_end_at) == (30.0, at(30))


def test_the_change_event_carries_what_the_statistics_need() -> None:
    """AgentStateChanged names agent, customer, extension, both states, event, reason, times."""
    book = agents()
    book.change(agent(3), E.LOGIN, 1.0, at(1))
    changed = book.change(agent(3), E.PAUSE, 2.0, at(2), "lunch")
    assert changed == AgentStateChanged(
        agent="+38733100203",
        customer="acme",
        extension="203",
        previous=S.AVAILABLE,
        state=S.PAUSED,
        event=E.PAUSE,
        reason="lunch",
        now=2.0,
        at=at(2),
    )
    assert changed.kind == "agent"
    assert book.change(agent(3), E.PAUSE, 3.0, at(3), "meeting").reason == "meeting"
    assert book.change(agent(3), E.UNPAUSE, 4.0, at(4)).reason is None


def test_idle_since_login_until_a_first_call_ends() -> None:
    """An agent with no call yet has been idle since it logged in."""
    book = agents()
    book.change(agent(2), E.LOGIN, 7.0, at(7))
    assert book.get(agent(2)).idle_since == 7.0
    assert book.get(agent(2)).last_call_end_at is None


def test_a_login_beyond_the_licences_is_refused_and_counted_per_customer() -> None:
    """acme's third login gets NoLicence; beta's licence is its own; a logout frees one."""
    book = agents(acme=2)
    assert isinstance(book.login(agent(1), 1.0, at(1)), AgentStateChanged)
    assert isinstance(book.login(agent(2), 1.0, at(1)), AgentStateChanged)
    assert book.login(agent(3), 1.0, at(1)) == NoLicence(
        agent="+38733100203", customer="acme", licences=2
    )
    assert book.state_of(agent(3)) is S.LOGGED_OUT
    assert isinstance(book.login(agent(1, "beta"), 1.0, at(1)), AgentStateChanged)
    book.change(agent(1), E.LOGOUT, 2.0, at(2))
    assert isinstance(book.login(agent(3), 3.0, at(3)), AgentStateChanged)
    assert (book.logged_in("acme"), book.licences("acme")) == (2, 2)


def test_no_licence_means_no_login() -> None:
    """A customer without ``agents`` (0) cannot log anyone in."""
    book = agents(acme=0)
    assert isinstance(book.login(agent(1), 1.0, at(1)), NoLicence)


def test_a_second_login_is_refused_not_counted() -> None:
    """Logging in twice is refused by the table and takes no second licence."""
    book = agents(acme=5)
    book.login(agent(1), 1.0, at(1))
    with pytest.raises(TransitionRefused, match="cannot login while available"):
        book.login(agent(1), 2.0, at(2))
    assert book.logged_in("acme") == 1


def test_only_a_subscriber_is_an_agent() -> None:
    """A number that is no Centrex subscriber's is refused with UnknownAgent."""
    with pytest.raises(UnknownAgent, match=r"\+38761000000 is not a Centrex subscriber"):
        agents().login("+38761000000", 1.0, at(1))


def test_numbers_without_plus_are_the_same_agent() -> None:
    """``38733100201`` and ``+38733100201`` name one agent."""
    book = agents()
    book.login("38733100201", 1.0, at(1))
    assert book.state_of("+38733100201") is S.AVAILABLE


def test_restart_brings_ringing_and_talking_agents_back_available() -> None:
    """RESTARTED: ringing, in-call and wrap-up agents come back available; paused stay paused
    with their reason; logged-out stay out; beyond the licences in force, a logout."""
    book = agents(acme=5)
    for n in range(1, 6):
        book.login(agent(n), 0.0, START)
    book.change(agent(1), E.RING, 1.0, at(1))
    book.change(agent(2), E.RING, 1.0, at(1))
    book.change(agent(2), E.ANSWER, 2.0, at(2))
    book.change(agent(3), E.PAUSE, 2.0, at(2), "training")
    book.change(agent(5), E.LOGOUT, 2.0, at(2))
    stored = list(book)
    again = agents(acme=3)
    results = again.restore(stored, 100.0, at(100))
    states = [again.state_of(agent(n)) for n in range(1, 6)]
    assert states == [S.AVAILABLE, S.AVAILABLE, S.PAUSED, S.LOGGED_OUT, S.LOGGED_OUT]
    assert again.get(agent(3)).reason == "training"
    assert NoLicence(agent=agent(4), customer="acme", licences=3) in results
    restarted = [
        r.agent for r in results if isinstance(r, AgentStateChanged) and r.event is E.RESTARTED
    ]
    assert restarted == [agent(1), agent(2)]
    assert again.logged_in("acme") == 3
