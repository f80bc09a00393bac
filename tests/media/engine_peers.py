"""Shared pieces of the engine tests: an event sink, a peer socket, port ranges and waits.

Engines run on random RTP port ranges below the kernel's ephemeral range on 127.0.0.1 (the
engine skips ports already taken, as tests run in parallel); every wait is bounded by the
caller's ``asyncio.timeout``.
"""

from __future__ import annotations

import asyncio
import errno
import random
import socket
from collections.abc import Callable

from callserver.media import g711
from callserver.media.events import MediaEvent
from callserver.media.negotiated import StreamConfig
from callserver.media.rtp import RtpPacket
from callserver.media.settings import MediaSettings
from callserver.media.stream import MediaStream

HOST = "127.0.0.1"
WAIT = 5.0


class Sink:
    """Collects the engine's events and lets a test wait for one kind."""

    def __init__(self) -> None:
        self.events: list[MediaEvent] = []
        self._changed = asyncio.Event()

    def __call__(self, event: MediaEvent) -> None:
        self.events.append(event)
        self._changed.set()

    def of(self, kind: type) -> list[MediaEvent]:
        """The events of ``kind`` so far."""
        return [e for e in self.events if isinstance(e, kind)]

    async def wait_for(self, kind: type) -> MediaEvent:
        """The first event of ``kind``, waiting for it if need be."""
        while not self.of(kind):
            self._changed.clear()
            await self._changed.wait()
        return self.of(kind)[0]


class Peer:
    """A test socket playing the far end of a stream."""

    def __init__(self, host: str = HOST, port: int = 0) -> None:
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self.host = host
        self.sock = socket.socket(family, socket.SOCK_DGRAM)
        self.sock.bind((host, port))
        self.sock.setblocking(False)
        self.address: tuple[str, int] = self.sock.getsockname()[:2]
        self.seq = 0

    def config(
        self, codec: str = "PCMU", te: int | None = 101, *, rtcp_mux: bool = False
    ) -> StreamConfig:
        """The negotiated stream towards this socket."""
        return StreamConfig(
            codec=codec,
            payload_type=g711.PAYLOAD_TYPES[codec],
            telephone_event_pt=te,
            remote_host=self.host,
            remote_port=self.address[1],
            rtcp_mux=rtcp_mux,
        )

    def send(self, stream: MediaStream, payload: bytes, pt: int = 0) -> None:
        """One RTP packet carrying ``payload`` to the stream's port."""
        self.seq += 1
        packet = RtpPacket(
            payload_type=pt, sequence_number=self.seq, timestamp=160 * self.seq, ssrc=0x1234,
            payload=payload,
        )  # fmt: skip
        self.sock.sendto(packet.serialize(), (self.host, stream.port))

    async def send_paced(self, stream: MediaStream, payload: bytes, pt: int = 0) -> None:
        """``payload`` in 20 ms packets, one every 20 ms as a phone would send them."""
        for at in range(0, len(payload), 160):
            self.send(stream, payload[at : at + 160], pt)
            await asyncio.sleep(0.02)

    async def receive(self) -> RtpPacket:
        """The next RTP packet that arrives (RTCP is sent to port + 1, never here)."""
        data = await asyncio.get_running_loop().sock_recv(self.sock, 2048)
        return RtpPacket.parse(data)

    async def receive_until(self, done: Callable[[list[RtpPacket]], bool]) -> list[RtpPacket]:
        """Packets until ``done(packets)`` holds."""
        packets: list[RtpPacket] = []
        while not done(packets):
            packets.append(await self.receive())
        return packets

    def close(self) -> None:
        """Close the socket."""
        self.sock.close()


def port_range(span: int = 200) -> tuple[int, int]:
    """A random even-started range of ``span`` ports below the ephemeral range."""
    low = random.randrange(12000, 32000 - span, 2)
    return low, low + span


def free_port_pair() -> int:
    """An even port that, with the next one, can be bound now."""
    while True:
        port = random.randrange(12000, 32000, 2)
        socks = [socket.socket(socket.AF_INET, socket.SOCK_DGRAM) for _ in range(2)]
        try:
            for offset, sock in enumerate(socks):
                sock.bind((HOST, port + offset))
            return port
        except OSError:
            continue
        finally:
            for sock in socks:
                sock.close()


def settings_for(low: int, high: int, **overrides: object) -> MediaSettings:
    """Media settings with the given port range (ptime 20)."""
    return MediaSettings(rtp_port_min=low, rtp_port_max=high, ptime=20, **overrides)


def can_bind(port: int) -> bool:
    """Whether the test can bind ``port`` on 127.0.0.1 now."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        try:
            sock.bind((HOST, port))
        except OSError as exc:
            assert exc.errno == errno.EADDRINUSE
            return False
        return True


async def wait_until(check: Callable[[], bool]) -> None:
    """Poll ``check`` every 10 ms until it holds (the caller bounds the wait)."""
    while True:
        if check():
            return
        await asyncio.sleep(0.01)
