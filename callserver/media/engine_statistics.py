"""The media engine's counters: ``MediaStatistics`` over every stream, open and closed.

A closed stream is gone, so its packet counts and drops are added to ``StreamTotals`` when it
closes; ``statistics`` adds the open streams' to those. ``log_statistics`` writes the
``media.statistics`` line the engine logs every ``statistics_interval``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import structlog

from callserver.media.clock import ClockStatistics
from callserver.media.stream import MediaStream

__all__ = ["MediaStatistics", "StreamTotals", "drops_of", "log_statistics"]

log = structlog.get_logger("callserver.media")


@dataclass(frozen=True, slots=True, kw_only=True)
class MediaStatistics:
    """Engine counters and the clock's timing (``statistics()``)."""

    streams: int
    ports_in_use: int
    packets_sent: int
    packets_received: int
    send_errors: int
    drops: dict[str, int]
    packets_lost: int  # expected from the sources and never received (RFC 3550 §6.4.1)
    jitter_p50: float  # seconds: the interarrival jitter (RFC 3550 A.8) of the open streams
    jitter_p99: float
    clock: ClockStatistics


class StreamTotals:
    """The packets sent, received and dropped by the streams closed so far."""

    __slots__ = ("drops", "lost", "received", "sent")

    def __init__(self) -> None:
        self.sent = self.received = self.lost = 0
        self.drops: dict[str, int] = {}

    def add(self, stream: MediaStream) -> None:
        """Count a closing stream's packets and drops."""
        self.sent += stream.packets_sent
        self.received += stream.packets_received
        self.lost += stream.rtcp.stats.lost
        for reason, count in drops_of(stream).items():
            self.drops[reason] = self.drops.get(reason, 0) + count

    def statistics(
        self,
        streams: list[MediaStream],
        *,
        ports_in_use: int,
        send_errors: int,
        clock: ClockStatistics,
    ) -> MediaStatistics:
        """These totals with the counters of the open ``streams`` added."""
        drops = dict(self.drops)
        for stream in streams:
            for reason, count in drops_of(stream).items():
                drops[reason] = drops.get(reason, 0) + count
        return MediaStatistics(
            streams=len(streams),
            ports_in_use=ports_in_use,
            packets_sent=self.sent + sum(s.packets_sent for s in streams),
            packets_received=self.received + sum(s.packets_received for s in streams),
            send_errors=send_errors,
            drops=drops,
            packets_lost=self.lost + sum(s.rtcp.stats.lost for s in streams),
            **_jitter(streams),
            clock=clock,
        )


def _jitter(streams: list[MediaStream]) -> dict[str, float]:
    """The median and 99th percentile jitter in seconds of the streams that receive RTP
    (arrival times are kept in 1/8000 s, the G.711 clock); 0 without one."""
    values = [s.rtcp.stats.jitter / 8000 for s in streams if s.packets_received]
    if not values:
        return {"jitter_p50": 0.0, "jitter_p99": 0.0}
    p50, p99 = np.percentile(values, [50, 99]).tolist()
    return {"jitter_p50": p50, "jitter_p99": p99}


def log_statistics(stats: MediaStatistics) -> None:
    """Log ``media.statistics``: the counters and the clock's percentiles in milliseconds."""
    clock = stats.clock
    log.info(
        "media.statistics",
        streams=stats.streams,
        packets_sent=stats.packets_sent,
        packets_received=stats.packets_received,
        send_errors=stats.send_errors,
        drops=stats.drops,
        ticks=clock.ticks,
        resyncs=clock.resyncs,
        tick_p50_ms=round(clock.tick_p50 * 1000, 3),
        tick_p99_ms=round(clock.tick_p99 * 1000, 3),
        tick_max_ms=round(clock.tick_max * 1000, 3),
        lateness_p50_ms=round(clock.lateness_p50 * 1000, 3),
        lateness_p99_ms=round(clock.lateness_p99 * 1000, 3),
    )


def drops_of(stream: MediaStream) -> dict[str, int]:
    """The stream's dropped packets by reason, with those too late for the reorder buffer."""
    late = stream.late_packets
    return {**stream.drops, "late": late} if late else stream.drops
