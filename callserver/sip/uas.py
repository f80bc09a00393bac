"""UAS core helpers: building responses (RFC 3261 §8.2.6) and RFC 4028 session-timer answers.

Pure functions; the endpoint decides when to call them.
"""

from __future__ import annotations

from dataclasses import dataclass

from callserver.sip.dialog import SessionTimer
from callserver.sip.errors import SipParseError
from callserver.sip.events import Peer
from callserver.sip.headers import Address, parse_params
from callserver.sip.message import Headers, Request, Response, reason_phrase

__all__ = [
    "SessionTimerAnswer",
    "build_response",
    "negotiate_session_timer",
    "response_peer",
    "session_timer_of_answer",
    "stamp_via",
]

_PRIMED = ("Via", "From", "Call-ID", "CSeq")  # parsed in the request: the values are shared
_COPIED = (*_PRIMED, "Record-Route")


def build_response(
    request: Request,
    status: int,
    reason: str | None = None,
    *,
    to_tag: str | None = None,
) -> Response:
    """Build a response to ``request`` (RFC 3261 §8.2.6.2).

    "The From field of the response MUST equal the From header field of the request. The
    Call-ID ... MUST equal ... The CSeq ... MUST equal ... The Via header field values in the
    response MUST equal the Via header field values in the request and MUST maintain the same
    ordering." A To tag is added when the request had none and ``to_tag`` is given; a 100
    (Trying) copies Timestamp (§8.2.6.1).

    The Record-Route values are copied too, in order: "When a UAS responds to a request with a
    response that establishes a dialog ..., the UAS MUST copy all Record-Route header field
    values from the request into the response" (§12.1.1), so a caller behind a
    record-routing proxy learns its route set. In any other response they change nothing (a
    UAC reads a route set only from a response that makes a dialog, §12.1.2), and copying
    them always costs a call nothing, where telling the responses apart would.
    """
    headers = Headers()
    source = request.headers
    for name, value in source:
        if name in _COPIED:
            headers.add(name, value)
    for name in _PRIMED:
        parsed = source.primed(name)
        if parsed is not None:
            headers.prime(name, parsed)  # the same immutable values: no second parse
    to_value = source.get("To") or ""
    to_parsed = source.primed("To")
    if to_tag is not None and status != 100 and _to_tag(request) is None:
        to_value = f"{to_value};tag={to_tag}"
        to_parsed = to_parsed.with_tag(to_tag) if isinstance(to_parsed, Address) else None
    headers.add("To", to_value)
    if to_parsed is not None:
        headers.prime("To", to_parsed)
    if status == 100:
        timestamp = source.get("Timestamp")
        if timestamp is not None:
            headers.add("Timestamp", timestamp)
    return Response(status=status, reason=reason or reason_phrase(status), headers=headers)


def _to_tag(request: Request) -> str | None:
    """The To tag; a To that does not parse (a 400 being built for it) counts as untagged."""
    try:
        return request.to().tag
    except SipParseError:
        return None


def stamp_via(request: Request, peer: Peer) -> None:
    """Record where ``request`` really came from in its top Via (RFC 3261 §18.2.1, RFC 3581 §4).

    "the server MUST add a 'received' parameter" when the sent-by host differs from the
    source address; with an empty ``rport`` "the server MUST insert a received parameter
    containing the source IP address ... and an rport parameter with the source port".
    """
    vias = request.vias()
    via = vias[0]
    wants_port = via.has_rport and via.rport is None
    if not wants_port and via.host.strip("[]") == peer.host:
        return
    stamped = via.with_param("received", peer.host)
    if wants_port:
        stamped = stamped.with_param("rport", str(peer.port))
    request.headers.replace_first("Via", str(stamped))
    request.headers.prime("Via", [stamped, *vias[1:]])


def response_peer(request: Request, peer: Peer) -> Peer:
    """Where a response goes (RFC 3261 §18.2.2, RFC 3581 §4).

    Streams answer on the connection the request came in on. For UDP with ``rport`` the
    response goes to the source address and port; otherwise to ``received`` (the source
    address) and the port in the top Via's sent-by (5060 when absent).
    """
    if peer.reliable:
        return peer
    via = request.top_via()
    if via.has_rport or via.rport is not None:
        return peer
    if via.maddr is not None:
        return Peer("udp", via.maddr, via.port or 5060)
    return Peer("udp", peer.host, via.port or 5060)


@dataclass(frozen=True, slots=True)
class SessionTimerAnswer:
    """The outcome of RFC 4028 §9 for an INVITE: reject with 422, or the timer to use."""

    reject_min_se: int | None
    timer: SessionTimer | None
    headers: tuple[tuple[str, str], ...]


def negotiate_session_timer(request: Request, *, default: int, min_se: int) -> SessionTimerAnswer:
    """Decide the session timer for an INVITE or UPDATE we answer (RFC 4028 §9).

    - Session-Expires below our Min-SE: 422 with our Min-SE ("MUST reject ... with a 422").
    - UAC supports "timer": we keep its interval (or ours, raised to its Min-SE) and its
      refresher choice, defaulting to the UAC, and answer with Require: timer.
    - UAC does not: we are the refresher (refresher=uas) and send no Require.

    Raises:
        SipParseError: Session-Expires or Min-SE is not a number.
    """
    offered, refresher = _session_expires(request)
    their_min = _delta(request.headers.get("Min-SE"), "Min-SE") or 90
    if offered is not None and offered < min_se:
        return SessionTimerAnswer(min_se, None, (("Min-SE", str(min_se)),))
    supported = {v.strip().lower() for v in request.headers.values("Supported")}
    supported |= {v.strip().lower() for v in request.headers.values("Require")}
    interval = offered if offered is not None else max(default, their_min, min_se)
    headers: tuple[tuple[str, str], ...]
    if "timer" in supported:
        chosen = refresher or "uac"
        timer = SessionTimer(interval=interval, refresher=chosen, we_refresh=chosen == "uas")
        headers = (("Session-Expires", f"{interval};refresher={chosen}"), ("Require", "timer"))
    else:
        timer = SessionTimer(interval=interval, refresher="uas", we_refresh=True)
        headers = (("Session-Expires", f"{interval};refresher=uas"),)
    return SessionTimerAnswer(None, timer, headers)


def session_timer_of_answer(response: Response) -> SessionTimer | None:
    """The session timer a 2xx to our INVITE or UPDATE set up (RFC 4028 §7.2), if any.

    We (the UAC of that transaction) refresh when the answer says ``refresher=uac``.
    """
    interval, refresher = _session_expires(response)
    if interval is None:
        return None
    chosen = refresher or "uac"
    return SessionTimer(interval=interval, refresher=chosen, we_refresh=chosen == "uac")


def _session_expires(message: Request | Response) -> tuple[int | None, str | None]:
    value = message.headers.get("Session-Expires")
    if value is None:
        return None, None
    delta, _, params = value.partition(";")
    refresher = None
    for name, param in parse_params(";" + params) if params else ():
        if name.lower() == "refresher" and param is not None and param.lower() in ("uac", "uas"):
            refresher = param.lower()
    return _delta(delta, "Session-Expires"), refresher


def _delta(value: str | None, name: str) -> int | None:
    if value is None:
        return None
    text = value.split(";", 1)[0].strip()
    if not text.isdigit() or len(text) > 10:
        raise SipParseError(f"{name} is not a delta-seconds value", 400)
    return int(text)
