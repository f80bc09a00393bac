"""Queue and agent statistics for a period, from the queue event log and the CDRs (pure).

Every figure comes from the queue event log but the talk times: given the CDRs' queue calls
(``talks``), each call's talk is its CDR's, the agent's leg from answer to end
(``callserver.queues.talk_check``: the source of truth for talk, checked against the log's).

The figures (every time in seconds; the period is [since, until), UTC instants):

Per queue, counting the queue's caller events whose ``at`` is in the period:
- ``offered``: ``join`` events (callers who entered the queue);
- ``answered``, ``abandoned``, ``timed_out``, ``left``: the waits that ended by an agent's
  answer, the caller hanging up, the queue's maximum wait, the caller's leave key;
- ``refused``: callers turned away (``full`` and ``no_agents``); ``transferred``: answered
  calls the agent transferred;
- ``abandon_wait_average`` = sum of the abandons' waits / abandoned; ``abandon_wait_max``;
  ``abandoned_within_5``/``_10``/``_30``: abandons whose wait was at most 5, 10, 30 s;
- ``service_level`` = 100 * answered_within / (answered + abandoned + timed_out + left
  + callbacks_requested), where ``answered_within`` counts the answers whose wait was at
  most ``service_level_seconds`` (default 20): the share of the waits that ended in the
  period that ended in a quick answer;
- ``average_speed_of_answer`` = sum of the answered waits / answered;
- ``average_handle_time`` = (talk_time + wrapup_time) / handled, where ``handled`` counts the
  agents' ``call_end`` events of the queue in the period, ``talk_time`` the agents' time in
  the queue's calls (``call_start`` → ``call_end``) and ``wrapup_time`` their wrap-up after
  them (``wrapup_start`` → ``wrapup_end``), both cut to the period;
- ``longest_wait``: the longest wait that ended in the period (answered, abandoned, timed out,
  left, or a callback requested);
- ``callbacks_requested``, ``callbacks_answered``, ``callbacks_dropped``: callback requests
  made (a live wait that ended, so in the service level's waits), answered by their number
  (talking with an agent), given up.

Per agent (times cut to the period, see ``callserver.queues.agent_time``):
- ``calls``: the agent's ``call_end`` events in the period;
- ``logged_in``, ``talk_time``, ``wrapup_time``; ``pause_time`` and ``pause_by_reason``;
- ``occupancy`` = 100 * (talk_time + wrapup_time) / (logged_in - pause_time): the share of the
  time the agent was available to the queues that it spent on calls;
- ``rings``: the ``ring`` events of the agent's phone in the period; ``ring_no_answer``: those
  it let ring out or refused (``ring_noanswer``: its ring timeout passed, or its phone was
  busy, declined or unreachable); ``rings_cancelled``: those stopped before it answered
  because another agent answered first (``ring_all``) or the caller left (``ring_cancelled``).
  A ring the agent answered is one of its ``calls``.

A figure with nothing to divide by (no answers for the average speed of answer) is None.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime

from callserver.queues.agent_time import AgentTime, agent_times
from callserver.queues.records import (
    CALLER_EVENTS,
    WAIT_ENDS,
    QueueEventKind,
    QueueLogRecord,
)
from callserver.queues.talk_check import QueueTalk, TalkCheck, apply_talks

__all__ = [
    "ABANDON_MARKS",
    "DEFAULT_SERVICE_LEVEL",
    "AgentFigures",
    "QueueFigures",
    "QueueStatistics",
    "queue_statistics",
]

K = QueueEventKind
_RINGS = frozenset({K.RING, K.RING_NOANSWER, K.RING_CANCELLED})
DEFAULT_SERVICE_LEVEL = 20.0
ABANDON_MARKS = (5, 10, 30)


@dataclass(frozen=True, slots=True, kw_only=True)
class QueueFigures:
    """One queue's figures for the period (the module docstring gives each formula)."""

    customer: str
    queue: str
    offered: int
    answered: int
    abandoned: int
    timed_out: int
    left: int
    refused: int
    transferred: int
    answered_within: int
    service_level: float | None
    average_speed_of_answer: float | None
    handled: int
    talk_time: float
    wrapup_time: float
    average_handle_time: float | None
    abandon_wait_average: float | None
    abandon_wait_max: float | None
    abandoned_within_5: int
    abandoned_within_10: int
    abandoned_within_30: int
    longest_wait: float | None
    callbacks_requested: int = 0
    callbacks_answered: int = 0
    callbacks_dropped: int = 0


@dataclass(frozen=True, slots=True, kw_only=True)
class AgentFigures:
    """One agent's figures for the period (the module docstring gives each formula)."""

    customer: str
    agent: str
    calls: int
    logged_in: float
    talk_time: float
    wrapup_time: float
    pause_time: float
    pause_by_reason: tuple[tuple[str, float], ...]
    occupancy: float | None
    rings: int
    ring_no_answer: int
    rings_cancelled: int


@dataclass(frozen=True, slots=True, kw_only=True)
class QueueStatistics:
    """The queues' and agents' figures of one period, sorted by customer then name."""

    since: datetime
    until: datetime
    service_level_seconds: float
    queues: tuple[QueueFigures, ...]
    agents: tuple[AgentFigures, ...]
    talk_check: TalkCheck | None = None  # None: no CDRs given, the log's talk times


@dataclass(slots=True)
class _Waits:
    counts: dict[QueueEventKind, int] = field(default_factory=dict)
    answered: list[float] = field(default_factory=list)
    abandoned: list[float] = field(default_factory=list)
    ended: list[float] = field(default_factory=list)

    def add(self, record: QueueLogRecord) -> None:
        self.counts[record.kind] = self.counts.get(record.kind, 0) + 1
        if record.kind not in WAIT_ENDS or record.wait is None:
            return
        self.ended.append(record.wait)
        if record.kind is K.ANSWER:
            self.answered.append(record.wait)
        elif record.kind is K.ABANDON:
            self.abandoned.append(record.wait)

    def count(self, *kinds: QueueEventKind) -> int:
        return sum(self.counts.get(kind, 0) for kind in kinds)


def queue_statistics(
    records: Iterable[QueueLogRecord],
    *,
    since: datetime,
    until: datetime,
    customer: str | None = None,
    service_level: float = DEFAULT_SERVICE_LEVEL,
    talks: Iterable[QueueTalk] | None = None,
) -> QueueStatistics:
    """The figures of [since, until) from the queue log's records (module docstring).

    Args:
        records: The log's records (put in time order here); those before ``since`` tell the
            agents' state at its start, those from ``until`` on are ignored.
        since: The period's first instant (aware).
        until: The first instant after the period (aware).
        customer: Only this customer's queues and agents (None: every customer).
        service_level: The answer time, in seconds, of the service level.
        talks: The queue calls of the CDRs, whose talk times replace the log's (None: the
            log's are used).

    Raises:
        ValueError: a naive ``since``/``until``, ``until`` not after ``since``, or a negative
            ``service_level``.
    """
    if since.tzinfo is None or until.tzinfo is None:
        raise ValueError("the period's since and until need a time zone")
    if until <= since:
        raise ValueError(f"the period is empty: until {until} is not after since {since}")
    if service_level < 0:
        raise ValueError(f"the service level's answer time {service_level} is negative")
    chosen = sorted((r for r in records if customer is None or r.customer == customer), key=_at)
    waits: dict[tuple[str, str], _Waits] = {}
    rings: dict[tuple[str, str], dict[QueueEventKind, int]] = {}
    for record in chosen:
        if record.kind in CALLER_EVENTS and since <= record.at < until and record.queue:
            waits.setdefault((record.customer, record.queue), _Waits()).add(record)
            if record.kind in _RINGS and record.agent:
                counts = rings.setdefault((record.customer, record.agent), {})
                counts[record.kind] = counts.get(record.kind, 0) + 1
    agents = agent_times(chosen, since, until)
    check = None
    if talks is not None:
        mine = (t for t in talks if customer is None or t.customer == customer)
        check = apply_talks(agents, mine, since, until)
    queues = sorted(set(waits) | set(_handled_queues(agents)))
    return QueueStatistics(
        since=since,
        until=until,
        service_level_seconds=service_level,
        queues=tuple(
            _queue(key, waits.get(key, _Waits()), agents, service_level) for key in queues
        ),
        agents=tuple(
            _agent(a, rings.get((a.customer, a.agent), {}))
            for a in agents
            if a.logged_in or a.calls or (a.customer, a.agent) in rings
        ),
        talk_check=check,
    )


def _at(record: QueueLogRecord) -> datetime:
    return record.at


def _handled_queues(agents: list[AgentTime]) -> Iterable[tuple[str, str]]:
    """The queues whose calls the agents ended or spent time on in the period."""
    for a in agents:
        for totals in (a.calls_by_queue, a.talk_by_queue, a.wrapup_by_queue):
            yield from ((a.customer, queue) for queue, value in totals.items() if value and queue)


def _queue(
    key: tuple[str, str], waits: _Waits, agents: list[AgentTime], threshold: float
) -> QueueFigures:
    customer, queue = key
    mine = [a for a in agents if a.customer == customer]
    handled = sum(a.calls_by_queue.get(queue, 0) for a in mine)
    talk = sum(a.talk_by_queue.get(queue, 0.0) for a in mine)
    wrapup = sum(a.wrapup_by_queue.get(queue, 0.0) for a in mine)
    within = sum(1 for wait in waits.answered if wait <= threshold)
    ended = len(waits.ended)
    abandons = waits.abandoned
    return QueueFigures(
        customer=customer,
        queue=queue,
        offered=waits.count(K.JOIN),
        answered=len(waits.answered),
        abandoned=len(abandons),
        timed_out=waits.count(K.TIMEOUT),
        left=waits.count(K.LEAVE),
        refused=waits.count(K.FULL, K.NO_AGENTS),
        transferred=waits.count(K.TRANSFER),
        answered_within=within,
        service_level=_ratio(100.0 * within, ended),
        average_speed_of_answer=_ratio(sum(waits.answered), len(waits.answered)),
        handled=handled,
        talk_time=_ms(talk),
        wrapup_time=_ms(wrapup),
        average_handle_time=_ratio(talk + wrapup, handled),
        abandon_wait_average=_ratio(sum(abandons), len(abandons)),
        abandon_wait_max=max(abandons, default=None),
        abandoned_within_5=sum(1 for wait in abandons if wait <= ABANDON_MARKS[0]),
        abandoned_within_10=sum(1 for wait in abandons if wait <= ABANDON_MARKS[1]),
        abandoned_within_30=sum(1 for wait in abandons if wait <= ABANDON_MARKS[2]),
        longest_wait=max(waits.ended, default=None),
        callbacks_requested=waits.count(K.CALLBACK_REQUESTED),
        callbacks_answered=waits.count(K.CALLBACK_ANSWERED),
        callbacks_dropped=waits.count(K.CALLBACK_DROPPED),
    )


def _agent(time: AgentTime, rings: dict[QueueEventKind, int]) -> AgentFigures:
    talk = sum(time.talk_by_queue.values())
    wrapup = sum(time.wrapup_by_queue.values())
    pause = sum(time.pause_by_reason.values())
    return AgentFigures(
        customer=time.customer,
        agent=time.agent,
        calls=time.calls,
        logged_in=_ms(time.logged_in),
        talk_time=_ms(talk),
        wrapup_time=_ms(wrapup),
        pause_time=_ms(pause),
        pause_by_reason=tuple((r, _ms(s)) for r, s in sorted(time.pause_by_reason.items())),
        occupancy=_ratio(100.0 * (talk + wrapup), time.logged_in - pause),
        rings=rings.get(K.RING, 0),
        ring_no_answer=rings.get(K.RING_NOANSWER, 0),
        rings_cancelled=rings.get(K.RING_CANCELLED, 0),
    )


def _ratio(numerator: float, denominator: float) -> float | None:
    """numerator / denominator to the thousandth, None when there is nothing to divide by."""
    return round(numerator / denominator, 3) if denominator > 0 else None


def _ms(seconds: float) -> float:
    return round(seconds, 3)
