"""The asyncio transports: the only owners of SIP sockets (bytes in, bytes out, no SIP logic),
and the RFC 3263 resolver that finds where a SIP URI's requests go."""

from callserver.transport.locating import Target
from callserver.transport.resolver import ResolutionError, ResolverStatistics, SipResolver
from callserver.transport.tcp import StreamHandler, TcpStatistics, TcpTransport
from callserver.transport.udp import DatagramHandler, UdpStatistics, UdpTransport

__all__ = [
    "DatagramHandler",
    "ResolutionError",
    "ResolverStatistics",
    "SipResolver",
    "StreamHandler",
    "Target",
    "TcpStatistics",
    "TcpTransport",
    "UdpStatistics",
    "UdpTransport",
]
