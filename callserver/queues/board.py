"""What a wallboard reads of the call centre now: each queue's callers and agents (pure).

:func:`queue_now` sums one queue up at ``now`` (monotonic, the centre's clock): the callers
waiting on a live call, the callback requests keeping a place, the longest live wait, and its
agents by state (every ``AgentState`` named, 0 included, so a board's columns stay put).
:func:`callers_now` lists its entries in their order with their positions and waits. A queue
the centre has not defined yet (no caller has run its step since the start) is read from its
settings alone: nobody waits in it. Both are a pass over the queue's entries and its agents:
no sorting, nothing kept.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from callserver.queues.agents import Agents, AgentState
from callserver.queues.queue import Queue, QueueConfig

__all__ = ["QueueNow", "WaitingCaller", "agent_key", "callers_now", "queue_now"]


@dataclass(frozen=True, slots=True, kw_only=True)
class QueueNow:
    """One queue at a moment: ``waiting`` callers on live calls, ``callbacks`` requests in
    their places, the ``longest_wait`` of the live callers (seconds; 0 with none) and its
    ``agents`` by state value."""

    config: QueueConfig
    waiting: int
    callbacks: int
    longest_wait: float
    agents: Mapping[str, int]


@dataclass(frozen=True, slots=True, kw_only=True)
class WaitingCaller:
    """An entry of a queue: the caller's id (its Call-ID), its number (a callback request's:
    the number to call), its 1-based position, its wait so far (seconds) and whether it is a
    callback request."""

    call_id: str
    number: str | None
    position: int
    waiting: float
    callback: bool


def agent_key(number: str) -> str:
    """An agent's number as the centre keys it: E.164 with ``+``."""
    return number if number.startswith("+") else f"+{number}"


def queue_now(queue: Queue | None, config: QueueConfig, agents: Agents, now: float) -> QueueNow:
    """``queue`` (None: not defined yet, ``config`` its settings) at ``now``."""
    states = dict.fromkeys((state.value for state in AgentState), 0)
    for member in config.agents:
        states[agents.state_of(agent_key(member.number)).value] += 1
    live, callbacks, first = 0, 0, now
    for entry in () if queue is None else queue.callers.values():
        if entry.callback is not None:
            callbacks += 1
            continue
        live += 1
        first = min(first, entry.joined)
    return QueueNow(
        config=config,
        waiting=live,
        callbacks=callbacks,
        longest_wait=round(max(0.0, now - first), 3),
        agents=states,
    )


def callers_now(queue: Queue | None, now: float) -> list[WaitingCaller]:
    """The entries of ``queue`` in their order at ``now`` (none when it is not defined)."""
    if queue is None:
        return []
    return [
        WaitingCaller(
            call_id=entry.id,
            number=entry.number if entry.callback is None else entry.callback.number,
            position=position,
            waiting=round(max(0.0, now - entry.joined), 3),
            callback=entry.callback is not None,
        )
        for position, entry in enumerate(queue.waiting(), start=1)
    ]
