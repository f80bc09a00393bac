"""A reload under logged-in agents: extensions and customers refreshed, agents removed from
the Centrex or beyond lowered licences logged out, those on a call when their call ends."""

from __future__ import annotations

from itertools import count

import pytest

from callserver.config.centrex import compile_centrex
from callserver.config.centrex_file import CentrexFile
from callserver.config.centrex_groups import Centrex
from callserver.queues.agents import Agents, AgentState, UnknownAgent
from callserver.queues.centre import CallCentre
from callserver.queues.departures import Departure
from callserver.queues.log_records import log_records
from callserver.queues.queue import QueueAgent
from callserver.queues.records import QueueLogRecord

from .support import QUEUE, agent, at, centrex, queue


class World:
    """A centre whose Centrex and licences a test replaces, as a reload does; acme's queue
    sales has agent 4 alone, so a caller always rings it."""

    def __init__(self, phones: int = 5, licences: int = 5) -> None:
        self.phones = centrex(phones)
        self.licences = {"acme": licences, "beta": 2}
        agents = Agents(lambda: self.phones, lambda c: self.licences.get(c, 0))
        self.centre = CallCentre(agents)
        self.centre.define(queue([QueueAgent(number=agent(4))], wrap_up=30.0))
        self.lines: list[QueueLogRecord] = []
        self._serial = count()

    def login(self, *ns: int) -> None:
        """Log acme's agents ``ns`` in, in that order, a second apart."""
        for n in ns:
            self.centre.login(agent(n), float(n), at(n))

    def ring_agent_4(self, caller: str, now: float) -> None:
        """``caller`` joins sales and agent 4's phone rings for it."""
        self.centre.join(QUEUE, caller, now, at(now))
        (offer,) = self.centre.offers(now, at(now))
        assert offer.agents == (agent(4),)

    def take(self) -> list[tuple[str, str | None, str | None]]:
        """The queue log lines of the centre's pending events: (kind, agent, reason)."""
        new = [
            line
            for event in self.centre.drain_events()
            for line in log_records(event, lambda: f"e{next(self._serial)}")
        ]
        self.lines += new
        return [(line.kind.value, line.agent, line.reason) for line in new]

    def states(self) -> dict[int, AgentState]:
        """acme's agents 1-4 by state."""
        return {n: self.centre.agents.state_of(agent(n)) for n in range(1, 5)}


def _moved_centrex() -> Centrex:
    """acme's subscribers 201, 202, 204 and 205 with four-digit extensions; 203 is beta's."""
    acme = {agent(n): {"ha1_md5": "0" * 32, "username": f"acme{n}"} for n in (1, 2, 4, 5)}
    groups = {
        "acme-office": {
            "customer": "acme",
            "numbers": ["+387 33 100 200-202", "+387 33 100 204-299"],
            "extensions": {"digits": 4},
            "subscribers": acme,
        },
        "beta-office": {
            "customer": "beta",
            "numbers": ["+387 33 100 203"],
            "extensions": {"digits": 3},
            "subscribers": {agent(3): {"ha1_md5": "0" * 32, "username": "acme3"}},
        },
    }
    compiled, errors = compile_centrex(CentrexFile.model_validate({"groups": groups}))
    assert errors == []
    return compiled


def test_lowered_licences_log_out_the_latest_logins_not_on_a_call() -> None:
    """Four logged in, agent 4 (the latest) talking; licences 4 -> 2: agents 3 and 2 go (the
    latest not on a call), 1 and the one talking stay, and the next login is refused."""
    world = World(licences=4)
    world.login(1, 2, 3, 4)
    world.ring_agent_4("c1", 5.0)
    assert world.centre.answered("c1", agent(4), 6.0, at(6))
    world.take()
    world.licences["acme"] = 2
    assert world.centre.refresh(10.0, at(10)) == [
        Departure(agent=agent(3), customer="acme", reason="licence", licences=2, pending=False),
        Departure(agent=agent(2), customer="acme", reason="licence", licences=2, pending=False),
    ]
    assert world.take() == [("logout", agent(3), "licence"), ("logout", agent(2), "licence")]
    assert world.states() == {
        1: AgentState.AVAILABLE,
        2: AgentState.LOGGED_OUT,
        3: AgentState.LOGGED_OUT,
        4: AgentState.IN_CALL,
    }
    assert world.centre.login(agent(3), 11.0, at(11)).licences == 2  # NoLicence
    assert world.centre.refresh(12.0, at(12)) == []  # within the licences now: nothing more


def test_an_agent_on_a_call_is_logged_out_when_the_call_ends() -> None:
    """Licences 2 -> 0 with agent 4 talking: agent 1 goes at once, agent 4 when its call ends
    (its wrap-up cut short: wrapup_end, then the logout that says why)."""
    world = World(licences=2)
    world.login(1, 4)
    world.ring_agent_4("c1", 5.0)
    assert world.centre.answered("c1", agent(4), 6.0, at(6))
    world.take()
    world.licences["acme"] = 0
    departures = world.centre.refresh(10.0, at(10))
    assert [(d.agent, d.pending) for d in departures] == [(agent(1), False), (agent(4), True)]
    assert world.take() == [("logout", agent(1), "licence")]
    assert world.centre.agents.logged_in("acme") == 1  # agent 4 keeps its licence meanwhile
    assert world.centre.refresh(11.0, at(11)) == []  # already on its way out: not chosen again
    assert world.centre.call_ended(agent(4), 40.0, at(40))
    assert world.take() == [
        ("call_end", agent(4), None),
        ("wrapup_start", agent(4), None),
        ("wrapup_end", agent(4), None),
        ("logout", agent(4), "licence"),
    ]
    assert world.states()[4] is AgentState.LOGGED_OUT
    assert world.centre.next_deadline() is None  # its wrap-up's end is not due any more


def test_a_ringing_agent_is_logged_out_when_its_ring_ends() -> None:
    """Agent 4 removed from the Centrex while its phone rings: out when its ring times out."""
    world = World(licences=5)
    world.login(4)
    world.ring_agent_4("c1", 5.0)
    world.take()
    world.phones = centrex(3)  # 204 and 205 removed
    (departure,) = world.centre.refresh(10.0, at(10))
    assert (departure.agent, departure.reason, departure.pending) == (agent(4), "removed", True)
    deadline = world.centre.next_deadline()
    assert deadline is not None
    world.centre.handle_timer(deadline, at(deadline))
    assert world.take()[-2:] == [
        ("ring_noanswer", agent(4), "timeout"),
        ("logout", agent(4), "removed"),
    ]
    with pytest.raises(UnknownAgent):
        world.centre.login(agent(4), 40.0, at(40))


def test_a_reload_refreshes_extension_and_customer_of_known_agents() -> None:
    """The extensions and customers cached at first sight follow the reloaded Centrex; a
    logged-in agent moved to another customer counts against that customer's licences."""
    world = World(licences=5)
    world.login(1, 3)
    assert world.centre.agents.get(agent(1)).extension == "201"
    world.phones = _moved_centrex()
    world.licences["beta"] = 0
    (departure,) = world.centre.refresh(10.0, at(10))
    assert (departure.agent, departure.customer, departure.reason) == (agent(3), "beta", "licence")
    first = world.centre.agents.get(agent(1))
    assert (first.customer, first.extension) == ("acme", "0201")
    assert world.centre.agents.get(agent(3)).customer == "beta"
    assert world.centre.agents.logged_in("acme") == 1
    assert world.centre.agents.logged_in("beta") == 0


def test_a_queue_given_again_is_checked_again_only_after_a_reload() -> None:
    """Each caller's join gives its queue again: unchanged, it is not checked again, until a
    reload, after which an agent that moved to another customer is refused."""
    world = World()
    config = queue([QueueAgent(number=agent(3))])
    world.centre.define(config)
    world.phones = _moved_centrex()  # agent 3 is beta's now; the file is not reloaded yet
    world.centre.define(config)  # as given before: nothing is read again
    world.centre.refresh(1.0, at(1))
    with pytest.raises(ValueError, match="is a subscriber of customer 'beta'"):
        world.centre.define(config)
