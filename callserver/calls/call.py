"""A Call: one inbound leg from INVITE to teardown, and what its INVITE tells about it.

``Call`` is the calls layer's record of a leg (its signalling, media and state in one): its
transaction and dialog, its media stream, its channels, its CDR facts, its timers and, when a
dialplan runs it, its session and task. ``facts_of`` reads the CDR facts an INVITE brings:
Call-ID, caller (From, P-Asserted-Identity, Privacy: ``policy.caller``) and called number.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

from callserver.calls.admission import Admitted, Rejected
from callserver.calls.phase import CallPhase, check_transition
from callserver.calls.reporting import CallFacts
from callserver.calls.session import CallSession
from callserver.media.negotiated import StreamConfig
from callserver.media.settings import MediaSettings
from callserver.media.stream import MediaStream
from callserver.policy.caller import CallerId, caller_identity
from callserver.policy.caps import CreditTimer
from callserver.sip.dialog import DialogId
from callserver.sip.events import InviteRefused, RequestReceived
from callserver.sip.headers import parse_address
from callserver.sip.offer_answer import (
    AnswerConfig,
    NegotiatedMedia,
    NoCommonCodec,
    answer_offer,
    negotiated_from_answer,
)
from callserver.sip.sdp import SdpError, SessionDescription, parse_sdp
from callserver.sip.transaction_key import TransactionKey
from callserver.sip.uri import SipUri

__all__ = [
    "Call",
    "answer_config",
    "answer_from_ack",
    "answer_sdp",
    "caller_of",
    "dialog_of",
    "facts_of",
    "max_forwards_of",
    "refused_facts",
    "stream_config",
]


@dataclass(slots=True)
class Call:
    """One inbound call from INVITE to teardown."""

    call_id: str
    key: TransactionKey | None
    offered_at: float
    dialog_id: DialogId | None = None
    answered_at: float | None = None
    stream: MediaStream | None = None
    admitted: Admitted | None = None  # its trunk and channels, released once in _end
    facts: CallFacts | None = None  # what its CDR will say
    number_class: str | None = None
    cap: asyncio.TimerHandle | None = None  # the credit timer's next deadline on the loop
    credit: CreditTimer | None = None  # its cap and warning, armed at the answer
    warned: bool = False  # the warning prompt has played
    cause: str | None = None  # why we ended the call, when we did (e.g. rtp_timeout)
    sdp_session: int = 0
    sdp_version: int = 1
    answer: tuple[bytes, StreamConfig] | None = None  # our SDP answer and its stream config
    offer: SessionDescription | None = None  # our offer in a 2xx, until the ACK answers it
    max_forwards: int = 70  # the INVITE's, for the legs we forward (RFC 3261 §16.6)
    diversion: tuple[str, ...] = ()  # the INVITE's Diversion values (RFC 5806)
    history_info: tuple[str, ...] = ()  # and its History-Info values (RFC 7044)
    refusal: Rejected | None = None  # over a limit: announced, then refused with this
    session: CallSession | None = None  # when a dialplan runs the call
    task: asyncio.Task[None] | None = None  # the dialplan's task, cancelled in _end
    log: Any = None  # structlog logger bound to this call's call_id
    phase: CallPhase = CallPhase.OFFERED  # where it is (``calls.phase``)

    def enter(self, phase: CallPhase) -> None:
        """Move to ``phase``.

        Raises:
            CallPhaseError: the phase table does not allow the move (our own bug).
        """
        self.phase = check_transition(self.phase, phase)


def dialog_of(event: RequestReceived) -> DialogId:
    """The dialog (UAS side) an in-dialog request belongs to (RFC 3261 §12.2.2)."""
    request = event.request
    return DialogId(request.call_id(), request.to().tag or "", request.from_().tag or "")


def stream_config(media: NegotiatedMedia) -> StreamConfig:
    """The media engine's configuration of a negotiated SDP media line."""
    te = media.telephone_event
    return StreamConfig(
        codec=media.codec.name.upper(),
        payload_type=media.codec.payload_type,
        telephone_event_pt=None if te is None else te.payload_type,
        receive=tuple((codec.payload_type, codec.name.upper()) for codec in media.codecs),
        remote_host=media.remote_address,
        remote_port=media.remote_port,
        direction=media.direction,
        rtcp_mux=media.rtcp_mux,
    )


def answer_config(
    media: MediaSettings, address: str, port: int, session_id: int = 0, version: int = 0
) -> AnswerConfig:
    """What our SDP for a stream on ``port`` says: the operator's codecs and ptime, ``address``,
    and the ``o=`` line (RFC 3264 §8: the same session id, the version one up on a change)."""
    return AnswerConfig(
        codecs=tuple(media.codecs),
        address=address,
        port=port,
        session_id=session_id,
        session_version=version,
        ptime=media.ptime,
    )


def answer_sdp(
    offer_body: bytes, config: AnswerConfig, log: Any
) -> tuple[bytes, StreamConfig] | None:
    """Our SDP answer to ``offer_body`` and its stream config (RFC 3264 §6); None when the offer
    is unusable: no codec in common, or malformed (logged as ``call.bad_sdp``)."""
    try:
        answer = answer_offer(parse_sdp(offer_body), config)
    except NoCommonCodec:
        return None
    except SdpError as exc:
        log.info("call.bad_sdp", error=str(exc))
        return None
    return answer.sdp.to_bytes(), stream_config(answer.media)


def answer_from_ack(offer: SessionDescription, body: bytes) -> StreamConfig:
    """The stream config of the answer an ACK brings to the offer our 2xx carried (RFC 3261
    §13.2.1, §14.2; RFC 3264 §7: we send the answer's first codec and take any of them).

    Raises:
        SdpError: no answer, or none we can use (NoCommonCodec: every stream rejected).
    """
    return stream_config(negotiated_from_answer(offer, parse_sdp(body)))


def caller_of(event: RequestReceived) -> CallerId:
    """Who is calling: From, P-Asserted-Identity and Privacy (RFC 3261 §20.20, RFC 3325)."""
    request = event.request
    sender = request.from_()
    asserted = _asserted_user(request.headers.get("P-Asserted-Identity"))
    return caller_identity(
        sender.uri.user if isinstance(sender.uri, SipUri) else None,
        sender.display_name,
        asserted,
        request.headers.get("Privacy"),
    )


def max_forwards_of(event: RequestReceived) -> int:
    """The INVITE's Max-Forwards (RFC 3261 §20.22); 70 when absent or unreadable."""
    value = (event.request.headers.get("Max-Forwards") or "").strip()
    return min(int(value), 255) if value.isdigit() else 70


def facts_of(call_id: str, event: RequestReceived, caller: CallerId) -> CallFacts:
    """The CDR facts an INVITE brings: Call-ID, caller and called, arrival time."""
    uri = event.request.uri
    facts = CallFacts(
        call_id=call_id,
        caller=caller.raw,
        called=uri.user or "" if isinstance(uri, SipUri) else "",
        offered_at=event.rtime,
    )
    facts.caller_e164 = None if caller.e164 is None else caller.e164.lstrip("+")
    facts.caller_country = caller.country
    facts.linked_id = call_id  # the call-level id every leg of this call carries
    return facts


def refused_facts(event: InviteRefused) -> CallFacts:
    """The CDR facts of an INVITE overload control refused: only what it carries as it came.

    No caller identity, trunk or number lookup: a refusal under overload must stay cheap.
    """
    request = event.request
    sender, uri = request.from_().uri, request.uri
    facts = CallFacts(
        call_id=request.call_id(),
        caller=sender.user or "" if isinstance(sender, SipUri) else "",
        called=uri.user or "" if isinstance(uri, SipUri) else "",
        offered_at=event.rtime,
    )
    facts.linked_id = facts.call_id
    return facts


def _asserted_user(value: str | None) -> str | None:
    """The user part of the first P-Asserted-Identity (``sip:`` or ``tel:``, RFC 3325 §9.1)."""
    if not value:
        return None
    try:
        uri = parse_address(value.split(",", 1)[0].strip()).uri
    except ValueError:  # SipParseError: a junk header asserts nothing
        return None
    if isinstance(uri, SipUri):
        return uri.user
    return uri.opaque.split(";", 1)[0] if uri.scheme.lower() == "tel" else None
