"""The start line of a SIP message: Request-Line and Status-Line (RFC 3261 §7.1, §7.2, §25.1).

``parser`` reads a start line here when it has not met the same text before, and on its
general path; a malformed Request-Line is still read as liberally as possible, so the error
can carry a partial message that can be answered.
"""

from __future__ import annotations

import re

from callserver.sip.errors import SipParseError
from callserver.sip.grammar import is_digits, is_token
from callserver.sip.message import Headers, Request, Response
from callserver.sip.uri import AbsoluteUri, SipUri, Uri, parse_uri

__all__ = ["parse_request_line", "parse_status_line"]

_VERSION = re.compile(r"SIP/[0-9]+\.[0-9]+", re.IGNORECASE)


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


def parse_request_line(line: str, headers: Headers) -> tuple[Request, SipParseError | None]:
    """Parse ``Method SP Request-URI SP SIP-Version`` (RFC 3261 §7.1, §25.1)."""
    parts = line.split(" ")
    error: SipParseError | None = None
    if len(parts) == 3 and is_token(parts[0]):
        method, uri_text, version = parts
        try:
            uri = parse_uri(uri_text)
            if isinstance(uri, SipUri) and uri.headers:
                # RFC 3261 §19.1.1 (table 1): headers are not allowed in a Request-URI.
                raise SipParseError("headers in the Request-URI", 400)
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


def parse_status_line(line: str, headers: Headers) -> Response:
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
