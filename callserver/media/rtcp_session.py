"""The RTCP side of one stream: reception statistics in, SR/RR compound packets out.

RFC 3550 §6: each participant sends a report every few seconds — a sender report (SR) when it
has sent RTP since the last one, else a receiver report (RR) — with one report block about the
source it receives (loss, jitter, and LSR/DLSR from the last SR that source sent us, so it can
compute the round-trip time), followed by an SDES CNAME (§6.1: every compound packet MUST
carry one). Sans-IO: ``now`` and the wall clock come in as arguments.
"""

from __future__ import annotations

from callserver.media.reception import ReceptionStats
from callserver.media.rtcp import (
    ReceiverReport,
    ReportBlock,
    SenderReport,
    build_compound,
    ntp_middle32,
    ntp_timestamp,
    parse_compound,
)

__all__ = ["RtcpSession"]

_MASK32 = 0xFFFFFFFF


class RtcpSession:
    """Reception statistics of the source we receive and the reports we send about it."""

    __slots__ = ("_last_sr", "cname", "received", "stats")

    def __init__(self, cname: str) -> None:
        self.cname = cname
        self.stats = ReceptionStats()
        self.received = 0
        self._last_sr: tuple[int, float] | None = None

    def reset(self) -> None:
        """The source changed SSRC (RFC 3550 §8.2): its statistics start again."""
        self.stats.reset()
        self._last_sr = None

    def receive(self, data: bytes, source_ssrc: int | None, now: float) -> None:
        """Take an RTCP compound packet; keep the source's last SR for LSR/DLSR (§6.4.1).

        Raises:
            ValueError: the packet is not a valid RTCP compound packet.
        """
        reports = parse_compound(data)
        self.received += 1
        for report in reports:
            if isinstance(report, SenderReport) and report.ssrc == source_ssrc:
                self._last_sr = (ntp_middle32(report.ntp_timestamp), now)

    def report(
        self,
        *,
        ssrc: int,
        source_ssrc: int | None,
        sent: tuple[int, int] | None,
        rtp_timestamp: int,
        now: float,
        wallclock: float,
    ) -> bytes:
        """Our compound packet: SR when ``sent`` (packets, octets) is given, else RR (§6.4)."""
        blocks: tuple[ReportBlock, ...] = ()
        if source_ssrc is not None and self.stats.received:
            blocks = (self.stats.report_block(source_ssrc, now, self._last_sr),)
        report: SenderReport | ReceiverReport
        if sent is not None:
            report = SenderReport(
                ssrc=ssrc,
                ntp_timestamp=ntp_timestamp(wallclock),
                rtp_timestamp=rtp_timestamp,
                packet_count=sent[0] & _MASK32,
                octet_count=sent[1] & _MASK32,
                reports=blocks,
            )
        else:
            report = ReceiverReport(ssrc=ssrc, reports=blocks)
        return build_compound(report, self.cname)
