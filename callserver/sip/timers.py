"""Transaction timer values (RFC 3261 §17, Table 4; RFC 6026 §8) and the deadline heap.

Theory of operation
-------------------
``SipTimers`` holds the three tunables, T1 (RTT estimate), T2 (retransmit cap) and T4 (how long
a message may linger in the network); every timer A..M is derived from them, so a test or an
operator who changes T1 changes all of them consistently. Nothing here is a module constant.

``TimerHeap`` is the transaction layer's single priority queue of absolute deadlines, one live
entry per key. It is a binary heap of ``(deadline, seq, key)`` with *lazy invalidation*: moving
or cancelling a key's deadline only updates the ``_armed`` dict and (when moving) pushes a new
entry; the old entry stays in the heap, stale, and is discarded when it reaches the top. So
``schedule`` is O(log n), ``earliest`` is amortised O(log n) and ``pop_due`` costs O(log n) per
due or stale entry: nothing ever walks all keys. When stale entries outnumber live ones by
far, the heap is rebuilt from ``_armed`` (O(n), amortised O(1) per stale push).
"""

from __future__ import annotations

import heapq
from collections.abc import Hashable
from dataclasses import dataclass
from typing import Generic, TypeVar

__all__ = ["SipTimers", "TimerHeap"]

K = TypeVar("K", bound=Hashable)

# Rebuild the heap once it holds this many stale entries per live one (plus a small floor).
_COMPACT_RATIO = 2
_COMPACT_FLOOR = 64


@dataclass(frozen=True, slots=True)
class SipTimers:
    """T1, T2, T4 and the transaction timers derived from them (RFC 3261 §17, Table 4).

    Timers D, I, J and K depend on the transport: the plain properties give the value for an
    unreliable transport (UDP) and the ``*_for(reliable)`` methods give zero for reliable ones.

    Raises:
        ValueError: if T1 or T4 is not positive, or T2 is smaller than T1.
    """

    t1: float = 0.5
    t2: float = 4.0
    t4: float = 5.0

    def __post_init__(self) -> None:
        if self.t1 <= 0 or self.t4 <= 0:
            raise ValueError("T1 and T4 must be positive")
        if self.t2 < self.t1:
            raise ValueError("T2 must not be smaller than T1")

    @property
    def timer_trying(self) -> float:
        """How long an INVITE server transaction waits for the TU before sending 100 (Trying).

        RFC 3261 §17.2.1: "the server transaction MUST generate a 100 (Trying) response
        unless it knows that the TU will generate a provisional or final response within
        200 ms". Waiting those 200 ms spares the 100 when the TU answers at once.
        """
        return 0.2

    @property
    def timer_a(self) -> float:
        """Initial INVITE retransmit interval, doubling each time (RFC 3261 §17.1.1.2)."""
        return self.t1

    @property
    def timer_b(self) -> float:
        """INVITE client transaction timeout: 64*T1 (RFC 3261 §17.1.1.2)."""
        return 64 * self.t1

    @property
    def timer_d(self) -> float:
        """Wait for response retransmits over UDP: at least 32 s (RFC 3261 §17.1.1.2).

        It also covers 64*T1 when T1 is raised, since it must outlast the server's Timer H.
        """
        return max(32.0, 64 * self.t1)

    @property
    def timer_e(self) -> float:
        """Initial non-INVITE retransmit interval (RFC 3261 §17.1.2.2)."""
        return self.t1

    @property
    def timer_f(self) -> float:
        """Non-INVITE client transaction timeout: 64*T1 (RFC 3261 §17.1.2.2)."""
        return 64 * self.t1

    @property
    def timer_g(self) -> float:
        """Initial INVITE final-response retransmit interval (RFC 3261 §17.2.1)."""
        return self.t1

    @property
    def timer_h(self) -> float:
        """Wait for the ACK: 64*T1 on every transport (RFC 3261 §17.2.1)."""
        return 64 * self.t1

    @property
    def timer_i(self) -> float:
        """Wait for ACK retransmits over UDP: T4 (RFC 3261 §17.2.1)."""
        return self.t4

    @property
    def timer_j(self) -> float:
        """Wait for non-INVITE request retransmits over UDP: 64*T1 (RFC 3261 §17.2.2)."""
        return 64 * self.t1

    @property
    def timer_k(self) -> float:
        """Wait for non-INVITE response retransmits over UDP: T4 (RFC 3261 §17.1.2.2)."""
        return self.t4

    @property
    def timer_l(self) -> float:
        """Server INVITE "Accepted" lifetime: 64*T1 on every transport (RFC 6026 §8.7)."""
        return 64 * self.t1

    @property
    def timer_m(self) -> float:
        """Client INVITE "Accepted" lifetime: 64*T1 on every transport (RFC 6026 §8.4)."""
        return 64 * self.t1

    def timer_d_for(self, reliable: bool) -> float:
        """Timer D for this transport: zero when reliable (RFC 3261 §17.1.1.2)."""
        return 0.0 if reliable else self.timer_d

    def timer_i_for(self, reliable: bool) -> float:
        """Timer I for this transport: zero when reliable (RFC 3261 §17.2.1)."""
        return 0.0 if reliable else self.timer_i

    def timer_j_for(self, reliable: bool) -> float:
        """Timer J for this transport: zero when reliable (RFC 3261 §17.2.2)."""
        return 0.0 if reliable else self.timer_j

    def timer_k_for(self, reliable: bool) -> float:
        """Timer K for this transport: zero when reliable (RFC 3261 §17.1.2.2)."""
        return 0.0 if reliable else self.timer_k


class TimerHeap(Generic[K]):
    """Absolute deadlines by key, earliest first, with lazy invalidation.

    Each key has at most one live deadline. ``len()`` counts live keys; ``entries`` counts heap
    entries including stale ones; ``pops`` counts entries ever removed from the heap (live or
    stale), which is what a caller pays for.
    """

    __slots__ = ("_armed", "_heap", "_seq", "pops")

    def __init__(self) -> None:
        self._heap: list[tuple[float, int, K]] = []
        self._armed: dict[K, tuple[float, int]] = {}
        self._seq = 0
        self.pops = 0

    def __len__(self) -> int:
        return len(self._armed)

    def __contains__(self, key: object) -> bool:
        return key in self._armed

    @property
    def entries(self) -> int:
        """Heap entries, live and stale."""
        return len(self._heap)

    def deadline_of(self, key: K) -> float | None:
        """The live deadline of ``key``, or None."""
        entry = self._armed.get(key)
        return None if entry is None else entry[0]

    def schedule(self, key: K, deadline: float | None) -> None:
        """Set ``key``'s deadline (None cancels it); a no-op when it is unchanged."""
        current = self._armed.get(key)
        if deadline is None:
            if current is not None:
                del self._armed[key]
            return
        if current is not None and current[0] == deadline:
            return
        self._seq += 1
        self._armed[key] = (deadline, self._seq)
        heapq.heappush(self._heap, (deadline, self._seq, key))
        if len(self._heap) > _COMPACT_RATIO * len(self._armed) + _COMPACT_FLOOR:
            self._compact()

    def earliest(self) -> float | None:
        """The earliest live deadline, or None; drops the stale entries it finds on top."""
        heap = self._heap
        while heap:
            deadline, seq, key = heap[0]
            if self._armed.get(key) == (deadline, seq):
                return deadline
            heapq.heappop(heap)
            self.pops += 1
        return None

    def pop_due(self, now: float) -> K | None:
        """Remove and return one key whose deadline is at or before ``now``, else None."""
        heap = self._heap
        while heap and heap[0][0] <= now:
            deadline, seq, key = heapq.heappop(heap)
            self.pops += 1
            if self._armed.get(key) == (deadline, seq):
                del self._armed[key]
                return key
        return None

    def _compact(self) -> None:
        self._heap = [(deadline, seq, key) for key, (deadline, seq) in self._armed.items()]
        heapq.heapify(self._heap)
