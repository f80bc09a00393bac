"""Tests for parse_message: start lines, header fields, bodies and eager checks (RFC 3261 §7)."""

from __future__ import annotations

import pytest

from callserver.sip import headers, parser, uri
from callserver.sip.errors import SipParseError
from callserver.sip.grammar import MEMO_MAX, find_control
from callserver.sip.headers import CSeq
from callserver.sip.message import Headers, Request, Response
from callserver.sip.parser import (
    ParseLimits,
    _parse_any,
    _parse_common,
    parse_content_length,
    parse_message,
)
from callserver.sip.uri import SipUri

SDP = (
    b"v=0\r\no=- 1 1 IN IP4 192.0.2.10\r\ns=-\r\nc=IN IP4 192.0.2.10\r\nt=0 0\r\n"
    b"m=audio 40000 RTP/AVP 0\r\n"
)


def invite(
    *extra: str,
    body: bytes = SDP,
    length: int | None = None,
    with_length: bool = True,
    first: str = "",
) -> bytes:
    """Build an INVITE with the usual fields, ``extra`` lines and a body."""
    lines = [
        first or "INVITE sip:bob@example.com SIP/2.0",
        "Via: SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bK74bf9",
        "Max-Forwards: 70",
        'From: "Alice" <sip:alice@example.net>;tag=9fxced76sl',
        "To: <sip:bob@example.com>",
        "Call-ID: 3848276298220188511@example.net",
        "CSeq: 1 INVITE",
        "Contact: <sip:alice@192.0.2.10>",
        "Content-Type: application/sdp",
        *extra,
    ]
    if with_length:
        lines.append(f"Content-Length: {len(body) if length is None else length}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


OK_200 = (
    b"SIP/2.0 200 OK\r\n"
    b"Via: SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bK74bf9;received=192.0.2.99\r\n"
    b"From: <sip:alice@example.net>;tag=9fxced76sl\r\n"
    b"To: <sip:bob@example.com>;tag=314159\r\n"
    b"Call-ID: 3848276298220188511@example.net\r\n"
    b"CSeq: 1 INVITE\r\n"
    b"Content-Length: 0\r\n\r\n"
)


def parse_error(data: bytes, limits: ParseLimits | None = None) -> SipParseError:
    """Parse ``data`` expecting failure and return the error."""
    with pytest.raises(SipParseError) as info:
        parse_message(data, limits or ParseLimits())
    return info.value


def test_parse_invite() -> None:
    """A typical INVITE parses with its start line, fields and body."""
    msg = parse_message(invite())
    assert isinstance(msg, Request)
    assert msg.method == "INVITE"
    assert msg.uri == SipUri("sip", "example.com", user="bob")
    assert msg.version == "SIP/2.0"
    assert msg.body == SDP
    assert msg.headers.get("Max-Forwards") == "70"
    assert msg.top_via().branch == "z9hG4bK74bf9"
    assert msg.from_().tag == "9fxced76sl"
    assert msg.to().tag is None
    assert msg.call_id() == "3848276298220188511@example.net"
    assert msg.cseq() == CSeq(1, "INVITE")


def test_parse_response() -> None:
    """A response parses with status code, reason phrase and fields."""
    msg = parse_message(OK_200)
    assert isinstance(msg, Response)
    assert (msg.status, msg.reason, msg.body) == (200, "OK", b"")
    assert msg.top_via().received == "192.0.2.99"
    assert msg.to().tag == "314159"


def test_reason_phrase_may_be_empty_or_utf8() -> None:
    """Reason phrases may be empty or carry UTF-8 (RFC 4475 §3.1.1.12, §3.1.1.13)."""
    empty = parse_message(OK_200.replace(b"200 OK", b"100 "))
    assert isinstance(empty, Response) and empty.reason == ""
    utf8 = parse_message(OK_200.replace(b"200 OK", "200 Très bien".encode()))
    assert isinstance(utf8, Response) and utf8.reason == "Très bien"


def test_compact_names_and_case_are_canonicalised() -> None:
    """Compact and odd-case names become canonical; values keep their text (RFC 3261 §7.3.3)."""
    data = (
        b"OPTIONS sip:bob@example.com SIP/2.0\r\n"
        b"v: SIP/2.0/UDP h.example.com;branch=z9hG4bK1\r\n"
        b"f: <sip:a@example.net>;tag=1\r\n"
        b"t: <sip:bob@example.com>\r\n"
        b"i: abc@h\r\n"
        b"cSeQ: 2 OPTIONS\r\n"
        b"X-Custom-Thing:   spaced value  \r\n"
        b"l: 0\r\n\r\n"
    )
    msg = parse_message(data)
    names = [name for name, _ in msg.headers]
    assert names == ["Via", "From", "To", "Call-ID", "CSeq", "X-Custom-Thing", "Content-Length"]
    assert msg.headers.get("x-custom-thing") == "spaced value"


def test_line_folding_is_undone() -> None:
    """CRLF followed by whitespace is LWS and unfolds to one space (RFC 3261 §7.3.1)."""
    msg = parse_message(invite("Subject: first\r\n  second\r\n\tthird"))
    assert msg.headers.get("Subject") == "first second third"


def test_empty_header_value() -> None:
    """A field with an empty value is kept as an empty string."""
    assert parse_message(invite("Subject:")).headers.get("Subject") == ""


def test_datagram_without_content_length_takes_rest() -> None:
    """Over UDP a missing Content-Length means the body runs to the datagram's end."""
    msg = parse_message(invite(with_length=False))
    assert msg.body == SDP


def test_stream_without_content_length_has_empty_body() -> None:
    """On a stream a missing Content-Length means an empty body (RFC 3261 §18.3)."""
    msg = parse_message(invite(with_length=False), datagram=False)
    assert msg.body == b""


def test_octets_past_content_length_are_ignored() -> None:
    """Extra octets after the body are not part of the message (RFC 4475 §3.1.1.8)."""
    msg = parse_message(invite() + b"garbage after the body")
    assert msg.body == SDP


def test_leading_crlf_is_ignored() -> None:
    """CRLFs before the start line are skipped (RFC 3261 §7.5)."""
    assert isinstance(parse_message(b"\r\n\r\n" + OK_200), Response)


def test_lower_case_version_is_normalised() -> None:
    """SIP-Version is case-insensitive and stored upper case (RFC 3261 §7.1)."""
    msg = parse_message(invite(first="INVITE sip:bob@example.com sip/2.0"))
    assert msg.version == "SIP/2.0"


def test_content_length_larger_than_body() -> None:
    """A Content-Length past the end is 400, with partial for the answer (RFC 4475 §3.1.2.2)."""
    error = parse_error(invite(length=9999))
    assert error.status_hint == 400
    assert isinstance(error.partial, Request)
    assert error.partial.call_id() == "3848276298220188511@example.net"


@pytest.mark.parametrize("value", ["-1", "abc", "1 2", "99999999999", "\u0661"])
def test_invalid_content_length(value: str) -> None:
    """Content-Length must be a non-negative integer (RFC 3261 §20.14)."""
    with pytest.raises(SipParseError):
        parse_content_length([value])


def test_content_length_values() -> None:
    """Repeated equal values are tolerated, differing ones refused, absence is None."""
    assert parse_content_length([]) is None
    assert parse_content_length(["012", "012"]) == 12
    with pytest.raises(SipParseError):
        parse_content_length(["12", "13"])


def test_size_limit_gives_413() -> None:
    """A message over max_message_bytes is refused with 413 and no partial."""
    error = parse_error(invite(), limits=ParseLimits(max_message_bytes=100))
    assert (error.status_hint, error.partial) == (413, None)


def test_header_count_limit() -> None:
    """More header fields than max_headers is 400."""
    error = parse_error(
        invite(*[f"X-H{i}: {i}" for i in range(20)]), limits=ParseLimits(max_headers=10)
    )
    assert error.status_hint == 400


def test_header_line_limit() -> None:
    """A header line over max_header_line is 400."""
    error = parse_error(invite("X-Long: " + "a" * 300), limits=ParseLimits(max_header_line=200))
    assert error.status_hint == 400


@pytest.mark.parametrize(
    "first",
    [
        "INVITE <sip:bob@example.com> SIP/2.0",
        "INVITE sip:bob@example.com; lr SIP/2.0",
        "INVITE  sip:bob@example.com SIP/2.0",
        "INVITE sip:bob@example.com SIP/2.0 ",
        "INVITE sip:bob@example.com?Route=%3Csip:x%3E SIP/2.0",
    ],
)
def test_bad_request_line_is_400_with_partial(first: str) -> None:
    """Malformed Request-Lines are 400 but still yield a partial to answer from."""
    error = parse_error(invite(first=first))
    assert error.status_hint == 400
    assert isinstance(error.partial, Request)
    assert error.partial.method == "INVITE"


def test_unknown_version_is_505() -> None:
    """A version other than SIP/2.0 is 505 with partial (RFC 3261 §21.5.6, RFC 4475 §3.1.2.16)."""
    error = parse_error(invite(first="INVITE sip:bob@example.com SIP/7.0"))
    assert error.status_hint == 505
    assert isinstance(error.partial, Request)


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"\r\n\r\n",
        b"garbage\r\n\r\n",
        b"INVITE\r\n\r\n",
        b"SIP/2.0 4294967301 Too Big\r\n\r\n",
        b"SIP/2.0 99 Too Small\r\n\r\n",
        b"SIP/2.0 20x OK\r\n\r\n",
        b"INVITE sip:a@b HTTP/1.1\r\n\r\n",
    ],
)
def test_unreadable_start_line_has_no_partial(data: bytes) -> None:
    """When the start line cannot be read there is nothing to answer from."""
    error = parse_error(data)
    assert error.partial is None


def test_header_line_without_colon() -> None:
    """A header line without ':' is 400 with no partial (the header block did not parse)."""
    error = parse_error(invite("this is not a header"))
    assert (error.status_hint, error.partial) == (400, None)


def test_bare_lf_in_header_block() -> None:
    """A bare LF inside the header block is refused."""
    assert parse_error(invite("X-A: one\nX-B: two")).status_hint == 400


@pytest.mark.parametrize("missing", ["Via", "From", "To", "Call-ID", "CSeq"])
def test_missing_required_field(missing: str) -> None:
    """Each of Via, From, To, Call-ID and CSeq must be present (RFC 3261 §8.1.1)."""
    lines = invite().split(b"\r\n")
    data = b"\r\n".join(line for line in lines if not line.startswith(missing.encode() + b":"))
    error = parse_error(data)
    assert error.status_hint == 400
    assert error.partial is not None


@pytest.mark.parametrize(
    ("extra", "replace"),
    [
        ("", ("CSeq: 1 INVITE", "CSeq: 1 BYE")),
        ("", ("CSeq: 1 INVITE", "CSeq: 2147483648 INVITE")),
        ("", ("Max-Forwards: 70", "Max-Forwards: 256")),
        ("Expires: 4294967296", None),
        ("", ("Call-ID: 3848276298220188511@example.net", "Call-ID: a b")),
        ("", ("To: <sip:bob@example.com>", "To: Bob, Jr <sip:bob@example.com>")),
        ("", ("SIP/2.0/UDP 192.0.2.10:5060", "SIP/2.0/UDP 192.0.2.10:99999")),
    ],
)
def test_eager_field_checks(extra: str, replace: tuple[str, str] | None) -> None:
    """CSeq, Max-Forwards, Expires, Call-ID, To and Via are checked eagerly (RFC 4475 §3.1.2)."""
    text = invite(*([extra] if extra else [])).decode()
    if replace is not None:
        text = text.replace(*replace)
    error = parse_error(text.encode())
    assert error.status_hint == 400
    assert error.partial is not None


def test_expires_at_limit_is_fine() -> None:
    """Expires up to 2**32-1 is valid (RFC 3261 §20.19)."""
    assert parse_message(invite("Expires: 4294967295")).headers.get("Expires") == "4294967295"


def test_duplicated_single_fields_parse() -> None:
    """Duplicated From/To/CSeq parse here; rejecting them is the UAS check's job."""
    msg = parse_message(invite("From: <sip:other@example.net>;tag=2", "CSeq: 9 INVITE"))
    assert len(msg.headers.get_all("From")) == 2


def test_missing_empty_line_is_400_with_partial() -> None:
    """A head without its terminating empty line is refused but answerable."""
    data = invite(body=b"").removesuffix(b"\r\n")
    error = parse_error(data)
    assert error.status_hint == 400
    assert isinstance(error.partial, Request)


def test_parsed_fields_are_cached() -> None:
    """The eager parses land in the message's cache (same object on each access)."""
    msg = parse_message(invite())
    assert msg.vias() is msg.vias()
    assert msg.from_() is msg.from_()


def test_non_utf8_octets_survive() -> None:
    """Undecodable octets are kept (surrogateescape) and serialise back unchanged."""
    data = invite().replace(b"Max-Forwards: 70", b"X-Raw: \xff\xfe\r\nMax-Forwards: 70")
    msg = parse_message(data)
    assert msg.serialize() == data


# -- The one-pass path and its memo tables (parser._parse_common) ----------------------------


def fast(data: bytes, limits: ParseLimits | None = None) -> Request | Response | None:
    """Run only the one-pass parse; None means it gave the message to the general path."""
    return _parse_common(data, limits or ParseLimits(), True)


def test_common_messages_take_the_one_pass_path() -> None:
    """A usual INVITE and 200 OK parse in one pass, to what the general path builds."""
    for data in (
        invite(),
        OK_200,
        invite("Record-Route: <sip:p1;lr>", "Record-Route: <sip:p2;lr>"),
    ):
        for _ in range(2):  # the second time every line and value comes from a memo table
            msg = fast(data)
            assert msg is not None
            assert msg == parse_message(data) == _parse_any(data, ParseLimits(), True)


def test_repeated_fields_are_grouped_in_order() -> None:
    """Repeated names, Via lines among them, keep every value in order in the index."""
    data = invite("Via: SIP/2.0/UDP 192.0.2.20;branch=z9hG4bK2", "Route: <sip:a;lr>, <sip:b;lr>")
    msg = fast(data)
    assert msg is not None
    assert [via.host for via in msg.vias()] == ["192.0.2.10", "192.0.2.20"]
    assert msg.headers.values("Route") == ["<sip:a;lr>", "<sip:b;lr>"]


def test_lookups_take_any_spelling_and_split_only_list_fields() -> None:
    """get, get_all and values find a field by its compact form or in any case, before and
    after a change; values splits a list-valued field (Route), not another (Subject)."""
    fields = Headers(
        [("Route", "<sip:a;lr>, <sip:b;lr>"), ("Subject", "a, b"), ("v", "SIP/2.0/UDP h")]
    )
    assert fields.values("route") == ["<sip:a;lr>", "<sip:b;lr>"]
    assert fields.values("SUBJECT") == ["a, b"]
    assert fields.get("Via") == fields.get("v") == "SIP/2.0/UDP h"
    fields.add("Route", "<sip:c;lr>")
    assert fields.get_all("ROUTE") == ["<sip:a;lr>, <sip:b;lr>", "<sip:c;lr>"]
    assert fields.values("X-Missing") == fields.get_all("x-missing") == []
    assert fields.get("x-missing") is None


@pytest.mark.parametrize(
    "data",
    [
        invite("Subject: first\r\n second"),  # folding
        invite().replace(b"Max-Forwards: 70", b"Max-Forwards: 70\nX: y"),  # bare LF
        invite().replace(b"CSeq: 1 INVITE", b"CSeq: 1 INVITE\r"),  # bare CR in a known line
        invite().replace(
            b"INVITE sip:bob@example.com SIP/2.0", b"INVITE sip:bob@example.com\r SIP/2.0"
        ),
        invite("From: <sip:other@example.net>;tag=2"),  # a repeated core field
        invite().replace(b"Via: ", b"Via : "),
        b"\r\n\r\n" + invite(),
        invite("Max-Forwards: 0070"),
    ],
)
def test_unusual_messages_get_the_general_paths_answer(data: bytes) -> None:
    """Whatever the one-pass parse does not take, the general path decides as it always did."""
    parse_message(invite())  # let the memo tables know the usual lines first
    message = fast(data)
    try:
        expected = _parse_any(data, ParseLimits(), True)
    except SipParseError as exc:
        assert message is None
        assert parse_error(data).args == exc.args
        return
    assert message is None or message == expected
    assert parse_message(data) == expected


def test_limits_apply_to_memoised_lines_too() -> None:
    """A message within the default limits is still refused under tighter ones."""
    parse_message(invite())
    assert parse_error(invite(), ParseLimits(max_headers=5)).status_hint == 400
    assert parse_error(invite(), ParseLimits(max_header_line=40)).status_hint == 400


def test_bad_start_lines_are_never_memoised() -> None:
    """A refused start line is refused again, with the same answer, however often it comes."""
    data = invite(first="INVITE sip:bob@example.com SIP/3.0")
    assert [parse_error(data).status_hint for _ in range(3)] == [505, 505, 505]
    assert "INVITE sip:bob@example.com SIP/3.0" not in parser._REQUEST_LINES


def test_memo_tables_stay_bounded() -> None:
    """Ever-new lines, start lines and addresses never grow a table past its bound."""
    for n in range(MEMO_MAX + 50):
        parse_message(
            invite(
                f"X-Id: {n}",
                f"Reply-To: <sip:r{n}@example.net>",
                first=f"INVITE sip:u{n}@h SIP/2.0",
            )
        )
    for table in (parser._FIELD_LINES, parser._REQUEST_LINES, headers._ADDRESSES, uri._URIS):
        assert 0 < len(table) <= MEMO_MAX


def test_memoised_lines_do_not_share_mutable_state() -> None:
    """Changing one parsed message's fields leaves the next parse of the same octets alone."""
    first = parse_message(invite())
    first.headers.add("Max-Forwards", "1")
    first.headers.set("Content-Type", "text/plain")
    second = parse_message(invite())
    assert second.headers.get_all("Max-Forwards") == ["70"]
    assert second.headers.get("Content-Type") == "application/sdp"


@pytest.mark.parametrize(
    "extra",
    ["Subject: hello\x00world", "User-Agent: phone\x1b[31m", "X-Note: a\x7fb", "Subject: \x08"],
)
def test_control_character_in_a_header_value_is_400_with_partial(extra: str) -> None:
    """A NUL, ESC, DEL or backspace in a header value is refused with 400 (RFC 3261 §25.1)."""
    error = parse_error(invite(extra))
    assert error.status_hint == 400
    assert "control character" in str(error)
    assert isinstance(error.partial, Request)


@pytest.mark.parametrize(
    "replace",
    [
        ('From: "Alice"', 'From: "Al\x00ice"'),
        ("To: <sip:bob@example.com>", "To: bob\x00 <sip:bob@example.com>"),
        ("CSeq: 1 INVITE", "CSeq: 1\x00 INVITE"),
    ],
)
def test_control_character_in_a_field_an_answer_copies_leaves_no_partial(
    replace: tuple[str, str],
) -> None:
    """A control character in From, To, Via, Call-ID or CSeq makes the request unanswerable."""
    data = invite().replace(replace[0].encode(), replace[1].encode())
    error = parse_error(data)
    assert error.partial is None
    assert "control character" in str(error)


def test_escaped_control_character_in_a_quoted_string_is_legal() -> None:
    """A quoted-pair may escape NUL, BEL or DEL inside a quoted-string (RFC 4475 §3.1.1.2)."""
    data = invite().replace(b'From: "Alice"', b'From: "Al\\\x00i\\\x07ce\\\x7f"')
    message = parse_message(data)
    assert message.from_().display_name is not None
    assert find_control('"a\\\x00b"') == -1
    assert find_control('"a\\\rb"') == 3
    assert find_control("a\\\x00b") == 2


def test_tab_is_not_a_control_character_here() -> None:
    """HT is linear white space, allowed in any header value."""
    assert isinstance(parse_message(invite("Subject: a\tb")), Request)
