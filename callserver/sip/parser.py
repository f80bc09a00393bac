"""Bytes to :class:`Request` / :class:`Response` (RFC 3261 §7, §18.3, §25; RFC 4475).

Theory of operation
-------------------
``parse_message`` splits the octets once at the first empty line, decodes the header block once
(UTF-8, undecodable octets kept as surrogates so nothing is lost), undoes line folding and cuts
the block into ``(name, value)`` pairs; ``start_line`` reads the start line. Header values stay
raw strings: structure is parsed lazily through ``Headers.parsed``, except for what a UAS must
trust before it answers anything (RFC 3261 §8.2, RFC 4475 §3.1.2): the start line,
Content-Length, CSeq, Max-Forwards, Expires, Via, From, To and Call-ID. Those are checked
eagerly, and the Via/From/To/CSeq parses land in the message's cache, so the transaction layer
gets them for free.

Every failure is a :class:`SipParseError` whose ``status_hint`` says what to answer (400, 413,
505) and whose ``partial`` carries the message as far as it parsed whenever the start line and
header block did, so the endpoint can still build that answer from Via, From, To, Call-ID and
CSeq. ``partial`` is None when even the start line or the header block could not be read.

Two paths give the same result. ``_parse_common`` reads the common shape in one pass, with
memo tables keyed by exact text (lines, start lines, URIs, addresses and CSeq values recur
from message to message); on anything unusual it gives up and ``_parse_any``, the general
path, parses or refuses the message from scratch. Tests check both agree on every input.

Over a datagram the datagram is the message: with no Content-Length the body is the rest of it,
and octets beyond Content-Length are ignored (RFC 3261 §18.3, RFC 4475 §3.1.1.8). Stream
transports go through ``framing.ReceiveBuffer``, which hands over exactly one message.
"""

from __future__ import annotations

import re

from callserver.sip.errors import SipParseError
from callserver.sip.framing import ParseLimits, parse_content_length
from callserver.sip.grammar import LWS, find_control, is_digits, is_token, memo_put, split_commas
from callserver.sip.headers import parse_address, parse_cseq, parse_via
from callserver.sip.message import Headers, Request, Response, canonical_name
from callserver.sip.start_line import parse_request_line, parse_status_line
from callserver.sip.uri import Uri

__all__ = ["ParseLimits", "parse_content_length", "parse_message"]

_FOLD = re.compile(r"[ \t]*\r\n[ \t]+")
_MAX_EXPIRES = 2**32 - 1
_DEFAULT_LIMITS = ParseLimits()


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


# Raw field name as written -> (canonical name, its lower case), checked once per spelling;
# the size bound keeps a peer inventing names from growing it without limit.
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


# -- The common shape, in one pass (see the module docstring) ---------------------------------

# Memo tables (see ``grammar.memo_put``): a header line -> ((canonical name, stripped value),
# index key), but not for fields that change from call to call (Call-ID, From tag, branch);
# a good SIP/2.0 start line -> (method, Request-URI) or (status code, reason phrase).
_UNIQUE = frozenset({"via", "call-id", "from"})
_FIELD_LINES: dict[str, tuple[tuple[str, str], str]] = {}
_REQUEST_LINES: dict[str, tuple[str, Uri]] = {}
_STATUS_LINES: dict[str, tuple[int, str]] = {}
# Max-Forwards values as usually written; any other spelling gets the full check.
_HOP_COUNTS = frozenset(str(hops) for hops in range(256))


def _split_field(line: str) -> tuple[tuple[str, str], str]:
    """Split a header line not met before into ``((name, value), index key)``; memoise it."""
    raw, colon, value = line.partition(":")
    if not colon or find_control(line) != -1:
        raise SipParseError(f"malformed header field line {line[:40]!r}", 400)
    name, key = _NAMES.get(raw) or _field_name(raw)
    field = ((name, value.strip(LWS)), key)
    if key not in _UNIQUE:
        memo_put(_FIELD_LINES, line, field)
    return field


def _start_message(line: str, headers: Headers, body: bytes) -> Request | Response:
    """Build the message of a start line not met before; memoise the line once it is good.

    Raises:
        SipParseError: for a start line with any fault (the general path reports it).
    """
    if find_control(line) != -1:
        raise SipParseError("control character in the start line", 400)
    if line[:4].upper() == "SIP/":
        response = parse_status_line(line, headers)
        memo_put(_STATUS_LINES, line, (response.status, response.reason))
        return Response(response.status, response.reason, headers, body, "SIP/2.0")
    request, error = parse_request_line(line, headers)
    if error is not None:
        raise error
    memo_put(_REQUEST_LINES, line, (request.method, request.uri))
    return Request(request.method, request.uri, headers, body, "SIP/2.0")


def _parse_common(data: bytes, limits: ParseLimits, datagram: bool) -> Request | Response | None:
    """Parse a message of the common shape in one pass; None sends it down the general path.

    Whatever needs a precise error (folding, a bare CR or LF, a limit, a malformed or repeated
    core field) gives up here. Folding and bare CR or LF need no search of the whole head: a
    line holding either is never memoised, and ``_split_field`` refuses it.
    """
    data = data.lstrip(b"\r\n")
    end = data.find(b"\r\n\r\n")
    if end == -1:
        return None
    head = data[:end].decode("utf-8", "surrogateescape")
    if len(head) > limits.max_header_line:
        return None
    lines = head.split("\r\n")
    if len(lines) - 1 > limits.max_headers:
        return None
    try:
        fields = iter(lines)
        start = next(fields)
        get = _FIELD_LINES.get
        items: list[tuple[str, str]] = []
        index: dict[str, list[str]] = {}
        for line in fields:
            item, key = get(line) or _split_field(line)
            items.append(item)
            index[key] = [item[1]]
        if len(index) < len(items):  # a repeated name: group its values, in order
            index = {}
            for name, value in items:
                index.setdefault(name.lower(), []).append(value)
        lengths = index.get("content-length")
        if lengths is None:
            body = data[end + 4 :] if datagram else b""
        else:
            text = lengths[0]
            if len(lengths) == 1 and len(text) <= 10 and text.isdigit() and text.isascii():
                length = int(text)
            else:
                length = parse_content_length(lengths) or 0
            if end + 4 + length > len(data):
                return None
            body = data[end + 4 : end + 4 + length]
        headers = Headers.from_parsed(items, index)
        message: Request | Response
        if (request_line := _REQUEST_LINES.get(start)) is not None:
            message = Request(request_line[0], request_line[1], headers, body, "SIP/2.0")
        elif (status_line := _STATUS_LINES.get(start)) is not None:
            message = Response(status_line[0], status_line[1], headers, body, "SIP/2.0")
        else:
            message = _start_message(start, headers, body)
        return message if _check_common(message, index) else None
    except SipParseError:
        return None


def _check_common(message: Request | Response, index: dict[str, list[str]]) -> bool:
    """``_check_core`` for a message with one From, To, Call-ID and CSeq; False gives up.

    Raises:
        SipParseError: when a value is malformed (the general path then reports it).
    """
    try:
        vias = index["via"]
        (from_text,) = index["from"]
        (to_text,) = index["to"]
        (call_id,) = index["call-id"]
        (cseq_text,) = index["cseq"]
    except (KeyError, ValueError):
        return False
    if len(vias) == 1 and "," not in vias[0]:
        parsed = [parse_via(vias[0])]
    else:
        parsed = [parse_via(value) for line in vias for value in split_commas(line)]
    from_ = parse_address(from_text)
    to = parse_address(to_text)
    cseq = parse_cseq(cseq_text)
    if not call_id or " " in call_id or "\t" in call_id or not parsed:
        return False
    if type(message) is Request and cseq.method != message.method:
        return False
    forwards = index.get("max-forwards")
    if forwards is not None and not (len(forwards) == 1 and forwards[0] in _HOP_COUNTS):
        _check_scalar(index, "max-forwards", 255)
    if "expires" in index:
        _check_scalar(index, "expires", _MAX_EXPIRES)
    headers = message.headers
    headers.prime("Via", parsed)
    headers.prime("From", from_)
    headers.prime("To", to)
    headers.prime("CSeq", cseq)
    headers.prime("Call-ID", call_id)
    return True


# The fields a response is built from (RFC 3261 §8.2.6.2): a control character in one of them
# makes the request unanswerable, for the answer would carry it back.
_ANSWER_FIELDS = frozenset({"via", "from", "to", "call-id", "cseq"})


def _refuse_control(items: list[tuple[str, str]], *, unanswerable: bool) -> None:
    """Refuse a header value holding a control character (RFC 3261 §25.1 TEXT-UTF8).

    With ``unanswerable`` only the fields an answer copies are checked, else the others.
    """
    for name, value in items:
        if (name.lower() in _ANSWER_FIELDS) is unanswerable and find_control(value) != -1:
            raise SipParseError(f"control character in the {name} header field", 400)


def _parse_any(data: bytes, limits: ParseLimits, datagram: bool) -> Request | Response:
    """The general path: any message, every error with its hint and partial message."""
    head, rest, terminated = _split_head(data)
    lines = _header_lines(head, limits)
    items, index = _parse_fields(lines[1:])
    error: SipParseError | None = None
    message: Request | Response
    if lines[0][:4].upper() == "SIP/":
        message = parse_status_line(lines[0], Headers.from_parsed(items, index))
    else:
        message, error = parse_request_line(lines[0], Headers.from_parsed(items, index))
    _refuse_control(items, unanswerable=True)
    try:
        if error is not None:
            raise error
        _refuse_control(items, unanswerable=False)
        message.body = _body(rest, parse_content_length(index.get("content-length", [])), datagram)
        _check_core(message, index)
        if not terminated:
            raise SipParseError("no empty line after the header fields", 400)
    except SipParseError as exc:
        raise SipParseError(str(exc), exc.status_hint, message) from None
    return message


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
    message = _parse_common(data, limits, datagram)
    if message is None:
        message = _parse_any(data, limits, datagram)
    return message
