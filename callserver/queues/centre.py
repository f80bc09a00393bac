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

A waiting caller may leave a callback request in its place (``callbacks``): the entry stays in
the queue with no live call and is offered to the agents like a caller.

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
from collections.abc import Iterable
from dataclasses import replace
from datetime import datetime

from callserver.queues.agents import Agent, AgentEvent, AgentState, AgentStateChanged, NoLicence
from callserver.queues.callbacks import Callbacks
from callserver.queues.departures import Departures
from callserver.queues.events import (
    CallerAbandoned,
    CallerJoined,
    CallerLeft,
    CallerRefused,
    CallerTimedOut,
    CentreEvent,
    Full,
    Joined,
    NoAgents,
    QueueCallEnded,
)
from callserver.queues.queue import Caller, Queue, QueueAgent, QueueConfig
from callserver.queues.ringing import SERVING

__all__ = ["CallCentre"]


class CallCentre(Callbacks, Departures):
    """The queues and agents of every customer (module docstring); built as ``Ringing``, with
    ``Callbacks`` (callback requests) and the reload's ``Departures``."""

    # -- queues and callers -------------------------------------------------------------

    def define(self, config: QueueConfig) -> None:
        """Add a queue or replace its settings (callers waiting in it stay); its agents'
        numbers are taken in E.164 with ``+`` (``38733100201`` is ``+38733100201``).

        Raises:
            UnknownAgent: an agent that is not a Centrex subscriber.
            ValueError: an agent that is a subscriber of another customer.
        """
        if self._given.get(config.key) == config:  # a plan's step gives it at every join
            return
        given, members = config, []
        for member in config.agents:
            agent = self.agents.get(member.number)
            if agent.customer != config.customer:
                raise ValueError(
                    f"queue {config.customer}/{config.name}: agent {member.number} is a "
                    f"subscriber of customer {agent.customer!r}"
                )
            members.append(replace(member, number=agent.number))
        config = replace(config, agents=tuple(members))
        queue = self._queues.get(config.key)
        if queue is None:
            self._queues[config.key] = Queue(config)
        else:
            queue.config = config
        self._given[config.key] = given

    def join(
        self,
        queue: tuple[str, str],
        caller: str,
        now: float,
        at: datetime,
        priority: int = 0,
        skills: Iterable[str] = (),
        number: str | None = None,
    ) -> Joined | Full | NoAgents:
        """Put ``caller`` (the call's id) in ``queue`` ``(customer, name)``: higher
        ``priority`` waits ahead; ``skills`` the agents must have; ``number`` the caller's
        telephone number, for the queue log.

        Raises:
            LookupError: no such queue.
            ValueError: the caller is already waiting.
        """
        q = self._queue(queue)
        if caller in self._callers:
            raise ValueError(f"caller {caller} is already waiting in a queue")
        required = frozenset(skills)
        if not any(self._logged_in(member, required) for member in q.config.agents):
            self._refused(q, caller, "no_agents", now, at, number)
            return NoAgents()
        limit = q.config.max_waiting
        if limit is not None and len(q) >= limit:
            self._refused(q, caller, "full", now, at, number)
            return Full(max_waiting=limit)
        entry = Caller(caller, priority, required, (-priority, next(self._sequence)), now, at)
        entry.number = number
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
                number=number,
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

    def waiting_counts(self) -> dict[tuple[str, str], int]:
        """How many callers wait in each queue now, by ``(customer, queue)``."""
        return {key: len(q.callers) for key, q in self._queues.items()}

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

    def call_ended(self, agent: str, now: float, at: datetime) -> bool:
        """The queue call ``agent`` answered ended (either side hung up): its wrap-up
        starts; a callback request it was still calling waits again (``callback_failed``).
        False when the agent was on no queue call."""
        talk = self._talks.pop(agent, None)
        if talk is None:
            return False
        self.callback_failed(agent, "agent_hung_up", now, at)  # a request still being dialled
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
        self._change(agent, AgentEvent.HANG_UP, now, at, call=(q, talk.caller))
        if wrap_up == 0:
            self._change(agent, AgentEvent.WRAP_UP_DONE, now, at, call=(q, talk.caller))
        else:
            self._wrap_up(agent, q, talk.caller, now + wrap_up)
        self._leave_if_due(agent, now, at)
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

    def pause(self, agent: str, reason: str | None, now: float, at: datetime) -> AgentStateChanged:
        """Pause ``agent`` with a reason code, or None for none (from available, wrap-up or
        paused).

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

    def restore(self, stored: Iterable[Agent], now: float, at: datetime) -> list[NoLicence]:
        """Take the stored agents back after a restart (``Agents.restore``); the changes are
        events like any other. The agents logged out for want of a licence are returned."""
        refused = []
        for result in self.agents.restore(stored, now, at):
            if isinstance(result, AgentStateChanged):
                self._noted(result)
            else:
                refused.append(result)
        for agent in self.agents:
            if agent.state is AgentState.AVAILABLE:
                self._free.add(agent.number)
        return refused

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
            if self.agents.state_of(member.number) in SERVING and member.has(skills)
        )

    def _gone(self, caller: str, kind: str, now: float, at: datetime, reason: str = "") -> bool:
        q = self._callers.get(caller)
        if q is None or q.callers[caller].callback is not None:
            return False  # not waiting, or a callback request: its call is over already
        del self._callers[caller]
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

    def _refused(
        self, q: Queue, caller: str, reason: str, now: float, at: datetime, number: str | None
    ) -> None:
        self._events.append(
            CallerRefused(
                queue=q.config.name,
                customer=q.config.customer,
                caller=caller,
                now=now,
                at=at,
                reason=reason,
                number=number,
            )
        )

    def _live(self, timer: tuple[float, int, str, str]) -> bool:
        """Whether a timer still means something (its subject may have moved on)."""
        when, _, kind, whose = timer
        if kind == "ring":
            ring = self._rings.get(whose)
            return ring is not None and ring.deadline == when
        if kind == "wrap_up":
            wrap = self._wraps.get(whose)
            return wrap is not None and wrap.deadline == when
        q = self._callers.get(whose)
        if q is None:
            return False
        entry = q.callers[whose]
        return (entry.deadline if kind == "max_wait" else entry.not_before) == when
