"""Tests for RTP port allocation (callserver.media.ports): even ports, round robin, RFC 3550 §11."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from callserver.media.ports import PortsExhausted, RtpPortAllocator


def drain(allocator: RtpPortAllocator) -> list[int]:
    """Every port the allocator hands out before it is exhausted, in order."""
    ports: list[int] = []
    while True:
        try:
            ports.append(allocator.allocate())
        except PortsExhausted:
            return ports


def test_ports_are_even_with_rtcp_inside_the_range() -> None:
    """An odd low end starts at the next even port, and port + 1 never leaves the range."""
    assert drain(RtpPortAllocator(10001, 10010)) == [10002, 10004, 10006, 10008]
    assert drain(RtpPortAllocator(10000, 10008)) == [10000, 10002, 10004, 10006]


def test_capacity_counts_the_even_ports() -> None:
    """``capacity`` is the number of usable even ports, a two-port range having one."""
    assert RtpPortAllocator(20000, 20001).capacity == 1
    assert RtpPortAllocator(20000, 20009).capacity == 5


def test_round_robin_reuses_a_released_port_last() -> None:
    """A released port goes to the back of the queue: every other free port comes first."""
    allocator = RtpPortAllocator(30000, 30005)
    first = allocator.allocate()
    allocator.release(first)
    assert [allocator.allocate() for _ in range(3)] == [30002, 30004, first]


def test_release_twice_is_harmless() -> None:
    """Releasing a port twice, or one never allocated, neither duplicates nor adds a port."""
    allocator = RtpPortAllocator(30000, 30005)
    port = allocator.allocate()
    allocator.release(port)
    allocator.release(port)
    allocator.release(31000)
    assert allocator.in_use == 0
    assert sorted(drain(allocator)) == [30000, 30002, 30004]


def test_exhaustion_raises() -> None:
    """With every port in use ``allocate`` raises PortsExhausted naming the capacity."""
    allocator = RtpPortAllocator(30000, 30003)
    assert drain(allocator) == [30000, 30002]
    with pytest.raises(PortsExhausted, match="all 2 RTP ports are in use"):
        allocator.allocate()
    assert allocator.in_use == 2


def test_release_after_exhaustion_frees_a_port() -> None:
    """A port released after exhaustion is handed out again."""
    allocator = RtpPortAllocator(30000, 30001)
    port = allocator.allocate()
    with pytest.raises(PortsExhausted):
        allocator.allocate()
    allocator.release(port)
    assert allocator.allocate() == port


def test_rotate_starts_further_into_the_range() -> None:
    """``rotate(k)`` hands out the k-th even port first and wraps round to the start."""
    allocator = RtpPortAllocator(40000, 40009)
    allocator.rotate(3)
    assert drain(allocator) == [40006, 40008, 40000, 40002, 40004]


def test_refused_port_goes_to_the_back() -> None:
    """A port that could not be bound is freed and tried again only after the others."""
    allocator = RtpPortAllocator(40000, 40005)
    port = allocator.allocate()
    allocator.refused(port)
    assert allocator.in_use == 0
    assert drain(allocator) == [40002, 40004, port]


def test_refused_with_skip_passes_over_free_ports() -> None:
    """A refusal with a skip tries the port that many places further on next."""
    allocator = RtpPortAllocator(40000, 40011)
    port = allocator.allocate()
    allocator.refused(port, 3)
    assert drain(allocator) == [40008, 40010, port, 40002, 40004, 40006]


@given(
    low=st.integers(1024, 60000),
    span=st.integers(1, 40),
    ops=st.lists(st.one_of(st.none(), st.integers(0, 30)), max_size=80),
)
def test_allocations_stay_distinct_even_and_in_range(
    low: int, span: int, ops: list[int | None]
) -> None:
    """Any mix of allocations and releases keeps ports distinct, even and within the range."""
    high = low + span
    allocator = RtpPortAllocator(low, high)
    held: list[int] = []
    for op in ops:
        if op is None:
            try:
                held.append(allocator.allocate())
            except PortsExhausted:
                assert len(held) == allocator.capacity
        elif held:
            allocator.release(held.pop(op % len(held)))
        assert len(set(held)) == len(held) == allocator.in_use
        assert all(port % 2 == 0 and low <= port and port + 1 <= high for port in held)
