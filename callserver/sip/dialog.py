"""Dialogs: the peer-to-peer relation an INVITE's 2xx or tagged 1xx creates (RFC 3261 §12).

Theory of operation
-------------------
A ``Dialog`` holds the state RFC 3261 §12.1 lists: Call-ID, local and remote tags, local and
remote URIs, the remote target (Contact), the route set (Record-Route), the local and remote
CSeq, and whether it is secure. It is created from the INVITE and the response that carries the
To tag — by the UAS when it sends that response (§12.1.1) and by the UAC when it receives it
(§12.1.2) — and from then on builds every in-dialog request (§12.2.1.1) and checks the CSeq
ordering of every request it receives (§12.2.2).

``DialogState`` is Early (a 1xx with a tag), Confirmed (a 2xx) or Terminated. The dialog does
not send anything itself; the endpoint owns the transactions.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from typing import NamedTuple

from callserver.sip.headers import Address, parse_addresses
from callserver.sip.message import Headers, Request, Response
from callserver.sip.peer import Peer
from callserver.sip.uri import SipUri, Uri

__all__ = ["Dialog", "DialogId", "DialogState", "SessionTimer"]


class DialogState(Enum):
    """RFC 3261 §12: a dialog is early, confirmed or terminated."""

    EARLY = "early"
    CONFIRMED = "confirmed"
    TERMINATED = "terminated"


class DialogId(NamedTuple):
    """RFC 3261 §12: Call-ID plus local and remote tag identify a dialog."""

    call_id: str
    local_tag: str
    remote_tag: str

    def __str__(self) -> str:
        return f"{self.call_id};local={self.local_tag};remote={self.remote_tag}"


@dataclass(slots=True)
class SessionTimer:
    """RFC 4028 session timer state: interval, who refreshes, and the next deadline."""

    interval: int
    refresher: str  # "uac" or "uas", in the sense of the INVITE that set it up
    we_refresh: bool


@dataclass(slots=True)
class Dialog:
    """One dialog's state (RFC 3261 §12.1) and the requests it builds (§12.2.1.1)."""

    id: DialogId
    role: str  # "uas" or "uac"
    local: Address
    remote: Address
    remote_target: Uri
    route_set: tuple[str, ...]
    local_cseq: int
    remote_cseq: int | None
    peer: Peer
    secure: bool
    state: DialogState = DialogState.EARLY
    local_sdp: bytes = b""
    remote_sdp: bytes = b""
    session_timer: SessionTimer | None = None
    remote_allow: frozenset[str] = field(default_factory=frozenset)
    flow: bool = False  # requests go on ``peer`` whatever the remote target (RFC 5626 §5.3)

    @classmethod
    def as_uas(cls, invite: Request, response: Response, peer: Peer) -> Dialog:
        """Create the UAS side from the INVITE and the 1xx/2xx carrying our To tag (§12.1.1).

        "The route set MUST be set to the list of URIs in the Record-Route header field from
        the request, taken in order and preserving all URI parameters."
        """
        to = response.to()
        remote = invite.from_()
        return cls(
            id=DialogId(invite.call_id(), to.tag or "", remote.tag or ""),
            role="uas",
            local=to,
            remote=remote,
            remote_target=_contact_uri(invite) or remote.uri,
            route_set=tuple(invite.headers.values("Record-Route")),
            local_cseq=0,
            remote_cseq=invite.cseq().seq,
            peer=peer,
            secure=isinstance(invite.uri, SipUri) and invite.uri.scheme == "sips",
            state=DialogState.CONFIRMED if 200 <= response.status < 300 else DialogState.EARLY,
            remote_allow=_allow(invite),
        )

    @classmethod
    def as_uac(cls, invite: Request, response: Response, peer: Peer) -> Dialog:
        """Create the UAC side from our INVITE and the response with the remote tag (§12.1.2).

        "The route set MUST be set to the list of URIs in the Record-Route header field from
        the response, taken in reverse order."
        """
        to = response.to()
        local = invite.from_()
        return cls(
            id=DialogId(invite.call_id(), local.tag or "", to.tag or ""),
            role="uac",
            local=local,
            remote=to,
            remote_target=_contact_uri(response) or invite.uri,
            route_set=tuple(reversed(response.headers.values("Record-Route"))),
            local_cseq=invite.cseq().seq,
            remote_cseq=None,
            peer=peer,
            secure=isinstance(invite.uri, SipUri) and invite.uri.scheme == "sips",
            state=DialogState.CONFIRMED if 200 <= response.status < 300 else DialogState.EARLY,
            remote_allow=_allow(response),
        )

    def confirm(self, response: Response) -> None:
        """A 2xx arrived for an early dialog: it becomes confirmed (§12.1.2, §13.2.2.4).

        Its Contact and Allow replace those of the provisional response that made the dialog.
        """
        self.state = DialogState.CONFIRMED
        target = _contact_uri(response)
        if target is not None:
            self.remote_target = target
        self.remote_allow = _allow(response) or self.remote_allow

    def next_cseq(self) -> int:
        """Increment and return the local CSeq for a new request (§12.2.1.1)."""
        self.local_cseq += 1
        return self.local_cseq

    def accept_remote_cseq(self, request: Request) -> bool:
        """Check the ordering of an in-dialog request (§12.2.2).

        "If the remote sequence number was not empty, but the sequence number of the request
        is lower than the remote sequence number, the request is out of order and MUST be
        rejected with a 500 (Server Internal Error) response." ACK and CANCEL reuse the CSeq
        of the request they belong to and are exempt.
        """
        if request.method in ("ACK", "CANCEL"):
            return True
        seq = request.cseq().seq
        if self.remote_cseq is not None and seq < self.remote_cseq:
            return False
        self.remote_cseq = seq
        target = _contact_uri(request) if request.method in ("INVITE", "UPDATE") else None
        if target is not None:
            self.remote_target = target
        return True

    def create_request(self, method: str, via: str, *, cseq: int | None = None) -> Request:
        """Build an in-dialog request (§12.2.1.1), with ``via`` as its only Via value.

        Loose routing (the first route has ``lr``): Request-URI is the remote target and the
        route set goes into Route. Strict routing: Request-URI is the first route and the
        remote target is appended to Route.
        """
        seq = cseq if cseq is not None else self.next_cseq()
        uri, routes = self._request_target()
        headers = Headers(
            [
                ("Via", via),
                ("Max-Forwards", "70"),
                ("From", str(self.local)),
                ("To", str(self.remote)),
                ("Call-ID", self.id.call_id),
                ("CSeq", f"{seq} {method}"),
            ]
        )
        for route in routes:
            headers.add("Route", route)
        return Request(method=method, uri=uri, headers=headers)

    def _request_target(self) -> tuple[Uri, list[str]]:
        if not self.route_set:
            return self.remote_target, []
        first = parse_addresses([self.route_set[0]])[0]
        if isinstance(first.uri, SipUri) and first.uri.has_param("lr"):
            return self.remote_target, list(self.route_set)
        return first.uri, [*self.route_set[1:], f"<{self.remote_target}>"]

    def next_hop(self) -> Uri:
        """The URI in-dialog requests are sent to: the first route, else the remote target."""
        if self.route_set:
            return parse_addresses([self.route_set[0]])[0].uri
        return self.remote_target


def _contact_uri(message: Request | Response) -> Uri | None:
    values = message.headers.values("Contact")
    if not values:
        return None
    return parse_addresses(values[:1])[0].uri


def _allow(message: Request | Response) -> frozenset[str]:
    return frozenset(v.strip().upper() for v in message.headers.values("Allow"))
