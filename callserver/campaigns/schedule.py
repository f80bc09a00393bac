"""Which numbers of a campaign to dial now, and what each number's result is.

Theory of operation
-------------------
``Schedule`` is sans-IO: the runner asks ``due(now, channels_free=...)`` for the calls to
place now, tells ``finished(number, result, now)`` how each ended, and sleeps until
``next_wake(now)``; the instants are aware datetimes it is given, never read from a clock.

A number is *waiting* (never dialled, or a retry not yet due), *in progress* (dialled, not
yet finished) or *final* (one result for good). ``due`` returns nothing while the window
(business hours with holidays, ``dialplan.hours``) is not open, and at most one number a
call, no sooner than ``1 / calls_per_second`` after the last (so in any second at most
``calls_per_second`` calls start), and only while the calls in progress stay below both
``max_in_progress`` and the customer's free channels. Numbers are dialled in the order of the
list; a retry that is due goes first (the earliest due first). The counts and the queues of
numbers waiting are kept as numbers change, so a call to ``due`` or ``progress`` does not go
through the whole list.

``finished`` makes a result final unless it is one of the ``retry_on`` results and the number
has attempts left: then the next attempt waits ``delay * backoff ** (attempts - 1)`` seconds.
``answered`` and ``barred`` are always final. ``answered(number, now, answers)`` marks a
call in progress as answered (told at the answer, and again with each survey answer), so the
state written then says so. ``snapshot``/``restore`` carry the state across a restart: a
number that was in progress when the server stopped has that attempt counted and is dialled
again at once if it has attempts left (else it ends ``failed``), unless it had been answered:
then it ends ``answered`` with the survey answers noted so far, and is never called again;
a final number is never dialled again.
"""

from __future__ import annotations

import heapq
from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from types import MappingProxyType
from typing import Literal

from callserver.dialplan.hours import LOOKAHEAD, Hours, Status

__all__ = ["RESULTS", "Dial", "Final", "Progress", "Result", "Rules", "Schedule", "Window"]

Result = Literal["answered", "busy", "no_answer", "failed", "barred"]
RESULTS: tuple[Result, ...] = ("answered", "busy", "no_answer", "failed", "barred")
_MAX_CHANGES = 64  # status changes followed to the next opening (a fortnight of them)


@dataclass(frozen=True, slots=True, kw_only=True)
class Rules:
    """The pacing and retry rules of a campaign (its file's ``pacing`` and ``retries``)."""

    calls_per_second: float
    max_in_progress: int
    max_attempts: int
    delay: float
    backoff: float = 1.0
    retry_on: frozenset[str] = frozenset({"busy", "no_answer"})


@dataclass(frozen=True, slots=True, kw_only=True)
class Dial:
    """Place a call to ``number`` now: its ``attempt``-th (1 the first)."""

    number: str
    attempt: int


@dataclass(frozen=True, slots=True, kw_only=True)
class Final:
    """A number's result for good, after ``attempts`` calls, at ``at``; a survey's answers."""

    number: str
    result: Result
    attempts: int
    at: datetime
    answers: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))


@dataclass(frozen=True, slots=True, kw_only=True)
class Progress:
    """Where a campaign is: calls placed, in progress, final results by kind, next retry."""

    numbers: int
    dialled: int
    in_progress: int
    waiting: int
    results: Mapping[str, int]
    next_retry: datetime | None


@dataclass(frozen=True, slots=True, kw_only=True)
class Window:
    """The campaign's window at an instant: open, closed or a public ``holiday`` (its name),
    and when not open, its next opening in the window's time zone (None: not within the
    look-ahead)."""

    status: Status
    holiday: str | None
    opens: datetime | None


@dataclass(slots=True)
class _Number:
    attempts: int = 0
    in_progress: bool = False
    next_at: datetime | None = None  # a retry's earliest time; None: at once
    final: Final | None = None
    answered_at: datetime | None = None  # the call in progress was answered then
    answers: Mapping[str, str] = field(default_factory=dict)  # its survey's, so far


class Schedule:
    """The dialling state of one campaign; see the module docstring."""

    def __init__(self, numbers: Sequence[str], rules: Rules, window: Hours) -> None:
        self.rules = rules
        self.window = window
        self._numbers = {number: _Number() for number in numbers}
        self._order = {number: n for n, number in enumerate(self._numbers)}
        self._last_dial: datetime | None = None
        # Kept as the numbers change, so that no call asks about every number:
        self._fresh: deque[str] = deque()  # never dialled, in the list's order
        self._retries: list[tuple[datetime, int, str]] = []  # a heap: (next_at, order, number)
        self._in_progress = 0
        self._dialled = 0
        self._results: dict[str, int] = dict.fromkeys(RESULTS, 0)
        self._reindex()

    def _reindex(self) -> None:
        """Rebuild the counts and queues from the numbers' states (after ``restore``)."""
        states = self._numbers.items()
        self._fresh = deque(n for n, s in states if not s.attempts and s.final is None)
        self._retries = [
            (s.next_at or datetime.min.replace(tzinfo=UTC), self._order[n], n)
            for n, s in states
            if _waiting_retry(s)
        ]
        heapq.heapify(self._retries)
        self._in_progress = sum(s.in_progress for _, s in states)
        self._dialled = sum(s.attempts for _, s in states)
        self._results = dict.fromkeys(RESULTS, 0)
        for _, state in states:
            if state.final is not None:
                self._results[state.final.result] += 1

    @property
    def done(self) -> bool:
        """True when every number has its final result."""
        return sum(self._results.values()) == len(self._numbers)

    def in_progress(self) -> int:
        """The calls placed and not yet finished."""
        return self._in_progress

    def due(self, now: datetime, *, channels_free: int) -> list[Dial]:
        """The call to place at ``now`` (none or one), marked in progress."""
        rules = self.rules
        room = min(rules.max_in_progress - self._in_progress, channels_free)
        if room <= 0 or not self._paced(now) or self.window.state(now).status != "open":
            return []
        number = self._next_number(now)
        if number is None:
            return []
        state = self._numbers[number]
        state.attempts += 1
        state.in_progress, state.next_at = True, None
        self._in_progress += 1
        self._dialled += 1
        self._last_dial = now
        return [Dial(number=number, attempt=state.attempts)]

    def _paced(self, now: datetime) -> bool:
        last = self._last_dial
        return last is None or now >= last + self._spacing()

    def _spacing(self) -> timedelta:
        return timedelta(seconds=1 / self.rules.calls_per_second)

    def _next_number(self, now: datetime) -> str | None:
        if self._retries and self._retries[0][0] <= now:
            return heapq.heappop(self._retries)[2]  # a retry due goes first
        return self._fresh.popleft() if self._fresh else None

    def finished(
        self,
        number: str,
        result: Result,
        now: datetime,
        answers: Mapping[str, str] | None = None,
    ) -> Final | None:
        """The call to ``number`` in progress ended with ``result``: its final result, or None
        when it will be tried again (see the module docstring).

        Raises:
            KeyError: ``number`` has no call in progress.
        """
        state = self._numbers[number]
        if not state.in_progress:
            raise KeyError(f"{number} has no call in progress")
        state.in_progress, state.answered_at = False, None
        self._in_progress -= 1
        rules = self.rules
        if result in rules.retry_on and state.attempts < rules.max_attempts:
            wait = rules.delay * rules.backoff ** (state.attempts - 1)
            self._retry(number, now + timedelta(seconds=wait))
            return None
        frozen = MappingProxyType(dict(answers or {}))
        state.final = Final(
            number=number, result=result, attempts=state.attempts, at=now, answers=frozen
        )
        self._results[result] += 1
        return state.final

    def answered(self, number: str, now: datetime, answers: Mapping[str, str]) -> None:
        """The call to ``number`` in progress was answered (at ``now`` the first time), its
        survey has ``answers`` so far; a restart before it ends makes it ``answered``.

        Raises:
            KeyError: ``number`` has no call in progress.
        """
        state = self._numbers[number]
        if not state.in_progress:
            raise KeyError(f"{number} has no call in progress")
        if state.answered_at is None:
            state.answered_at = now
        state.answers = dict(answers)

    def _retry(self, number: str, at: datetime) -> None:
        self._numbers[number].next_at = at
        heapq.heappush(self._retries, (at, self._order[number], number))

    def next_wake(self, now: datetime) -> datetime | None:
        """When ``due`` may next have a call: None when only a call ending can bring one
        (or the campaign is done)."""
        if self.done or self._in_progress >= self.rules.max_in_progress:
            return None
        times = [self._retries[0][0]] if self._retries else []
        if self._fresh:
            times.append(now)
        if not times:
            return None  # every number left is in progress
        at = max(min(times), now)
        if self._last_dial is not None:
            at = max(at, self._last_dial + self._spacing())
        return self._opening(at)

    def _opening(self, at: datetime) -> datetime:
        """``at``, or the window's next opening after it (a holiday gives way to a closed
        night first: status changes are followed until one is open)."""
        for _ in range(_MAX_CHANGES):
            state = self.window.state(at)
            if state.status == "open":
                return at
            if state.next_change is None:
                return at + LOOKAHEAD  # closed for the look-ahead: ask again then
            at = state.next_change
        return at

    def window_at(self, now: datetime) -> Window:
        """Whether the window is open at ``now`` and, if not, why and when it opens."""
        state = self.window.state(now)
        if state.status == "open":
            return Window(status="open", holiday=state.holiday, opens=None)
        opens = self._opening(now)
        if self.window.state(opens).status != "open":
            return Window(status=state.status, holiday=state.holiday, opens=None)
        local = opens.astimezone(self.window.zone)
        return Window(status=state.status, holiday=state.holiday, opens=local)

    def progress(self) -> Progress:
        """How far the campaign is (``callserver campaign status``)."""
        finals = sum(self._results.values())
        return Progress(
            numbers=len(self._numbers),
            dialled=self._dialled,
            in_progress=self._in_progress,
            waiting=len(self._numbers) - finals - self._in_progress,
            results=MappingProxyType(dict(self._results)),
            next_retry=self._retries[0][0] if self._retries else None,
        )

    def finals(self) -> list[Final]:
        """The numbers with a final result, in the list's order."""
        return [s.final for s in self._numbers.values() if s.final is not None]

    def snapshot(self) -> dict[str, object]:
        """The state as JSON values, for ``restore`` after a restart."""
        numbers = {
            number: _saved(state) for number, state in self._numbers.items() if state.attempts
        }
        last = None if self._last_dial is None else self._last_dial.isoformat()
        return {"numbers": numbers, "last_dial": last}

    def restore(
        self, snapshot: Mapping[str, object], finals: Iterable[Final], now: datetime
    ) -> list[Final]:
        """Take back the state of ``snapshot`` and the ``finals`` already written; a call
        that was in progress counts as ``failed``, or ``answered`` when it had been answered.
        Returns the results this made final."""
        numbers = snapshot.get("numbers")
        for number, saved in (numbers if isinstance(numbers, dict) else {}).items():
            state = self._numbers.get(number)
            if state is not None and isinstance(saved, dict):
                _restore(state, saved)
        last = snapshot.get("last_dial")
        self._last_dial = datetime.fromisoformat(last) if isinstance(last, str) else None
        for final in finals:
            if (state := self._numbers.get(final.number)) is not None:
                state.final, state.in_progress = final, False
                state.attempts = max(state.attempts, final.attempts)
        self._reindex()
        made: list[Final] = []
        for number, state in self._numbers.items():
            if not state.in_progress:
                continue
            result: Result = "answered" if state.answered_at is not None else "failed"
            if result == "failed" and state.attempts < self.rules.max_attempts:
                state.in_progress = False  # interrupted: again at once
                self._in_progress -= 1
                self._retry(number, now)
            elif ended := self.finished(number, result, now, state.answers):
                made.append(ended)
        return made


def _saved(state: _Number) -> dict[str, object]:
    """A number's state as JSON values (``Schedule.snapshot``)."""
    saved: dict[str, object] = {
        "attempts": state.attempts,
        "in_progress": state.in_progress,
        "next_at": None if state.next_at is None else state.next_at.isoformat(),
    }
    if state.in_progress and state.answered_at is not None:
        saved["answered_at"] = state.answered_at.isoformat()
        saved["answers"] = dict(state.answers)
    return saved


def _restore(state: _Number, saved: Mapping[str, object]) -> None:
    """Take back a number's state from ``_saved``'s values (a bad value counts as absent)."""
    attempts = saved.get("attempts", 0)
    state.attempts = attempts if isinstance(attempts, int) else 0
    state.in_progress = bool(saved.get("in_progress"))
    state.next_at = _instant(saved.get("next_at"))
    state.answered_at = _instant(saved.get("answered_at"))
    answers = saved.get("answers")
    if isinstance(answers, dict):
        state.answers = {str(k): str(v) for k, v in answers.items()}


def _instant(value: object) -> datetime | None:
    try:
        return datetime.fromisoformat(value) if isinstance(value, str) else None
    except ValueError:
        return None


def _waiting_retry(state: _Number) -> bool:
    return state.final is None and not state.in_progress and state.attempts > 0
