"""SIP and SIPS URIs, and every other URI as an opaque absolute URI (RFC 3261 §19.1, §25.1).

Theory of operation
-------------------
``parse_uri`` reads ``sip:`` and ``sips:`` URIs into :class:`SipUri`, keeping every part as it
was written (escapes included), so ``str(parse_uri(s)) == s`` for any well-formed ``s`` with a
lower-case scheme. Any other scheme (``tel:`` of RFC 3966, ``urn:``, ``http:``, even
``nobodyKnowsThisScheme:``) parses as :class:`AbsoluteUri`: whether such a URI is acceptable is
the UAS's decision (416, RFC 3261 §8.2.2.1), not the grammar's.

The user part is split from the host at the first ``@``: the user may hold ``;``, ``?`` and
``,`` (``user-unreserved``), while parameters and headers may not hold a bare ``@``.

The same URIs come back in message after message (our Contact as the Request-URI of every
in-dialog request, the called numbers, a trunk's Contact), so ``parse_uri`` memoises its
results by exact text; they are immutable, so sharing one is safe. A URI not met before is
first tried against one regular expression for the common shape, and only what that cannot
vouch for takes the general path, which is the reference: tests check the two agree.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, fields
from typing import TYPE_CHECKING

from callserver.sip.errors import SipParseError
from callserver.sip.grammar import Params, memo_put, parse_port

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

__all__ = [
    "FAST_SIP_PATTERN",
    "AbsoluteUri",
    "Params",
    "SipUri",
    "Uri",
    "equivalent",
    "parse_uri",
    "sip_uri_from_parts",
    "slot_setters",
    "split_hostport",
    "unescape",
]


_ALNUM = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
_HEX = frozenset("0123456789abcdefABCDEF")
_UNRESERVED = _ALNUM + "-_.!~*'()"
# RFC 3261 §25.1: user-unreserved, password, paramchar and hname/hvalue character sets. The
# user part also takes a bare "#": phones send dial strings such as *21*202# unescaped (baresip,
# desk phones), where the grammar asks for %23; the user is kept as written either way.
_USER_CHARS = frozenset(_UNRESERVED + "%&=+$,;?/#")
_PASSWORD_CHARS = frozenset(_UNRESERVED + "%&=+$,")
_PARAM_CHARS = frozenset(_UNRESERVED + "%[]/:&+$")
_HEADER_CHARS = frozenset(_UNRESERVED + "%[]/?:+$")
_HOST_CHARS = frozenset(_ALNUM + "-._")
_IPV6_CHARS = frozenset("0123456789abcdefABCDEF:.")
_SCHEME_CHARS = frozenset(_ALNUM + "+-.")
# Characters no URI may hold anywhere (RFC 3986 §2 excludes them; LWS ends a URI).
_FORBIDDEN = frozenset(' \t\r\n"<>\\^`{|}\x7f') | frozenset(chr(c) for c in range(0x20))


@dataclass(frozen=True, slots=True)
class SipUri:
    """A ``sip:`` or ``sips:`` URI (RFC 3261 §19.1.1), parts kept as written."""

    scheme: str
    host: str
    user: str | None = None
    password: str | None = None
    port: int | None = None
    params: Params = ()
    headers: tuple[tuple[str, str], ...] = ()

    def param(self, name: str) -> str | None:
        """Return uri-parameter ``name`` (case-insensitive); None if absent or valueless."""
        lower = name.lower()
        for pname, value in self.params:
            if pname.lower() == lower:
                return value
        return None

    def has_param(self, name: str) -> bool:
        """Return True if uri-parameter ``name`` is present, with or without a value."""
        lower = name.lower()
        return any(pname.lower() == lower for pname, _ in self.params)

    @property
    def transport(self) -> str | None:
        """The lower-cased ``transport`` parameter (RFC 3261 §19.1.1), or None."""
        value = self.param("transport")
        return value.lower() if value is not None else None

    def __str__(self) -> str:
        parts = [self.scheme, ":"]
        if self.user is not None:
            parts.append(self.user)
            if self.password is not None:
                parts += [":", self.password]
            parts.append("@")
        parts.append(self.host)
        if self.port is not None:
            parts += [":", str(self.port)]
        for pname, value in self.params:
            parts += [";", pname] if value is None else [";", pname, "=", value]
        for index, (hname, hvalue) in enumerate(self.headers):
            parts += ["?" if index == 0 else "&", hname, "=", hvalue]
        return "".join(parts)


@dataclass(frozen=True, slots=True)
class AbsoluteUri:
    """Any non-SIP URI, such as ``tel:`` (RFC 3966): a scheme and its opaque remainder."""

    scheme: str
    opaque: str

    def __str__(self) -> str:
        return f"{self.scheme}:{self.opaque}"


Uri = SipUri | AbsoluteUri


def unescape(text: str) -> str:
    """Decode ``%XX`` escapes (RFC 3261 §25.1 ``escaped``) as UTF-8.

    A ``%`` not followed by two hex digits is kept literally, so this never fails.
    """
    if "%" not in text:
        return text
    out = bytearray()
    i = 0
    while i < len(text):
        ch = text[i]
        if ch == "%" and i + 2 < len(text) and _HEX.issuperset(text[i + 1 : i + 3]):
            out.append(int(text[i + 1 : i + 3], 16))
            i += 3
            continue
        out += ch.encode("utf-8", "surrogateescape")
        i += 1
    return out.decode("utf-8", "surrogateescape")


def _check_escapes(text: str, allowed: frozenset[str], what: str) -> None:
    """Raise unless ``text`` uses only ``allowed`` characters and well-formed escapes."""
    if not allowed.issuperset(text):
        raise SipParseError(f"invalid character in URI {what} {text!r}", 400)
    start = text.find("%")
    while start != -1:
        if len(text) < start + 3 or not _HEX.issuperset(text[start + 1 : start + 3]):
            raise SipParseError(f"malformed escape in URI {what} {text!r}", 400)
        start = text.find("%", start + 3)


def _check_host(host: str) -> None:
    """Check ``host`` = hostname / IPv4address / IPv6reference (RFC 3261 §25.1)."""
    if host.startswith("["):
        if len(host) < 4 or not host.endswith("]") or not _IPV6_CHARS.issuperset(host[1:-1]):
            raise SipParseError(f"invalid IPv6 reference {host!r}", 400)
        return
    if not host or not _HOST_CHARS.issuperset(host) or ".." in host or host[0] == ".":
        raise SipParseError(f"invalid host {host!r}", 400)


def split_hostport(text: str) -> tuple[str, int | None]:
    """Split ``hostport`` (RFC 3261 §25.1) into a checked host and an optional port.

    Raises:
        SipParseError: (400) on a malformed host or port.
    """
    if text.startswith("["):
        close = text.find("]")
        host, rest = (text, "") if close == -1 else (text[: close + 1], text[close + 1 :])
        if rest and not rest.startswith(":"):
            raise SipParseError(f"invalid hostport {text!r}", 400)
        port_text = rest[1:] if rest else None
    else:
        host, colon, port_text_raw = text.partition(":")
        port_text = port_text_raw if colon else None
    _check_host(host)
    return host, (parse_port(port_text) if port_text is not None else None)


def _parse_uri_params(text: str) -> Params:
    """Parse ``*( ";" uri-parameter )`` without the leading ``;`` (RFC 3261 §19.1.1)."""
    out: list[tuple[str, str | None]] = []
    for item in text.split(";"):
        name, eq, value = item.partition("=")
        _check_escapes(name, _PARAM_CHARS, "parameter")
        if not name or (eq and not value):
            raise SipParseError(f"empty URI parameter in {text!r}", 400)
        if eq:
            _check_escapes(value, _PARAM_CHARS, "parameter")
        out.append((name, value if eq else None))
    return tuple(out)


def _parse_uri_headers(text: str) -> tuple[tuple[str, str], ...]:
    """Parse ``hname "=" hvalue *( "&" header )`` (RFC 3261 §19.1.1)."""
    out: list[tuple[str, str]] = []
    for item in text.split("&"):
        name, eq, value = item.partition("=")
        if not name or not eq:
            raise SipParseError(f"malformed URI header {item!r}", 400)
        _check_escapes(name, _HEADER_CHARS, "header")
        _check_escapes(value, _HEADER_CHARS, "header")
        out.append((name, value))
    return tuple(out)


def _parse_sip(scheme: str, rest: str) -> SipUri:
    """Parse the part of a SIP/SIPS URI after ``scheme:``."""
    user: str | None = None
    password: str | None = None
    at = rest.find("@")
    if at != -1:
        userinfo, rest = rest[:at], rest[at + 1 :]
        user, colon, pw = userinfo.partition(":")
        if not user:
            raise SipParseError("empty user part in SIP URI", 400)
        _check_escapes(user, _USER_CHARS, "user")
        if colon:
            _check_escapes(pw, _PASSWORD_CHARS, "password")
            password = pw
    rest, qmark, header_text = rest.partition("?")
    hostport, semi, param_text = rest.partition(";")
    host, port = split_hostport(hostport)
    params = _parse_uri_params(param_text) if semi else ()
    headers = _parse_uri_headers(header_text) if qmark else ()
    return SipUri(scheme, host, user, password, port, params, headers)


# The common shape (no escapes, no headers, lower-case scheme) in one C-level match; anything
# else, valid or not, takes the general path (``_parse_sip``), which accepts a superset of it.
# Each part is one flat character class, which the regex engine runs fastest; what a class
# cannot say (no empty label in a host, the grammar of the parameters) is checked after it.
FAST_SIP_PATTERN = (
    r"(sips?):"
    r"(?:([A-Za-z0-9\-_.!~*'()&=+$,/]+)(?::([A-Za-z0-9\-_.!~*'()&=+$,]*))?@)?"
    r"([A-Za-z0-9_.\-]+|\[[0-9A-Fa-f:.]{2,}\])"
    r"(?::([0-9]{1,5}))?"
    r"(;[A-Za-z0-9\-_.!~*'()\[\]/:&+$;=]*)?"
)
"""The common ``sip:user@host:port;params`` shape as six groups, for ``sip_uri_from_parts``."""
_FAST_SIP = re.compile(FAST_SIP_PATTERN)

Setter = Callable[[object, object], None]


def slot_setters(cls: type[DataclassInstance]) -> tuple[Setter, ...]:
    """The ``__set__`` of each field's slot of the slotted dataclass ``cls``, in field order.

    A frozen dataclass's ``__init__`` sets each field through ``object.__setattr__``, which
    looks the name up every time; the parsers' hot paths fill fresh instances (made with
    ``object.__new__``) through these setters instead, at half the cost.
    """
    return tuple(getattr(cls, field.name).__set__ for field in fields(cls))


_new = object.__new__
_SET_SCHEME, _SET_HOST, _SET_USER, _SET_PASSWORD, _SET_PORT, _SET_PARAMS, _SET_HEADERS = (
    slot_setters(SipUri)
)


# Memo tables (see ``grammar.memo_put``): the same Request-URIs, Contacts and parameter
# lists come back in message after message.
_URIS: dict[str, Uri] = {}
_URI_PARAMS: dict[str, Params] = {}


def _fast_sip(text: str) -> SipUri | None:
    match = _FAST_SIP.fullmatch(text)
    return None if match is None else sip_uri_from_parts(*match.groups())


def sip_uri_from_parts(
    scheme: str,
    user: str | None,
    password: str | None,
    host: str,
    port_text: str | None,
    param_text: str | None,
) -> SipUri | None:
    """The SipUri of the groups ``FAST_SIP_PATTERN`` matched, or None if it is unusual.

    Finishes the checks the pattern leaves (host labels, port range, parameter grammar); a
    None sends the caller to its general path, which decides. See RFC 3261 §19.1.1, §25.1.
    """
    if ".." in host or host[0] == ".":
        return None
    port = None
    if port_text is not None:
        port = int(port_text)
        if port > 65535:
            return None
    params = _uri_params(param_text) if param_text is not None else ()
    if params is None:
        return None
    uri: SipUri = _new(SipUri)  # SipUri(scheme, host, user, password, port, params)
    _SET_SCHEME(uri, scheme)
    _SET_HOST(uri, host)
    _SET_USER(uri, user)
    _SET_PASSWORD(uri, password)
    _SET_PORT(uri, port)
    _SET_PARAMS(uri, params)
    _SET_HEADERS(uri, ())
    return uri


def _uri_params(text: str) -> Params | None:
    """The parameters ``;a=b;c`` of a URI on the fast path (memoised); None if malformed."""
    params = _URI_PARAMS.get(text)
    if params is None:
        try:
            params = _parse_uri_params(text[1:])
        except SipParseError:
            return None
        memo_put(_URI_PARAMS, text, params)
    return params


def parse_uri(text: str) -> Uri:
    """Parse a Request-URI or a URI from a name-addr (RFC 3261 §19.1, §25.1).

    ``sip``/``sips`` URIs become :class:`SipUri`; any other syntactically valid scheme
    becomes :class:`AbsoluteUri` (RFC 3261 §19.1: other schemes are allowed, §8.2.2.1 decides
    whether they are served). Schemes are lower-cased; everything else is kept as written.

    Raises:
        SipParseError: (400) when ``text`` is not a URI.
    """
    uri = _URIS.get(text)
    if uri is None:
        uri = _fast_sip(text) or _parse_general(text)
        memo_put(_URIS, text, uri)
    return uri


def _parse_general(text: str) -> Uri:
    scheme, colon, rest = text.partition(":")
    if not colon or not rest or not scheme[:1].isalpha():
        raise SipParseError(f"not a URI: {text!r}", 400)
    if not _SCHEME_CHARS.issuperset(scheme) or not _FORBIDDEN.isdisjoint(rest):
        raise SipParseError(f"invalid character in URI {text!r}", 400)
    scheme = scheme.lower()
    if scheme in ("sip", "sips"):
        return _parse_sip(scheme, rest)
    return AbsoluteUri(scheme, rest)


# RFC 3261 §19.1.4: a uri-parameter of these present in one URI only makes them differ (user,
# ttl, method and maddr by name; transport as a component with a default value, the rule its
# examples apply); any other parameter present in one URI only is ignored.
_DECISIVE_PARAMS = frozenset({"user", "ttl", "method", "maddr", "transport"})


def equivalent(a: Uri, b: Uri, *, ignore: frozenset[str] = frozenset()) -> bool:
    """Whether ``a`` and ``b`` are the same URI by the comparison rules of RFC 3261 §19.1.4:
    user info case-sensitive, host and parameters case-insensitive, escapes decoded, a port
    or decisive parameter in one URI only a difference, headers never ignored. Parameters
    named in ``ignore`` (lower case) are left out; a non-SIP URI equals only itself."""
    if not isinstance(a, SipUri) or not isinstance(b, SipUri):
        return a == b
    if a.scheme != b.scheme or (a.host.lower(), a.port) != (b.host.lower(), b.port):
        return False
    if _unescaped(a.user) != _unescaped(b.user) or _unescaped(a.password) != _unescaped(b.password):
        return False
    left, right = _comparable(a.params, ignore), _comparable(b.params, ignore)
    if any(left[name] != right[name] for name in left.keys() & right.keys()):
        return False
    if _DECISIVE_PARAMS & (left.keys() ^ right.keys()):
        return False
    return _header_set(a.headers) == _header_set(b.headers)


def _unescaped(text: str | None) -> str | None:
    return None if text is None else unescape(text)


def _comparable(params: Params, ignore: frozenset[str]) -> dict[str, str | None]:
    return {
        name.lower(): None if value is None else unescape(value).lower()
        for name, value in params
        if name.lower() not in ignore
    }


def _header_set(headers: tuple[tuple[str, str], ...]) -> set[tuple[str, str]]:
    return {(unescape(name).lower(), unescape(value)) for name, value in headers}
