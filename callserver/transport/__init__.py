"""The asyncio transports: the only owners of SIP sockets (bytes in, bytes out, no SIP logic)."""

from callserver.transport.tcp import StreamHandler, TcpStatistics, TcpTransport
from callserver.transport.udp import DatagramHandler, UdpStatistics, UdpTransport

__all__ = [
    "DatagramHandler",
    "StreamHandler",
    "TcpStatistics",
    "TcpTransport",
    "UdpStatistics",
    "UdpTransport",
]
