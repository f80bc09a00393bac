"""The softphone's one call: ringing, answered, held, transferred, ended (RFC 3261 §13-15,
RFC 3264 §8.4 hold, RFC 3515 REFER).

Theory of operation
-------------------
An INVITE from the call server (a queue's ring, a call to the agent's number) rings the
softphone when it has no call: 180 Ringing, and ``CallOffered`` to the browser with the
caller as the INVITE's From shows it (a queue's ``display`` prefix in the display name) and
its Alert-Info and Call-Info. With a call already, 486 Busy Here (the queue counts it as a
ring not answered). An offer without PCMU or PCMA gets 488 (RFC 3264 §6).

``answer`` sends 200 with the SDP answer (the first G.711 law of the offer, the RTP socket's
port) and starts the RTP; the browser hears ``talking`` when the ACK confirms the dialog
(RFC 3261 §13.3.1.4); ``hang_up`` rejects a
ringing call (603 Decline) or sends BYE; ``hold`` re-INVITEs with ``a=sendonly``
(``sendrecv`` to resume), upon which the server plays its music on hold to the other party
(refused, the call stays as it was: RFC 3261 §14.1);
``transfer`` sends REFER with ``Refer-To`` the target
(an extension or a number, RFC 5589 §6 blind transfer) and follows the NOTIFYs: the server
ends our leg with BYE once the target answered, and a failed transfer leaves the call as it
was. CANCEL (the caller hung up, another agent answered), BYE and every other end of the
dialog end the call: ``CallChanged`` ``ended``.

Re-INVITEs from the server are answered with our SDP in the direction RFC 3264 §6.1 asks
(``answer_direction``: ``sendonly`` while we hold, ``recvonly`` to a party that holds us);
NOTIFY and INFO with 200; other requests with 405 (RFC 3261 §8.2.1).
"""

from __future__ import annotations

import contextlib
import secrets
from collections.abc import Callable
from dataclasses import dataclass

import structlog

from callserver.media import g711
from callserver.sip.dialog import DialogId
from callserver.sip.endpoint import SipEndpoint
from callserver.sip.errors import LocalProtocolError
from callserver.sip.events import (
    DialogConfirmed,
    DialogTerminated,
    InviteCancelled,
    Peer,
    RequestReceived,
    ResponseReceived,
    SipEvent,
)
from callserver.sip.message import Request
from callserver.sip.sdp import MediaDescription, Origin, SdpError, SessionDescription, parse_sdp
from callserver.sip.transaction import TransactionKey
from callserver.softphone.events import AgentEvent, CallChanged, CallOffered
from callserver.softphone.rtp_leg import RtpLeg

__all__ = ["AgentCall", "answer_direction", "refer_to"]

log = structlog.get_logger("callserver.softphone")


@dataclass(slots=True)
class _Call:
    call_id: str
    key: TransactionKey  # the INVITE's server transaction
    codec: str
    remote: tuple[str, int]
    dialog_id: DialogId | None = None
    state: str = "ringing"  # ringing, talking, held, transferring
    confirmed: bool = False  # our 2xx was ACKed
    version: int = 1  # our SDP's o= version (RFC 3264 §8: one more for each new offer)
    hold_key: TransactionKey | None = None
    refer_key: TransactionKey | None = None


class AgentCall:
    """The call of one softphone (module docstring); at most one at a time."""

    def __init__(
        self,
        endpoint: SipEndpoint,
        rtp: RtpLeg,
        server: Peer,
        tell: Callable[[AgentEvent], None],
        clock: Callable[[], float],
        wake: Callable[[], None],
    ) -> None:
        self.endpoint, self.rtp, self.server = endpoint, rtp, server
        self._tell, self._clock, self._wake = tell, clock, wake
        self._sess_id = secrets.randbits(31)
        self.current: _Call | None = None

    # -- the agent's requests -------------------------------------------------------------

    def answer(self) -> str | None:
        """Answer the ringing call; None, or why not."""
        call = self.current
        if call is None or call.state != "ringing":
            return "no call is ringing"
        call.dialog_id = self.endpoint.respond(
            call.key, 200, self._clock(), body=self._sdp(call, "sendrecv")
        )
        call.state = "talking"
        self.rtp.start(call.codec, call.remote)  # the browser is told once the ACK came
        self._wake()
        return None

    def hold(self, on: bool) -> str | None:
        """Hold the call (re-INVITE, sendonly) or resume it (sendrecv); None, or why not."""
        call = self.current
        wanted, now_in = ("talking", "held") if on else ("held", "talking")
        if call is None or call.state != wanted or call.dialog_id is None:
            return f"no call is {'answered' if on else 'held'}"
        if call.hold_key is not None:
            return "the last hold or resume is still being answered"
        dialog = self.endpoint.dialogs.get(call.dialog_id)
        if dialog is None:
            return "the call has ended"
        call.version += 1
        body = self._sdp(call, "sendonly" if on else "sendrecv")
        call.hold_key = self.endpoint.send_in_dialog(dialog, "INVITE", self._clock(), body=body)
        call.state = now_in
        self.rtp.sending = not on
        self._changed(call, now_in, "held" if on else "resumed")
        self._wake()
        return None

    def transfer(self, target: str) -> str | None:
        """Blind transfer to ``target`` (an extension or number); None, or why not."""
        call = self.current
        if call is None or call.state not in ("talking", "held") or call.dialog_id is None:
            return "no call is answered"
        target_uri = refer_to(target, self.server)
        if target_uri is None:
            return f"{target!r} is not an extension or a number"
        dialog = self.endpoint.dialogs.get(call.dialog_id)
        if dialog is None:
            return "the call has ended"
        call.refer_key = self.endpoint.send_in_dialog(
            dialog, "REFER", self._clock(), headers=(("Refer-To", target_uri),)
        )
        self._wake()
        return None

    def hang_up(self) -> str | None:
        """Decline the ringing call or end the answered one; None, or why not."""
        call = self.current
        if call is None:
            return "there is no call"
        now = self._clock()
        if call.state == "ringing":
            with contextlib.suppress(LocalProtocolError):  # cancelled meanwhile
                self.endpoint.respond(call.key, 603, now)
        elif call.dialog_id is not None:
            self.endpoint.bye(call.dialog_id, now)
        self._ended(call, "hung up by the agent")
        self._wake()
        return None

    # -- the endpoint's events ------------------------------------------------------------

    def handle(self, event: SipEvent) -> None:
        """One event of the softphone's endpoint (module docstring)."""
        call = self.current
        if isinstance(event, RequestReceived):
            self._request(event)
        elif isinstance(event, InviteCancelled) and call is not None and event.key == call.key:
            self._ended(call, "the caller hung up, or another agent answered")
        elif isinstance(event, DialogTerminated) and call is not None:
            if event.dialog_id == call.dialog_id:
                self._ended(call, f"the call ended ({event.reason})")
        elif isinstance(event, ResponseReceived) and call is not None:
            self._response(call, event)
        elif isinstance(event, DialogConfirmed) and call is not None:
            self._confirmed(call, event)

    def _confirmed(self, call: _Call, event: DialogConfirmed) -> None:
        """The ACK of our 2xx: the call is established (RFC 3261 §13.3.1.4)."""
        if event.dialog_id == call.dialog_id and not call.confirmed:
            call.confirmed = True
            self._changed(call, call.state, "answered")

    def _request(self, event: RequestReceived) -> None:
        request, now, key = event.request, self._clock(), event.key
        if key is None:
            return  # an ACK: the endpoint reports it as DialogConfirmed
        if request.method == "INVITE" and request.to().tag is None:
            self._invite(request, key)
        elif request.method == "INVITE":
            call = self.current
            if call is None:
                self.endpoint.respond(key, 481, now)
                return
            offered = self._reoffer(call, request.body)
            direction = answer_direction(offered, holding=call.state == "held")
            self.endpoint.respond(key, 200, now, body=self._sdp(call, direction))
        elif request.method in ("NOTIFY", "INFO"):
            self.endpoint.respond(key, 200, now)
            if request.method == "NOTIFY":
                self._notified(request.body)
        else:
            self.endpoint.respond(key, 405, now, headers=(("Allow", _ALLOW),))

    def _invite(self, request: Request, key: TransactionKey) -> None:
        now = self._clock()
        if self.current is not None:
            self.endpoint.respond(key, 486, now)
            return
        offered = _offer_of(request.body)
        if offered is None:
            self.endpoint.respond(key, 488, now)
            return
        call = _Call(call_id=request.call_id(), key=key, codec=offered.codec, remote=offered.remote)
        self.current = call
        self.endpoint.respond(key, 180, now)
        caller = request.from_()
        user = getattr(caller.uri, "user", None)
        self._tell(
            CallOffered(
                call_id=call.call_id,
                caller=user or str(caller.uri),
                display=caller.display_name,
                alert_info=request.headers.get("Alert-Info"),
                call_info=request.headers.get("Call-Info"),
            )
        )
        log.info("softphone.ringing", call_id=call.call_id, caller=user)

    def _reoffer(self, call: _Call, body: bytes) -> str:
        """A new offer in the call (RFC 3264 §8): its law and address taken; RTP goes out
        unless we hold or the server's offer does not want it. Its direction, sendrecv
        without an SDP (we offer in the 200 then)."""
        offered = _offer_of(body)
        if offered is None:
            return "sendrecv"
        call.codec, call.remote = offered.codec, offered.remote
        if call.state in ("talking", "held", "transferring"):
            self.rtp.start(call.codec, call.remote)
            wanted = offered.direction in ("sendrecv", "recvonly")
            self.rtp.sending = wanted and call.state != "held" and offered.remote[0] != "0.0.0.0"
        return offered.direction

    def _response(self, call: _Call, event: ResponseReceived) -> None:
        status = event.response.status
        if event.key == call.hold_key and status >= 200:
            call.hold_key = None
            if status >= 300 and call.state in ("talking", "held"):  # RFC 3261 §14.1: as before
                call.state = "talking" if call.state == "held" else "held"
                self.rtp.sending = call.state == "talking"
                refused = f"the server refused it: {status} {event.response.reason}"
                self._changed(call, call.state, refused)
        elif event.key == call.refer_key and status >= 200:
            call.refer_key = None
            if status < 300:
                call.state = "transferring"
                self._changed(call, "transferring", "the transfer is being placed")
            else:
                self._changed(
                    call, call.state, f"transfer refused: {status} {event.response.reason}"
                )

    def _notified(self, body: bytes) -> None:
        """A REFER's NOTIFY (RFC 3515 §2.4.5): its sipfrag's status line."""
        call = self.current
        line = body.decode("utf-8", "replace").split("\r\n", 1)[0].strip()
        parts = line.split(" ", 2)
        if call is None or call.state != "transferring" or len(parts) < 2 or not parts[1].isdigit():
            return
        status = int(parts[1])
        if status >= 300:
            call.state = "held" if not self.rtp.sending else "talking"
            self._changed(call, call.state, f"transfer failed: {line}")

    def _changed(self, call: _Call, state: str, detail: str) -> None:
        self._tell(CallChanged(call_id=call.call_id, state=state, detail=detail))

    def _ended(self, call: _Call, detail: str) -> None:
        if self.current is call:
            self.current = None
            self.rtp.stop()
            self._changed(call, "ended", detail)
            log.info("softphone.call_ended", call_id=call.call_id, detail=detail)

    def _sdp(self, call: _Call, direction: str) -> bytes:
        """Our SDP: the call's law on the RTP socket, in ``direction``."""
        pt = g711.PAYLOAD_TYPES[call.codec]
        host = self.rtp.host
        media = MediaDescription(
            media="audio",
            port=self.rtp.port,
            proto="RTP/AVP",
            formats=(str(pt),),
            attributes=(("rtpmap", f"{pt} {call.codec}/8000"), ("ptime", "20"), (direction, None)),
        )
        origin = Origin(
            username="-", sess_id=self._sess_id, sess_version=call.version, address=host
        )
        return SessionDescription(origin=origin, connection=host, media=(media,)).to_bytes()


_ALLOW = "INVITE, ACK, BYE, CANCEL, OPTIONS, NOTIFY, INFO"
_DIALLABLE = frozenset("0123456789+*#")  # as calls.transfer takes a Refer-To's user part
_TARGET_MAX = 32  # characters: an E.164 number or a short code, with room for * and #


def refer_to(target: str, server: Peer) -> str | None:
    """The ``Refer-To`` of a blind transfer to ``target`` on ``server`` (RFC 3515 §2.1), or
    None when ``target`` is no extension or number: ASCII digits, ``+``, ``*`` and ``#``
    only (``str.isdigit`` would let other scripts' digits into the header), at most
    ``_TARGET_MAX`` of them. ``#`` is escaped, as a URI's user part has no ``#`` (RFC 3261
    §25.1); the server unescapes it (``calls.transfer.target_number``)."""
    if not target or len(target) > _TARGET_MAX or not set(target) <= _DIALLABLE:
        return None
    return f"<sip:{target.replace('#', '%23')}@{server.host}:{server.port}>"


_ANSWERS = {  # RFC 3264 §6.1: an offer's direction and whether we hold -> the answer's
    ("sendrecv", False): "sendrecv",
    ("sendrecv", True): "sendonly",
    ("sendonly", False): "recvonly",
    ("sendonly", True): "inactive",
    ("recvonly", False): "sendonly",
    ("recvonly", True): "sendonly",
    ("inactive", False): "inactive",
    ("inactive", True): "inactive",
}


def answer_direction(offered: str, *, holding: bool) -> str:
    """The direction of our answer to an offer of ``offered`` (RFC 3264 §6.1: "If a stream
    is offered as sendonly, the corresponding stream MUST be marked as recvonly or inactive
    in the answer"; recvonly as sendonly or inactive; inactive as inactive), sending nothing
    while we hold."""
    return _ANSWERS.get((offered, holding), "sendonly" if holding else "sendrecv")


@dataclass(frozen=True, slots=True, kw_only=True)
class _Offer:
    codec: str
    remote: tuple[str, int]
    direction: str


def _offer_of(body: bytes) -> _Offer | None:
    """The first G.711 law of an SDP offer's audio, where its RTP goes and its direction,
    else None."""
    try:
        sdp = parse_sdp(body)
    except (SdpError, ValueError):
        return None
    for media in sdp.media:
        address = sdp.connection_of(media)
        if media.media != "audio" or media.port == 0 or address is None:
            continue
        names = media.rtpmaps
        for fmt in media.formats:
            pt = int(fmt) if fmt.isdigit() else -1
            name = names.get(pt, ("PCMU" if pt == 0 else "PCMA" if pt == 8 else "", 0, 0))[0]
            if name.upper() in g711.PAYLOAD_TYPES:
                remote = (address, media.port)
                return _Offer(codec=name.upper(), remote=remote, direction=sdp.direction_of(media))
    return None
