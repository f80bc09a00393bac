"""Each stream's once-a-second housekeeping, spread over the ticks of the second.

A stream is served on the ticks of its bucket (its id modulo the ticks in a second), so the
work is spread over the second instead of lengthening one tick in 50. Its turn checks RTP
inactivity, expires a DTMF event whose end never came, and sends an RTCP report when one is
due (RFC 3550 §6.2: the recommended minimum interval, randomised from 0.5 to 1.5 times it). A
clock resync may jump the tick number past a bucket: every bucket since the last tick's is
served then.
"""

from __future__ import annotations

from collections.abc import Callable

from callserver.media.stream import MediaStream

__all__ = ["Housekeeping"]

_HOUSEKEEPING_SECONDS = 1.0
_RTCP_INTERVAL = 5.0  # RFC 3550 §6.2: the recommended minimum interval


class _Kept:
    __slots__ = ("next_rtcp", "stream")

    def __init__(self, stream: MediaStream) -> None:
        self.stream = stream
        self.next_rtcp = 0.0


class Housekeeping:
    """The streams by bucket, served a bucket a tick; see the module docstring.

    Args:
        ptime: the clock's period in milliseconds.
        send_rtcp: sends the stream's RTCP report (``send_rtcp(stream, now)``).
        random: a uniform float in [0, 1), spreading the reports' intervals.
    """

    def __init__(
        self,
        ptime: int,
        send_rtcp: Callable[[MediaStream, float], None],
        random: Callable[[], float],
    ) -> None:
        self._every = max(1, round(_HOUSEKEEPING_SECONDS * 1000 / ptime))
        self._buckets: list[dict[int, _Kept]] = [{} for _ in range(self._every)]
        self._next = 0
        self._send_rtcp = send_rtcp
        self._random = random

    def add(self, stream: MediaStream) -> None:
        """Serve ``stream`` from its bucket's next tick on."""
        sid = stream.stream_id
        self._buckets[sid % self._every][sid] = _Kept(stream)

    def discard(self, stream: MediaStream) -> None:
        """Serve ``stream`` no more (it is closed)."""
        self._buckets[stream.stream_id % self._every].pop(stream.stream_id, None)

    def run(self, n: int, now: float, timeout: float) -> list[MediaStream]:
        """Serve the buckets of the ticks since the last run, up to tick ``n``.

        Returns:
            The streams served that have events to report (a timeout, a digit expired).
        """
        first = max(self._next, n - self._every + 1)
        self._next = n + 1
        reported = []
        for k in range(first, n + 1):
            for kept in self._buckets[k % self._every].values():
                stream = kept.stream
                stream.check_timeout(now, timeout)
                stream.expire_dtmf(now)
                if now >= kept.next_rtcp and stream.remote is not None:
                    kept.next_rtcp = now + _RTCP_INTERVAL * (0.5 + self._random())
                    self._send_rtcp(stream, now)
                if stream.events:
                    reported.append(stream)
        return reported
