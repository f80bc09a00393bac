"""The reorder buffer in front of recording and in-band DTMF detection (RFC 3550 §5.1).

Theory of operation
-------------------
RTP runs over UDP, so packets may arrive out of order, twice, or not at all; the sequence number
"may be used by the receiver to detect packet loss and to restore packet sequence" (RFC 3550
§5.1). :class:`ReorderBuffer` does exactly that and nothing about timing: ``push`` hands back the
payloads that are now in order, and the media clock plays them out.

The first packet starts the sequence. A packet that continues it is released at once (the hot
path: two comparisons and the one-element list it returns). A packet ahead of a gap is held;
when more than ``depth`` are held the gap is given up: the missing numbers count as ``lost`` and
release goes on from the oldest held packet. A packet behind the sequence was released past
already: the one just released again counts as a duplicate, any other as ``late``; both are
dropped, as are duplicates of held packets.

Numbers compare wrap-aware (``seq_diff``), so 65535 -> 0 is one step. A packet more than
``_MAX_MISORDER`` behind or ``_MAX_DROPOUT`` ahead is a jump (RFC 3550 Appendix A.1): it is
dropped and counted late, unless it follows the previous such packet; then the sender restarted
its numbering, whatever is held is flushed and the sequence starts again there. Without that a
restarted sender would be "late" forever, and one stray number would sit in the buffer.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Generic, TypeVar

from callserver.media.rtp import seq_diff

__all__ = ["ReorderBuffer", "ReorderStatistics"]

# RFC 3550 Appendix A.1: further behind than MAX_MISORDER is not a late packet, and further ahead
# than MAX_DROPOUT is not a loss; both are a jump that a second packet must confirm.
_MAX_MISORDER = 100
_MAX_DROPOUT = 3000
P = TypeVar("P")  # what a packet carries through the buffer: its payload, or more about it


@dataclass(frozen=True, slots=True)
class ReorderStatistics:
    """Counters of a :class:`ReorderBuffer` since it was made."""

    released: int
    lost: int
    late: int
    duplicates: int
    restarts: int
    held: int


class ReorderBuffer(Generic[P]):
    """Restores sequence order of one stream's payloads, holding at most ``depth`` packets.

    A payload is anything the caller keeps per packet (the stream keeps its codec beside it).

    The counters ``released``, ``lost``, ``late``, ``duplicates`` and ``restarts`` are plain
    attributes for the engine to read; ``statistics()`` snapshots them.

    Raises:
        ValueError: if ``depth`` is less than 1.
    """

    def __init__(self, depth: int) -> None:
        if depth < 1:
            raise ValueError(f"reorder depth must be at least 1, not {depth}")
        self.depth = depth
        self._held: dict[int, P] = {}
        self._next: int | None = None  # the sequence number released next
        self._bad_seq = -1  # the number that would confirm a restart (A.1 ``bad_seq``)
        self.released = self.lost = self.late = self.duplicates = self.restarts = 0

    def push(self, sequence_number: int, payload: P) -> list[P]:
        """Take one packet; return the payloads now releasable, in sequence order."""
        expected = sequence_number if self._next is None else self._next
        if sequence_number == expected and not self._held:
            self._next = (sequence_number + 1) & 0xFFFF
            self.released += 1
            return [payload]
        distance = seq_diff(sequence_number, expected)
        if not -_MAX_MISORDER <= distance < _MAX_DROPOUT:
            return self._jump(sequence_number, payload)
        if distance < 0:
            # The first packet of a sequence is always released at once, so -1 is the last one
            # released: a duplicate. Further back may be a duplicate too, but nothing remembers.
            if distance == -1:
                self.duplicates += 1
            else:
                self.late += 1
            return []
        if sequence_number in self._held:
            self.duplicates += 1
            return []
        self._held[sequence_number] = payload
        return self._release(expected)

    def flush(self) -> list[P]:
        """Release everything held, in order; the gaps between count as lost."""
        if self._next is None or not self._held:
            return []
        start = next_seq = self._next
        out: list[P] = []
        for seq in sorted(self._held, key=lambda held: (held - start) & 0xFFFF):
            self.lost += seq_diff(seq, next_seq)
            out.append(self._held[seq])
            next_seq = (seq + 1) & 0xFFFF
        self._held.clear()
        self._next = next_seq
        self.released += len(out)
        return out

    def reset(self) -> None:
        """Drop what is held, keep the counters; the next packet starts a new sequence."""
        self._held.clear()
        self._next = None
        self._bad_seq = -1

    def statistics(self) -> ReorderStatistics:
        """A snapshot of the counters and how many packets are held now."""
        return ReorderStatistics(
            released=self.released,
            lost=self.lost,
            late=self.late,
            duplicates=self.duplicates,
            restarts=self.restarts,
            held=len(self._held),
        )

    def _jump(self, sequence_number: int, payload: P) -> list[P]:
        """A packet far off the sequence: dropped, unless it follows the previous one (A.1)."""
        if sequence_number != self._bad_seq:
            self._bad_seq = (sequence_number + 1) & 0xFFFF
            self.late += 1
            return []
        # A.1: "two sequential packets -- assume that the other side restarted without telling us"
        out = self.flush()
        self.restarts += 1
        self._held[sequence_number] = payload
        return out + self._release(sequence_number)

    def _release(self, next_seq: int) -> list[P]:
        """Release the run from ``next_seq`` on; give up a gap while over ``depth`` are held."""
        held = self._held
        out: list[P] = []
        while True:
            while next_seq in held:
                out.append(held.pop(next_seq))
                next_seq = (next_seq + 1) & 0xFFFF
            if len(held) <= self.depth:
                break
            # Everything held is ahead of next_seq, so the oldest is the nearest one.
            oldest = _nearest_ahead(held, next_seq)
            self.lost += (oldest - next_seq) & 0xFFFF
            next_seq = oldest
        self._next = next_seq
        self.released += len(out)
        return out


def _nearest_ahead(held: dict[int, P], base: int) -> int:
    return min(held, key=lambda seq: (seq - base) & 0xFFFF)
