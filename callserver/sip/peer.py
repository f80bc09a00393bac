"""Where a SIP message came from or goes to: transport, address, connection (RFC 3261 §18)."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Peer"]


@dataclass(frozen=True, slots=True)
class Peer:
    """Where a message came from or goes to.

    ``transport`` is ``"udp"``, ``"tcp"`` or ``"tls"``; ``conn_id`` names the stream connection
    a message arrived on (None for datagrams), so responses go back over the same connection
    (RFC 3261 §18.2.2).
    """

    transport: str
    host: str
    port: int
    conn_id: int | None = None

    @property
    def reliable(self) -> bool:
        """True for stream transports, where the transaction layer does not retransmit."""
        return self.transport != "udp"
