"""The checks a UAS makes before processing a request (RFC 3261 §8.2.1-§8.2.3; RFC 4475 §3.3).

Theory of operation
-------------------
``parser.parse_message`` guarantees the syntax a UAS must trust; this module answers the
next question: will *this* UAS process the request? ``check_request`` runs the checks in
the order RFC 3261 §8.2 gives them and returns the first :class:`Rejection`, or None:

1. 405 method not supported, with Allow (§8.2.1);
2. 416 Request-URI scheme not supported (§8.2.2.1);
3. 420 a Require option tag not supported, with Unsupported (§8.2.2.3);
4. 415 a body whose type or encoding is not understood, with Accept or Accept-Encoding
   (§8.2.3); a multipart body passes if any of its parts is of an accepted type;
5. 406 an INVITE whose Accept rules out an SDP answer (RFC 4475 §3.3.15);
6. 483 Max-Forwards 0, when the policy says the request may be forwarded (§16.3 step 2);
7. 400 a single-value header field given more than once (RFC 4475 §3.3.8, §3.3.9), or a
   Contact that does not parse (RFC 4475 §3.1.2.13).

An ACK is never answered (§17.2.1), so it is never rejected. A CANCEL is only checked for
duplicated fields: its method is always supported and Require does not apply to it (§9.2).
URIs of unknown schemes in To, From or Contact are not rejected (RFC 4475 §3.3.4): whoever
must use such a URI (a registrar, say) decides. Proxy-Require concerns proxies, not a UAS
(§20.29), so only Require is checked.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from operator import itemgetter

from callserver.sip.errors import SipParseError
from callserver.sip.grammar import LWS, unquote
from callserver.sip.headers import parse_address, parse_params
from callserver.sip.message import Request

__all__ = ["Rejection", "UasPolicy", "check_request"]

_DEFAULT_METHODS = frozenset(
    {"INVITE", "ACK", "BYE", "CANCEL", "OPTIONS", "INFO", "UPDATE", "REFER"}
)
_METHOD_ORDER = ("INVITE", "ACK", "CANCEL", "BYE", "OPTIONS", "INFO", "UPDATE", "PRACK", "REFER")
_ANSWER_TYPE = "application/sdp"
_NAME = itemgetter(0)

# Fields that may appear at most once (RFC 3261 §7.3.1: only list-valued fields may repeat).
_SINGLE_VALUE = frozenset(
    {
        "Call-ID", "Content-Disposition", "Content-Length", "Content-Type", "CSeq", "Date",
        "Expires", "From", "Max-Forwards", "Min-Expires", "MIME-Version", "Organization",
        "Priority", "Reply-To", "Retry-After", "Session-Expires", "Min-SE", "Subject",
        "Timestamp", "To", "User-Agent",
    }
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class UasPolicy:
    """What this UAS supports; the answer to every §8.2 check comes from here.

    ``reject_zero_max_forwards``: a B2BUA that may forward the request answers 483 to
    Max-Forwards 0 (RFC 3261 §16.3 step 2); a pure endpoint processes it as if the value
    were positive (RFC 4475 §3.3.11) and sets this False.
    """

    allowed_methods: frozenset[str] = _DEFAULT_METHODS
    supported_extensions: frozenset[str] = frozenset({"timer"})
    uri_schemes: frozenset[str] = frozenset({"sip", "sips", "tel"})
    accepted_types: frozenset[str] = frozenset(
        {"application/sdp", "application/dtmf-relay", "application/dtmf"}
    )
    reject_zero_max_forwards: bool = True


@dataclass(frozen=True, slots=True)
class Rejection:
    """The response a UAS sends instead of processing the request."""

    status: int
    reason: str
    headers: tuple[tuple[str, str], ...] = ()


def _allow_value(methods: frozenset[str]) -> str:
    known = [m for m in _METHOD_ORDER if m in methods]
    return ", ".join(known + sorted(methods.difference(_METHOD_ORDER)))


def _check_method(request: Request, policy: UasPolicy) -> Rejection | None:
    # RFC 3261 §8.2.1: "the UAS MUST also add an Allow header field to the 405".
    if request.method in policy.allowed_methods:
        return None
    return Rejection(405, "Method Not Allowed", (("Allow", _allow_value(policy.allowed_methods)),))


def _check_scheme(request: Request, policy: UasPolicy) -> Rejection | None:
    # RFC 3261 §8.2.2.1: a scheme the UAS does not understand "SHOULD" get 416.
    if request.uri.scheme in policy.uri_schemes:
        return None
    return Rejection(416, "Unsupported URI Scheme")


def _check_require(request: Request, policy: UasPolicy) -> Rejection | None:
    # RFC 3261 §8.2.2.3: unknown Require option tags get 420 listing them in Unsupported.
    tags = request.headers.values("Require")
    if not tags:
        return None
    supported = {tag.lower() for tag in policy.supported_extensions}
    unknown: list[str] = []
    for tag in tags:
        if tag.lower() not in supported and tag not in unknown:
            unknown.append(tag)
    if not unknown:
        return None
    return Rejection(420, "Bad Extension", (("Unsupported", ", ".join(unknown)),))


def _media_type(value: str) -> str:
    return value.partition(";")[0].strip(LWS).lower()


def _part_types(body: bytes, boundary: str) -> list[str]:
    """Return the media type of each body part of a multipart body (RFC 2046 §5.1.1)."""
    types: list[str] = []
    for part in body.split(b"--" + boundary.encode("utf-8", "surrogateescape"))[1:]:
        if part.startswith(b"--"):
            break  # the close delimiter
        head = part.partition(b"\r\n\r\n")[0]
        part_type = "text/plain"  # RFC 2046 §5.1: the default for a part without one
        for line in head.split(b"\r\n"):
            name, colon, value = line.partition(b":")
            if colon and name.strip(b" \t").lower() in (b"content-type", b"c"):
                part_type = _media_type(value.decode("utf-8", "surrogateescape"))
        types.append(part_type)
    return types


def _boundary(content_type: str) -> str | None:
    try:
        params = parse_params(";" + content_type.partition(";")[2])
    except SipParseError:
        return None
    for name, value in params:
        if name.lower() == "boundary" and value:
            return unquote(value) if value.startswith('"') else value
    return None


def _body_acceptable(content_type: str, body: bytes, accepted: frozenset[str]) -> bool:
    media_type = _media_type(content_type)
    if media_type in accepted:
        return True
    if not media_type.startswith("multipart/"):
        return False
    boundary = _boundary(content_type)
    return boundary is not None and any(t in accepted for t in _part_types(body, boundary))


def _check_body(request: Request, policy: UasPolicy) -> Rejection | None:
    # RFC 3261 §8.2.3: a body the UAS does not understand gets 415 with Accept (type) or
    # Accept-Encoding (encoding).
    if not request.body:
        return None
    for encoding in request.headers.values("Content-Encoding"):
        if encoding.lower() != "identity":
            return Rejection(415, "Unsupported Media Type", (("Accept-Encoding", "identity"),))
    content_type = request.headers.get("Content-Type")
    if content_type is None:
        return Rejection(400, "Missing Content-Type header field")
    if _body_acceptable(content_type, request.body, policy.accepted_types):
        return None
    accept = ", ".join(sorted(policy.accepted_types))
    return Rejection(415, "Unsupported Media Type", (("Accept", accept),))


def _accepts_sdp(value: str) -> bool:
    media_type, _, params = value.partition(";")
    media_type = media_type.strip(LWS).lower()
    if media_type not in (_ANSWER_TYPE, "application/*", "*/*"):
        return False
    for param in params.split(";"):
        name, _, q = param.partition("=")
        if name.strip(LWS).lower() == "q" and q.strip(LWS).rstrip("0.") == "":
            return False  # q=0 means "not acceptable" (RFC 3261 §20.1 via RFC 2616 §14.1)
    return True


def _check_accept(request: Request, policy: UasPolicy) -> Rejection | None:
    # An INVITE's answer is SDP; an Accept without it leaves no answer to give (RFC 4475
    # §3.3.15, RFC 3261 §21.4.7). An empty or absent Accept means application/sdp (§20.1).
    if request.method != "INVITE":
        return None
    accept = request.headers.values("Accept")
    if not accept or any(_accepts_sdp(value) for value in accept):
        return None
    return Rejection(406, "Not Acceptable", (("Accept", _ANSWER_TYPE),))


def _check_max_forwards(request: Request, policy: UasPolicy) -> Rejection | None:
    value = request.headers.get("Max-Forwards")
    if policy.reject_zero_max_forwards and value and value.strip("0") == "":
        return Rejection(483, "Too Many Hops")
    return None


def _check_duplicates(request: Request, policy: UasPolicy) -> Rejection | None:
    names = list(map(_NAME, request.headers))
    if len(set(names)) == len(names):
        return None  # no name repeats at all: the common case, decided without a loop
    for name, count in Counter(n for n in names if n in _SINGLE_VALUE).items():
        if count > 1:
            # RFC 3261 §21.4.1: the reason phrase SHOULD identify the problem.
            return Rejection(400, f"Duplicate {name} header field")
    return None


def _check_contact(request: Request, policy: UasPolicy) -> Rejection | None:
    contacts = request.headers.values("Contact")
    if request.method == "REGISTER" and contacts == ["*"]:
        return None  # RFC 3261 §10.2.2: remove all bindings
    try:
        for contact in contacts:
            parse_address(contact)
    except SipParseError:
        return Rejection(400, "Malformed Contact header field")
    return None


_CHECKS = (
    _check_method,
    _check_scheme,
    _check_require,
    _check_body,
    _check_accept,
    _check_max_forwards,
    _check_duplicates,
    _check_contact,
)


def check_request(request: Request, policy: UasPolicy) -> Rejection | None:
    """Decide whether a UAS processes ``request`` or rejects it (RFC 3261 §8.2.1-§8.2.3).

    Args:
        request: a request that ``parse_message`` accepted (or the ``partial`` of one that
            failed only on a duplicated field).
        policy: the methods, extensions, URI schemes and body types this UAS supports.

    Returns:
        The first Rejection in RFC 3261 §8.2 order (405, 416, 420, 415, 406, 483, 400),
        or None to process the request. Always None for ACK, which gets no response.
    """
    if request.method == "ACK":
        return None  # RFC 3261 §17.2.1: an ACK is never answered
    checks = (_check_duplicates,) if request.method == "CANCEL" else _CHECKS
    for check in checks:
        rejection = check(request, policy)
        if rejection is not None:
            return rejection
    return None
