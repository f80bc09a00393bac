"""Reception statistics of one RTP source (RFC 3550 Appendix A.1, A.3, A.8).

A.1 sequence validation (probation, wrap, restart after a large jump), A.3 expected and lost
packets, A.8 interarrival jitter; and the report block an RTCP SR/RR carries about the source.
Arrival times come in as arguments, in RTP timestamp units. ``update`` runs for every packet
received, so the in-order case (nearly all of them) takes a short path of its own.
"""

from __future__ import annotations

from callserver.media.rtcp import ReportBlock
from callserver.media.rtp import ts_diff

__all__ = ["ReceptionStats"]


class ReceptionStats:
    """Receiver statistics for one source (RFC 3550 Appendix A.1, A.3, A.8).

    Args:
        min_sequential: packets in sequence before a new source is valid (A.1 ``MIN_SEQUENTIAL``).
        max_dropout: the largest forward jump taken as loss, not a restart (``MAX_DROPOUT``).
        max_misorder: how far behind a packet may be and still count (``MAX_MISORDER``).
    """

    __slots__ = (
        "_bad_seq",
        "_base_seq",
        "_cycles",
        "_expected_prior",
        "_jitter16",
        "_max_dropout",
        "_max_misorder",
        "_max_seq",
        "_min_sequential",
        "_next_seq",
        "_probation",
        "_received_prior",
        "_seen",
        "_seen_mask",
        "_started",
        "_transit",
        "_valid",
        "received",
    )

    def __init__(
        self, *, min_sequential: int = 2, max_dropout: int = 3000, max_misorder: int = 100
    ) -> None:
        self._min_sequential = min_sequential
        self._max_dropout = max_dropout
        self._max_misorder = max_misorder
        self._seen_mask = (2 << max_misorder) - 1
        self.reset()

    def reset(self) -> None:
        """Forget the source: the next packet starts probation again (a new SSRC, A.1)."""
        self._started = self._valid = False
        self._probation = self._min_sequential
        self._init_seq(0)
        self._transit: int | None = None
        self._jitter16 = 0  # A.8: the jitter estimate scaled by 16, kept as an integer
        self._next_seq = -1  # the sequence number the short path of ``update`` takes

    def _init_seq(self, seq: int) -> None:
        """A.1 ``init_seq``: count from ``seq``."""
        self._base_seq = self._max_seq = seq
        self._bad_seq = 0x10001  # matches no sequence number
        self._cycles = 0
        self.received = 0
        self._received_prior = self._expected_prior = 0
        self._seen = 1  # bit k: max_seq - k arrived; duplicates within max_misorder show up

    @property
    def jitter(self) -> int:
        """The interarrival jitter in RTP timestamp units (A.8)."""
        return self._jitter16 >> 4

    @property
    def extended_highest_sequence(self) -> int:
        """The cycle count and the highest sequence number received (§6.4.1)."""
        return (self._cycles + self._max_seq) & 0xFFFFFFFF

    def update(self, seq: int, timestamp: int, arrival: int) -> bool:
        if seq == self._next_seq:  # the next packet in order, past probation
            if not seq:
                self._cycles += 0x10000
            self._max_seq = seq
            self._next_seq = (seq + 1) & 0xFFFF
            self._seen = ((self._seen << 1) | 1) & self._seen_mask
            self.received += 1
            transit = (arrival - timestamp) & 0xFFFFFFFF
            previous = self._transit
            if previous is not None:
                d = (transit - previous) & 0xFFFFFFFF
                if d & 0x80000000:
                    d = 0x100000000 - d
                self._jitter16 += d - ((self._jitter16 + 8) >> 4)
            self._transit = transit
            return True
        result = self._update(seq, timestamp, arrival)
        self._next_seq = -1 if self._probation else (self._max_seq + 1) & 0xFFFF
        return result

    def _update(self, seq: int, timestamp: int, arrival: int) -> bool:
        """Account for one RTP packet, ``arrival`` being its arrival time in RTP units (A.8).

        Returns:
            False while the source is on probation, for a far jump (A.1 restarts only once the
            next packet follows it), a packet more than ``max_misorder`` behind, or a duplicate
            (which §6.4.1 still counts as received); True otherwise.
        """
        if not self._started:
            self._started = True
            self._init_seq(seq)
            self._max_seq = (seq - 1) & 0xFFFF
        if not self._update_seq(seq):
            return False
        transit = (arrival - timestamp) & 0xFFFFFFFF
        if self._transit is not None:
            # A.8: J(i) = J(i-1) + (|D(i-1,i)| - J(i-1))/16, integer form with J scaled by 16.
            d = abs(ts_diff(transit, self._transit))
            self._jitter16 += d - ((self._jitter16 + 8) >> 4)
        self._transit = transit
        return True

    def _update_seq(self, seq: int) -> bool:
        """A.1 ``update_seq``, plus duplicate detection within the misorder window."""
        if self._probation:
            return self._on_probation(seq)
        udelta = (seq - self._max_seq) & 0xFFFF
        if udelta < self._max_dropout:
            if udelta == 0:
                self.received += 1
                return False
            if seq < self._max_seq:
                self._cycles += 0x10000
            self._max_seq = seq
            self._seen = ((self._seen << udelta) | 1) & self._seen_mask
        elif udelta <= 0x10000 - self._max_misorder:
            if seq != self._bad_seq:
                self._bad_seq = (seq + 1) & 0xFFFF
                return False
            # "two sequential packets -- assume that the other side restarted without telling us"
            self._init_seq(seq)
            self._transit = None
        else:
            behind = 1 << (0x10000 - udelta)
            self.received += 1
            if self._seen & behind:
                return False
            self._seen |= behind
            return True
        self.received += 1
        return True

    def _on_probation(self, seq: int) -> bool:
        if seq != (self._max_seq + 1) & 0xFFFF:
            self._probation = self._min_sequential - 1
            self._max_seq = seq
            return False
        self._probation -= 1
        self._max_seq = seq
        if self._probation:
            return False
        self._init_seq(seq)
        self._valid = True
        self.received = 1
        return True

    @property
    def lost(self) -> int:
        """Packets expected and not received so far, at least 0 (RFC 3550 §6.4.1, A.3: the
        cumulative number lost, which duplicates can make negative); reading it changes no
        report interval."""
        if not self._valid:
            return 0
        return max(0, self._cycles + self._max_seq - self._base_seq + 1 - self.received)

    def report_block(self, ssrc: int, now: float, last_sr: tuple[int, float] | None) -> ReportBlock:
        """The report block for this source, and a new interval for the fraction lost (A.3).

        Args:
            ssrc: the source's SSRC; ``now``: seconds, on the clock of ``last_sr``'s arrival.
            last_sr: (LSR, arrival time) of the source's last SR, LSR being ``ntp_middle32`` of
                its NTP timestamp; None if no SR has arrived (LSR and DLSR are then 0).
        """
        expected = self._cycles + self._max_seq - self._base_seq + 1 if self._valid else 0
        interval_expected = expected - self._expected_prior
        interval_lost = interval_expected - (self.received - self._received_prior)
        self._expected_prior, self._received_prior = expected, self.received
        fraction = 0
        if interval_expected > 0 and interval_lost > 0:
            fraction = min((interval_lost << 8) // interval_expected, 255)
        lsr = dlsr = 0
        if last_sr is not None:
            lsr = last_sr[0] & 0xFFFFFFFF
            dlsr = min(max(int((now - last_sr[1]) * 65536), 0), 0xFFFFFFFF)
        return ReportBlock(
            ssrc=ssrc,
            fraction_lost=fraction,
            cumulative_lost=min(max(expected - self.received, -0x800000), 0x7FFFFF),
            highest_sequence=self.extended_highest_sequence if self._valid else 0,
            jitter=self.jitter,
            last_sr=lsr,
            delay_since_last_sr=dlsr,
        )
