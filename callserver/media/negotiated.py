"""The negotiated stream: what an SDP offer/answer (RFC 3264) agreed for one audio stream.

The calls layer builds it from the SIP layer's ``NegotiatedMedia``; the media engine only
ever sees this, so ``media`` does not depend on ``sip``.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["StreamConfig"]

_SENDING = frozenset({"sendrecv", "sendonly"})
_RECEIVING = frozenset({"sendrecv", "recvonly"})


@dataclass(frozen=True, slots=True, kw_only=True)
class StreamConfig:
    """The negotiated stream (RFC 3264): codec, DTMF payload type, peer address, direction.

    ``direction`` is ours: ``sendonly`` means we send and expect nothing (the peer holds us).
    """

    codec: str
    payload_type: int
    telephone_event_pt: int | None = None
    remote_host: str
    remote_port: int
    direction: str = "sendrecv"
    rtcp_mux: bool = False

    @property
    def sends(self) -> bool:
        """Whether we send RTP (RFC 3264 §5.1: not to a recvonly/inactive peer or to port 0)."""
        return self.direction in _SENDING and self.remote_port != 0

    @property
    def receives(self) -> bool:
        """Whether we expect RTP: the inactivity timeout is suspended when we do not (hold)."""
        return self.direction in _RECEIVING
