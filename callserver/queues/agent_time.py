"""An agent's time, replayed from the agent events of the queue log and cut to a period.

Theory of operation
-------------------
Each agent's events, in time order, open and close four kinds of interval: logged in
(``login`` → ``logout``), paused (``pause`` → ``unpause``, with the pause's reason), in a call
(``call_start`` → ``call_end``, with the call's queue) and wrap-up (``wrapup_start`` →
``wrapup_end``, with the queue). A ``logout`` closes whatever the agent still had open.
An interval is cut to the period: only its part between ``since`` and ``until`` counts; one
still open at the end of the records runs to ``until``.

The records may begin after the agent's state began (a login on a day whose file was not
read). An agent's first event tells what was open before it: any event but ``login`` means
logged in, ``unpause`` a pause (its reason from the unpause, else ``unknown``), ``call_end``
a call, ``wrapup_end`` a wrap-up; each is taken as open since the start of the period.
Later events that close nothing open (a second ``unpause``) change nothing. A pause without
a reason code (the agent dialled ``*47#``) is counted under ``-``.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime

from callserver.queues.records import AGENT_EVENTS, QueueEventKind, QueueLogRecord

__all__ = ["AgentTime", "agent_times"]

K = QueueEventKind
UNKNOWN_REASON = "unknown"
NO_REASON = "-"  # a pause the agent made without a reason code (*47#)
_CLOSES = {K.UNPAUSE: "pause", K.CALL_END: "call", K.WRAPUP_END: "wrap"}
_OPENS = {K.PAUSE: "pause", K.CALL_START: "call", K.WRAPUP_START: "wrap"}


@dataclass(slots=True)
class AgentTime:
    """One agent's seconds in the period, and the calls it ended there."""

    customer: str
    agent: str
    logged_in: float = 0.0
    calls: int = 0
    pause_by_reason: dict[str, float] = field(default_factory=dict)
    talk_by_queue: dict[str, float] = field(default_factory=dict)
    wrapup_by_queue: dict[str, float] = field(default_factory=dict)
    calls_by_queue: dict[str, int] = field(default_factory=dict)
    talk_by_call: dict[str, tuple[str, float]] = field(default_factory=dict)  # Call-ID: (queue, s)


_Span = tuple[datetime, str, str]  # its start, its tag (reason or queue), its call's Call-ID


@dataclass(slots=True)
class _Open:
    """The intervals an agent has open: their start, their tag (reason or queue) and, for a
    call, its Call-ID."""

    login: datetime | None = None
    spans: dict[str, _Span] = field(default_factory=dict)
    seen: bool = False


class _Replay:
    def __init__(self, since: datetime, until: datetime) -> None:
        self.since, self.until = since, until
        self.times: dict[tuple[str, str], AgentTime] = {}
        self.open: dict[tuple[str, str], _Open] = defaultdict(_Open)

    def apply(self, record: QueueLogRecord) -> None:
        assert record.agent is not None
        key = (record.customer, record.agent)
        time = self.times.setdefault(key, AgentTime(record.customer, record.agent))
        state = self.open[key]
        if not state.seen:
            state.seen = True
            self._before_first(record, state)
        if record.kind is K.LOGIN:
            state.login = state.login or record.at
        elif record.kind is K.LOGOUT:
            self._close_all(time, state, record.at)
        else:
            self._span(time, state, record)

    def finish(self) -> list[AgentTime]:
        for key, state in self.open.items():
            self._close_all(self.times[key], state, self.until)
        return [self.times[key] for key in sorted(self.times)]

    def _before_first(self, record: QueueLogRecord, state: _Open) -> None:
        start = min(self.since, record.at)
        if record.kind is not K.LOGIN:
            state.login = start
        span = _CLOSES.get(record.kind)
        if span is not None:
            tag = record.reason or UNKNOWN_REASON if span == "pause" else record.queue or ""
            state.spans[span] = (start, tag, record.call_id or "")

    def _span(self, time: AgentTime, state: _Open, record: QueueLogRecord) -> None:
        if state.login is None:  # an event after a logout without a login: logged in now
            state.login = record.at
        opens = _OPENS.get(record.kind)
        if opens is not None and opens not in state.spans:
            tag = record.reason or NO_REASON if opens == "pause" else record.queue or ""
            state.spans[opens] = (record.at, tag, record.call_id or "")
        closes = _CLOSES.get(record.kind)
        if closes is not None and closes in state.spans:
            self._close(time, closes, state.spans.pop(closes), record.at)
        if record.kind is K.CALL_END and self.since <= record.at < self.until:
            time.calls += 1
            queue = record.queue or ""
            time.calls_by_queue[queue] = time.calls_by_queue.get(queue, 0) + 1

    def _close_all(self, time: AgentTime, state: _Open, end: datetime) -> None:
        for name, span in state.spans.items():
            self._close(time, name, span, end)
        state.spans.clear()
        if state.login is not None:
            time.logged_in += self._cut(state.login, end)
            state.login = None

    def _close(self, time: AgentTime, name: str, span: _Span, end: datetime) -> None:
        start, tag, call_id = span
        totals = {
            "pause": time.pause_by_reason,
            "call": time.talk_by_queue,
            "wrap": time.wrapup_by_queue,
        }[name]
        seconds = self._cut(start, end)
        totals[tag] = totals.get(tag, 0.0) + seconds
        if name == "call" and call_id:
            before = time.talk_by_call.get(call_id, (tag, 0.0))[1]
            time.talk_by_call[call_id] = (tag, before + seconds)

    def _cut(self, start: datetime, end: datetime) -> float:
        """Seconds of [start, end) inside the period."""
        return max(0.0, (min(end, self.until) - max(start, self.since)).total_seconds())


def agent_times(
    records: Iterable[QueueLogRecord], since: datetime, until: datetime
) -> list[AgentTime]:
    """Every agent's time in [since, until) from ``records`` in time order (module docstring).

    Agents with no event before ``until`` are not listed; one whose time all falls outside the
    period is, with zeros.
    """
    replay = _Replay(since, until)
    for record in records:
        if record.kind in AGENT_EVENTS and record.at < until:
            replay.apply(record)
    return replay.finish()
