"""Tests for SIP/SIPS and absolute URIs (RFC 3261 §19.1, §25.1)."""

from __future__ import annotations

import pytest

from callserver.sip.errors import SipParseError
from callserver.sip.uri import (
    AbsoluteUri,
    SipUri,
    equivalent,
    parse_uri,
    sip_uri_from_parts,
    split_hostport,
    unescape,
)


def test_simple_sip_uri() -> None:
    """A user@host URI splits into its parts."""
    uri = parse_uri("sip:alice@example.com")
    assert uri == SipUri("sip", "example.com", user="alice")


def test_full_sip_uri_parts() -> None:
    """Password, port, parameters and headers are all recognised."""
    uri = parse_uri("sips:bob:secret@host.example.com:5061;transport=TCP;lr?subject=hi&x=")
    assert isinstance(uri, SipUri)
    assert uri.scheme == "sips"
    assert (uri.user, uri.password, uri.host, uri.port) == (
        "bob",
        "secret",
        "host.example.com",
        5061,
    )
    assert uri.params == (("transport", "TCP"), ("lr", None))
    assert uri.headers == (("subject", "hi"), ("x", ""))


def test_param_lookup_is_case_insensitive() -> None:
    """param() and has_param() ignore case; valueless parameters read as None."""
    uri = parse_uri("sip:h.example.com;Transport=UDP;LR")
    assert isinstance(uri, SipUri)
    assert uri.param("transport") == "UDP"
    assert uri.transport == "udp"
    assert uri.has_param("lr")
    assert uri.param("lr") is None
    assert not uri.has_param("maddr")


def test_ipv6_host_keeps_brackets() -> None:
    """An IPv6 reference keeps its brackets and may carry a port."""
    uri = parse_uri("sip:[2001:db8::1]:5070")
    assert isinstance(uri, SipUri)
    assert (uri.host, uri.port) == ("[2001:db8::1]", 5070)


def test_scheme_is_lower_cased() -> None:
    """The scheme is case-insensitive and stored in lower case (RFC 3261 §19.1.4)."""
    uri = parse_uri("SIP:a@b.example")
    assert isinstance(uri, SipUri)
    assert uri.scheme == "sip"


@pytest.mark.parametrize(
    "text",
    [
        "sip:vivekg@chair-dnrc.example.com;unknownparam",
        "sip:sips%3Auser%40example.com@example.net",
        "sip:user;par=u%40example.net@example.com",
        "sip:1_unusual.URI~(to-be!sure)&isn't+it$/crazy?,/;;*:&it+has=1,weird!*pas$wo~d_too."
        "(doesn't-it)@example.com",
        "sip:null-%00-null@example.com",
        "sip:cal%6Cer@host5.example.net;%6C%72;n%61me=v%61lue%25%34%31",
        "sip:user@example.com?Route=%3Csip:sip.example.com%3E",
        "sips:[::1]:5061;maddr=[::2]",
    ],
)
def test_round_trip(text: str) -> None:
    """Serialising a parsed URI gives back the text it came from."""
    assert str(parse_uri(text)) == text


def test_user_with_semicolons_and_escaped_at() -> None:
    """The user part ends at the first '@', so it may hold ';' (RFC 4475 §3.1.1.9)."""
    uri = parse_uri("sip:user;par=u%40example.net@example.com")
    assert isinstance(uri, SipUri)
    assert uri.user == "user;par=u%40example.net"
    assert uri.params == ()
    assert unescape(uri.user) == "user;par=u@example.net"


def test_a_dial_string_user_may_hold_a_bare_hash() -> None:
    """Phones send service codes with '#' unescaped: kept as written, as is '%23'."""
    uri = parse_uri("sip:*21*202#@127.0.0.1:5060")
    assert isinstance(uri, SipUri)
    assert (uri.user, uri.host, uri.port) == ("*21*202#", "127.0.0.1", 5060)
    assert str(uri) == "sip:*21*202#@127.0.0.1:5060"
    escaped = parse_uri("sip:*21*202%23@127.0.0.1")
    assert isinstance(escaped, SipUri) and escaped.user == "*21*202%23"


def test_unknown_scheme_is_absolute_uri() -> None:
    """Any other scheme parses as an opaque absolute URI."""
    assert parse_uri("nobodyKnowsThisScheme:totallyopaquecontent") == AbsoluteUri(
        "nobodyknowsthisscheme", "totallyopaquecontent"
    )
    assert parse_uri("tel:+1-212-555-0101") == AbsoluteUri("tel", "+1-212-555-0101")
    assert str(parse_uri("soap.beep://192.0.2.103:3002")) == "soap.beep://192.0.2.103:3002"


@pytest.mark.parametrize(
    ("escaped", "plain"),
    [
        ("%75se%72", "user"),
        ("I%20have%20spaces", "I have spaces"),
        ("null-%00-null", "null-\x00-null"),
        ("100%", "100%"),
        ("%zz", "%zz"),
        ("%C3%A9", "\u00e9"),
    ],
)
def test_unescape(escaped: str, plain: str) -> None:
    """%XX escapes decode as UTF-8; a stray '%' is kept."""
    assert unescape(escaped) == plain


@pytest.mark.parametrize(
    "text",
    [
        "",
        "sip:",
        "example.com",
        "sip:user@",
        "sip:@example.com",
        "sip:user@example.com; lr",
        "sip:user name@example.com",
        "<sip:user@example.com>",
        "sip:user@exa mple.com",
        "sip:user@example.com:99999",
        "sip:user@example.com:port",
        "sip:user@[2001:db8::1",
        "sip:user@example.com;;lr",
        "sip:user@example.com;a=",
        "sip:user@example.com?noequals",
        "sip:us%zzer@example.com",
        "sip:user@ex..ample.com",
        "1sip:user@example.com",
        "tel:",
        "tel:+1 555",
    ],
)
def test_malformed_uris_raise(text: str) -> None:
    """Malformed URIs raise SipParseError with status 400."""
    with pytest.raises(SipParseError) as info:
        parse_uri(text)
    assert info.value.status_hint == 400


def test_split_hostport() -> None:
    """hostport splits into host and optional port."""
    assert split_hostport("example.com") == ("example.com", None)
    assert split_hostport("192.0.2.1:5060") == ("192.0.2.1", 5060)
    assert split_hostport("[::1]:5060") == ("[::1]", 5060)
    with pytest.raises(SipParseError):
        split_hostport("[::1]x")


def test_str_writes_every_part() -> None:
    """A URI built in code serialises to wire form."""
    uri = SipUri(
        "sip",
        "example.com",
        user="a",
        password="p",
        port=5060,
        params=(("lr", None), ("transport", "tcp")),
        headers=(("h", "1"), ("k", "2")),
    )
    assert str(uri) == "sip:a:p@example.com:5060;lr;transport=tcp?h=1&k=2"


@pytest.mark.parametrize(
    ("parts", "text"),
    [
        (("sip", "a", None, "h..example.com", None, None), "sip:a@h..example.com"),
        (("sip", "a", None, ".example.com", None, None), "sip:a@.example.com"),
        (("sip", None, None, "example.com", "65536", None), "sip:example.com:65536"),
        (("sip", None, None, "example.com", None, ";a=b=c"), "sip:example.com;a=b=c"),
        (("sip", None, None, "example.com", None, ";;lr"), "sip:example.com;;lr"),
    ],
)
def test_unusual_parts_go_to_the_general_path(
    parts: tuple[str, str | None, str | None, str, str | None, str | None], text: str
) -> None:
    """What the one-match shape cannot vouch for gets None, and the general parser decides."""
    assert sip_uri_from_parts(*parts) is None
    with pytest.raises(SipParseError):
        parse_uri(text)


def test_trailing_dot_host_takes_the_fast_path() -> None:
    """A fully qualified host with its final dot is fine (RFC 3261 §25.1 ``hostname``)."""
    parts = ("sip", "a", None, "example.com.", "5060", ";lr")
    assert sip_uri_from_parts(*parts) == SipUri(
        "sip", "example.com.", "a", None, 5060, (("lr", None),)
    )
    assert parse_uri("sip:a@example.com.:5060;lr") == sip_uri_from_parts(*parts)


def test_parses_are_memoised_but_errors_are_not() -> None:
    """The same text gives the same (immutable) URI object; a bad one fails every time."""
    assert parse_uri("sip:memo@example.com;lr") is parse_uri("sip:memo@example.com;lr")
    for _ in range(2):
        with pytest.raises(SipParseError):
            parse_uri("sip:memo@exa mple.com")


# RFC 3261 §19.1.4's examples of equivalent and of different URIs.
_EQUIVALENT = [
    ("sip:%61lice@atlanta.com;transport=TCP", "sip:alice@AtLanTa.CoM;Transport=tcp"),
    ("sip:carol@chicago.com", "sip:carol@chicago.com;newparam=5"),
    ("sip:carol@chicago.com;security=on", "sip:carol@chicago.com;newparam=5"),
    (
        "sip:biloxi.com;transport=tcp;method=REGISTER?to=sip:bob%40biloxi.com",
        "sip:biloxi.com;method=REGISTER;transport=tcp?to=sip:bob%40biloxi.com",
    ),
    (
        "sip:alice@atlanta.com?subject=project%20x&priority=urgent",
        "sip:alice@atlanta.com?priority=urgent&subject=project%20x",
    ),
]
_DIFFERENT = [
    ("SIP:ALICE@AtLanTa.CoM;Transport=udp", "sip:alice@AtLanTa.CoM;Transport=UDP"),
    ("sip:bob@biloxi.com", "sip:bob@biloxi.com:5060"),
    ("sip:bob@biloxi.com", "sip:bob@biloxi.com;transport=udp"),
    ("sip:bob@biloxi.com", "sip:bob@biloxi.com:6000;transport=tcp"),
    ("sip:carol@chicago.com", "sip:carol@chicago.com?Subject=next%20meeting"),
    ("sip:bob@phone21.boxesbybob.com", "sip:bob@192.0.2.4"),
    ("sip:alice@atlanta.com", "sips:alice@atlanta.com"),
    ("sip:alice@atlanta.com", "sip:alice@atlanta.com;maddr=239.255.255.1"),
    ("sip:alice@atlanta.com;lr;ttl=1", "sip:alice@atlanta.com;ttl=2"),
]


@pytest.mark.parametrize(("left", "right"), _EQUIVALENT)
def test_rfc3261_equivalent_uris(left: str, right: str) -> None:
    """The URIs RFC 3261 §19.1.4 calls equivalent compare equal, either way round."""
    assert equivalent(parse_uri(left), parse_uri(right))
    assert equivalent(parse_uri(right), parse_uri(left))


@pytest.mark.parametrize(("left", "right"), _DIFFERENT)
def test_rfc3261_different_uris(left: str, right: str) -> None:
    """The URIs RFC 3261 §19.1.4 calls different (and sips, maddr, ttl) do not compare equal."""
    assert not equivalent(parse_uri(left), parse_uri(right))
    assert not equivalent(parse_uri(right), parse_uri(left))


def test_ignored_parameters_are_left_out_of_the_comparison() -> None:
    """A parameter named in ``ignore`` no longer makes two URIs differ; the rest still does."""
    bare, udp = parse_uri("sip:127.0.0.1"), parse_uri("sip:127.0.0.1;transport=UDP")
    assert equivalent(bare, udp, ignore=frozenset({"transport"}))
    other = parse_uri("sip:127.0.0.1:5070;transport=UDP")
    assert not equivalent(bare, other, ignore=frozenset({"transport"}))


def test_a_non_sip_uri_equals_only_itself() -> None:
    """tel: URIs compare as they are written; a tel: URI never equals a sip: URI."""
    assert equivalent(parse_uri("tel:+38733100201"), parse_uri("tel:+38733100201"))
    assert not equivalent(parse_uri("tel:+38733100201"), parse_uri("sip:+38733100201@a.net"))
