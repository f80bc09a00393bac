"""Tests for the transaction timer values (RFC 3261 Table 4) and the deadline heap."""

from __future__ import annotations

import pytest

from callserver.sip.timers import SipTimers, TimerHeap


def test_sip_timers_defaults_follow_table_4() -> None:
    """Default timers derive from T1=0.5, T2=4, T4=5 exactly as RFC 3261 Table 4 lists them."""
    t = SipTimers()
    assert (t.timer_a, t.timer_b, t.timer_d, t.timer_e, t.timer_f) == (0.5, 32.0, 32.0, 0.5, 32.0)
    assert (t.timer_g, t.timer_h, t.timer_i, t.timer_j, t.timer_k) == (0.5, 32.0, 5.0, 32.0, 5.0)
    assert (t.timer_l, t.timer_m) == (32.0, 32.0)
    assert [f(True) for f in (t.timer_d_for, t.timer_i_for, t.timer_j_for, t.timer_k_for)] == [
        0
    ] * 4
    assert t.timer_d_for(False) == 32.0 and t.timer_k_for(False) == 5.0


def test_sip_timers_scale_with_t1_and_keep_timer_d_at_least_32s() -> None:
    """Changing T1 moves every 64*T1 timer, while Timer D never drops below 32 s."""
    small, large = SipTimers(t1=0.1, t2=1.0, t4=2.0), SipTimers(t1=1.0, t2=8.0)
    assert (small.timer_b, small.timer_j, small.timer_d, small.timer_i) == (6.4, 6.4, 32.0, 2.0)
    assert (large.timer_b, large.timer_d) == (64.0, 64.0)


def test_sip_timers_reject_impossible_values() -> None:
    """T1 and T4 must be positive and T2 at least T1."""
    for kwargs in ({"t1": 0.0}, {"t4": -1.0}, {"t1": 2.0, "t2": 1.0}):
        with pytest.raises(ValueError):
            SipTimers(**kwargs)


def test_timer_heap_pops_in_order_and_skips_stale_entries() -> None:
    """Moved and cancelled deadlines leave stale entries that are skipped, never returned."""
    heap: TimerHeap[str] = TimerHeap()
    heap.schedule("a", 3.0)
    heap.schedule("b", 1.0)
    heap.schedule("c", 2.0)
    heap.schedule("b", 4.0)
    heap.schedule("c", None)
    assert (len(heap), heap.entries, heap.earliest()) == (2, 4, 3.0)
    assert heap.pop_due(2.9) is None
    assert [heap.pop_due(10.0), heap.pop_due(10.0), heap.pop_due(10.0)] == ["a", "b", None]
    assert (len(heap), heap.entries, heap.earliest()) == (0, 0, None)


def test_timer_heap_compacts_when_stale_entries_pile_up() -> None:
    """Re-scheduling one key over and over keeps the heap bounded by compaction."""
    heap: TimerHeap[int] = TimerHeap()
    for i in range(1000):
        heap.schedule(1, float(i))
    assert heap.entries <= 2 * len(heap) + 64
    assert heap.deadline_of(1) == 999.0 and heap.earliest() == 999.0
