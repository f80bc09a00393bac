"""Which packets belong to a stream: symmetric RTP latching and SSRC changes.

Symmetric RTP (RFC 4961): we send to the address the peer's packets come from, which is what
gets media through NAT. The first packet latches the stream; another source is accepted only
after the latched one has been silent for ``RELATCH_AFTER`` seconds (a NAT rebinding), so a
stray or spoofed packet cannot steal a live stream, unless it comes from the address the SDP
names: that is the peer's own. (Phones answering a forked call all send to the one port of
the leg; the loser's audio may come first and latch, the winner's then takes over at once.)
With latching off only the SDP address is accepted.

A source may change its SSRC (RFC 3550 §8.2: a restart, a transfer behind a B2BUA). The new
SSRC is accepted after ``SSRC_SWITCH_PACKETS`` consecutive packets, or at once when the old
one has gone quiet for ``SSRC_QUIET`` seconds; a lone packet of another SSRC in between is
dropped. Sans-IO: ``now`` and the time of the last accepted packet come in as arguments.
"""

from __future__ import annotations

__all__ = ["RELATCH_AFTER", "SSRC_QUIET", "SSRC_SWITCH_PACKETS", "Address", "SourceLatch"]

RELATCH_AFTER = 1.0
SSRC_QUIET = 0.2
SSRC_SWITCH_PACKETS = 3
Address = tuple[str, int] | tuple[str, int, int, int]


class SourceLatch:
    """The accepted source address and SSRC of one stream; see the module docstring."""

    __slots__ = (
        "_count",
        "address",
        "candidate",
        "latches",
        "sdp",
        "ssrc",
        "ssrc_changes",
        "symmetric",
    )

    def __init__(self, *, symmetric: bool) -> None:
        self.symmetric = symmetric
        self.sdp: tuple[str, int] | None = None
        self.address: Address | None = None
        self.ssrc: int | None = None
        self.latches = 0
        self.ssrc_changes = 0
        self.candidate: int | None = None
        self._count = 0

    def expect(self, host: str, port: int) -> None:
        """The SDP names a (new) peer address: forget the latch, learn the source again."""
        self.sdp = (host, port)
        self.address = None

    def accept_address(self, addr: Address, now: float, last_rx: float) -> bool:
        """Whether a packet from ``addr`` (not the latched address) is accepted and latched."""
        live = self.address is not None and now - last_rx < RELATCH_AFTER
        declared = self.sdp is not None and (addr[0], addr[1]) == self.sdp
        if (not self.symmetric or live) and not declared:
            return False
        self.address = addr
        self.latches += 1
        return True

    def keep_current(self) -> None:
        """A packet of the current SSRC arrived: a candidate's run of packets is broken."""
        self.candidate, self._count = None, 0

    def accept_ssrc(self, ssrc: int, now: float, last_rx: float) -> bool | None:
        """Whether a packet of ``ssrc`` (not the current SSRC) is accepted.

        Returns None when it is accepted as a change of SSRC: the caller resets what it keeps
        per source (statistics, reorder buffer).
        """
        if self.ssrc is None:
            self.ssrc = ssrc
            return True
        if ssrc == self.candidate:
            self._count += 1
        else:
            self.candidate, self._count = ssrc, 1
        if self._count < SSRC_SWITCH_PACKETS and now - last_rx < SSRC_QUIET:
            return False
        self.ssrc, self.candidate, self._count = ssrc, None, 0
        self.ssrc_changes += 1
        return None
