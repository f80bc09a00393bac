"""A stream's two sockets: an even RTP port, and RTCP on port + 1 (RFC 3550 §11).

``bind_port_pair`` takes ports from the allocator until a pair binds: a port another program
holds (EADDRINUSE) is reported back as refused and a port at a random place further on is tried
next (another program's ports come in runs: the next port would be refused too), a bounded
number of times; any other error releases the port and is raised. ``StreamSockets`` is what
the engine keeps of an open stream: the stream and both sockets.
"""

from __future__ import annotations

import errno
import random
import socket
from collections.abc import Callable

from callserver.media.ports import PortsExhausted, RtpPortAllocator
from callserver.media.stream import MediaStream

__all__ = ["StreamSockets", "bind_port_pair"]

_BIND_ATTEMPTS = 64


class StreamSockets:
    """An open stream with its RTP and RTCP sockets."""

    __slots__ = ("rtcp", "rtp", "stream")

    def __init__(self, stream: MediaStream, rtp: socket.socket, rtcp: socket.socket) -> None:
        self.stream = stream
        self.rtp = rtp
        self.rtcp = rtcp


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
