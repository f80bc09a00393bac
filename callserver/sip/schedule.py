"""A keyed deadline heap: O(log n) arm, O(1) disarm, O(log n) per due entry.

Entries are ``(deadline, seq, key)``; re-arming or disarming a key only updates a dict, and
stale heap entries are skipped when they surface (lazy invalidation). Nothing ever scans all
keys, so a server with 100 000 timers pays for the due ones only.
"""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Hashable
from typing import Generic, TypeVar

__all__ = ["Deadlines"]

K = TypeVar("K", bound=Hashable)


class Deadlines(Generic[K]):
    """Absolute deadlines by key; ``pop_due(now)`` yields the keys whose time has come."""

    __slots__ = ("_counter", "_current", "_heap")

    def __init__(self) -> None:
        self._heap: list[tuple[float, int, K]] = []
        self._current: dict[K, tuple[float, int]] = {}
        self._counter = itertools.count()

    def __len__(self) -> int:
        return len(self._current)

    def __contains__(self, key: object) -> bool:
        return key in self._current

    def arm(self, key: K, deadline: float) -> None:
        """Set (or move) the deadline of ``key``."""
        seq = next(self._counter)
        self._current[key] = (deadline, seq)
        heapq.heappush(self._heap, (deadline, seq, key))
        if len(self._heap) > 64 and len(self._heap) > 4 * len(self._current):
            self._compact()

    def disarm(self, key: K) -> None:
        """Forget ``key``'s deadline, if any."""
        self._current.pop(key, None)

    def get(self, key: K) -> float | None:
        """The deadline of ``key``, or None."""
        entry = self._current.get(key)
        return entry[0] if entry is not None else None

    def earliest(self) -> float | None:
        """The earliest live deadline, or None when nothing is armed."""
        heap = self._heap
        while heap:
            deadline, seq, key = heap[0]
            if self._current.get(key) == (deadline, seq):
                return deadline
            heapq.heappop(heap)
        return None

    def pop_due(self, now: float) -> list[K]:
        """Disarm and return every key whose deadline is at or before ``now``, earliest first."""
        due: list[K] = []
        heap = self._heap
        while heap and heap[0][0] <= now:
            deadline, seq, key = heapq.heappop(heap)
            if self._current.get(key) == (deadline, seq):
                del self._current[key]
                due.append(key)
        return due

    def _compact(self) -> None:
        self._heap = [(d, s, k) for k, (d, s) in self._current.items()]
        heapq.heapify(self._heap)
