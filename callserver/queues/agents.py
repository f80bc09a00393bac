"""Call-centre agents and their one transition table.

Theory of operation
-------------------
An agent is a Centrex subscriber (its E.164 number; its extension and customer come from
centrex.yaml) who logs in to take queue calls. It is in one :class:`AgentState`:
``LOGGED_OUT``, ``AVAILABLE``, ``RINGING`` (a queue call is offered to its phone), ``IN_CALL``,
``WRAP_UP`` (the seconds after a call in which it takes none) or ``PAUSED`` (with a reason
code the agent dialled, ``*47*REASON#``).

Every change is an :class:`AgentEvent` put through :data:`TRANSITIONS`, the one
``{(state, event): next state}`` table; a pair missing from it is refused with
:class:`TransitionRefused`, which names the agent, its state and the event (an agent pausing
while it talks, logging out while its phone rings). ``RESTARTED`` is what a restart does to a
stored agent: one that was ringing, talking or in wrap-up when the process stopped comes back
``AVAILABLE`` (its call did not survive), the others as they were.

Each change is stamped twice: ``now`` (monotonic, for decisions such as the longest idle
agent) and ``at`` (a UTC datetime, for the statistics), and gives an
:class:`AgentStateChanged`. An :class:`Agent` also counts the calls it answered and keeps when
its last call ended: it has been idle since then, or since it logged in if later.

Licences: the logged-in agents of a customer (every state but ``LOGGED_OUT``) never exceed its
``agents`` in trunks.yaml; a login beyond is not made and :meth:`Agents.login` returns
:class:`NoLicence`, which the phone's service code turns into "no licence available".

An agent's extension and customer are read from the Centrex when it is first seen and again
at each reload (:meth:`Agents.refresh`); the order in which agents logged in is kept
(:meth:`Agents.logged_in_order`) for choosing whom lowered licences log out (``departures``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from enum import Enum
from typing import ClassVar, Protocol

__all__ = [
    "TRANSITIONS",
    "Agent",
    "AgentEvent",
    "AgentState",
    "AgentStateChanged",
    "Agents",
    "Directory",
    "NoLicence",
    "TransitionRefused",
    "UnknownAgent",
    "next_state",
]


class AgentState(Enum):
    """Where an agent is."""

    LOGGED_OUT = "logged_out"
    AVAILABLE = "available"
    RINGING = "ringing"
    IN_CALL = "in_call"
    WRAP_UP = "wrap_up"
    PAUSED = "paused"


class AgentEvent(Enum):
    """What happens to an agent."""

    LOGIN = "login"
    LOGOUT = "logout"
    PAUSE = "pause"  # with a reason code; again while paused: the reason changes
    UNPAUSE = "unpause"
    RING = "ring"  # a queue call is offered to its phone
    RING_CANCELLED = "ring_cancelled"  # the caller was answered elsewhere, hung up, timed out
    NO_ANSWER = "no_answer"  # its ring timeout passed, or its phone refused the call
    ANSWER = "answer"
    HANG_UP = "hang_up"  # the queue call ended: wrap-up starts
    WRAP_UP_DONE = "wrap_up_done"
    RESTARTED = "restarted"  # loaded from the store after a restart


_S, _E = AgentState, AgentEvent
TRANSITIONS: dict[tuple[AgentState, AgentEvent], AgentState] = {
    (_S.LOGGED_OUT, _E.LOGIN): _S.AVAILABLE,
    (_S.AVAILABLE, _E.LOGOUT): _S.LOGGED_OUT,
    (_S.PAUSED, _E.LOGOUT): _S.LOGGED_OUT,
    (_S.WRAP_UP, _E.LOGOUT): _S.LOGGED_OUT,
    (_S.AVAILABLE, _E.PAUSE): _S.PAUSED,
    (_S.WRAP_UP, _E.PAUSE): _S.PAUSED,
    (_S.PAUSED, _E.PAUSE): _S.PAUSED,
    (_S.PAUSED, _E.UNPAUSE): _S.AVAILABLE,
    (_S.AVAILABLE, _E.RING): _S.RINGING,
    (_S.RINGING, _E.RING_CANCELLED): _S.AVAILABLE,
    (_S.RINGING, _E.NO_ANSWER): _S.AVAILABLE,
    (_S.RINGING, _E.ANSWER): _S.IN_CALL,
    (_S.IN_CALL, _E.HANG_UP): _S.WRAP_UP,
    (_S.WRAP_UP, _E.WRAP_UP_DONE): _S.AVAILABLE,
    (_S.LOGGED_OUT, _E.RESTARTED): _S.LOGGED_OUT,
    (_S.AVAILABLE, _E.RESTARTED): _S.AVAILABLE,
    (_S.PAUSED, _E.RESTARTED): _S.PAUSED,
    (_S.RINGING, _E.RESTARTED): _S.AVAILABLE,
    (_S.IN_CALL, _E.RESTARTED): _S.AVAILABLE,
    (_S.WRAP_UP, _E.RESTARTED): _S.AVAILABLE,
}


class TransitionRefused(ValueError):
    """An agent event its state does not allow; nothing changed."""

    def __init__(self, number: str, state: AgentState, event: AgentEvent) -> None:
        super().__init__(f"agent {number}: cannot {event.value} while {state.value}")
        self.number = number
        self.state = state
        self.event = event


class UnknownAgent(LookupError):
    """A number that is not a Centrex subscriber, so cannot be an agent."""

    def __init__(self, number: str) -> None:
        super().__init__(f"{number} is not a Centrex subscriber: only subscribers are agents")
        self.number = number


def next_state(number: str, state: AgentState, event: AgentEvent) -> AgentState:
    """The state ``event`` leads to from ``state``.

    Raises:
        TransitionRefused: the pair is not in :data:`TRANSITIONS`.
    """
    try:
        return TRANSITIONS[state, event]
    except KeyError:
        raise TransitionRefused(number, state, event) from None


class _Subscriber(Protocol):
    @property
    def number(self) -> str: ...
    @property
    def group(self) -> str: ...
    @property
    def extension(self) -> str: ...


class _Group(Protocol):
    @property
    def customer(self) -> str: ...


class Directory(Protocol):
    """Who the subscribers are: what the call centre reads of centrex.yaml's ``Centrex``
    (a subscriber's number, extension and group, and the group's customer)."""

    @property
    def groups(self) -> Mapping[str, _Group]: ...

    def subscriber(self, number: str) -> _Subscriber | None:
        """The subscriber of the E.164 ``number`` (``+`` optional), else None."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Agent:
    """One agent as it is now. ``since`` (monotonic) and ``at`` (UTC) are the time of its
    last change; ``idle_since`` when it last became free of calls (its last call's end, or
    its login); ``last_call_end_at`` the wall time its last call ended (None: no call yet)."""

    number: str
    customer: str
    extension: str
    state: AgentState = AgentState.LOGGED_OUT
    reason: str | None = None  # the pause reason code
    since: float = 0.0
    at: datetime | None = None
    calls_answered: int = 0
    idle_since: float = 0.0
    last_call_end_at: datetime | None = None

    @property
    def logged_in(self) -> bool:
        """It holds a licence: any state but LOGGED_OUT."""
        return self.state is not AgentState.LOGGED_OUT


@dataclass(frozen=True, slots=True, kw_only=True)
class AgentStateChanged:
    """``agent`` went from ``previous`` to ``state`` through ``event`` at ``now``/``at``;
    ``reason`` is the pause reason code of a PAUSE (None: paused without one), or why the
    server logged the agent out (``licence``, ``removed``) for a LOGOUT. A change that belongs to a
    queue call (ring, answer, hang-up, wrap-up, a pause or logout in wrap-up) names its
    ``queue`` and ``caller`` (the caller's id in the queue)."""

    kind: ClassVar[str] = "agent"
    agent: str
    customer: str
    extension: str
    previous: AgentState
    state: AgentState
    event: AgentEvent
    reason: str | None
    now: float
    at: datetime
    queue: str | None = None
    caller: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class NoLicence:
    """A login refused: ``customer`` already has ``licences`` agents logged in."""

    agent: str
    customer: str
    licences: int


class Agents:
    """Every agent the server knows, by number, with the licence count of each customer.

    Args:
        centrex: the Centrex groups and subscribers in force (a reload replaces them): who
            is a subscriber, its extension and its group's customer.
        licences: a customer's agent licences (trunks.yaml ``customers.<id>.agents``).
    """

    def __init__(self, centrex: Callable[[], Directory], licences: Callable[[str], int]) -> None:
        self._centrex = centrex
        self._licences = licences
        self._agents: dict[str, Agent] = {}
        self._logged_in: dict[str, int] = {}  # customer: agents logged in
        self._logins: dict[str, int] = {}  # logged-in agent: its login's serial number
        self._serial = 0

    def __iter__(self) -> Iterator[Agent]:
        return iter(list(self._agents.values()))

    def get(self, number: str) -> Agent:
        """The agent of ``number`` (E.164, ``+`` optional), LOGGED_OUT if never seen.

        Raises:
            UnknownAgent: ``number`` is not a Centrex subscriber.
        """
        agent = self.find(number)
        if agent is None:
            raise UnknownAgent(number)
        self._agents.setdefault(agent.number, agent)
        return agent

    def find(self, number: str) -> Agent | None:
        """The agent of ``number`` as :meth:`get` gives it, without keeping one never seen
        (a read); None when ``number`` is neither a known agent nor a subscriber."""
        key = number if number.startswith("+") else f"+{number}"
        agent = self._agents.get(key)
        if agent is not None:
            return agent
        directory = self._centrex()
        subscriber = directory.subscriber(key)
        if subscriber is None:
            return None
        customer = directory.groups[subscriber.group].customer
        return Agent(number=key, customer=customer, extension=subscriber.extension)

    def state_of(self, number: str) -> AgentState:
        """The state of a known agent (LOGGED_OUT for any other number)."""
        agent = self._agents.get(number)
        return AgentState.LOGGED_OUT if agent is None else agent.state

    def logged_in(self, customer: str) -> int:
        """How many agents of ``customer`` are logged in."""
        return self._logged_in.get(customer, 0)

    def licences(self, customer: str) -> int:
        """The agent licences ``customer`` bought."""
        return self._licences(customer)

    def login(self, number: str, now: float, at: datetime) -> AgentStateChanged | NoLicence:
        """Log ``number`` in, if its customer has a licence free.

        Raises:
            UnknownAgent: not a Centrex subscriber.
            TransitionRefused: already logged in.
        """
        agent = self.get(number)
        if self._centrex().subscriber(agent.number) is None:  # removed by a reload
            raise UnknownAgent(number)
        next_state(agent.number, agent.state, AgentEvent.LOGIN)  # refused before counting
        licences = self._licences(agent.customer)
        if self.logged_in(agent.customer) >= licences:
            return NoLicence(agent=agent.number, customer=agent.customer, licences=licences)
        return self.change(number, AgentEvent.LOGIN, now, at)

    def change(
        self,
        number: str,
        event: AgentEvent,
        now: float,
        at: datetime,
        reason: str | None = None,
        call: tuple[str, str] | None = None,
    ) -> AgentStateChanged:
        """Put ``event`` through the table for the agent of ``number``; ``call`` is the
        ``(queue, caller)`` of the queue call the change belongs to, if any.

        Raises:
            UnknownAgent: not a Centrex subscriber.
            TransitionRefused: the agent's state does not take ``event``.
        """
        agent = self.get(number)
        state = next_state(agent.number, agent.state, event)
        updated = _stamped(agent, state, event, now, at, reason)
        self._count(agent, updated)
        self._agents[agent.number] = updated
        return AgentStateChanged(
            agent=agent.number,
            customer=agent.customer,
            extension=agent.extension,
            previous=agent.state,
            state=state,
            event=event,
            reason=reason if event is AgentEvent.LOGOUT else updated.reason,
            now=now,
            at=at,
            queue=None if call is None else call[0],
            caller=None if call is None else call[1],
        )

    def restore(
        self, stored: Iterable[Agent], now: float, at: datetime
    ) -> list[AgentStateChanged | NoLicence]:
        """Take the agents of the store back after a restart, each through ``RESTARTED``;
        a logged-in agent beyond its customer's licences (lowered meanwhile) is then logged
        out (a :class:`NoLicence` says so); a number no longer a subscriber is skipped."""
        out: list[AgentStateChanged | NoLicence] = []
        for agent in stored:
            if self._centrex().subscriber(agent.number) is None:
                continue
            known = self.get(agent.number)  # the customer and extension in force now
            if known.logged_in:
                continue  # restored already
            restored = replace(agent, customer=known.customer, extension=known.extension)
            self._agents[agent.number] = restored
            self._count(known, restored)
            changed = self._restarted(restored, now, at)
            if changed is not None:
                out.append(changed)
            licences = self._licences(restored.customer)
            if restored.logged_in and self.logged_in(restored.customer) > licences:
                out.append(
                    NoLicence(agent=agent.number, customer=known.customer, licences=licences)
                )
                out.append(self.change(agent.number, AgentEvent.LOGOUT, now, at))
        return out

    def refresh(self) -> list[str]:
        """Take every known agent's extension and customer from the Centrex in force (a
        reload may have changed them; a logged-in agent moves to its new customer's count);
        the numbers that are no longer subscribers are returned."""
        directory, gone = self._centrex(), []
        for number, agent in list(self._agents.items()):
            subscriber = directory.subscriber(number)
            if subscriber is None:
                gone.append(number)
                continue
            customer = directory.groups[subscriber.group].customer
            if (customer, subscriber.extension) == (agent.customer, agent.extension):
                continue
            if agent.logged_in:
                self._logged_in[agent.customer] -= 1
                self._logged_in[customer] = self.logged_in(customer) + 1
            self._agents[number] = replace(agent, customer=customer, extension=subscriber.extension)
        return gone

    def logged_in_order(self, customer: str) -> list[Agent]:
        """``customer``'s logged-in agents, the earliest login first (agents a restart
        restored count as logged in then, in the order they were restored)."""
        mine = [a for a in self._agents.values() if a.logged_in and a.customer == customer]
        return sorted(mine, key=lambda a: self._logins.get(a.number, 0))

    def _restarted(self, agent: Agent, now: float, at: datetime) -> AgentStateChanged | None:
        if TRANSITIONS[agent.state, AgentEvent.RESTARTED] is agent.state:
            return None
        return self.change(agent.number, AgentEvent.RESTARTED, now, at)

    def _count(self, before: Agent, after: Agent) -> None:
        if before.logged_in != after.logged_in:
            step = 1 if after.logged_in else -1
            self._logged_in[before.customer] = self.logged_in(before.customer) + step
            if after.logged_in:
                self._serial += 1
                self._logins[after.number] = self._serial
            else:
                self._logins.pop(after.number, None)


def _stamped(
    agent: Agent,
    state: AgentState,
    event: AgentEvent,
    now: float,
    at: datetime,
    reason: str | None,
) -> Agent:
    """``agent`` in ``state`` at ``now``/``at``, its counters moved by ``event``."""
    calls = agent.calls_answered + (event is AgentEvent.ANSWER)
    idle_since, last_end = agent.idle_since, agent.last_call_end_at
    if event is AgentEvent.HANG_UP:
        idle_since, last_end = now, at
    elif event is AgentEvent.LOGIN:
        idle_since = now
    return Agent(  # built, not replace()d: a change is on every ring's path
        number=agent.number,
        customer=agent.customer,
        extension=agent.extension,
        state=state,
        reason=reason if state is AgentState.PAUSED else None,
        since=now,
        at=at,
        calls_answered=calls,
        idle_since=idle_since,
        last_call_end_at=last_end,
    )
