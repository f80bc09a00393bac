"""In-dialog requests on both legs of a forwarded call: hold, new offers, UPDATE, INFO, digits.

Theory of operation
-------------------
A ``Bridge`` lives from the moment the forwarded leg's 2xx bridges the two streams until
either leg ends (``b2bua.Forwarder`` opens and closes it through ``bridges.Bridges``). Each leg is a
``Side``: its dialog, its stream and the ``o=`` line of the SDP we send on it. Every request
inside either dialog that the endpoint does not answer itself (it answers BYE, OPTIONS and a
bodiless UPDATE, RFC 4028's refresh) comes here and is answered on its own leg. Nothing is
passed to the other leg, so each leg keeps its own session timer and its own SDP:

- a re-INVITE or an UPDATE with an offer (RFC 3261 §14.2, RFC 3311 §5.2) gets our answer in
  the 2xx and the stream follows it (address, codec, direction); an offer we cannot take gets
  488 and the session stays as it was ("the UAS MUST ... keep the old session description");
- a re-INVITE without a body gets our offer in the 2xx and the answer is taken from the ACK
  (RFC 3261 §14.2, §13.2.1); an ACK without a usable answer leaves the session as it was;
- an INFO with a DTMF body (``application/dtmf-relay``, ``application/dtmf``) gets 200 and the
  digit goes to the other leg like an RFC 4733 one: in the form that leg negotiated (the media
  engine: RFC 4733 events, else an in-band tone), or as an INFO when we may not send it RTP.

Hold (RFC 3264 §8.4): a leg whose last SDP leaves us ``recvonly`` or ``inactive`` (its party
offered ``sendonly``/``inactive`` or ``c=0.0.0.0``) holds the other party, who hears the
music on hold (``media.hold_music``: the files of ``prompts/moh/`` in turn), looped, instead of
the holder's audio, until the holder offers ``sendrecv`` again and relaying resumes. Either
side may hold, both at once too. Neither leg's RTP timeout runs while it is held or holding:
the holder sends no RTP, and a held phone may fall silent too (``MediaStream.check_timeout``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from callserver.calls.call import Call, answer_from_ack, answer_sdp
from callserver.calls.services import CallServices
from callserver.media.dtmf_info import build_dtmf_info, parse_dtmf_info
from callserver.media.events import DtmfReceived
from callserver.media.negotiated import StreamConfig
from callserver.media.stream import MediaStream
from callserver.sip.dialog import DialogId
from callserver.sip.events import DialogConfirmed, RequestReceived
from callserver.sip.offer_answer import AnswerConfig, build_offer
from callserver.sip.sdp import SdpError, SessionDescription
from callserver.sip.transaction_key import TransactionKey

__all__ = ["Bridge", "Side", "bridge_of"]

_HOLDING = ("recvonly", "inactive")  # our direction towards a party that holds the other
_INFO_DIGIT_MS = 100  # as long as the tone the media engine plays for a digit


@dataclass(slots=True, kw_only=True)
class Side:
    """One leg of a bridge as its in-dialog requests see it."""

    leg: str  # "a" (the caller's) or "b" (the forwarded one), as in the CDR
    dialog_id: DialogId
    stream: MediaStream
    session_id: int  # our o= line on this leg (RFC 3264 §8: the id stays, the version grows)
    version: int
    offer: SessionDescription | None = None  # our offer in a 2xx; its answer comes in the ACK
    music: str | None = None  # the codec of the hold music playing to this side's party


class Bridge:
    """The two sides of one forwarded call; see the module docstring."""

    def __init__(
        self, services: CallServices, a: Side, b: Side, *, language: str, log: Any
    ) -> None:
        self.services = services
        self.a, self.b = a, b
        self.language = language
        self.log = log

    def other(self, side: Side) -> Side:
        """The side across the bridge from ``side``."""
        return self.b if side is self.a else self.a

    def handle_request(self, side: Side, event: RequestReceived, now: float) -> None:
        """Answer a request inside ``side``'s dialog: INVITE, UPDATE with an offer, or INFO."""
        request = event.request
        if event.key is None:
            return
        if request.method == "INFO":
            self._info(side, event, now)
        elif request.method in ("INVITE", "UPDATE") and request.body:
            self._answer(side, event, now)
        elif request.method == "INVITE":
            self._offer(side, event.key, now)
        else:  # an UPDATE without an offer (RFC 3311 §5.2): 200, no body
            self.services.endpoint.respond(event.key, 200, now)
        self.services.wake()

    def acknowledged(self, side: Side, event: DialogConfirmed) -> bool:
        """The ACK of a re-INVITE came: when we offered in its 2xx, it holds the answer."""
        offer, side.offer = side.offer, None
        if offer is None:
            return False
        try:
            config = answer_from_ack(offer, event.body)
        except SdpError as exc:  # no or a bad answer: the session stays as it was
            self.log.warning("call.bad_ack_answer", leg=side.leg, error=str(exc))
            return True
        self._apply(side, config)
        return True

    def digit(self, side: Side, event: DtmfReceived) -> None:
        """A digit came from ``side``'s party: an INFO to the other when it takes no RTP.

        The media engine passes it on in every other case (``MediaStream.report_digit``).
        """
        other = self.other(side)
        if other.stream.dtmf_form != "info":
            return
        endpoint = self.services.endpoint
        dialog = endpoint.dialogs.get(other.dialog_id)
        if dialog is None:
            return
        if dialog.remote_allow and "INFO" not in dialog.remote_allow:
            self.log.info("call.dtmf_not_passed", leg=other.leg, digit=event.digit)
            return
        content_type, body = build_dtmf_info(event.digit, _INFO_DIGIT_MS)
        now = self.services.now()
        endpoint.send_in_dialog(dialog, "INFO", now, body=body, content_type=content_type)
        self.services.wake()

    def update_hold(self) -> None:
        """Hold music to each party the other side holds; relaying to each it no longer holds."""
        for side in (self.a, self.b):
            config = self.other(side).stream.config
            held = config is not None and config.direction in _HOLDING
            codec = side.stream.codec
            if held and side.music != codec:
                music = self.services.live.music
                payload = b"" if music is None else music.encoded(codec)
                self.services.media.hold(side.stream, payload)
                side.music = codec
                self.log.info("call.held", leg=side.leg, by=self.other(side).leg)
            elif not held and side.music is not None:
                self.services.media.resume(side.stream)
                side.music = None
                self.log.info("call.resumed", leg=side.leg)

    def close(self) -> None:
        """The bridge is over: a party still held hears relaying (or its plan) again."""
        for side in (self.a, self.b):
            if side.music is not None and self.services.media.is_open(side.stream):
                self.services.media.resume(side.stream)
            side.music = None

    # -- offers --------------------------------------------------------------------------

    def _answer(self, side: Side, event: RequestReceived, now: float) -> None:
        """RFC 3261 §14.2, RFC 3311 §5.2: the 2xx carries our answer to the offer."""
        assert event.key is not None
        config = self._sdp_config(side, side.version + 1)
        answer = answer_sdp(event.request.body, config, self.log)
        if answer is None:
            self.services.endpoint.respond(event.key, 488, now)
            return
        side.version += 1
        self.services.endpoint.respond(event.key, 200, now, body=answer[0])
        self._apply(side, answer[1])

    def _offer(self, side: Side, key: TransactionKey | None, now: float) -> None:
        """A re-INVITE without an offer: ours goes in the 2xx (RFC 3261 §14.2)."""
        side.version += 1
        side.offer = build_offer(self._sdp_config(side, side.version))
        self.services.endpoint.respond(key, 200, now, body=side.offer.to_bytes())

    def _apply(self, side: Side, config: StreamConfig) -> None:
        self.services.media.configure(side.stream, config)
        self.log.info("call.media_updated", leg=side.leg, direction=config.direction)
        self.update_hold()

    def _sdp_config(self, side: Side, version: int) -> AnswerConfig:
        return self.services.answer_config(side.stream.port, side.session_id, version)

    def _info(self, side: Side, event: RequestReceived, now: float) -> None:
        assert event.key is not None
        request = event.request
        found = parse_dtmf_info(request.headers.get("Content-Type") or "", request.body)
        if found is not None:
            self.services.media.report_digit(side.stream, found[0], "info")
        self.services.endpoint.respond(event.key, 200, now)


def bridge_of(
    services: CallServices,
    call: Call,
    dialog_id: DialogId,
    stream: MediaStream,
    version: int = 1,
) -> Bridge:
    """The bridge between an answered ``call`` and its forwarded leg (``dialog_id``, ``stream``),
    whose o= session is the stream's id at ``version`` (1: our offer so far)."""
    assert call.stream is not None and call.dialog_id is not None
    a = Side(
        leg="a",
        dialog_id=call.dialog_id,
        stream=call.stream,
        session_id=call.sdp_session,
        version=call.sdp_version,
    )
    b = Side(
        leg="b", dialog_id=dialog_id, stream=stream, session_id=stream.stream_id, version=version
    )
    default = services.live.settings.media.default_language
    language = call.session.language if call.session else default
    return Bridge(services, a, b, language=language, log=call.log)
