"""Tests for Via, address and CSeq values and the grammar helpers (RFC 3261 §20, §25.1)."""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from callserver.sip.errors import SipParseError
from callserver.sip.grammar import (
    FIRST_PARAM_PATTERN,
    MEMO_KEY_MAX,
    MEMO_MAX,
    TOKEN_CHARS,
    _parse_params_general,
    is_token,
    memo_put,
    param_list,
    quote,
    split_commas,
    unquote,
)
from callserver.sip.headers import (
    Address,
    CSeq,
    Via,
    _parse_address_general,
    _parse_via_general,
    parse_address,
    parse_addresses,
    parse_cseq,
    parse_params,
    parse_via,
    parse_vias,
)
from callserver.sip.uri import AbsoluteUri, SipUri


def test_parse_params_basic() -> None:
    """Parameters keep order, names as written and None for valueless ones."""
    assert parse_params(";a=b;c") == (("a", "b"), ("c", None))
    assert parse_params("") == ()


def test_parse_params_allows_lws_and_quotes() -> None:
    """LWS around ';' and '=' is allowed and quoted values keep their quotes."""
    assert parse_params(' ; q = 0.33 ; x="a;b" ') == (("q", "0.33"), ("x", '"a;b"'))


@pytest.mark.parametrize("text", [";;", ";a=", "a=b", ";a b=c", ';a="open', ";=b", ";a=b c"])
def test_parse_params_rejects_garbage(text: str) -> None:
    """Empty names, empty values and stray text raise 400."""
    with pytest.raises(SipParseError) as info:
        parse_params(text)
    assert info.value.status_hint == 400


def test_parse_via_basic() -> None:
    """A plain Via splits into protocol, transport, sent-by and parameters."""
    via = parse_via("SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bK776asdhds;rport")
    assert via == Via("UDP", "192.0.2.1", 5060, (("branch", "z9hG4bK776asdhds"), ("rport", None)))
    assert via.branch == "z9hG4bK776asdhds"
    assert via.has_rport and via.rport is None
    assert via.received is None and via.maddr is None


def test_parse_via_with_lws_everywhere() -> None:
    """SWS is allowed around '/', ':', ';' and '=' (RFC 4475 §3.1.1.1)."""
    via = parse_via("SIP  /   2.0 /udp    spindle.example.com : 5070  ;  branch  =   z9hG4bK9")
    assert (via.protocol, via.transport, via.host, via.port) == (
        "SIP/2.0",
        "UDP",
        "spindle.example.com",
        5070,
    )
    assert via.branch == "z9hG4bK9"


def test_parse_via_ipv6_and_received() -> None:
    """IPv6 sent-by keeps brackets; received may be a bare IPv6 address."""
    via = parse_via("SIP/2.0/TCP [2001:db8::9]:5061;received=2001:db8::1;rport=4000")
    assert via.host == "[2001:db8::9]" and via.port == 5061
    assert via.received == "2001:db8::1"
    assert via.rport == 4000


def test_unknown_transport_kept() -> None:
    """Unknown transport tokens parse (RFC 4475 §3.1.1.10)."""
    assert parse_via("SIP/2.0/UNKNOWN t4.example.com;branch=z9hG4bKa").transport == "UNKNOWN"
    assert parse_via("SIP/2.0/sctp t2.example.com").transport == "SCTP"


@pytest.mark.parametrize(
    "text",
    [
        "",
        "SIP/2.0 UDP host",
        "SIP/2.0/UDP",
        "SIP/2.0/UDP host name",
        "SIP/2.0/UDP host:99999",
        "SIP/2.0/UDP 192.0.2.15;;",
        ";",
        "SIP/2.0/U<P host",
    ],
)
def test_parse_via_rejects(text: str) -> None:
    """Malformed Via values raise 400."""
    with pytest.raises(SipParseError) as info:
        parse_via(text)
    assert info.value.status_hint == 400


def test_via_with_param_keeps_order() -> None:
    """with_param replaces in place, or appends a new parameter."""
    via = parse_via("SIP/2.0/UDP h;rport;branch=z9hG4bKx")
    updated = via.with_param("rport", "5062").with_param("received", "192.0.2.7")
    assert str(updated) == "SIP/2.0/UDP h;rport=5062;branch=z9hG4bKx;received=192.0.2.7"
    assert updated.rport == 5062
    assert str(via) == "SIP/2.0/UDP h;rport;branch=z9hG4bKx"


def test_via_round_trip() -> None:
    """str() of a parsed Via parses back to an equal Via."""
    via = parse_via("SIP/2.0/TLS [::1]:5061;branch=z9hG4bKq;maddr=224.2.0.1;ttl=16")
    assert parse_via(str(via)) == via
    assert via.maddr == "224.2.0.1"


def test_parse_vias() -> None:
    """parse_vias parses a list of values in order."""
    vias = parse_vias(["SIP/2.0/UDP a;branch=z9hG4bK1", "SIP/2.0/TCP b;branch=z9hG4bK2"])
    assert [v.host for v in vias] == ["a", "b"]


def test_name_addr_with_quoted_display_name() -> None:
    """A quoted display name is unescaped; header parameters follow '>'."""
    addr = parse_address('"J Rosenberg \\\\\\""  <sip:jdrosen@example.com> ; tag = 98asjd8')
    assert addr.display_name == 'J Rosenberg \\"'
    assert addr.uri == SipUri("sip", "example.com", user="jdrosen")
    assert addr.tag == "98asjd8"


def test_name_addr_token_display_name_without_lws() -> None:
    """A token display name may touch '<' (RFC 4475 §3.1.1.6)."""
    addr = parse_address("caller<sip:caller@example.com>;tag=323")
    assert addr.display_name == "caller"
    assert addr.tag == "323"


def test_addr_spec_params_are_header_params() -> None:
    """In addr-spec form, parameters after the URI belong to the header (RFC 3261 §20.10)."""
    addr = parse_address("sip:+19725552222@gw1.example.net;unknownparam;tag=9")
    assert addr.uri == SipUri("sip", "gw1.example.net", user="+19725552222")
    assert addr.params == (("unknownparam", None), ("tag", "9"))
    assert addr.display_name is None


def test_name_addr_uri_params_stay_in_uri() -> None:
    """Inside '<>', parameters belong to the URI."""
    addr = parse_address("<sip:+19725552222@gw1.example.net;unknownparam>")
    assert isinstance(addr.uri, SipUri)
    assert addr.uri.params == (("unknownparam", None),)
    assert addr.params == ()


def test_unknown_scheme_addresses_parse() -> None:
    """Header-field URIs of unknown schemes parse as absolute URIs (RFC 4475 §3.3.4)."""
    assert parse_address("isbn:2983792873").uri == AbsoluteUri("isbn", "2983792873")
    assert parse_address("<http://www.example.com>;tag=3").uri == AbsoluteUri(
        "http", "//www.example.com"
    )


def test_address_quoted_param_with_angle_brackets() -> None:
    """A quoted parameter value may hold '<', '>' and ';'."""
    addr = parse_address('<sip:a@b>;+sip.instance="<urn:uuid:1;2>";expires=60')
    assert addr.param("+sip.instance") == '"<urn:uuid:1;2>"'
    assert addr.param("EXPIRES") == "60"


@pytest.mark.parametrize(
    "text",
    [
        '"Mr. J. User <sip:j.user@example.com>',
        "Bell, Alexander <sip:a.g.bell@example.com>;tag=43",
        '"Watson, Thomas" < sip:t.watson@example.org >',
        "sip:user@example.com?Route=%3Csip:sip.example.com%3E",
        '"Joe" <sip:joe@example.org>;;;;',
        "<sip:a@b",
        '"Joe" sip:joe@example.org',
        "<sip:a@b> junk",
        "",
        "sip:a b@c",
    ],
)
def test_parse_address_rejects(text: str) -> None:
    """Malformed addresses raise 400 (RFC 4475 §3.1.2.6, §3.1.2.13-15, §3.1.2.1)."""
    with pytest.raises(SipParseError) as info:
        parse_address(text)
    assert info.value.status_hint == 400


def test_address_str_and_with_tag() -> None:
    """str() writes the name-addr form; with_tag sets or replaces the tag."""
    addr = parse_address("sip:bob@example.com")
    tagged = addr.with_tag("abc")
    assert str(tagged) == "<sip:bob@example.com>;tag=abc"
    assert str(tagged.with_tag("def")) == "<sip:bob@example.com>;tag=def"
    named = Address(SipUri("sip", "h", user="u"), 'Say "hi"', (("x", None),))
    assert str(named) == '"Say \\"hi\\"" <sip:u@h>;x'
    assert parse_address(str(named)) == named


def test_parse_addresses() -> None:
    """parse_addresses parses every value."""
    addrs = parse_addresses(["<sip:a@h1>", "<sip:b@h2>;q=0.5"])
    assert [a.param("q") for a in addrs] == [None, "0.5"]


def test_parse_cseq() -> None:
    """CSeq tolerates leading zeros and LWS between number and method."""
    assert parse_cseq("0009   INVITE") == CSeq(9, "INVITE")
    assert str(CSeq(2**31 - 1, "BYE")) == "2147483647 BYE"
    assert parse_cseq("00000000000000001 ACK") == CSeq(1, "ACK")


@pytest.mark.parametrize(
    "text",
    [
        "2147483648 INVITE",
        "36893488147419103232 REGISTER",
        "INVITE",
        "1",
        "-1 INVITE",
        "1 INV ITE",
        "1 INV<ITE",
        "\u0661 INVITE",
    ],
)
def test_parse_cseq_rejects(text: str) -> None:
    """Out-of-range or malformed CSeq values raise 400 (RFC 3261 §8.1.1.5)."""
    with pytest.raises(SipParseError) as info:
        parse_cseq(text)
    assert info.value.status_hint == 400


def test_split_commas_respects_quotes_and_brackets() -> None:
    """Commas inside quotes or angle brackets do not split (RFC 3261 §7.3.1)."""
    value = '"Bell, A." <sip:a@b;x=1,2>;q=1 , <sip:c@d>, "\\",x" <sip:e@f>,,'
    assert split_commas(value) == [
        '"Bell, A." <sip:a@b;x=1,2>;q=1',
        "<sip:c@d>",
        '"\\",x" <sip:e@f>',
    ]
    assert split_commas("a, b ,c") == ["a", "b", "c"]
    assert split_commas("") == []


def test_split_commas_unterminated_quote() -> None:
    """An unterminated quoted string raises 400."""
    with pytest.raises(SipParseError):
        split_commas('"abc, def')


def test_quote_unquote() -> None:
    """quote() escapes what unquote() resolves, and CR/LF never survive."""
    for text in ["plain", 'with "quotes"', "back\\slash", "bel\x07 nul\x00 del\x7f", ""]:
        assert unquote(quote(text)) == text
    assert quote("a\r\nb") == '"a  b"'
    with pytest.raises(SipParseError):
        unquote('"a" b"')


def test_is_token() -> None:
    """Tokens are the RFC 3261 §25.1 character set, non-empty."""
    assert is_token("!interesting-Method0123456789_*+`.%indeed'~")
    assert not is_token("")
    assert not is_token("a,b")


param_text = st.lists(
    st.tuples(
        st.text(alphabet=[*sorted(TOKEN_CHARS), " ", "\t", '"', ";", "=", ":", "<"], max_size=6),
        st.one_of(
            st.none(), st.text(alphabet=[*sorted(TOKEN_CHARS), " ", '"', ";", "[", "]"], max_size=6)
        ),
    ),
    max_size=4,
).map(lambda items: "".join(f";{n}" if v is None else f";{n}={v}" for n, v in items))


def same_outcome(fast: Callable[[], object], general: Callable[[], object]) -> None:
    """Both callables return equal values, or both raise SipParseError."""
    try:
        expected = general()
    except SipParseError:
        with pytest.raises(SipParseError):
            fast()
    else:
        assert fast() == expected


@settings(max_examples=300, deadline=None)
@given(param_text)
def test_parse_params_fast_path_agrees_with_general_path(text: str) -> None:
    """The one-match shape of parse_params reads every list as the general loop does."""
    stripped = text.strip(" \t")
    same_outcome(
        lambda: parse_params(text), lambda: _parse_params_general(stripped) if stripped else ()
    )


@settings(max_examples=300, deadline=None)
@given(param_text)
def test_param_list_agrees_with_parse_params(text: str) -> None:
    """A first parameter and a memoised rest make the list parse_params makes, or give up."""
    match = re.fullmatch(FIRST_PARAM_PATTERN, text, re.DOTALL)
    if match is None:
        return
    for _ in range(2):  # the second time the rest comes from the memo table
        params = param_list(*match.groups())
        if params is not None:
            assert params == parse_params(text)


@pytest.mark.parametrize(
    "value",
    [
        "SIP/2.0/UDP host.example.com.;branch=z9hG4bK1",
        "SIP/2.0/UDP host..example.com;branch=z9hG4bK1",
        "SIP/2.0/UDP .example.com;branch=z9hG4bK1",
        "SIP/2.0/UDP example.com:65536;branch=z9hG4bK1",
        "SIP/2.0/UDP example.com:5060 ;branch=z9hG4bK1",
        "SIP/2.0/UDP example.com;branch=z9hG4bK1;",
        "SIP/2.0/UDP example.com;branch=;rport",
        'SIP/2.0/UDP example.com;branch=z9hG4bK1;x="a;b"',
        "SIP/2.0/UDP [2001:db8::1]:5060;rport;branch=z9hG4bK1",
    ],
)
def test_via_shapes_agree_with_general_path(value: str) -> None:
    """Edge shapes of sent-by and parameters parse (or fail) as the general grammar says."""
    for _ in range(2):
        same_outcome(lambda: parse_via(value), lambda: _parse_via_general(value))


@pytest.mark.parametrize(
    "value",
    [
        ' "Alice" <sip:alice@example.com>;tag=1 ',
        '"a>b" <sip:alice@example.com>',
        "<sip:alice@example.com> ;tag=1",
        "<sip:alice@example.com>;tag=1;",
        "<sip:alice@example.com>;tag",
        "<sip:al%41ice@example.com;maddr=[::1]>;tag=x;expires=60",
        "<tel:+385123>;tag=1",
        "<sip:a@b..c>;tag=1",
    ],
)
def test_address_shapes_agree_with_general_path(value: str) -> None:
    """Edge shapes of name-addr parse (or fail) as the general grammar says, twice over."""
    for _ in range(2):
        same_outcome(lambda: parse_address(value), lambda: _parse_address_general(value.strip()))


def test_memo_put_empties_a_full_table() -> None:
    """A memo table never holds more than MEMO_MAX entries."""
    table: dict[str, int] = {}
    for n in range(MEMO_MAX * 2 + 1):
        memo_put(table, str(n), n)
        assert len(table) <= MEMO_MAX
    assert table[str(MEMO_MAX * 2)] == MEMO_MAX * 2


def test_memo_put_skips_long_keys() -> None:
    """Text longer than MEMO_KEY_MAX is never kept, so a table's memory stays small."""
    table: dict[str, int] = {}
    memo_put(table, "x" * (MEMO_KEY_MAX + 1), 1)
    memo_put(table, "x" * MEMO_KEY_MAX, 2)
    assert list(table.values()) == [2]
