"""RTP port allocation over the configured range.

RFC 3550 §11: RTP uses an even port and RTCP the next odd one. Ports are handed out round
robin, so a port just released is the last to be reused and stray packets of an ended call
do not land in a new one. A port the operating system refuses (taken by another program) is
reported back with ``refused`` and skipped until the allocator comes round again; the caller
may also jump ahead, since another program's ports come in runs (it hands them out in order
too) and trying the next port of such a run would only be refused again.
"""

from __future__ import annotations

from collections import deque

__all__ = ["PortsExhausted", "RtpPortAllocator"]


class PortsExhausted(Exception):
    """Every even port of the RTP range is in use."""


class RtpPortAllocator:
    """Hands out even RTP ports (RTCP on port + 1) from ``[low, high]``, round robin."""

    def __init__(self, low: int, high: int) -> None:
        start = low + (low % 2)
        # The RTCP port (+1) must stay inside the range too.
        self._free: deque[int] = deque(range(start, high, 2))
        self._in_use: set[int] = set()
        self.capacity = len(self._free)

    def rotate(self, offset: int) -> None:
        """Start handing out ports ``offset`` places into the range (processes sharing a range
        then start apart instead of racing for the same first port)."""
        self._free.rotate(-offset)

    def allocate(self) -> int:
        """Take the least recently used free even port.

        Raises:
            PortsExhausted: every port of the range is in use.
        """
        if not self._free:
            raise PortsExhausted(f"all {self.capacity} RTP ports are in use")
        port = self._free.popleft()
        self._in_use.add(port)
        return port

    def release(self, port: int) -> None:
        """Give ``port`` back; it goes to the end of the queue. Releasing twice is harmless."""
        if port in self._in_use:
            self._in_use.remove(port)
            self._free.append(port)

    def refused(self, port: int, skip: int = 0) -> None:
        """``port`` could not be bound: put it back at the end, then pass over ``skip`` more
        free ports (they go to the end too) before the caller tries another."""
        self.release(port)
        self._free.rotate(-skip)

    @property
    def in_use(self) -> int:
        """How many ports are allocated now."""
        return len(self._in_use)
