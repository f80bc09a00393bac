"""Structured header field values: Via, name-addr/addr-spec addresses and CSeq (RFC 3261 §20).

Theory of operation
-------------------
``message.Headers`` keeps raw strings; the parsers here turn one (already unfolded and, for
list fields, comma-split) value into a frozen value object, and ``str()`` turns it back into
wire form. Parsing accepts the LWS the grammar allows (around ``/`` and ``:`` in a Via, around
``;`` and ``=`` in parameters) and rejects anything else with ``SipParseError(msg, 400)``.

Parameters keep their names as written and their values as written (a quoted value keeps its
quotes), so nothing is lost between a parse and a re-serialisation.

Each parser first tries the common shape (one regular expression, results memoised by exact
text) and leaves anything else to its general path, the reference that tests compare it with.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from itertools import pairwise

from callserver.sip.errors import SipParseError
from callserver.sip.grammar import (
    FIRST_PARAM_PATTERN,
    LWS,
    TOKEN_PATTERN,
    close_quote,
    is_digits,
    is_token,
    memo_put,
    param_list,
    parse_params,
    quote,
)
from callserver.sip.grammar import unquote as _unquote
from callserver.sip.uri import (
    FAST_SIP_PATTERN,
    Params,
    Uri,
    parse_uri,
    sip_uri_from_parts,
    slot_setters,
    split_hostport,
)

__all__ = [
    "Address",
    "CSeq",
    "Via",
    "parse_address",
    "parse_addresses",
    "parse_cseq",
    "parse_params",
    "parse_via",
    "parse_vias",
]

_MAX_SEQ = 2**31 - 1
# A Via or name-addr changes from call to call only in its first parameter (branch, tag): the
# shapes split off what comes before it (sent-by, ``display <uri``), memoised here besides
# whole addresses and CSeq values, and what comes after it, memoised by ``param_list``.
_VIA_SHAPE = re.compile(rf"([^;]*){FIRST_PARAM_PATTERN}", re.DOTALL)
_ADDRESS_SHAPE = re.compile(rf"([^>]*)>{FIRST_PARAM_PATTERN}", re.DOTALL)
_new = object.__new__
_SENT_BYS: dict[str, tuple[str, str, int | None]] = {}
_NAME_ADDRS: dict[str, tuple[Uri, str | None]] = {}


def _get_param(params: Params, name: str) -> str | None:
    lower = name.lower()
    for pname, value in params:
        if pname.lower() == lower:
            return value
    return None


def _has_param(params: Params, name: str) -> bool:
    lower = name.lower()
    return any(pname.lower() == lower for pname, _ in params)


def _set_param(params: Params, name: str, value: str | None) -> Params:
    """Replace ``name`` in place (case-insensitively) or append it."""
    lower = name.lower()
    if not _has_param(params, name):
        return (*params, (name, value))
    return tuple((name, value) if p.lower() == lower else (p, v) for p, v in params)


def _format_params(params: Params) -> str:
    return "".join(f";{name}" if value is None else f";{name}={value}" for name, value in params)


@dataclass(frozen=True, slots=True)
class Via:
    """One Via header field value (RFC 3261 §20.42, §18.2.1; RFC 3581 ``rport``)."""

    transport: str
    host: str
    port: int | None = None
    params: Params = ()
    protocol: str = "SIP/2.0"

    @property
    def branch(self) -> str | None:
        """The ``branch`` parameter (RFC 3261 §8.1.1.7), or None."""
        return _get_param(self.params, "branch")

    @property
    def received(self) -> str | None:
        """The ``received`` parameter (RFC 3261 §18.2.1), or None."""
        return _get_param(self.params, "received")

    @property
    def maddr(self) -> str | None:
        """The ``maddr`` parameter (RFC 3261 §18.2.2), or None."""
        return _get_param(self.params, "maddr")

    @property
    def rport(self) -> int | None:
        """The numeric ``rport`` value (RFC 3581 §4), or None if absent, valueless or bad."""
        value = _get_param(self.params, "rport")
        return int(value) if value is not None and is_digits(value) and len(value) <= 5 else None

    @property
    def has_rport(self) -> bool:
        """True if ``rport`` is present, even without a value (RFC 3581 §3)."""
        return _has_param(self.params, "rport")

    def param(self, name: str) -> str | None:
        """Return parameter ``name`` (case-insensitive); None if absent or valueless."""
        return _get_param(self.params, name)

    def with_param(self, name: str, value: str | None) -> Via:
        """Return a copy with parameter ``name`` set to ``value``, keeping parameter order."""
        return replace(self, params=_set_param(self.params, name, value))

    def __str__(self) -> str:
        port = f":{self.port}" if self.port is not None else ""
        return f"{self.protocol}/{self.transport} {self.host}{port}{_format_params(self.params)}"


def _join_sent_by(text: str) -> str:
    """Remove the SWS the grammar allows around the ``:`` of ``sent-by``."""
    parts = text.split()
    for left, right in pairwise(parts):
        if not (left.endswith(":") or right.startswith(":")):
            raise SipParseError(f"invalid sent-by {text!r}", 400)
    return "".join(parts)


# ``SIP/2.0/UDP host[:port]`` in one C-level match (the general path accepts a superset).
_FAST_SENT_BY = re.compile(
    r"SIP/2\.0/([A-Za-z]+) ([A-Za-z0-9_.\-]+|\[[0-9A-Fa-f:.]{2,}\])(?::([0-9]{1,5}))?"
)
_SET_TRANSPORT, _SET_VIA_HOST, _SET_VIA_PORT, _SET_VIA_PARAMS, _SET_PROTOCOL = slot_setters(Via)


def _sent_by(text: str) -> tuple[str, str, int | None] | None:
    """Transport, host and port of ``SIP/2.0/UDP host:port`` (memoised); None if unusual."""
    match = _FAST_SENT_BY.fullmatch(text)
    if match is None:
        return None
    transport, host, port_text = match.groups()
    port = None if port_text is None else int(port_text)
    if ".." in host or host[0] == "." or (port is not None and port > 65535):
        return None
    sent = (transport.upper(), host, port)
    memo_put(_SENT_BYS, text, sent)
    return sent


def parse_via(value: str) -> Via:
    """Parse one ``via-parm`` (RFC 3261 §20.42, §25.1): ``SIP/2.0/UDP host:port;params``.

    Raises:
        SipParseError: (400) when the value is malformed.
    """
    match = _VIA_SHAPE.fullmatch(value)
    if match is None:
        return _parse_via_general(value)
    head, name, param, rest = match.groups()
    sent = _SENT_BYS.get(head) or _sent_by(head)
    params = param_list(name, param, rest)
    if sent is None or params is None:
        return _parse_via_general(value)
    via: Via = _new(Via)  # Via(transport, host, port, params, "SIP/2.0")
    _SET_TRANSPORT(via, sent[0])
    _SET_VIA_HOST(via, sent[1])
    _SET_VIA_PORT(via, sent[2])
    _SET_VIA_PARAMS(via, params)
    _SET_PROTOCOL(via, "SIP/2.0")
    return via


def _parse_via_general(value: str) -> Via:
    head, semi, param_text = value.partition(";")
    name, slash1, rest = head.partition("/")
    version, slash2, rest = rest.partition("/")
    name, version = name.strip(LWS), version.strip(LWS)
    transport, _, sent_by = rest.strip(LWS).replace("\t", " ").partition(" ")
    if not (slash1 and slash2 and is_token(name) and is_token(version) and is_token(transport)):
        raise SipParseError(f"invalid Via sent-protocol in {value!r}", 400)
    host, port = split_hostport(_join_sent_by(sent_by))
    params = parse_params(";" + param_text) if semi else ()
    return Via(transport.upper(), host, port, params, f"{name}/{version}")


def parse_vias(values: list[str]) -> list[Via]:
    """Parse every Via value (already split at commas), topmost first (RFC 3261 §20.42).

    Raises:
        SipParseError: (400) when any value is malformed.
    """
    return [parse_via(value) for value in values]


@dataclass(frozen=True, slots=True)
class Address:
    """A name-addr or addr-spec with header parameters (RFC 3261 §20.10, §20.20, §20.39)."""

    uri: Uri
    display_name: str | None = None
    params: Params = ()

    @property
    def tag(self) -> str | None:
        """The ``tag`` parameter (RFC 3261 §19.3), or None."""
        return _get_param(self.params, "tag")

    def param(self, name: str) -> str | None:
        """Return the value of header parameter ``name`` (case-insensitive), or None."""
        return _get_param(self.params, name)

    def with_tag(self, tag: str) -> Address:
        """Return a copy whose ``tag`` is ``tag`` (RFC 3261 §8.2.6.2 adds a To tag)."""
        return replace(self, params=_set_param(self.params, "tag", tag))

    def __str__(self) -> str:
        name = f"{quote(self.display_name)} " if self.display_name is not None else ""
        return f"{name}<{self.uri}>{_format_params(self.params)}"


def _display_name(text: str) -> str | None:
    """Check ``display-name = *(token LWS) / quoted-string`` and return it unquoted."""
    text = text.strip(LWS)
    if not text:
        return None
    if text.startswith('"'):
        return _unquote(text)
    words = text.split()
    if not all(is_token(word) for word in words):
        raise SipParseError(f"display name is neither tokens nor quoted: {text!r}", 400)
    return " ".join(words)


def _parse_name_addr(value: str, lt: int) -> Address:
    """Parse ``[display-name] LAQUOT addr-spec RAQUOT *(SEMI param)`` with ``<`` at ``lt``."""
    gt = value.find(">", lt)
    if gt == -1:
        raise SipParseError(f"unclosed '<' in {value!r}", 400)
    display = _display_name(value[:lt])
    uri = parse_uri(value[lt + 1 : gt])
    return Address(uri, display, parse_params(value[gt + 1 :]))


def _addr_spec_uri(text: str) -> Uri:
    # RFC 3261 §20.10: a URI with a comma, question mark or semicolon MUST be in <...>;
    # in the addr-spec form everything after the first ';' is a header parameter.
    if "?" in text:
        raise SipParseError(f"URI with headers outside '<>': {text!r}", 400)
    return parse_uri(text)


# What comes before the ``>`` of ``"Name" <uri>``, ``Name <uri>`` or ``<uri>``, without escapes
# or odd LWS: with a SIP URI of the common shape (one match for all of it), or any other.
_DISPLAY_RE = rf'(?:"([^"\\]*)"|({TOKEN_PATTERN}(?: {TOKEN_PATTERN})*))?[ \t]*<'
_FAST_NAME_SIP = re.compile(_DISPLAY_RE + FAST_SIP_PATTERN)
_FAST_NAME_ADDR = re.compile(_DISPLAY_RE + r'([^<>"\s]+)')
_SET_URI, _SET_DISPLAY_NAME, _SET_ADDRESS_PARAMS = slot_setters(Address)
_ADDRESSES: dict[str, Address] = {}


def _name_addr(text: str) -> tuple[Uri, str | None] | None:
    """URI and display name of ``"Name" <uri`` (memoised); None if unusual.

    Raises:
        SipParseError: (400) when the URI is malformed.
    """
    match = _FAST_NAME_SIP.fullmatch(text)
    uri: Uri | None = None
    if match is not None:
        groups = match.groups()
        quoted, words = groups[:2]
        uri = sip_uri_from_parts(*groups[2:])
    if uri is None:
        match = _FAST_NAME_ADDR.fullmatch(text)
        if match is None:
            return None
        quoted, words, uri_text = match.groups()
        uri = parse_uri(uri_text)
    known = (uri, quoted if quoted is not None else words)
    memo_put(_NAME_ADDRS, text, known)
    return known


def parse_address(value: str) -> Address:
    """Parse a From, To, Contact, Route or Record-Route value (RFC 3261 §20.10, §25.1).

    Accepts ``name-addr`` (``"Name" <uri>;p=v``, ``Name <uri>``, ``<uri>``) and ``addr-spec``
    (``uri;p=v``). In the addr-spec form the parameters after the URI are header parameters,
    not URI parameters (RFC 3261 §20.10).

    Raises:
        SipParseError: (400) when the value is malformed.
    """
    address = _ADDRESSES.get(value)
    if address is not None:
        return address
    match = _ADDRESS_SHAPE.fullmatch(value)  # surrounding LWS: no match, general path
    known = params = None
    if match is not None:
        head, name, param, rest = match.groups()
        known = _NAME_ADDRS.get(head) or _name_addr(head)
        params = param_list(name, param, rest)
    if known is None or params is None:
        address = _parse_address_general(value.strip(LWS))
    else:
        address = _new(Address)  # Address(uri, display name, params)
        _SET_URI(address, known[0])
        _SET_DISPLAY_NAME(address, known[1])
        _SET_ADDRESS_PARAMS(address, params)
    memo_put(_ADDRESSES, value, address)
    return address


def _parse_address_general(value: str) -> Address:
    if value.startswith('"'):
        end = close_quote(value, 0) + 1
        lt = value.find("<", end)
        if lt == -1 or value[end:lt].strip(LWS):
            raise SipParseError(f"quoted display name without '<uri>': {value!r}", 400)
        return _parse_name_addr(value, lt)
    lt = value.find("<")
    semi = value.find(";")
    if lt != -1 and (semi == -1 or lt < semi):
        return _parse_name_addr(value, lt)
    spec, has_params, param_text = value.partition(";")
    params = parse_params(";" + param_text) if has_params else ()
    return Address(_addr_spec_uri(spec.strip(LWS)), None, params)


def parse_addresses(values: list[str]) -> list[Address]:
    """Parse every value of a multi-valued address field (Contact, Route, Record-Route).

    Raises:
        SipParseError: (400) when any value is malformed.
    """
    return [parse_address(value) for value in values]


@dataclass(frozen=True, slots=True)
class CSeq:
    """A CSeq value (RFC 3261 §20.16): sequence number below 2**31 and method."""

    seq: int
    method: str

    def __str__(self) -> str:
        return f"{self.seq} {self.method}"


def parse_cseq(value: str) -> CSeq:
    """Parse ``CSeq = 1*DIGIT LWS Method`` (RFC 3261 §20.16, §25.1).

    "The sequence number value MUST be expressible as a 32-bit unsigned integer and MUST be
    less than 2**31" (RFC 3261 §8.1.1.5).

    Raises:
        SipParseError: (400) when malformed or out of range.
    """
    cseq = _CSEQS.get(value)
    if cseq is None:
        cseq = _parse_cseq(value)
        memo_put(_CSEQS, value, cseq)
    return cseq


_CSEQS: dict[str, CSeq] = {}


def _parse_cseq(value: str) -> CSeq:
    parts = value.split()
    if len(parts) != 2 or not is_digits(parts[0]) or not is_token(parts[1]):
        raise SipParseError(f"malformed CSeq {value!r}", 400)
    digits = parts[0].lstrip("0")
    if len(digits) > 10 or int(parts[0]) > _MAX_SEQ:
        raise SipParseError(f"CSeq number out of range in {value!r}", 400)
    return CSeq(int(parts[0]), parts[1])
