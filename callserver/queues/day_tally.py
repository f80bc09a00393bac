"""Each queue's figures since a moment (today's midnight), kept live from the queue log's records.

Theory of operation
-------------------
The wallboard asks every few seconds how each queue did today: offered, answered, abandoned
and the service level. Reading the day's event log for it would parse the whole day file at
every poll; :class:`DayTally` instead takes each record as the centre's driver writes it
(:meth:`DayTally.add`: O(1)) and once, at the first question, the records the log already
held from before the process started (:meth:`DayTally.seed`).

It keeps the records that count (``join`` and the ends of a wait, ``WAIT_ENDS``) of the last
:data:`WINDOW` (26 hours: today's midnight in any time zone, a day with a DST change
included, is inside it) as ``(at, kind, wait)`` per queue, and the counts since the moment
last asked for: :meth:`DayTally.figures` recounts only when that moment or the service
level's answer time changes (a new day, a reload), and each record added after it moves the
counts at once. So a poll costs a pass over the queues, not over the records.

The figures are the statistics' own (``queues.statistics``): ``answered`` and ``abandoned``
the waits that ended so, ``service_level`` = 100 x the answers within the answer time / the
waits that ended (answered, abandoned, timed out, left, callback requested), None with none
ended; ``callserver stats queues`` for the same period gives the same numbers.

No record is counted twice: the seed takes only the log's records from before ``started``
(the moment the tally began to be fed) and, of those, none the feed already gave (a wall
clock stepped back makes a fed record look older than ``started``: its id is kept aside).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from callserver.queues.records import WAIT_ENDS, QueueEventKind, QueueLogRecord

__all__ = ["WINDOW", "DayFigures", "DayTally"]

WINDOW = timedelta(hours=26)
K = QueueEventKind
_COUNTED = WAIT_ENDS | {K.JOIN}


@dataclass(frozen=True, slots=True, kw_only=True)
class DayFigures:
    """One queue since the moment asked for (module docstring)."""

    offered: int
    answered: int
    abandoned: int
    service_level: float | None


@dataclass(slots=True)
class _Counts:
    offered: int = 0
    answered: int = 0
    abandoned: int = 0
    within: int = 0
    ended: int = 0

    def add(self, kind: QueueEventKind, wait: float | None, threshold: float) -> None:
        if kind is K.JOIN:
            self.offered += 1
            return
        self.ended += 1
        if kind is K.ANSWER:
            self.answered += 1
            self.within += wait is not None and wait <= threshold
        elif kind is K.ABANDON:
            self.abandoned += 1

    def figures(self) -> DayFigures:
        level = None if not self.ended else round(100.0 * self.within / self.ended, 3)
        return DayFigures(
            offered=self.offered,
            answered=self.answered,
            abandoned=self.abandoned,
            service_level=level,
        )


@dataclass(slots=True)
class _Queue:
    records: deque[tuple[datetime, QueueEventKind, float | None]] = field(default_factory=deque)
    counts: _Counts = field(default_factory=_Counts)


class DayTally:
    """The queues' figures since a moment, fed record by record (module docstring).

    Args:
        started: the wall time (UTC) from which every record is fed; the log's records from
            before it are the seed's.
    """

    def __init__(self, started: datetime) -> None:
        self.started = started
        self.seeded = False
        self._queues: dict[tuple[str, str], _Queue] = {}
        self._early: set[str] = set()  # fed records stamped before ``started``
        self._since: datetime | None = None
        self._threshold = 0.0

    def add(self, record: QueueLogRecord) -> None:
        """A record the centre's driver wrote (any kind; those that do not count are left)."""
        if record.kind not in _COUNTED or not record.queue:
            return
        if record.at < self.started and not self.seeded:
            self._early.add(record.uuid)
        q = self._queues.setdefault((record.customer, record.queue), _Queue())
        q.records.append((record.at, record.kind, record.wait))
        while q.records and q.records[0][0] < record.at - WINDOW:
            q.records.popleft()
        if self._since is not None and record.at >= self._since:
            q.counts.add(record.kind, record.wait, self._threshold)

    def seed(self, records: Iterable[QueueLogRecord]) -> None:
        """The log's records from before ``started`` (those read later are left out)."""
        old: dict[tuple[str, str], list[tuple[datetime, QueueEventKind, float | None]]] = {}
        for r in records:
            if r.kind in _COUNTED and r.queue and r.at < self.started and r.uuid not in self._early:
                old.setdefault((r.customer, r.queue), []).append((r.at, r.kind, r.wait))
        for key, kept in old.items():
            q = self._queues.setdefault(key, _Queue())
            q.records = deque(sorted([*kept, *q.records], key=lambda item: item[0]))
        self.seeded, self._early, self._since = True, set(), None

    def figures(self, since: datetime, service_level: float) -> dict[tuple[str, str], DayFigures]:
        """Each queue's figures from ``since`` on (aware; within the last ``WINDOW``), the
        answers within ``service_level`` seconds counting for the service level."""
        if (since, service_level) != (self._since, self._threshold):
            self._since, self._threshold = since, service_level
            for q in self._queues.values():
                q.counts = _Counts()
                for at, kind, wait in q.records:
                    if at >= since:
                        q.counts.add(kind, wait, service_level)
        return {key: q.counts.figures() for key, q in self._queues.items()}
