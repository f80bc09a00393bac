"""The softphone's RTP toward the call server: one loopback UDP socket per softphone.

The SIP agent answers the server's INVITE with this socket's port and the G.711 law it chose
(``start``); packets from the server in that payload type are decoded (``media.g711``) and
fed to the browser's track; the browser's samples are encoded and sent as RTP (RFC 3550 §5.1:
one SSRC for the socket's life, the sequence number and timestamp running on across calls,
the marker bit on a call's first packet). While the call is held (``sending`` False) nothing
is sent, as a phone on hold sends nothing (RFC 3264 §8.4: sendonly towards a party that holds
it is the server's to play music on).

Only the server's RTP is heard: a packet is taken only from the address the server's SDP names
(``start``'s ``remote``) or the server's own SIP address (``server_host``: a server with an
``advertised_address`` names that in its SDP, yet its media sockets on a wildcard reach this
loopback socket from loopback), and from the first port it sends from, which the leg latches
to (symmetric RTP, RFC 4961); a packet from anywhere else is dropped and counted
(``packets_foreign``). Between calls nothing is heard at all.
"""

from __future__ import annotations

import asyncio
import ipaddress
import secrets
from collections.abc import Callable

import numpy as np
import numpy.typing as npt

from callserver.media import g711
from callserver.media.rtp import build_header, peek_header, peek_payload, seq_add, ts_add

__all__ = ["RtpLeg"]

Samples = npt.NDArray[np.int16]


class _Protocol(asyncio.DatagramProtocol):
    def __init__(self, received: Callable[[bytes, tuple[str, int]], None]) -> None:
        self.received = received

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        self.received(data, addr)


class RtpLeg:
    """The RTP socket of one softphone (module docstring)."""

    def __init__(self, transport: asyncio.DatagramTransport, host: str, port: int) -> None:
        self._transport = transport
        self.host, self.port = host, port
        self._ssrc = secrets.randbits(32)
        self._seq = secrets.randbits(16)
        self._ts = secrets.randbits(32)
        self._codec: str | None = None
        self._remote: tuple[str, int] | None = None
        self._source: str | None = None  # the host the server's SDP names
        self._latched: tuple[str, int] | None = None  # the server's RTP source, once heard
        self._marker = False
        self.sending = False
        self.hear: Callable[[Samples], None] = lambda samples: None
        self.packets_in = 0
        self.packets_out = 0
        self.packets_foreign = 0  # from another source than the server's SDP names: dropped
        self.server_host: str | None = None  # the server's SIP address, heard from too

    @classmethod
    async def open(cls, host: str) -> RtpLeg:
        """A socket on ``host`` (a port the system picks)."""
        loop = asyncio.get_running_loop()
        legs: list[RtpLeg] = []
        transport, _ = await loop.create_datagram_endpoint(
            lambda: _Protocol(lambda data, addr: legs[0]._received(data, addr)),
            local_addr=(host, 0),
        )
        leg = cls(transport, host, transport.get_extra_info("sockname")[1])
        legs.append(leg)
        return leg

    def start(self, codec: str, remote: tuple[str, int]) -> None:
        """A call's media: ``codec`` ("PCMU" or "PCMA") to and from ``remote``."""
        g711.check_codec(codec)
        if remote != self._remote and not _unspecified(remote[0]):  # 0.0.0.0: a hold
            self._source, self._latched = remote[0], None
        self._codec, self._remote = codec, remote
        self._marker = self.sending = True

    def stop(self) -> None:
        """The call ended: nothing is sent or heard until the next ``start``."""
        self._codec, self._remote, self.sending = None, None, False
        self._source, self._latched = None, None

    def send(self, samples: Samples) -> None:
        """Send 160 samples to the call, unless there is none or it is held."""
        if self._codec is None or self._remote is None or not self.sending:
            return
        header = build_header(
            g711.PAYLOAD_TYPES[self._codec], self._marker, self._seq, self._ts, self._ssrc
        )
        self._marker = False
        self._seq, self._ts = seq_add(self._seq, 1), ts_add(self._ts, len(samples))
        self._transport.sendto(header + g711.encode(self._codec, samples), self._remote)
        self.packets_out += 1

    def close(self) -> None:
        """Close the socket."""
        self._transport.close()

    def _from_server(self, addr: tuple[str, int]) -> bool:
        """Whether ``addr`` is the server's RTP source: the SDP's host, from the port it
        first sent from (latched then)."""
        if self._source is None:
            return False
        source = (addr[0], addr[1])
        if self._latched is not None:
            return source == self._latched
        if not any(_same_host(source[0], h) for h in (self._source, self.server_host) if h):
            return False
        self._latched = source
        return True

    def _received(self, data: bytes, addr: tuple[str, int]) -> None:
        if self._codec is None:
            return
        if not self._from_server(addr):
            self.packets_foreign += 1
            return
        try:
            payload_type = peek_header(data)[0]
            payload = peek_payload(data)
        except ValueError:
            return
        if payload_type != g711.PAYLOAD_TYPES[self._codec] or not payload:
            return
        self.packets_in += 1
        self.hear(g711.decode(self._codec, payload))


def _same_host(a: str, b: str) -> bool:
    """Whether two addresses are one (``::1`` and ``0:0::1`` are); names compare as text."""
    try:
        return ipaddress.ip_address(a.split("%")[0]) == ipaddress.ip_address(b.split("%")[0])
    except ValueError:
        return a == b


def _unspecified(host: str) -> bool:
    """``0.0.0.0`` or ``::`` (RFC 2543 hold): no address to hear from."""
    try:
        return ipaddress.ip_address(host).is_unspecified
    except ValueError:
        return False
