"""The call centre's facade: queues, their callers and the agents they ring, sans-IO.

Theory of operation
-------------------
:class:`CallCentre` is driven like the SIP endpoint: every input is a call with the time
(``now`` monotonic, ``at`` UTC) and what changed comes out as events, drained with
:meth:`CallCentre.drain_events` (``events`` module); deadlines are kept inside and the
adapter arms one timer for :meth:`CallCentre.next_deadline` and calls
:meth:`CallCentre.handle_timer` when it passes.

A caller :meth:`~CallCentre.join`\\ s a queue (``Joined``, ``Full`` or ``NoAgents``), then
:meth:`~CallCentre.offers` says which agents to ring for whom: the queues are visited in the
order of their first waiting caller (priority, then joining), each queue's callers in their
order, and each caller gets the agents its queue's strategy picks among the free ones
(``queue.choose``). An agent is free when it is ``AVAILABLE`` and its phone is not on another
call (``phone_busy``, asked of the adapter); so an agent on a call, ringing, in wrap-up,
paused or logged out is never offered, and rings for one caller at a time.

Ringing ends one of four ways: :meth:`~CallCentre.answered` (the other agents ringing for that
caller are cancelled), the agent's ring timeout (a deadline), :meth:`~CallCentre.ring_failed`
(its phone refused), or the caller leaving (:meth:`~CallCentre.abandon`,
:meth:`~CallCentre.leave`, the queue's ``max_wait`` deadline: ``CallerTimedOut``).

No ring-again storm: an agent that let a caller's ring go unanswered (or refused it) is not
offered that caller again in the same *round*. When no agent of the queue that could serve the
caller (logged in, unpaused, with its skills) is left untried, the round is over: the caller's
tried set is cleared and it is offered again no sooner than the queue's ``retry`` seconds
later. So each agent rings at most once per caller per round, and an agent whose phone refuses
at once is not rung more than once every ``retry`` seconds.

:meth:`~CallCentre.call_ended` puts the agent in ``WRAP_UP`` for the queue's ``wrap_up``
seconds (a deadline), then ``AVAILABLE``. Agents log in (within their customer's licences),
log out, pause and unpause through :class:`~callserver.queues.agents.Agents`.
"""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime

from callserver.queues.agents import (
    Agent,
    AgentEvent,
    Agents,
    AgentState,
    AgentStateChanged,
    NoLicence,
)
from callserver.queues.events import (
    AgentRung,
    CallerAbandoned,
    CallerAnswered,
    CallerJoined,
    CallerLeft,
    CallerRefused,
    CallerTimedOut,
    CentreEvent,
    Full,
    Joined,
    NoAgents,
    Offer,
    QueueCallEnded,
    RingCancelled,
    RingNoAnswer,
)
from callserver.queues.queue import Caller, Queue, QueueAgent, QueueConfig, Strategy, choose

__all__ = ["CallCentre"]

_SERVING = frozenset(
    {AgentState.AVAILABLE, AgentState.RINGING, AgentState.IN_CALL, AgentState.WRAP_UP}
)


@dataclass(slots=True, kw_only=True)
class _Ring:
    queue: Queue
    caller: Caller
    since: float
    deadline: float


@dataclass(slots=True, kw_only=True)
class _Talk:
    queue: Queue
    caller: str
    since: float
    wait: float


def _never(number: str) -> bool:
    return False


class CallCentre:
    """The queues and agents of every customer (module docstring).

    Args:
        agents: the agents and their licences.
        phone_busy: whether an agent's phone is on a call the centre did not give it (a
            call of its own): such an agent is not offered.
    """

    def __init__(self, agents: Agents, phone_busy: Callable[[str], bool] = _never) -> None:
        self.agents = agents
        self._phone_busy = phone_busy
        self._queues: dict[tuple[str, str], Queue] = {}
        self._callers: dict[str, Queue] = {}
        self._free: set[str] = set()  # AVAILABLE agents
        self._rings: dict[str, _Ring] = {}
        self._talks: dict[str, _Talk] = {}
        self._wraps: dict[str, float] = {}  # agent: end of its wrap-up
        self._timers: list[tuple[float, int, str, str]] = []  # (when, n, kind, whose)
        self._sequence = itertools.count()
        self._events: list[CentreEvent] = []
        for agent in agents:
            if agent.state is AgentState.AVAILABLE:
                self._free.add(agent.number)

    # -- queues and callers -------------------------------------------------------------

    def define(self, config: QueueConfig) -> None:
        """Add a queue or replace its settings (callers waiting in it stay).

        Raises:
            UnknownAgent: an agent that is not a Centrex subscriber.
            ValueError: an agent that is a subscriber of another customer.
        """
        for member in config.agents:
            agent = self.agents.get(member.number)
            if agent.customer != config.customer:
                raise ValueError(
                    f"queue {config.customer}/{config.name}: agent {member.number} is a "
                    f"subscriber of customer {agent.customer!r}"
                )
        queue = self._queues.get(config.key)
        if queue is None:
            self._queues[config.key] = Queue(config)
        else:
            queue.config = config

    def join(
        self,
        queue: tuple[str, str],
        caller: str,
        now: float,
        at: datetime,
        priority: int = 0,
        skills: Iterable[str] = (),
    ) -> Joined | Full | NoAgents:
        """Put ``caller`` (the call's id) in ``queue`` ``(customer, name)``: higher
        ``priority`` waits ahead; ``skills`` the agents must have.

        Raises:
            LookupError: no such queue.
            ValueError: the caller is already waiting.
        """
        q = self._queue(queue)
        if caller in self._callers:
            raise ValueError(f"caller {caller} is already waiting in a queue")
        required = frozenset(skills)
        if not any(self._logged_in(member, required) for member in q.config.agents):
            self._refused(q, caller, "no_agents", now, at)
            return NoAgents()
        limit = q.config.max_waiting
        if limit is not None and len(q) >= limit:
            self._refused(q, caller, "full", now, at)
            return Full(max_waiting=limit)
        entry = Caller(caller, priority, required, (-priority, next(self._sequence)), now, at)
        position = q.add(entry)
        self._callers[caller] = q
        if q.config.max_wait is not None:
            entry.deadline = now + q.config.max_wait
            self._arm(entry.deadline, "max_wait", caller)
        estimate = q.estimate(position, self._serving(q, required))
        self._events.append(
            CallerJoined(
                queue=q.config.name,
                customer=q.config.customer,
                caller=caller,
                now=now,
                at=at,
                position=position,
                priority=priority,
                estimated_wait=estimate,
            )
        )
        return Joined(position=position, estimated_wait=estimate)

    def status(self, caller: str) -> Joined | None:
        """The waiting caller's position and estimated wait now (for its announcements);
        None when it is not waiting."""
        q = self._callers.get(caller)
        if q is None:
            return None
        entry = q.callers[caller]
        position = q.position(entry)
        return Joined(
            position=position, estimated_wait=q.estimate(position, self._serving(q, entry.skills))
        )

    def waiting(self, queue: tuple[str, str]) -> list[str]:
        """The callers of ``queue`` in their order."""
        return [entry.id for entry in self._queue(queue).waiting()]

    def abandon(self, caller: str, now: float, at: datetime) -> bool:
        """The waiting caller hung up; False when it was not waiting."""
        return self._gone(caller, "abandon", now, at)

    def leave(self, caller: str, reason: str, now: float, at: datetime) -> bool:
        """The waiting caller left by choice (``reason``: ``voicemail``, ``callback`` ...);
        False when it was not waiting."""
        return self._gone(caller, "leave", now, at, reason)

    # -- offering and ringing -----------------------------------------------------------

    def offers(self, now: float, at: datetime) -> list[Offer]:
        """Whom to ring now, for whom (module docstring); the agents are RINGING when it
        returns, each until its ring timeout."""
        if not self._free or not self._callers:
            return []
        out: list[Offer] = []
        queues = sorted((q for q in self._queues.values() if len(q)), key=_first_key)
        for q in queues:
            free = self._free_of(q)
            for entry in q.waiting() if free else ():
                offer = self._offer(q, entry, free, now, at)
                if offer is not None:
                    out.append(offer)
                if not free:
                    break
        return out

    def answered(self, caller: str, agent: str, now: float, at: datetime) -> bool:
        """``agent`` answered ``caller``'s ring: the call is the agent's, the caller leaves
        the queue and its other rings are cancelled. False, and nothing changed, when
        ``agent`` was not ringing for ``caller`` (the caller left meanwhile: hang up)."""
        ring = self._rings.get(agent)
        if ring is None or ring.caller.id != caller:
            return False
        del self._rings[agent]
        ring.caller.ringing.discard(agent)
        self._change(agent, AgentEvent.ANSWER, now, at)
        self._cancel_rings(ring.caller, ring.queue, "answered_elsewhere", now, at)
        q, entry = ring.queue, ring.caller
        position = q.remove(entry)
        del self._callers[caller]
        q.answered[agent] += 1
        wait = now - entry.joined
        self._talks[agent] = _Talk(queue=q, caller=caller, since=now, wait=wait)
        self._events.append(
            CallerAnswered(
                queue=q.config.name,
                customer=q.config.customer,
                caller=caller,
                now=now,
                at=at,
                agent=agent,
                wait=wait,
                position=position,
            )
        )
        return True

    def ring_failed(self, caller: str, agent: str, reason: str, now: float, at: datetime) -> bool:
        """``agent``'s phone refused ``caller``'s ring (busy, declined, unreachable): as a
        ring timeout. False when it was not ringing for ``caller``."""
        ring = self._rings.get(agent)
        if ring is None or ring.caller.id != caller:
            return False
        self._no_answer(agent, reason, now, at)
        return True

    def call_ended(self, agent: str, now: float, at: datetime) -> bool:
        """The queue call ``agent`` answered ended (either side hung up): its wrap-up
        starts. False when the agent was on no queue call."""
        talk = self._talks.pop(agent, None)
        if talk is None:
            return False
        self._change(agent, AgentEvent.HANG_UP, now, at)
        q, wrap_up = talk.queue, talk.queue.config.wrap_up
        q.handled(now - talk.since + wrap_up)
        self._events.append(
            QueueCallEnded(
                queue=q.config.name,
                customer=q.config.customer,
                caller=talk.caller,
                now=now,
                at=at,
                agent=agent,
                wait=talk.wait,
                talk=now - talk.since,
            )
        )
        if wrap_up == 0:
            self._change(agent, AgentEvent.WRAP_UP_DONE, now, at)
        else:
            self._wraps[agent] = now + wrap_up
            self._arm(now + wrap_up, "wrap_up", agent)
        return True

    # -- agents ---------------------------------------------------------------------------

    def login(self, agent: str, now: float, at: datetime) -> AgentStateChanged | NoLicence:
        """Log ``agent`` in within its customer's licences (``NoLicence`` beyond).

        Raises:
            UnknownAgent: not a Centrex subscriber.
            TransitionRefused: already logged in.
        """
        result = self.agents.login(agent, now, at)
        if isinstance(result, AgentStateChanged):
            self._noted(result)
        return result

    def logout(self, agent: str, now: float, at: datetime) -> AgentStateChanged:
        """Log ``agent`` out (from available, paused or wrap-up).

        Raises:
            UnknownAgent, TransitionRefused: as :meth:`Agents.change`.
        """
        return self._change(agent, AgentEvent.LOGOUT, now, at)

    def pause(self, agent: str, reason: str, now: float, at: datetime) -> AgentStateChanged:
        """Pause ``agent`` with a reason code (from available, wrap-up or paused).

        Raises:
            UnknownAgent, TransitionRefused: as :meth:`Agents.change`.
        """
        return self._change(agent, AgentEvent.PAUSE, now, at, reason)

    def unpause(self, agent: str, now: float, at: datetime) -> AgentStateChanged:
        """``agent`` takes calls again.

        Raises:
            UnknownAgent, TransitionRefused: as :meth:`Agents.change`.
        """
        return self._change(agent, AgentEvent.UNPAUSE, now, at)

    def restore(self, stored: Iterable[Agent], now: float, at: datetime) -> None:
        """Take the stored agents back after a restart (``Agents.restore``); the changes are
        events like any other."""
        for result in self.agents.restore(stored, now, at):
            if isinstance(result, AgentStateChanged):
                self._noted(result)
        for agent in self.agents:
            if agent.state is AgentState.AVAILABLE:
                self._free.add(agent.number)

    # -- time and events ------------------------------------------------------------------

    def next_deadline(self) -> float | None:
        """The earliest time :meth:`handle_timer` has something to do, None for nothing."""
        while self._timers and not self._live(self._timers[0]):
            heapq.heappop(self._timers)
        return self._timers[0][0] if self._timers else None

    def handle_timer(self, now: float, at: datetime) -> None:
        """Do what is due at ``now``: ring timeouts, wrap-up ends, callers' max wait."""
        while self._timers and self._timers[0][0] <= now:
            timer = heapq.heappop(self._timers)
            if not self._live(timer):
                continue
            _, _, kind, whose = timer
            if kind == "ring":
                self._no_answer(whose, "timeout", now, at)
            elif kind == "wrap_up":
                del self._wraps[whose]
                self._change(whose, AgentEvent.WRAP_UP_DONE, now, at)
            elif kind == "max_wait":
                self._gone(whose, "timeout", now, at)

    def drain_events(self) -> list[CentreEvent]:
        """The events since the last drain, oldest first."""
        events, self._events = self._events, []
        return events

    # -- inside ---------------------------------------------------------------------------

    def _queue(self, key: tuple[str, str]) -> Queue:
        q = self._queues.get(key)
        if q is None:
            raise LookupError(f"no queue {key[1]!r} of customer {key[0]!r}")
        return q

    def _logged_in(self, member: QueueAgent, skills: frozenset[str]) -> bool:
        state = self.agents.state_of(member.number)
        return state is not AgentState.LOGGED_OUT and member.has(skills)

    def _serving(self, q: Queue, skills: frozenset[str]) -> int:
        return sum(
            1
            for member in q.config.agents
            if self.agents.state_of(member.number) in _SERVING and member.has(skills)
        )

    def _free_of(self, q: Queue) -> list[tuple[QueueAgent, Agent]]:
        return [
            (member, self.agents.get(member.number))
            for member in q.config.agents
            if member.number in self._free and not self._phone_busy(member.number)
        ]

    def _offer(
        self,
        q: Queue,
        entry: Caller,
        free: list[tuple[QueueAgent, Agent]],
        now: float,
        at: datetime,
    ) -> Offer | None:
        if entry.not_before > now or (entry.ringing and q.config.strategy is not Strategy.RING_ALL):
            return None
        fits = [(m, a) for m, a in free if m.has(entry.skills)]
        candidates = [(m, a) for m, a in fits if a.number not in entry.tried]
        if not candidates and fits and not entry.ringing and self._round_over(q, entry):
            entry.tried.clear()
            entry.not_before = now + q.config.retry
            self._arm(entry.not_before, "retry", entry.id)
            return None
        chosen = choose(q, entry, candidates)
        for number in chosen:
            member = next(m for m, a in free if a.number == number)
            free.remove((member, self.agents.get(number)))
            self._ring(q, entry, member, now, at)
        if not chosen:
            return None
        return Offer(
            queue=q.config.name, customer=q.config.customer, caller=entry.id, agents=tuple(chosen)
        )

    def _round_over(self, q: Queue, entry: Caller) -> bool:
        """Every agent that could serve ``entry`` let its ring go unanswered this round."""
        return all(
            member.number in entry.tried
            for member in q.config.agents
            if self.agents.state_of(member.number) in _SERVING and member.has(entry.skills)
        )

    def _ring(self, q: Queue, entry: Caller, member: QueueAgent, now: float, at: datetime) -> None:
        number = member.number
        self._change(number, AgentEvent.RING, now, at)
        deadline = now + q.config.ring_timeout_of(member)
        self._rings[number] = _Ring(queue=q, caller=entry, since=now, deadline=deadline)
        entry.ringing.add(number)
        q.last_rung = number
        self._arm(deadline, "ring", number)
        self._events.append(
            AgentRung(
                queue=q.config.name,
                customer=q.config.customer,
                caller=entry.id,
                now=now,
                at=at,
                agent=number,
                wait=now - entry.joined,
                position=q.position(entry),
            )
        )

    def _no_answer(self, agent: str, reason: str, now: float, at: datetime) -> None:
        ring = self._rings.pop(agent)
        ring.caller.ringing.discard(agent)
        ring.caller.tried.add(agent)
        self._change(agent, AgentEvent.NO_ANSWER, now, at)
        self._events.append(
            RingNoAnswer(
                queue=ring.queue.config.name,
                customer=ring.queue.config.customer,
                caller=ring.caller.id,
                now=now,
                at=at,
                agent=agent,
                wait=now - ring.caller.joined,
                ring=now - ring.since,
                reason=reason,
            )
        )

    def _cancel_rings(self, entry: Caller, q: Queue, reason: str, now: float, at: datetime) -> None:
        for agent in sorted(entry.ringing):
            del self._rings[agent]
            self._change(agent, AgentEvent.RING_CANCELLED, now, at)
            self._events.append(
                RingCancelled(
                    queue=q.config.name,
                    customer=q.config.customer,
                    caller=entry.id,
                    now=now,
                    at=at,
                    agent=agent,
                    reason=reason,
                )
            )
        entry.ringing.clear()

    def _gone(self, caller: str, kind: str, now: float, at: datetime, reason: str = "") -> bool:
        q = self._callers.pop(caller, None)
        if q is None:
            return False
        entry = q.callers[caller]
        self._cancel_rings(entry, q, kind, now, at)
        position = q.remove(entry)
        name, customer, wait = q.config.name, q.config.customer, now - entry.joined
        event: CallerAbandoned | CallerLeft | CallerTimedOut
        if kind == "abandon":
            event = CallerAbandoned(
                queue=name,
                customer=customer,
                caller=caller,
                now=now,
                at=at,
                wait=wait,
                position=position,
            )
        elif kind == "leave":
            event = CallerLeft(
                queue=name,
                customer=customer,
                caller=caller,
                now=now,
                at=at,
                wait=wait,
                position=position,
                reason=reason,
            )
        else:
            event = CallerTimedOut(
                queue=name,
                customer=customer,
                caller=caller,
                now=now,
                at=at,
                wait=wait,
                position=position,
            )
        self._events.append(event)
        return True

    def _refused(self, q: Queue, caller: str, reason: str, now: float, at: datetime) -> None:
        self._events.append(
            CallerRefused(
                queue=q.config.name,
                customer=q.config.customer,
                caller=caller,
                now=now,
                at=at,
                reason=reason,
            )
        )

    def _change(
        self, agent: str, event: AgentEvent, now: float, at: datetime, reason: str | None = None
    ) -> AgentStateChanged:
        changed = self.agents.change(agent, event, now, at, reason)
        self._noted(changed)
        return changed

    def _noted(self, changed: AgentStateChanged) -> None:
        """Keep the free set and the wrap-up deadlines in step with an agent's change."""
        if changed.state is AgentState.AVAILABLE:
            self._free.add(changed.agent)
        else:
            self._free.discard(changed.agent)
        if changed.state is not AgentState.WRAP_UP:
            self._wraps.pop(changed.agent, None)
        self._events.append(changed)

    def _arm(self, when: float, kind: str, whose: str) -> None:
        heapq.heappush(self._timers, (when, next(self._sequence), kind, whose))

    def _live(self, timer: tuple[float, int, str, str]) -> bool:
        """Whether a timer still means something (its subject may have moved on)."""
        when, _, kind, whose = timer
        if kind == "ring":
            ring = self._rings.get(whose)
            return ring is not None and ring.deadline == when
        if kind == "wrap_up":
            return self._wraps.get(whose) == when
        q = self._callers.get(whose)
        if q is None:
            return False
        entry = q.callers[whose]
        return (entry.deadline if kind == "max_wait" else entry.not_before) == when


def _first_key(q: Queue) -> tuple[int, int]:
    return q.first().key
