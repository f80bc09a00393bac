"""Property tests: parse(serialize(m)) == m, garbage only raises SipParseError, framing is exact."""

from __future__ import annotations

import string
from collections.abc import Callable

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from callserver.sip.errors import SipParseError
from callserver.sip.framing import ReceiveBuffer
from callserver.sip.grammar import TOKEN_CHARS
from callserver.sip.headers import (
    Address,
    Via,
    _parse_address_general,
    _parse_via_general,
    parse_address,
    parse_via,
)
from callserver.sip.message import Headers, Request, Response
from callserver.sip.parser import ParseLimits, _parse_any, _parse_common, parse_message
from callserver.sip.uri import SipUri, _fast_sip, _parse_sip, parse_uri

SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

tokens = st.text(alphabet=sorted(TOKEN_CHARS), min_size=1, max_size=12)
methods = st.one_of(st.sampled_from(["INVITE", "ACK", "BYE", "CANCEL", "OPTIONS"]), tokens)
labels = st.text(alphabet=string.ascii_lowercase + string.digits, min_size=1, max_size=10)
hostnames = st.lists(labels, min_size=1, max_size=4).map(".".join)
ipv4 = st.tuples(*[st.integers(0, 255)] * 4).map(lambda t: ".".join(map(str, t)))
ipv6 = st.lists(st.integers(0, 0xFFFF), min_size=8, max_size=8).map(
    lambda g: "[" + ":".join(f"{x:x}" for x in g) + "]"
)
hosts = st.one_of(hostnames, ipv4, ipv6)
ports = st.one_of(st.none(), st.integers(1, 65535))
unreserved = string.ascii_letters + string.digits + "-_.!~*'()"
users = st.text(alphabet=unreserved + "&=+$,/", min_size=1, max_size=12)
uri_param_chars = st.text(alphabet=unreserved + "[]/:&+$", min_size=1, max_size=8)
uri_params = st.lists(st.tuples(uri_param_chars, st.one_of(st.none(), uri_param_chars)), max_size=3)


@st.composite
def sip_uris(draw: st.DrawFn) -> SipUri:
    """A SIP or SIPS URI built from valid parts (no headers: a Request-URI may not have any)."""
    return SipUri(
        scheme=draw(st.sampled_from(["sip", "sips"])),
        host=draw(hosts),
        user=draw(st.one_of(st.none(), users)),
        port=draw(ports),
        params=tuple(draw(uri_params)),
    )


header_params = st.lists(st.tuples(tokens, st.one_of(st.none(), tokens)), max_size=3).map(tuple)
display_names = st.one_of(
    st.none(), st.text(st.characters(blacklist_categories=("Cs", "Co")), max_size=15)
)


@st.composite
def addresses(draw: st.DrawFn) -> str:
    """A name-addr as it would be written in From or To."""
    return str(Address(draw(sip_uris()), draw(display_names), draw(header_params)))


@st.composite
def vias(draw: st.DrawFn) -> str:
    """One Via value."""
    transport = draw(st.sampled_from(["UDP", "TCP", "TLS", "SCTP", "WS"]))
    params = (("branch", "z9hG4bK" + draw(tokens)), *draw(header_params))
    return str(Via(transport, draw(hosts), draw(ports), params))


field_values = st.text(st.characters(blacklist_categories=("Cs", "Cc")), max_size=30).filter(
    lambda v: v == v.strip(" \t")
)
extension_fields = st.lists(st.tuples(tokens.map(lambda t: "X-" + t), field_values), max_size=5)


@st.composite
def header_items(draw: st.DrawFn, method: str, body: bytes) -> list[tuple[str, str]]:
    """The mandatory fields for ``method`` plus extension fields, in a random order."""
    items = [
        ("Via", draw(vias())),
        ("From", draw(addresses())),
        ("To", draw(addresses())),
        ("Call-ID", draw(tokens) + "@" + draw(hostnames)),
        ("CSeq", f"{draw(st.integers(0, 2**31 - 1))} {method}"),
        ("Max-Forwards", str(draw(st.integers(0, 255)))),
        *draw(extension_fields),
    ]
    items = draw(st.permutations(items))
    return [*items, ("Content-Length", str(len(body)))]


@st.composite
def requests(draw: st.DrawFn) -> Request:
    """A valid request."""
    method, body = draw(methods), draw(st.binary(max_size=200))
    headers = Headers(draw(header_items(method, body)))
    return Request(method, draw(sip_uris()), headers, body)


reasons = st.text(st.characters(blacklist_categories=("Cs", "Cc")), max_size=20)


@st.composite
def responses(draw: st.DrawFn) -> Response:
    """A valid response."""
    body = draw(st.binary(max_size=200))
    headers = Headers(draw(header_items(draw(methods), body)))
    return Response(draw(st.integers(100, 699)), draw(reasons), headers, body)


messages = st.one_of(requests(), responses())


def assert_parses_or_refuses(data: bytes) -> None:
    """Parse ``data``: a message, or a SipParseError with a known hint and a sane partial."""
    try:
        message = parse_message(data)
    except SipParseError as exc:
        assert exc.status_hint in (400, 413, 505)
        assert exc.partial is None or isinstance(exc.partial, Request | Response)
    else:
        assert isinstance(message, Request | Response)


@SETTINGS
@given(sip_uris())
def test_uri_round_trip(uri: SipUri) -> None:
    """A SIP URI built from valid parts survives str() and parse_uri()."""
    assert parse_uri(str(uri)) == uri


def same_outcome(fast: Callable[[], object], general: Callable[[], object]) -> None:
    """Both callables return equal values, or both raise SipParseError."""
    try:
        expected = general()
    except SipParseError:
        with pytest.raises(SipParseError):
            fast()
    else:
        assert fast() == expected


uri_ish = st.text(alphabet="abAB01.-_@:;=?&[]%/+$,!~*'() \"<>", max_size=24)


@SETTINGS
@given(st.one_of(uri_ish, sip_uris().map(str).map(lambda u: u.partition(":")[2])))
def test_uri_fast_path_agrees_with_general_path(rest: str) -> None:
    """Whatever the one-match fast path accepts, the general parser reads the same way."""
    fast = _fast_sip("sip:" + rest)
    if fast is not None:
        assert _parse_sip("sip", rest) == fast


@SETTINGS
@given(st.one_of(vias(), uri_ish.map(lambda t: "SIP/2.0/UDP " + t)))
def test_via_fast_path_agrees_with_general_path(value: str) -> None:
    """parse_via's fast path and its general path agree on every input."""
    same_outcome(lambda: parse_via(value), lambda: _parse_via_general(value))


@SETTINGS
@given(st.one_of(addresses(), st.tuples(uri_ish, uri_ish).map(lambda t: f"{t[0]}<sip:{t[1]}>")))
def test_address_fast_path_agrees_with_general_path(value: str) -> None:
    """parse_address's fast path and its general path agree on every input."""
    stripped = value.strip(" \t")
    same_outcome(lambda: parse_address(value), lambda: _parse_address_general(stripped))


CORE_FIELDS = ("Via", "From", "To", "CSeq", "Call-ID")


def assert_paths_agree(
    data: bytes, datagram: bool = True, limits: ParseLimits | None = None
) -> bool:
    """The one-pass parse of ``data`` gives up or builds exactly what the general path builds.

    Returns whether the one-pass parse took the message.
    """
    limits = limits or ParseLimits()
    fast = _parse_common(data, limits, datagram)
    try:
        general = _parse_any(data, limits, datagram)
    except SipParseError:
        assert fast is None
        return False
    if fast is None:
        return False
    assert type(fast) is type(general)
    assert fast == general
    for name in CORE_FIELDS:
        assert fast.headers.primed(name) == general.headers.primed(name)
    for name, _ in general.headers:
        assert fast.headers.get_all(name) == general.headers.get_all(name)
    return True


@SETTINGS
@given(messages, st.booleans())
def test_message_fast_path_takes_valid_messages(
    message: Request | Response, datagram: bool
) -> None:
    """A valid message with single core fields goes through the one-pass parse, identically."""
    data = message.serialize()
    assert assert_paths_agree(data, datagram)
    assert assert_paths_agree(data, datagram)  # again, now that every memo table knows it


@SETTINGS
@given(messages, st.data())
def test_message_fast_path_agrees_on_mutants(
    message: Request | Response, data: st.DataObject
) -> None:
    """On octets replaced, inserted or deleted, the one-pass parse agrees or gives up."""
    raw = bytearray(message.serialize())
    for _ in range(data.draw(st.integers(1, 6))):
        position = data.draw(st.integers(0, len(raw)))
        octet = data.draw(st.sampled_from([*b'\r\n\t :;,<>"\\%@=/\x00\xffA0']))
        if data.draw(st.booleans()):
            raw.insert(position, octet)
        elif position < len(raw):
            raw[position] = octet
    limits = data.draw(
        st.sampled_from([ParseLimits(), ParseLimits(max_headers=6, max_header_line=60)])
    )
    assert_paths_agree(bytes(raw), data.draw(st.booleans()), limits)


@SETTINGS
@given(st.binary(max_size=400))
def test_message_fast_path_agrees_on_arbitrary_bytes(data: bytes) -> None:
    """On arbitrary octets, the one-pass parse agrees with the general path or gives up."""
    assert_paths_agree(data)
    assert_paths_agree(b"INVITE sip:a@b SIP/2.0\r\n" + data)


@SETTINGS
@given(messages)
def test_message_round_trip(message: Request | Response) -> None:
    """parse_message(m.serialize()) == m for messages built from valid parts."""
    assert parse_message(message.serialize()) == message
    assert parse_message(message.serialize(), datagram=False) == message


@SETTINGS
@given(st.binary(max_size=600))
def test_arbitrary_bytes_only_raise_parse_errors(data: bytes) -> None:
    """Arbitrary octets either parse or raise SipParseError, nothing else."""
    assert_parses_or_refuses(data)


@SETTINGS
@given(messages, st.data())
def test_mutated_messages_only_raise_parse_errors(
    message: Request | Response, data: st.DataObject
) -> None:
    """Valid messages with octets replaced, inserted or deleted never raise anything else."""
    raw = bytearray(message.serialize())
    for _ in range(data.draw(st.integers(1, 8))):
        position = data.draw(st.integers(0, len(raw)))
        action = data.draw(st.sampled_from(["replace", "insert", "delete"]))
        octet = data.draw(st.sampled_from([*b'\r\n :;,<>"\\%@=/\x00\xffA']))
        if action == "insert":
            raw.insert(position, octet)
        elif position < len(raw):
            if action == "replace":
                raw[position] = octet
            else:
                del raw[position]
    assert_parses_or_refuses(bytes(raw))


@SETTINGS
@given(st.lists(messages, min_size=1, max_size=4), st.data())
def test_framing_any_chunking(batch: list[Request | Response], data: st.DataObject) -> None:
    """Pipelined messages with pings between them, cut anywhere, come out intact."""
    wire = [m.serialize() for m in batch]
    pings = data.draw(st.lists(st.booleans(), min_size=len(wire), max_size=len(wire)))
    stream = b"".join(
        (b"\r\n\r\n" if ping else b"") + raw for raw, ping in zip(wire, pings, strict=True)
    )
    cuts = sorted(data.draw(st.lists(st.integers(0, len(stream)), max_size=12)))
    buffer = ReceiveBuffer()
    out: list[bytes] = []
    start = 0
    for cut in [*cuts, len(stream)]:
        buffer.feed(stream[start:cut])
        start = cut
        while (framed := buffer.next_message()) is not None:
            out.append(framed)
    assert out == wire
    assert buffer.take_pings() == sum(pings)
    assert [parse_message(raw, datagram=False) for raw in out] == batch
