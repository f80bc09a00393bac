"""SDP offer/answer of an inbound call (RFC 3264, carried as RFC 3261 §13.2.1 and §14 say).

An INVITE or re-INVITE with an offer gets our answer in the 2xx (``answer``), the operator's
codecs in order. One without a body asks us to offer: a late (delayed) offer, as PBXs and SBCs
send. Our 2xx then carries our offer (``offer``), every codec of the operator with
telephone-event, and the caller's answer arrives in the ACK (``take_answer``): "If the initial
offer is in the first reliable non-failure message from the UAS back to the UAC, the answer MUST
be in the acknowledgement for that message" (§13.2.1). Until that ACK the stream is open (its
port is in our offer) but not configured: nothing is sent, nothing times out. Without reliable
provisional responses (RFC 3262) there is no message before the 2xx that could carry our
offer, so such a call has no early media.

Every SDP we send in a dialog keeps the ``o=`` session id, its version one up from the last
(RFC 3264 §8).
"""

from __future__ import annotations

from callserver.calls.call import Call, answer_from_ack, answer_sdp
from callserver.calls.services import CallServices
from callserver.media.negotiated import StreamConfig
from callserver.sip.offer_answer import AnswerConfig, build_offer
from callserver.sip.sdp import SdpError
from callserver.sip.transaction_key import TransactionKey

__all__ = ["Negotiation"]


class Negotiation:
    """Offers, answers and answers taken from ACKs for the inbound calls."""

    def __init__(self, services: CallServices) -> None:
        self.services = services

    def _config(self, call: Call) -> AnswerConfig:
        assert call.stream is not None
        # RFC 3264 §8: same o= session, version + 1
        return self.services.answer_config(call.stream.port, call.sdp_session, call.sdp_version)

    def answer(self, call: Call, offer_body: bytes) -> tuple[bytes, StreamConfig] | None:
        """Our SDP answer to ``offer_body`` and its stream config; None: no usable offer.

        See RFC 3264 §6. An offer we cannot read is logged as ``call.bad_sdp``.
        """
        return answer_sdp(offer_body, self._config(call), call.log)

    def offer(self, call: Call) -> bytes:
        """Our offer for the 2xx to a request without one (RFC 3261 §13.2.1, §14.2).

        It stays on the call until the ACK brings the answer (``take_answer``).
        """
        call.offer = build_offer(self._config(call))
        return call.offer.to_bytes()

    def reinvited(self, call: Call, key: TransactionKey | None, body: bytes, now: float) -> None:
        """Answer a re-INVITE of an unbridged call: hold/unhold, a new address or codec, a
        session refresh; without SDP our offer goes in the 2xx (RFC 3261 §14.2)."""
        services = self.services
        call.sdp_version += 1
        if not body and call.stream is not None:
            services.endpoint.respond(key, 200, now, body=self.offer(call))
            return
        answer = self.answer(call, body) if body else None
        if body and answer is None:
            services.endpoint.respond(key, 488, now)
            return
        if answer is not None and call.stream is not None:
            services.media.configure(call.stream, answer[1])
            call.log.info("call.media_updated", direction=answer[1].direction)
        services.endpoint.respond(key, 200, now, body=answer[0] if answer else b"")

    def take_answer(self, call: Call, body: bytes) -> bool:
        """Apply the answer an ACK carries to our offer; False when it brings none we can use.

        A usable answer configures the stream (RFC 3264 §7: we send the first codec of the
        answer and take any of them). Either way the offer is settled: a later ACK or
        re-INVITE starts afresh. See RFC 3261 §13.2.1.
        """
        offer, call.offer = call.offer, None
        assert offer is not None and call.stream is not None
        try:
            config = answer_from_ack(offer, body)
        except SdpError as exc:  # NoCommonCodec included: every stream rejected
            call.log.warning("call.bad_answer", error=str(exc) if body else "the ACK has no SDP")
            return False
        call.answer = (offer.to_bytes(), config)
        self.services.media.configure(call.stream, config)
        call.log.info("call.media_negotiated", codec=config.codec, direction=config.direction)
        return True
