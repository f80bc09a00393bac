"""Tests for the RTP reorder buffer (RFC 3550 §5.1 sequence numbers, Appendix A.1 jumps)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from callserver.media.jitter import ReorderBuffer, ReorderStatistics


def p(seq: int) -> bytes:
    """The payload the tests send with sequence number ``seq``."""
    return seq.to_bytes(2, "big")


def push_all(buffer: ReorderBuffer, seqs: list[int]) -> list[int]:
    """Push packets in the given order; return the sequence numbers released, in order."""
    out: list[int] = []
    for seq in seqs:
        out += [int.from_bytes(payload, "big") for payload in buffer.push(seq, p(seq))]
    return out


def test_in_order_packets_pass_straight_through() -> None:
    """Each in-order packet is released by the push that brings it."""
    buffer = ReorderBuffer(4)
    for seq in range(1000, 1010):
        assert buffer.push(seq, p(seq)) == [p(seq)]
    assert buffer.statistics() == ReorderStatistics(
        released=10, lost=0, late=0, duplicates=0, restarts=0, held=0
    )


def test_swapped_pair_comes_out_ordered() -> None:
    """A packet ahead of its predecessor waits for it, then both come out in order."""
    buffer = ReorderBuffer(4)
    assert buffer.push(10, p(10)) == [p(10)]
    assert buffer.push(12, p(12)) == []
    assert buffer.statistics().held == 1
    assert buffer.push(11, p(11)) == [p(11), p(12)]
    assert buffer.push(13, p(13)) == [p(13)]
    assert (buffer.lost, buffer.late, buffer.duplicates) == (0, 0, 0)


def test_packet_later_than_depth_is_late() -> None:
    """A packet whose gap was given up when the buffer overflowed is late and dropped."""
    buffer = ReorderBuffer(3)
    assert push_all(buffer, [0, 2, 3, 4]) == [0]
    assert push_all(buffer, [5]) == [2, 3, 4, 5]
    assert buffer.lost == 1
    assert buffer.push(1, p(1)) == []
    assert buffer.late == 1


def test_older_than_first_packet_is_late() -> None:
    """The first packet starts the sequence; anything before it is late."""
    buffer = ReorderBuffer(4)
    assert push_all(buffer, [500, 498, 501]) == [500, 501]
    assert (buffer.late, buffer.lost) == (1, 0)


def test_duplicates_are_dropped_and_counted() -> None:
    """A repeat of the packet just released, or of a held one, is dropped as a duplicate."""
    buffer = ReorderBuffer(4)
    assert push_all(buffer, [7, 7, 9, 9, 8]) == [7, 8, 9]
    assert buffer.duplicates == 2
    assert buffer.push(9, p(9)) == []
    assert buffer.duplicates == 3
    assert (buffer.late, buffer.lost, buffer.released) == (0, 0, 3)
    # Further back nothing remembers what was released: a repeat of 8 counts as late.
    assert buffer.push(8, p(8)) == []
    assert (buffer.duplicates, buffer.late) == (3, 1)


def test_loss_is_skipped_once_the_buffer_is_full() -> None:
    """A gap that is not filled before more than ``depth`` wait is skipped and counted lost."""
    buffer = ReorderBuffer(2)
    assert push_all(buffer, [1, 4, 5]) == [1]
    assert push_all(buffer, [6]) == [4, 5, 6]
    assert buffer.lost == 2
    assert push_all(buffer, [7]) == [7]


def test_held_packets_skip_several_gaps() -> None:
    """Overflow skips only the first gap; a later gap waits its turn."""
    buffer = ReorderBuffer(2)
    assert push_all(buffer, [0, 2, 4, 5]) == [0, 2]
    assert buffer.lost == 1
    assert push_all(buffer, [3]) == [3, 4, 5]
    assert buffer.lost == 1


def test_wrap_at_65535() -> None:
    """Ordering and gap skipping work across 65535 -> 0."""
    buffer = ReorderBuffer(3)
    assert push_all(buffer, [65533, 65535, 0, 65534, 1]) == [65533, 65534, 65535, 0, 1]
    assert push_all(buffer, [3, 4, 5, 6]) == [3, 4, 5, 6]
    assert buffer.lost == 1
    assert push_all(buffer, [65535]) == []
    assert buffer.late == 1


def test_flush_releases_everything_in_order() -> None:
    """flush hands back all held packets in order, counting the gaps between them."""
    buffer = ReorderBuffer(8)
    assert push_all(buffer, [65534, 3, 1, 0]) == [65534]
    assert buffer.flush() == [p(0), p(1), p(3)]
    assert buffer.lost == 2  # 65535 and 2
    assert buffer.flush() == []
    assert push_all(buffer, [4]) == [4]


def test_restart_is_confirmed_by_a_second_packet() -> None:
    """A far jump is dropped until the next number follows it; then the sequence restarts."""
    buffer = ReorderBuffer(4)
    assert push_all(buffer, [40000, 40001, 40003]) == [40000, 40001]
    assert push_all(buffer, [7]) == []
    assert push_all(buffer, [8]) == [40003, 8]
    assert push_all(buffer, [9]) == [9]
    assert (buffer.restarts, buffer.late, buffer.lost) == (1, 1, 1)


def test_stray_far_ahead_packet_is_not_held() -> None:
    """One packet far ahead of the sequence is dropped instead of waiting in the buffer."""
    buffer = ReorderBuffer(4)
    assert push_all(buffer, [100, 9000, 101, 102]) == [100, 101, 102]
    assert (buffer.late, buffer.restarts, buffer.statistics().held) == (1, 0, 0)


def test_reset_starts_a_new_sequence() -> None:
    """After reset the next packet starts the sequence again and nothing old is held."""
    buffer = ReorderBuffer(4)
    push_all(buffer, [1, 3])
    buffer.reset()
    assert push_all(buffer, [50, 49, 51]) == [50, 51]
    assert (buffer.late, buffer.released) == (1, 3)


def test_depth_must_be_positive() -> None:
    """A buffer that can hold nothing cannot reorder; it is refused."""
    with pytest.raises(ValueError, match="at least 1, not 0"):
        ReorderBuffer(0)


@st.composite
def windowed_orders(draw: st.DrawFn) -> tuple[int, int, list[int]]:
    """(depth, first, order): consecutive numbers from ``first``, shuffled within windows.

    After the first packet, each window of depth + 1 numbers arrives in any order, so at most
    ``depth`` of them wait for the missing one.
    """
    depth = draw(st.integers(1, 16))
    first = draw(st.integers(0, 0xFFFF))
    count = draw(st.integers(1, 120))
    numbers = [(first + i) & 0xFFFF for i in range(count)]
    order = numbers[:1]
    for start in range(1, count, depth + 1):
        order += draw(st.permutations(numbers[start : start + depth + 1]))
    return depth, first, order


@given(windowed_orders())
def test_any_order_within_the_window_comes_out_sorted(case: tuple[int, int, list[int]]) -> None:
    """Any permutation within a window of ``depth`` yields the sequence, nothing late or lost."""
    depth, first, order = case
    buffer = ReorderBuffer(depth)
    released = push_all(buffer, order)
    assert released == [(first + i) & 0xFFFF for i in range(len(order))]
    assert buffer.statistics() == ReorderStatistics(
        released=len(order), lost=0, late=0, duplicates=0, restarts=0, held=0
    )


@given(st.lists(st.integers(0, 40), max_size=200), st.integers(1, 8))
def test_any_arrivals_come_out_increasing_and_accounted(seqs: list[int], depth: int) -> None:
    """Whatever arrives, releases are strictly increasing and every packet is accounted for."""
    buffer = ReorderBuffer(depth)
    released = push_all(buffer, seqs) + [int.from_bytes(x, "big") for x in buffer.flush()]
    assert released == sorted(set(released))
    stats = buffer.statistics()
    assert stats.held == 0
    assert stats.released + stats.late + stats.duplicates == len(seqs)
