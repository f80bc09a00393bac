"""Bytes to :class:`Request` / :class:`Response` (RFC 3261 §7, §18.3, §25; RFC 4475).

Theory of operation
-------------------
``parse_message`` splits the octets once at the first empty line, decodes the header block once
(UTF-8, undecodable octets kept as surrogates so nothing is lost), undoes line folding and cuts
the block into ``(name, value)`` pairs. Header values stay raw strings: structure is parsed
lazily through ``Headers.parsed``, except for what a UAS must trust before it answers anything
(RFC 3261 §8.2, RFC 4475 §3.1.2): the start line, Content-Length, CSeq, Max-Forwards, Expires,
Via, From, To and Call-ID. Those are checked eagerly, and the Via/From/To/CSeq parses land in
the message's cache, so the transaction layer gets them for free.

Every failure is a :class:`SipParseError` whose ``status_hint`` says what to answer (400, 413,
505) and whose ``partial`` carries the message as far as it parsed whenever the start line and
header block did, so the endpoint can still build that answer from Via, From, To, Call-ID and
CSeq. ``partial`` is None when even the start line or the header block could not be read.

Over a datagram the datagram is the message: with no Content-Length the body is the rest of it,
and octets beyond Content-Length are ignored (RFC 3261 §18.3, RFC 4475 §3.1.1.8). Stream
transports go through ``framing.ReceiveBuffer``, which hands over exactly one message.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from callserver.sip.errors import SipParseError
from callserver.sip.grammar import LWS, is_digits, is_token, split_commas
from callserver.sip.headers import parse_address, parse_cseq, parse_via
from callserver.sip.message import Headers, Request, Response, canonical_name
from callserver.sip.uri import AbsoluteUri, SipUri, Uri, parse_uri

__all__ = ["ParseLimits", "parse_content_length", "parse_message"]

_FOLD = re.compile(r"[ \t]*\r\n[ \t]+")
_VERSION = re.compile(r"SIP/[0-9]+\.[0-9]+", re.IGNORECASE)
_MAX_EXPIRES = 2**32 - 1


@dataclass(frozen=True, slots=True)
class ParseLimits:
    """Size limits applied to every incoming message (STYLE.md §4)."""

    max_message_bytes: int = 65535
    max_headers: int = 100
    max_header_line: int = 8192


_DEFAULT_LIMITS = ParseLimits()


def parse_content_length(values: list[str]) -> int | None:
    """Return the Content-Length from its field values, None if there is none (RFC 3261 §20.14).

    Repeated identical values are tolerated; differing ones cannot frame the message.

    Raises:
        SipParseError: (400) for a non-numeric, negative or conflicting value.
    """
    if not values:
        return None
    first = values[0].strip(LWS)
    for value in values:
        if value.strip(LWS) != first:
            raise SipParseError("conflicting Content-Length values", 400)
    if not is_digits(first) or len(first.lstrip("0")) > 10:
        raise SipParseError(f"invalid Content-Length {first!r}", 400)
    return int(first)


def _split_head(data: bytes) -> tuple[str, bytes, bool]:
    """Return (decoded head, rest of the octets, whether the empty line was there)."""
    data = data.lstrip(b"\r\n")  # RFC 3261 §7.5: ignore CRLFs before the start line
    end = data.find(b"\r\n\r\n")
    if end == -1:
        return data.rstrip(b"\r\n").decode("utf-8", "surrogateescape"), b"", False
    return data[:end].decode("utf-8", "surrogateescape"), data[end + 4 :], True


def _header_lines(head: str, limits: ParseLimits) -> list[str]:
    """Unfold (RFC 3261 §7.3.1) and split the head into lines, enforcing the limits."""
    if "\r\n " in head or "\r\n\t" in head:
        head = _FOLD.sub(" ", head)
    crlf = head.count("\r\n")
    if head.count("\r") != crlf or head.count("\n") != crlf:
        raise SipParseError("bare CR or LF in the header block", 400)
    lines = head.split("\r\n")
    if len(lines) - 1 > limits.max_headers:
        raise SipParseError(f"more than {limits.max_headers} header fields", 400)
    for line in lines:
        if len(line) > limits.max_header_line:
            raise SipParseError(f"header line longer than {limits.max_header_line}", 400)
    return lines


# Raw field name as written -> (canonical name, its lower case). Names repeat across messages,
# so the token check and canonicalisation run once per spelling; the size bound keeps a peer
# inventing names from growing it without limit.
_NAMES: dict[str, tuple[str, str]] = {}
_NAMES_MAX = 2048


def _field_name(raw: str) -> tuple[str, str]:
    name = raw.rstrip(LWS)
    if not is_token(name):
        raise SipParseError(f"malformed header field name {name[:40]!r}", 400)
    canonical = canonical_name(name)
    known = (canonical, canonical.lower())
    if len(_NAMES) < _NAMES_MAX:
        _NAMES[raw] = known
    return known


def _parse_fields(lines: list[str]) -> tuple[list[tuple[str, str]], dict[str, list[str]]]:
    """Split header lines into canonical ``(name, value)`` pairs plus a by-name index."""
    items: list[tuple[str, str]] = []
    index: dict[str, list[str]] = {}
    for line in lines:
        raw, colon, value = line.partition(":")
        if not colon:
            raise SipParseError(f"header field line without ':' {line[:40]!r}", 400)
        name, lower = _NAMES.get(raw) or _field_name(raw)
        value = value.strip(LWS)
        items.append((name, value))
        values = index.get(lower)
        if values is None:
            index[lower] = [value]
        else:
            values.append(value)
    return items, index


def _request_uri(text: str) -> Uri:
    uri = parse_uri(text)
    if isinstance(uri, SipUri) and uri.headers:
        # RFC 3261 §19.1.1 (table 1): headers are not allowed in a Request-URI.
        raise SipParseError("headers in the Request-URI", 400)
    return uri


def _lenient_request_line(line: str) -> tuple[str, Uri, str]:
    """Read a malformed Request-Line as liberally as possible, only to build ``partial``."""
    parts = line.split()
    if len(parts) < 3 or not is_token(parts[0]):
        raise SipParseError(f"malformed Request-Line {line[:60]!r}", 400)
    uri_text = "".join(parts[1:-1]).removeprefix("<").removesuffix(">")
    try:
        uri: Uri = parse_uri(uri_text)
    except SipParseError:
        uri = AbsoluteUri("invalid", uri_text or "-")
    return parts[0], uri, parts[-1]


def _start_request(line: str, headers: Headers) -> tuple[Request, SipParseError | None]:
    """Parse ``Method SP Request-URI SP SIP-Version`` (RFC 3261 §7.1, §25.1)."""
    parts = line.split(" ")
    error: SipParseError | None = None
    if len(parts) == 3 and is_token(parts[0]):
        method, uri_text, version = parts
        try:
            uri = _request_uri(uri_text)
        except SipParseError as exc:
            method, uri, version = _lenient_request_line(line)
            error = exc
    else:
        method, uri, version = _lenient_request_line(line)
        error = SipParseError("Request-Line elements must be separated by one SP", 400)
    if not _VERSION.fullmatch(version):
        raise SipParseError(f"malformed SIP-Version {version[:20]!r}", 400)
    version = version.upper()
    if error is None and version != "SIP/2.0":
        error = SipParseError(f"unsupported version {version}", 505)
    return Request(method, uri, headers, b"", version), error


def _start_response(line: str, headers: Headers) -> Response:
    """Parse ``SIP-Version SP Status-Code SP Reason-Phrase`` (RFC 3261 §7.2, §25.1)."""
    version, _, rest = line.partition(" ")
    code, _, reason = rest.partition(" ")
    if not _VERSION.fullmatch(version):
        raise SipParseError(f"malformed SIP-Version {version[:20]!r}", 400)
    if len(code) != 3 or not is_digits(code) or not 100 <= int(code) <= 699:
        raise SipParseError(f"invalid Status-Code {code[:20]!r}", 400)
    if version.upper() != "SIP/2.0":
        raise SipParseError(f"unsupported version {version}", 505)
    return Response(int(code), reason, headers, b"", "SIP/2.0")


def _body(rest: bytes, length: int | None, datagram: bool) -> bytes:
    if length is None:
        return rest if datagram else b""
    if length > len(rest):
        raise SipParseError(f"Content-Length {length} exceeds the {len(rest)} octets present", 400)
    return rest[:length]


def _check_scalar(index: dict[str, list[str]], name: str, maximum: int) -> None:
    """Check a ``1*DIGIT`` field (Max-Forwards, Expires) is in range (RFC 4475 §3.1.2.4)."""
    for value in index.get(name, ()):
        if not is_digits(value) or len(value.lstrip("0")) > 10 or int(value) > maximum:
            raise SipParseError(f"{name} value {value[:20]!r} out of range", 400)


def _single(index: dict[str, list[str]], name: str) -> str:
    values = index.get(name.lower())
    if not values:
        raise SipParseError(f"missing {name} header field", 400)
    return values[0]


def _check_core(message: Request | Response, index: dict[str, list[str]]) -> None:
    """The eager checks of what a UAS must trust before answering (RFC 3261 §8.2, §8.1.1).

    Each parse is primed into the message's cache, exactly as its accessor would compute it.
    Only the first of duplicated From/To/Call-ID/CSeq fields is checked here: rejecting the
    duplicates is ``validate.check_request``'s job (RFC 4475 §3.3.8), with a better answer.
    """
    headers = message.headers
    vias = [parse_via(v) for line in index.get("via", ()) for v in split_commas(line)]
    if not vias:
        raise SipParseError("missing Via header field", 400)
    headers.prime("Via", vias)
    for name in ("From", "To"):
        address = parse_address(_single(index, name))
        if len(index[name.lower()]) == 1:
            headers.prime(name, address)
    call_id = _single(index, "Call-ID")
    if not call_id or any(ch in call_id for ch in LWS):
        raise SipParseError(f"malformed Call-ID {call_id[:40]!r}", 400)
    cseq = parse_cseq(_single(index, "CSeq"))
    if isinstance(message, Request) and cseq.method != message.method:
        raise SipParseError("CSeq method does not match the Request-Line method", 400)
    if len(index["cseq"]) == 1:
        headers.prime("CSeq", cseq)
    if len(index["call-id"]) == 1:
        headers.prime("Call-ID", call_id)
    _check_scalar(index, "max-forwards", 255)
    _check_scalar(index, "expires", _MAX_EXPIRES)


def parse_message(
    data: bytes, limits: ParseLimits = _DEFAULT_LIMITS, *, datagram: bool = True
) -> Request | Response:
    """Parse one SIP message (RFC 3261 §7) and check what a UAS must trust (§8.2).

    Args:
        data: the octets of one datagram, or of one message cut out by ``ReceiveBuffer``.
        limits: size limits; a message over ``max_message_bytes`` is refused with 413.
        datagram: True for UDP, where the body runs to the end of the datagram when there
            is no Content-Length and octets past Content-Length are ignored (RFC 3261 §18.3).

    Returns:
        The Request or Response, header values raw (unfolded, LWS-stripped), names canonical.

    Raises:
        SipParseError: 400 for syntax, 413 over ``max_message_bytes``, 505 for a version
            other than SIP/2.0; ``partial`` is set whenever start line and header block parsed.
    """
    if len(data) > limits.max_message_bytes:
        raise SipParseError(f"message larger than {limits.max_message_bytes} octets", 413)
    head, rest, terminated = _split_head(data)
    lines = _header_lines(head, limits)
    items, index = _parse_fields(lines[1:])
    error: SipParseError | None = None
    message: Request | Response
    if lines[0][:4].upper() == "SIP/":
        message = _start_response(lines[0], Headers.from_parsed(items, index))
    else:
        message, error = _start_request(lines[0], Headers.from_parsed(items, index))
    try:
        if error is not None:
            raise error
        message.body = _body(rest, parse_content_length(index.get("content-length", [])), datagram)
        _check_core(message, index)
        if not terminated:
            raise SipParseError("no empty line after the header fields", 400)
    except SipParseError as exc:
        raise SipParseError(str(exc), exc.status_hint, message) from None
    return message
