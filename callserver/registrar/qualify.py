"""When each UDP binding gets its next OPTIONS: the qualify schedule (RFC 3261 §11).

Theory of operation
-------------------
A phone behind NAT that registered over UDP may vanish without a word; an operator can ask the
registrar to *qualify* such bindings: every ``interval`` seconds each one gets an out-of-dialog
OPTIONS on its flow. :class:`QualifySchedule` only keeps the times, sans-IO: :meth:`add` a
binding's key when it is made (its first OPTIONS is due ``interval`` after ``now``),
:meth:`discard` it when it goes, and :meth:`pop_due` gives the keys due at ``now`` and books
each again ``interval`` later, so every binding is probed once per interval whatever its
answer.

Bindings already held when qualify is turned on (restored from the store, or at a reload)
have their first OPTIONS spread evenly over the first interval rather than all at once.

A key whose OPTIONS is still in flight (no response and no Timer F yet) when it is due again
is skipped that round rather than probed twice: :meth:`settled` ends the flight when the
outcome arrives. An ``interval`` of 0 turns qualify off and forgets everything booked.

The deadlines live in a heap with lazy deletion, as the registrar's expiries do: a stale entry
can make :meth:`deadline` early, never late.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable

__all__ = ["BindingKey", "QualifySchedule"]

BindingKey = tuple[str, str]  # (address-of-record, contact URI)


class QualifySchedule:
    """The next OPTIONS of each qualified binding; see the module docstring."""

    def __init__(self) -> None:
        self.interval = 0.0
        self._due: dict[BindingKey, float] = {}
        self._heap: list[tuple[float, BindingKey]] = []
        self._in_flight: set[BindingKey] = set()

    def configure(self, interval: float, keys: Iterable[BindingKey], now: float) -> None:
        """Qualify every ``interval`` seconds (0: off) the bindings ``keys`` and those added
        later; keys already booked keep their time when the interval stays the same.

        The first OPTIONS of the ``keys`` not booked are spread evenly over the next interval,
        so thousands of bindings back from the store are not all probed at once.
        """
        if interval != self.interval:
            self._due.clear()
            self._heap.clear()
            self._in_flight.clear()
        self.interval = interval
        if interval <= 0:
            return
        new = [key for key in dict.fromkeys(keys) if key not in self._due]
        for n, key in enumerate(new, start=1):
            self._book(key, now + interval * n / len(new))

    def add(self, key: BindingKey, now: float) -> None:
        """Book ``key``'s first OPTIONS ``interval`` after ``now`` unless it is booked."""
        if self.interval > 0 and key not in self._due:
            self._book(key, now + self.interval)

    def discard(self, key: BindingKey) -> None:
        """``key``'s binding is gone: no more OPTIONS for it."""
        self._due.pop(key, None)
        self._in_flight.discard(key)

    def deadline(self) -> float | None:
        """The earliest booked time, or None."""
        return self._heap[0][0] if self._heap else None

    def pop_due(self, now: float) -> list[BindingKey]:
        """The keys whose OPTIONS is due at ``now`` and not in flight; each is booked again."""
        due = []
        while self._heap and self._heap[0][0] <= now:
            when, key = heapq.heappop(self._heap)
            if self._due.get(key) != when:
                continue  # discarded, or booked again since
            self._book(key, now + self.interval)
            if key not in self._in_flight:
                self._in_flight.add(key)
                due.append(key)
        return due

    def settled(self, key: BindingKey) -> None:
        """``key``'s OPTIONS got its outcome (a response or Timer F)."""
        self._in_flight.discard(key)

    def _book(self, key: BindingKey, when: float) -> None:
        self._due[key] = when
        heapq.heappush(self._heap, (when, key))
