"""Tests for SDP parsing and serialisation (RFC 4566)."""

from __future__ import annotations

import string

import pytest
from hypothesis import given
from hypothesis import strategies as st

from callserver.sip.sdp import (
    MediaDescription,
    Origin,
    SdpError,
    SessionDescription,
    direction_attribute,
    parse_sdp,
)

# The example of RFC 4566 §5, verbatim.
RFC4566_EXAMPLE = (
    "v=0\r\n"
    "o=jdoe 2890844526 2890842807 IN IP4 10.47.16.5\r\n"
    "s=SDP Seminar\r\n"
    "i=A Seminar on the session description protocol\r\n"
    "u=http://www.example.com/seminars/sdp.pdf\r\n"
    "e=j.doe@example.com (Jane Doe)\r\n"
    "c=IN IP4 224.2.17.12/127\r\n"
    "t=2873397496 2873404696\r\n"
    "a=recvonly\r\n"
    "m=audio 49170 RTP/AVP 0\r\n"
    "m=video 51372 RTP/AVP 99\r\n"
    "a=rtpmap:99 h263-1998/90000\r\n"
)

# A minimal audio offer; the malformed cases below are edits of it.
BASIC = (
    "v=0\r\n"
    "o=- 1 1 IN IP4 192.0.2.1\r\n"
    "s=-\r\n"
    "c=IN IP4 192.0.2.1\r\n"
    "t=0 0\r\n"
    "m=audio 5004 RTP/AVP 0\r\n"
    "a=rtpmap:0 PCMU/8000\r\n"
)


def test_rfc4566_example_parses_field_by_field() -> None:
    """The RFC 4566 §5 example yields its origin, extra lines, timing and two media."""
    sdp = parse_sdp(RFC4566_EXAMPLE)
    assert sdp.origin == Origin(
        username="jdoe", sess_id=2890844526, sess_version=2890842807, address="10.47.16.5"
    )
    assert (sdp.session_name, sdp.connection, sdp.timing) == (
        "SDP Seminar",
        "224.2.17.12/127",
        ((2873397496, 2873404696),),
    )
    assert [kind for kind, _ in sdp.extra] == ["i", "u", "e"]
    assert sdp.attributes == (("recvonly", None),)
    assert sdp.media == (
        MediaDescription(media="audio", port=49170, proto="RTP/AVP", formats=("0",)),
        MediaDescription(
            media="video",
            port=51372,
            proto="RTP/AVP",
            formats=("99",),
            attributes=(("rtpmap", "99 h263-1998/90000"),),
        ),
    )


def test_rfc4566_example_serialises_byte_for_byte() -> None:
    """The RFC 4566 §5 example comes back out exactly as it went in, as text and as bytes."""
    sdp = parse_sdp(RFC4566_EXAMPLE.encode())
    assert str(sdp) == RFC4566_EXAMPLE
    assert sdp.to_bytes() == RFC4566_EXAMPLE.encode()


def test_direction_and_connection_fall_back_to_session_level() -> None:
    """A media description without its own direction or c= takes the session's."""
    sdp = parse_sdp(RFC4566_EXAMPLE)
    audio = sdp.media[0]
    assert (audio.direction, sdp.direction_of(audio)) == ("sendrecv", "recvonly")
    assert (audio.connection, sdp.connection_of(audio)) == (None, "224.2.17.12/127")
    own = MediaDescription(
        media="audio",
        port=1,
        proto="RTP/AVP",
        formats=("0",),
        connection="192.0.2.9",
        attributes=(("inactive", None),),
    )
    assert (sdp.direction_of(own), sdp.connection_of(own)) == ("inactive", "192.0.2.9")
    assert direction_attribute((("sendonly", None), ("x", "y"), ("recvonly", None))) == "recvonly"


def test_real_world_noise_is_tolerated() -> None:
    """Trailing white space, blank lines, unknown attributes and b= lines are all accepted."""
    text = "v=0 \no=- 1 1 IN IP4 10.0.0.9\t\ns=-\n\nc=IN IP4 10.0.0.9\nb=CT:128\nt=0 0\n"
    text += "m=audio 4000 RTP/AVP 8\nb=AS:64\na=x-vendor-thing:1 2 3\na=label\n"
    sdp = parse_sdp(text)
    assert sdp.bandwidth == (("CT", 128),)
    assert sdp.media[0].bandwidth == (("AS", 64),)
    assert sdp.media[0].attributes == (("x-vendor-thing", "1 2 3"), ("label", None))
    assert sdp.media[0].formats == ("8",)


def test_other_line_types_round_trip_in_rfc_order() -> None:
    """i=, u=, e=, p=, r=, z=, k= lines and m= port counts are kept and written in place."""
    text = (
        "v=0\r\no=jdoe 2890844526 2890842807 IN IP4 10.47.16.5\r\ns=SDP Seminar\r\n"
        "i=A Seminar\r\nu=http://www.example.com/seminars/sdp.pdf\r\ne=j.doe@example.com\r\n"
        "p=+1 617 555-6011\r\nc=IN IP4 224.2.17.12/127\r\nt=2873397496 2873404696\r\n"
        "r=7d 1h 0 25h\r\nz=2882844526 -1h\r\nk=prompt\r\na=recvonly\r\n"
        "m=audio 49170/2 RTP/AVP 0\r\ni=main audio\r\nk=prompt\r\n"
    )
    sdp = parse_sdp(text)
    assert sdp.media[0].port_count == 2
    assert str(sdp) == text


def test_media_properties() -> None:
    """rtpmaps, fmtp, ptime, direction and rtcp_mux read the media's attributes."""
    media = parse_sdp(
        BASIC.replace("RTP/AVP 0", "RTP/AVP 96 97 0")
        + "a=rtpmap:96 opus/48000/2\r\na=fmtp:96 useinbandfec=1\r\na=rtpmap:97 speex/16000\r\n"
        + "a=fmtp:97 vbr=on\r\na=ptime:30\r\na=sendonly\r\na=rtcp-mux\r\n"
    ).media[0]
    assert media.rtpmaps == {0: ("PCMU", 8000, 1), 96: ("opus", 48000, 2), 97: ("speex", 16000, 1)}
    assert media.fmtp == {96: "useinbandfec=1", 97: "vbr=on"}
    assert (media.ptime, media.direction, media.rtcp_mux) == (30, "sendonly", True)
    bare = parse_sdp(BASIC).media[0]
    assert (bare.ptime, bare.direction, bare.rtcp_mux) == (None, "sendrecv", False)
    odd = MediaDescription(
        media="audio",
        port=1,
        proto="RTP/AVP",
        formats=("0",),
        attributes=(("ptime", "20.0"), ("rtpmap", "junk")),
    )
    assert (odd.ptime, odd.rtpmaps) == (20, {})


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("o=- 1 1 IN IP4 1.2.3.4\r\ns=-\r\n", "must start with a v= line"),
        ("", "must start with a v= line"),
        ("v=1\r\no=- 1 1 IN IP4 1.2.3.4\r\n", "line 1: SDP version '1' is not 0"),
        ("v=0\r\ns=-\r\nt=0 0\r\n", "has no o= line"),
        ("v=0\r\no=- one 1 IN IP4 1.2.3.4\r\n", "line 2: o= sess-id 'one' is not a number"),
        ("v=0\r\no=- 1 1 IN IP4\r\n", "line 2: o= needs 6 fields"),
        (BASIC.replace("5004", "abc"), "line 6: m= port 'abc' is not a number from 0 to 65535"),
        (BASIC.replace("5004", "70000"), "m= port '70000' is not a number from 0 to 65535"),
        (BASIC.replace("m=audio 5004 RTP/AVP 0", "m=audio 5004"), "line 6: m= needs"),
        (BASIC.replace("c=IN IP4 192.0.2.1\r\n", ""), "line 5: m=audio has no c= line"),
        (BASIC.replace("IN IP4 192.0.2.1\r\nt", "IN IPX 192.0.2.1\r\nt"), "line 4: c= must be"),
        (BASIC.replace("t=0 0", "t=now"), "line 5: t= needs"),
        (BASIC.replace("t=0 0", "t=0 0\r\nb=AS"), "line 6: b= bandwidth '' is not a number"),
        (BASIC.replace("s=-", "s=-\r\nhello"), "line 4: 'hello' is not a '<type>=<value>' line"),
        (BASIC.replace("s=-", "s=-\r\nx=1"), "line 4: unexpected x= line at session level"),
        (BASIC + "s=again\r\n", "line 8: unexpected s= line at media level"),
        (BASIC.replace("t=0 0", "c=IN IP4 1.1.1.1"), "line 5: more than one c= line"),
    ],
)
def test_malformed_sdp_raises_a_specific_sentence(text: str, message: str) -> None:
    """Each kind of malformed description raises SdpError with a sentence naming the problem."""
    with pytest.raises(SdpError, match=message.replace("(", r"\(")):
        parse_sdp(text)


def test_invalid_utf8_raises_sdp_error() -> None:
    """A body that is not UTF-8 raises SdpError rather than UnicodeDecodeError."""
    with pytest.raises(SdpError, match="not valid UTF-8"):
        parse_sdp(b"v=0\r\ns=\xff\r\n")


# ------------------------------------------------------------------------------- hypothesis

_TOKEN = st.text(string.ascii_letters + string.digits + "-._/+*", min_size=1, max_size=8)
_TEXT = st.text(
    st.characters(exclude_categories=["Cs"], exclude_characters="\r\n"), max_size=12
).filter(lambda t: t == t.rstrip())
_ADDRESS = st.one_of(st.ip_addresses(v=4).map(str), st.ip_addresses(v=6).map(str))
_NUMBER = st.integers(min_value=0, max_value=2**64)
_ATTRIBUTES = st.lists(
    st.tuples(st.text(string.ascii_letters + "-", min_size=1, max_size=8), st.none() | _TEXT),
    max_size=4,
).map(tuple)
_BANDWIDTH = st.lists(st.tuples(_TOKEN.filter(lambda t: ":" not in t), _NUMBER), max_size=2)


def _extra(kinds: str) -> st.SearchStrategy[list[tuple[str, str]]]:
    return st.lists(st.tuples(st.sampled_from(kinds), _TEXT), max_size=2)


@st.composite
def _media(draw: st.DrawFn, connection: bool) -> MediaDescription:
    return MediaDescription(
        media=draw(_TOKEN),
        port=draw(st.integers(0, 65535)),
        proto=draw(_TOKEN),
        formats=tuple(draw(st.lists(_TOKEN, max_size=4))),
        connection=draw(_ADDRESS if connection else st.none() | _ADDRESS),
        attributes=draw(_ATTRIBUTES),
        bandwidth=tuple(draw(_BANDWIDTH)),
        port_count=draw(st.none() | st.integers(1, 9)),
        extra=tuple(draw(_extra("i")) + draw(_extra("k"))),
    )


@st.composite
def _sessions(draw: st.DrawFn) -> SessionDescription:
    connection = draw(st.none() | _ADDRESS)
    return SessionDescription(
        origin=Origin(
            username=draw(_TOKEN),
            sess_id=draw(_NUMBER),
            sess_version=draw(_NUMBER),
            addrtype=draw(st.sampled_from(["IP4", "IP6"])),
            address=draw(_ADDRESS),
        ),
        session_name=draw(_TEXT),
        connection=connection,
        timing=tuple(draw(st.lists(st.tuples(_NUMBER, _NUMBER), max_size=3))),
        attributes=draw(_ATTRIBUTES),
        media=tuple(draw(st.lists(_media(connection is None), max_size=3))),
        bandwidth=tuple(draw(_BANDWIDTH)),
        extra=tuple(draw(_extra("iuep")) + draw(_extra("rzk"))),
    )


@given(_sessions())
def test_parse_of_serialised_description_round_trips(sdp: SessionDescription) -> None:
    """Any generated description parses back from its text and its bytes to an equal value."""
    assert parse_sdp(str(sdp)) == sdp
    assert parse_sdp(sdp.to_bytes()) == sdp
