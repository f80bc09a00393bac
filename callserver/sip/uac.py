"""UAC core helpers: INVITE, ACK for a 2xx, CANCEL and digest retries (RFC 3261 §8.1, §9, §13, §22).

Pure builders; the endpoint owns the transactions that carry them.
"""

from __future__ import annotations

from callserver.sip.auth import build_authorization, select_challenge
from callserver.sip.dialog import Dialog
from callserver.sip.headers import Address
from callserver.sip.message import Headers, Request, Response
from callserver.sip.uri import Uri

__all__ = [
    "Credentials",
    "build_ack_for_2xx",
    "build_cancel",
    "build_request",
    "with_authorization",
]

Credentials = tuple[str, str]  # (username, password)


def build_request(
    method: str,
    uri: Uri,
    *,
    via: str,
    from_addr: Address,
    to_addr: Address,
    call_id: str,
    cseq: int,
    contact: str | None = None,
    extra: tuple[tuple[str, str], ...] = (),
    max_forwards: int = 70,
) -> Request:
    """Build an out-of-dialog request (RFC 3261 §8.1.1): the six mandatory fields first.

    ``max_forwards`` is 70 for a request we originate (§8.1.1.6); a B2BUA passes on the
    inbound request's value less one, so a forwarding loop dies out (§16.6 step 3).
    """
    headers = Headers(
        [
            ("Via", via),
            ("Max-Forwards", str(max_forwards)),
            ("From", str(from_addr)),
            ("To", str(to_addr)),
            ("Call-ID", call_id),
            ("CSeq", f"{cseq} {method}"),
        ]
    )
    if contact is not None:
        headers.add("Contact", contact)
    for name, value in extra:
        headers.add(name, value)
    return Request(method=method, uri=uri, headers=headers)


def build_ack_for_2xx(dialog: Dialog, invite: Request, via: str) -> Request:
    """The ACK for a 2xx, a request of the dialog with the INVITE's CSeq number (§13.2.2.4).

    "The header fields of the ACK are constructed in the same way as for any request sent
    within a dialog ... with the exception of the CSeq and the header fields related to
    authentication. The sequence number of the CSeq header field MUST be the same as the
    INVITE being acknowledged."
    """
    ack = dialog.create_request("ACK", via, cseq=invite.cseq().seq)
    for name in ("Authorization", "Proxy-Authorization"):
        for value in invite.headers.get_all(name):
            ack.headers.add(name, value)
    return ack


def build_cancel(invite: Request, extra: tuple[tuple[str, str], ...] = ()) -> Request:
    """The CANCEL for a pending INVITE (§9.1).

    "The Request-URI, Call-ID, To, the numeric part of CSeq, and From header fields in the
    CANCEL request MUST be identical to those in the request being cancelled, including
    tags. A CANCEL constructed by a client MUST have only a single Via header field value
    matching the top Via value in the request being cancelled." Route is copied too; ``extra``
    adds headers such as a ``Reason`` (RFC 3326).
    """
    headers = Headers(
        [
            ("Via", invite.headers.values("Via")[0]),
            ("Max-Forwards", "70"),
            ("From", invite.headers.get("From") or ""),
            ("To", invite.headers.get("To") or ""),
            ("Call-ID", invite.call_id()),
            ("CSeq", f"{invite.cseq().seq} CANCEL"),
        ]
    )
    for route in invite.headers.get_all("Route"):
        headers.add("Route", route)
    for name, value in extra:
        headers.add(name, value)
    return Request(method="CANCEL", uri=invite.uri, headers=headers)


def with_authorization(
    request: Request,
    challenge_response: Response,
    credentials: Credentials,
    *,
    via: str,
    cnonce: str,
) -> Request | None:
    """Retry ``request`` after a 401/407 with digest credentials (§22.2, RFC 8760).

    The retry has a new branch (``via``), the next CSeq number and an Authorization (401)
    or Proxy-Authorization (407) answering the strongest challenge offered. Returns None
    when no challenge can be answered (unknown scheme or algorithm).
    """
    proxy = challenge_response.status == 407
    field = "Proxy-Authenticate" if proxy else "WWW-Authenticate"
    challenge = select_challenge(challenge_response.headers.get_all(field))
    if challenge is None:
        return None
    username, password = credentials
    value = build_authorization(
        challenge,
        method=request.method,
        uri=str(request.uri),
        username=username,
        password=password,
        cnonce=cnonce,
        body=request.body,
    )
    headers = request.headers.copy()
    headers.set("Via", via)
    headers.set("CSeq", f"{request.cseq().seq + 1} {request.method}")
    headers.set("Proxy-Authorization" if proxy else "Authorization", value)
    return Request(method=request.method, uri=request.uri, headers=headers, body=request.body)
