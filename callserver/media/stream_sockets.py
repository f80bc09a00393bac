"""A stream's two sockets: an even RTP port, and RTCP on port + 1 (RFC 3550 §11).

``bind_port_pair`` takes ports from the allocator until a pair binds: a port another program
holds (EADDRINUSE) is reported back as refused and a port at a random place further on is tried
next (another program's ports come in runs: the next port would be refused too), a bounded
number of times; any other error releases the port and is raised. ``StreamSockets`` is what
the engine keeps of an open stream: the stream and both sockets. ``StreamTable`` holds them
all: the port allocator, the two socket sets the event loop watches (RTP and RTCP), and the
open streams by id, which the engine's per-packet paths read directly.
"""

from __future__ import annotations

import errno
import random
import socket
from collections.abc import Callable

from callserver.media.ports import PortsExhausted, RtpPortAllocator
from callserver.media.rtpio import RtpSockets
from callserver.media.settings import MediaSettings
from callserver.media.stream import MediaStream

__all__ = ["StreamSockets", "StreamTable", "bind_port_pair"]

_BIND_ATTEMPTS = 64


class StreamSockets:
    """An open stream with its RTP and RTCP sockets."""

    __slots__ = ("rtcp", "rtp", "stream")

    def __init__(self, stream: MediaStream, rtp: socket.socket, rtcp: socket.socket) -> None:
        self.stream = stream
        self.rtp = rtp
        self.rtcp = rtcp


class StreamTable:
    """The open streams, their sockets and ports (see the module docstring)."""

    def __init__(
        self, settings: MediaSettings, bind_host: str, sockets: Callable[[], RtpSockets]
    ) -> None:
        self.settings = settings
        self.bind_host = bind_host
        self.family = socket.AF_INET6 if ":" in bind_host else socket.AF_INET
        self.ports = RtpPortAllocator(settings.rtp_port_min, settings.rtp_port_max)
        self.ports.rotate(random.randrange(self.ports.capacity or 1))
        self.entries: dict[int, StreamSockets] = {}
        self.streams: dict[int, MediaStream] = {}  # the same streams, for the per-packet paths
        self.rtp_io = sockets()
        self.rtcp_io = sockets()
        self.random = random.SystemRandom()
        self._ids = 0

    def open(self) -> MediaStream:
        """Allocate an even RTP port (RTCP on + 1), bind both sockets and watch them.

        Raises:
            PortsExhausted: no free port pair in the configured range could be bound.
            OSError: a socket set could not take the sockets (e.g. epoll's limit).
        """
        port, rtp, rtcp = bind_port_pair(self.ports, self.family, self.bind_host)
        try:
            return self._register(port, rtp, rtcp)
        except OSError:
            rtp.close()
            rtcp.close()
            self.ports.release(port)
            raise

    def _register(self, port: int, rtp: socket.socket, rtcp: socket.socket) -> MediaStream:
        self._ids += 1
        rng, settings = self.random, self.settings
        stream = MediaStream(
            self._ids,
            port,
            ssrc=rng.getrandbits(32),  # RFC 3550 §8.1: random SSRC, sequence and timestamp
            sequence=rng.getrandbits(16),
            timestamp=rng.getrandbits(32),
            ptime=settings.ptime,
            symmetric=settings.symmetric_rtp,
            reorder_depth=settings.reorder_packets,
            dtmf_max_event=settings.dtmf_max_event,
        )
        sid = stream.stream_id
        self.rtp_io.register(rtp, sid)
        try:
            self.rtcp_io.register(rtcp, sid)
        except OSError:
            self.rtp_io.unregister(sid)
            raise
        self.entries[sid] = StreamSockets(stream, rtp, rtcp)
        self.streams[sid] = stream
        return stream

    def close(self, stream: MediaStream) -> bool:
        """Stop watching ``stream``'s sockets, close them, release its port; False if it was
        not open."""
        entry = self.entries.pop(stream.stream_id, None)
        if entry is None:
            return False
        del self.streams[stream.stream_id]
        self.rtp_io.unregister(stream.stream_id)
        self.rtcp_io.unregister(stream.stream_id)
        entry.rtp.close()
        entry.rtcp.close()
        self.ports.release(stream.port)
        return True


def bind_port_pair(
    ports: RtpPortAllocator,
    family: socket.AddressFamily,
    host: str,
    jump: Callable[[int], int] = random.randrange,
) -> tuple[int, socket.socket, socket.socket]:
    """Allocate an even RTP port and bind non-blocking UDP sockets to it and to port + 1.

    ``jump(n)`` picks how many free ports (below ``n``) to pass over after a refused one.

    Returns:
        The RTP port, its socket and the RTCP socket; the port stays allocated.

    Raises:
        PortsExhausted: no free port pair in the allocator's range could be bound.
        OSError: binding failed for another reason than the port being in use.
    """
    for _ in range(_BIND_ATTEMPTS):
        port = ports.allocate()
        try:
            rtp = _bind(family, host, port)
            try:
                rtcp = _bind(family, host, port + 1)
            except OSError:
                rtp.close()
                raise
        except OSError as exc:
            if exc.errno != errno.EADDRINUSE:
                ports.release(port)
                raise
            ports.refused(port, jump(ports.capacity))
            continue
        return port, rtp, rtcp
    raise PortsExhausted(f"no bindable RTP port pair after {_BIND_ATTEMPTS} attempts")


def _bind(family: socket.AddressFamily, host: str, port: int) -> socket.socket:
    sock = socket.socket(family, socket.SOCK_DGRAM)
    try:
        sock.setblocking(False)
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    return sock
