"""The half of the call centre that rings agents: free agents, offers, answers, timeouts.

Theory of operation
-------------------
:class:`Ringing` keeps what ringing needs: the free agents (``AVAILABLE``, and their phone on
no other call: ``phone_busy``), the ring of each ringing agent (its caller, since, deadline),
the queue call of each talking agent, the wrap-up deadlines, and one heap of deadlines read
lazily (an entry whose subject moved on is dropped when met). :class:`CallCentre`
(``centre``) adds the callers' and agents' own inputs; ``centre``'s docstring says how offers
are made and how a caller's rounds keep an agent from being rung again and again.

Every agent change goes through ``Agents.change`` (the one transition table) and
:meth:`Ringing._noted`, which keeps the free set and the wrap-up deadlines in step.
"""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from types import MappingProxyType

from callserver.queues.agents import Agent, AgentEvent, Agents, AgentState, AgentStateChanged
from callserver.queues.events import (
    AgentRung,
    CallbackDialled,
    CallerAnswered,
    CentreEvent,
    Offer,
    RingCancelled,
    RingNoAnswer,
)
from callserver.queues.queue import Caller, Queue, QueueAgent, QueueConfig, Strategy, choose

__all__ = ["ON_A_CALL", "SERVING", "Ringing"]

SERVING = frozenset(
    {AgentState.AVAILABLE, AgentState.RINGING, AgentState.IN_CALL, AgentState.WRAP_UP}
)
"""The states of an agent that serves its queues (logged in, not paused)."""
ON_A_CALL = frozenset({AgentState.RINGING, AgentState.IN_CALL})
"""The states in which an agent cannot log out: its phone rings for a caller, or it talks."""


@dataclass(slots=True, kw_only=True)
class _Ring:
    queue: Queue
    caller: Caller
    since: float
    deadline: float


@dataclass(slots=True, kw_only=True)
class _Wrap:
    deadline: float
    queue: Queue
    caller: str


@dataclass(slots=True, kw_only=True)
class _Talk:
    queue: Queue
    caller: str
    since: float
    wait: float


def _never(number: str) -> bool:
    return False


class Ringing:
    """Agents offered, rung and answered (module docstring); the base of ``CallCentre``.

    Args:
        agents: the agents and their licences.
        phone_busy: whether an agent's phone is on a call the centre did not give it (a
            call of its own): such an agent is not offered.
    """

    def __init__(self, agents: Agents, phone_busy: Callable[[str], bool] = _never) -> None:
        self.agents = agents
        self._phone_busy = phone_busy
        self._queues: dict[tuple[str, str], Queue] = {}
        self._given: dict[tuple[str, str], QueueConfig] = {}  # each queue as define() was given it
        self._callers: dict[str, Queue] = {}
        self._free: set[str] = set()  # AVAILABLE agents
        self._rings: dict[str, _Ring] = {}
        self._talks: dict[str, _Talk] = {}
        self._wraps: dict[str, _Wrap] = {}  # agent: its wrap-up's end and call
        self._leaving: dict[str, str] = {}  # agent: why it is logged out when its call ends
        self._dialling: dict[str, tuple[Queue, Caller]] = {}  # agent: the callback it calls
        self._timers: list[tuple[float, int, str, str]] = []  # (when, n, kind, whose)
        self._sequence = itertools.count()
        self._events: list[CentreEvent] = []
        for agent in agents:
            if agent.state is AgentState.AVAILABLE:
                self._free.add(agent.number)

    @property
    def queues(self) -> Mapping[tuple[str, str], Queue]:
        """The defined queues by ``(customer, name)``, read-only (the views of the queues)."""
        return MappingProxyType(self._queues)

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
            fitting: dict[frozenset[str], list[tuple[QueueAgent, Agent]]] = {}
            for entry in q.waiting() if free else ():
                fits = fitting.get(entry.skills)
                if fits is None:
                    fits = fitting[entry.skills] = [p for p in free if p[0].has(entry.skills)]
                if not fits:
                    continue  # no free agent has these skills: the same for the next callers
                offer = self._offer(q, entry, free, fits, now, at)
                if offer is not None:
                    out.append(offer)
                    fitting.clear()  # agents left the free list
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
        q, entry = ring.queue, ring.caller
        entry.ringing.discard(agent)
        position = q.remove(entry)
        del self._callers[caller]
        q.answered[agent] += 1
        wait = now - entry.joined
        self._talks[agent] = _Talk(queue=q, caller=caller, since=now, wait=wait)
        name, customer = q.config.name, q.config.customer
        if entry.callback is None:
            self._events.append(
                CallerAnswered(
                    queue=name,
                    customer=customer,
                    caller=caller,
                    now=now,
                    at=at,
                    agent=agent,
                    wait=wait,
                    position=position,
                )
            )
        else:  # the request's number is called now: the agent's call is that call
            entry.attempts += 1
            self._dialling[agent] = (q, entry)
            self._events.append(
                CallbackDialled(
                    queue=name,
                    customer=customer,
                    caller=caller,
                    now=now,
                    at=at,
                    agent=agent,
                    number=entry.callback.number,
                    attempt=entry.attempts,
                    wait=wait,
                    position=position,
                )
            )
        self._change(agent, AgentEvent.ANSWER, now, at, call=(q, caller))
        self._cancel_rings(entry, q, "answered_elsewhere", now, at)
        return True

    def ring_failed(self, caller: str, agent: str, reason: str, now: float, at: datetime) -> bool:
        """``agent``'s phone refused ``caller``'s ring (busy, declined, unreachable): as a
        ring timeout. False when it was not ringing for ``caller``."""
        ring = self._rings.get(agent)
        if ring is None or ring.caller.id != caller:
            return False
        self._no_answer(agent, reason, now, at)
        return True

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
        fits: list[tuple[QueueAgent, Agent]],
        now: float,
        at: datetime,
    ) -> Offer | None:
        """Ring for ``entry`` whom the strategy picks of ``fits`` (the ``free`` agents with
        its skills) it has not tried this round, taking them out of ``free``."""
        if entry.not_before > now or (entry.ringing and q.config.strategy is not Strategy.RING_ALL):
            return None
        candidates = [(m, a) for m, a in fits if a.number not in entry.tried]
        if not candidates and not entry.ringing and self._round_over(q, entry):
            entry.tried.clear()
            entry.not_before = now + q.config.retry
            self._arm(entry.not_before, "retry", entry.id)
            return None
        chosen = choose(q, entry, candidates)
        if not chosen:
            return None
        picked = set(chosen)
        free[:] = [pair for pair in free if pair[0].number not in picked]
        for member in (m for m, _ in candidates if m.number in picked):
            self._ring(q, entry, member, now, at)
        return Offer(
            queue=q.config.name,
            customer=q.config.customer,
            caller=entry.id,
            agents=tuple(chosen),
            callback=entry.callback,
        )

    def _round_over(self, q: Queue, entry: Caller) -> bool:
        """Every agent that could serve ``entry`` let its ring go unanswered this round."""
        return all(
            member.number in entry.tried
            for member in q.config.agents
            if self.agents.state_of(member.number) in SERVING and member.has(entry.skills)
        )

    def _ring(self, q: Queue, entry: Caller, member: QueueAgent, now: float, at: datetime) -> None:
        number = member.number
        self._change(number, AgentEvent.RING, now, at, call=(q, entry.id))
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
        self._change(agent, AgentEvent.NO_ANSWER, now, at, call=(ring.queue, ring.caller.id))
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
        self._leave_if_due(agent, now, at)

    def _cancel_rings(self, entry: Caller, q: Queue, reason: str, now: float, at: datetime) -> None:
        for agent in sorted(entry.ringing):
            del self._rings[agent]
            self._change(agent, AgentEvent.RING_CANCELLED, now, at, call=(q, entry.id))
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
            self._leave_if_due(agent, now, at)
        entry.ringing.clear()

    def _change(
        self,
        agent: str,
        event: AgentEvent,
        now: float,
        at: datetime,
        reason: str | None = None,
        call: tuple[Queue, str] | None = None,
    ) -> AgentStateChanged:
        """Put ``event`` through the agents' table; the change names the queue call it
        belongs to (``call``, else the call the agent is wrapping up)."""
        wrap = self._wraps.get(agent)
        if call is None and wrap is not None:
            call = (wrap.queue, wrap.caller)
        named = None if call is None else (call[0].config.name, call[1])
        changed = self.agents.change(agent, event, now, at, reason, named)
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
        if changed.state is AgentState.LOGGED_OUT:
            self._leaving.pop(changed.agent, None)
        self._events.append(changed)

    def _leave_if_due(self, agent: str, now: float, at: datetime) -> None:
        """Log out an agent whose logout waited for its call (``departures``), once it is on
        none: after its ring, or at its call's end (its wrap-up cut short)."""
        reason = self._leaving.get(agent)
        if reason is not None and self.agents.state_of(agent) not in ON_A_CALL:
            self._change(agent, AgentEvent.LOGOUT, now, at, reason)

    def _wrap_up(self, agent: str, q: Queue, caller: str, deadline: float) -> None:
        """``agent`` wraps up ``caller``'s call of ``q`` until ``deadline``."""
        self._wraps[agent] = _Wrap(deadline=deadline, queue=q, caller=caller)
        self._arm(deadline, "wrap_up", agent)

    def _arm(self, when: float, kind: str, whose: str) -> None:
        heapq.heappush(self._timers, (when, next(self._sequence), kind, whose))


def _first_key(q: Queue) -> tuple[int, int]:
    return q.first().key
