"""Queue calls' talk time from the CDRs, checked against the queue event log's.

Theory of operation
-------------------
Two records measure how long an agent talked to a queue caller: the queue event log
(``call_start`` when the centre was told of the answer, ``call_end`` when the bridge ended)
and the CDRs, where the agent's own leg (leg ``b`` linked to the caller's call, answered by
the agent's phone) runs from its answer to its end. The CDR is the source of truth for talk
time: it is the call path's own measure of the agent's connected call, the one billing and
the customer's CDR export show. The queue log remains the source of which calls there were
(``handled``, ``calls``: its ``call_end`` lines) and of every other span (logged in, wrap-up,
pause), which the CDRs know nothing of.

:func:`apply_talks` replaces, call by call, the log's talk (``AgentTime.talk_by_call``, cut to
the period) by its CDR's (:class:`QueueTalk`, cut the same way), keyed by the caller's
Call-ID, which is the log's ``call_id`` and the caller's CDR ``call_id``. A call the CDRs do
not hold (not yet ingested, or lost) keeps the log's talk. :class:`TalkCheck` says how many
calls took which source and lists the calls whose two measures differ by more than
:data:`TOLERANCE` seconds, and the CDRs of queue calls the log does not have.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from callserver.queues.agent_time import AgentTime

__all__ = ["TOLERANCE", "QueueTalk", "TalkCheck", "TalkDifference", "apply_talks"]

TOLERANCE = 1.0
"""Seconds by which the two measures of one call may differ (signalling between the answer
and the centre hearing of it) before the check names the call."""


@dataclass(frozen=True, slots=True, kw_only=True)
class QueueTalk:
    """A queue call as the CDRs have it: the caller's call ``call_id`` waited in ``queue``
    (``customer``'s) and ``agent``'s leg was answered at ``answered`` and ended at
    ``ended``."""

    call_id: str
    customer: str
    queue: str
    agent: str
    answered: datetime
    ended: datetime


@dataclass(frozen=True, slots=True, kw_only=True)
class TalkDifference:
    """One call whose talk (seconds, cut to the period) the CDRs and the log disagree on."""

    call_id: str
    customer: str
    queue: str
    agent: str
    cdr: float
    log: float


@dataclass(frozen=True, slots=True, kw_only=True)
class TalkCheck:
    """How the period's talk times were found: ``from_cdrs`` calls by their CDRs, ``log_only``
    calls by the log alone (no CDR); ``differing`` calls beyond the tolerance; ``cdr_only``
    the Call-IDs of queue calls ended in the period that the log lacks (not counted)."""

    from_cdrs: int
    log_only: int
    differing: tuple[TalkDifference, ...]
    cdr_only: tuple[str, ...]


def apply_talks(
    agents: list[AgentTime], talks: Iterable[QueueTalk], since: datetime, until: datetime
) -> TalkCheck:
    """Put the CDRs' talk of each call in ``agents``' talk totals (module docstring)."""
    by_call = {talk.call_id: talk for talk in talks}
    used: set[str] = set()
    log_only, differing = 0, []
    for time in agents:
        for call_id, (queue, logged) in time.talk_by_call.items():
            talk = by_call.get(call_id)
            if talk is None or talk.agent != time.agent:
                log_only += 1
                continue
            used.add(call_id)
            measured = _cut(talk.answered, talk.ended, since, until)
            time.talk_by_queue[queue] = time.talk_by_queue.get(queue, 0.0) + measured - logged
            time.talk_by_call[call_id] = (queue, measured)
            if abs(measured - logged) > TOLERANCE:
                differing.append(
                    TalkDifference(
                        call_id=call_id,
                        customer=time.customer,
                        queue=queue,
                        agent=time.agent,
                        cdr=round(measured, 3),
                        log=round(logged, 3),
                    )
                )
    cdr_only = sorted(
        talk.call_id
        for talk in by_call.values()
        if talk.call_id not in used and since <= talk.ended < until
    )
    return TalkCheck(
        from_cdrs=len(used), log_only=log_only, differing=tuple(differing), cdr_only=tuple(cdr_only)
    )


def _cut(start: datetime, end: datetime, since: datetime, until: datetime) -> float:
    """Seconds of [start, end) inside [since, until)."""
    return max(0.0, (min(end, until) - max(start, since)).total_seconds())
