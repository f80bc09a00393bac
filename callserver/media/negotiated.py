"""The negotiated stream: what an SDP offer/answer (RFC 3264) agreed for one audio stream.

The calls layer builds it from the SIP layer's ``NegotiatedMedia``; the media engine only
ever sees this, so ``media`` does not depend on ``sip``.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["StreamConfig"]

_SENDING = frozenset({"sendrecv", "sendonly"})


@dataclass(frozen=True, slots=True, kw_only=True)
class StreamConfig:
    """The negotiated stream (RFC 3264): codec, DTMF payload type, peer address, direction.

    ``codec``/``payload_type`` is what we send. ``receive`` lists every audio payload type the
    peer may send with its codec: any format of the answer (RFC 3264 §6.1, §7), so a caller
    that offered ``0 8`` and was answered ``8 0`` may go on sending PCMU. Empty means only
    ``payload_type``. ``direction`` is ours, as in our answer: ``recvonly`` when the peer
    holds us with ``sendonly`` (it may send music on hold, or nothing), ``sendonly`` when it
    offered ``recvonly``, ``inactive`` when neither side sends (RFC 3264 §6.1, §8.4).
    """

    codec: str
    payload_type: int
    telephone_event_pt: int | None = None
    receive: tuple[tuple[int, str], ...] = ()
    remote_host: str
    remote_port: int
    direction: str = "sendrecv"
    rtcp_mux: bool = False

    @property
    def sends(self) -> bool:
        """Whether we send RTP (RFC 3264 §5.1: not to a recvonly/inactive peer or to port 0)."""
        return self.direction in _SENDING and self.remote_port != 0

    @property
    def on_hold(self) -> bool:
        """Whether either side holds the stream (any direction but sendrecv).

        A holding peer may send nothing at all, so the RTP inactivity timeout is suspended.
        """
        return self.direction != "sendrecv"
