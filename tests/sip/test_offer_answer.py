"""Tests for SDP offer/answer (RFC 3264) on real-world offers, and their parsing (RFC 4566)."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from callserver.sip.offer_answer import (
    AnswerConfig,
    Codec,
    NegotiatedMedia,
    NoCommonCodec,
    answer_offer,
    build_offer,
    hold_answer_direction,
    negotiated_from_answer,
)
from callserver.sip.sdp import MediaDescription, Origin, SdpError, SessionDescription, parse_sdp

CONFIG = AnswerConfig(address="203.0.113.5", port=20000, session_id=42, session_version=1)

# SIPp's built-in uac scenario body, as sent with local_ip 127.0.0.1 and media_port 6000.
SIPP_UAC = (
    "v=0\r\n"
    "o=user1 53655765 2353687637 IN IP4 127.0.0.1\r\n"
    "s=-\r\n"
    "c=IN IP4 127.0.0.1\r\n"
    "t=0 0\r\n"
    "m=audio 6000 RTP/AVP 0\r\n"
    "a=rtpmap:0 PCMU/8000\r\n"
)

# Linphone-style: LF-only, many codecs, telephone-event at two clock rates, b= lines, video.
LINPHONE = """v=0
o=alice 3422 1857 IN IP4 192.168.1.20
s=Talk
c=IN IP4 192.168.1.20
b=AS:380
t=0 0
a=rtcp-xr:rcvr-rtt=all:10000 stat-summary=loss,dup,jitt,TTL voip-metrics
m=audio 7078 RTP/AVP 96 97 0 8 100 101
a=rtpmap:96 opus/48000/2
a=fmtp:96 useinbandfec=1
a=rtpmap:97 speex/16000
a=fmtp:97 vbr=on
a=rtpmap:100 telephone-event/48000
a=rtpmap:101 telephone-event/8000
a=rtcp-fb:* trr-int 1000
a=rtcp-mux
m=video 9078 RTP/AVP 96 97
b=TIAS:512000
a=rtpmap:96 VP8/90000
a=rtpmap:97 H264/90000
a=fmtp:97 profile-level-id=42801F
"""

# Asterisk-style: PCMU first, fmtp 0-16, ptime and maxptime, an explicit sendrecv.
ASTERISK = (
    "v=0\r\n"
    "o=- 1700000001 1700000001 IN IP4 10.1.2.3\r\n"
    "s=Asterisk\r\n"
    "c=IN IP4 10.1.2.3\r\n"
    "t=0 0\r\n"
    "m=audio 12346 RTP/AVP 0 8 3 101\r\n"
    "a=rtpmap:0 PCMU/8000\r\n"
    "a=rtpmap:8 PCMA/8000\r\n"
    "a=rtpmap:3 GSM/8000\r\n"
    "a=rtpmap:101 telephone-event/8000\r\n"
    "a=fmtp:101 0-16\r\n"
    "a=ptime:20\r\n"
    "a=maxptime:150\r\n"
    "a=sendrecv\r\n"
)


def _lines(sdp: SessionDescription) -> list[str]:
    return str(sdp).split("\r\n")[:-1]


def test_sipp_offer_parses_field_by_field() -> None:
    """SIPp's default uac offer yields its origin, connection, timing and one PCMU stream."""
    sdp = parse_sdp(SIPP_UAC.encode())
    assert sdp.origin == Origin(
        username="user1", sess_id=53655765, sess_version=2353687637, address="127.0.0.1"
    )
    assert (sdp.session_name, sdp.connection, sdp.timing) == ("-", "127.0.0.1", ((0, 0),))
    (pcmu,) = sdp.media
    assert (pcmu.port, pcmu.proto, pcmu.formats) == (6000, "RTP/AVP", ("0",))
    assert pcmu.rtpmaps == {0: ("PCMU", 8000, 1)}


@pytest.mark.parametrize("text", [SIPP_UAC, ASTERISK])
def test_canonical_offers_serialise_byte_for_byte(text: str) -> None:
    """A CRLF offer in RFC 4566 order serialises back to exactly the same text."""
    assert str(parse_sdp(text)) == text
    assert parse_sdp(text).to_bytes() == text.encode()


def test_lf_only_offer_serialises_with_crlf() -> None:
    """An LF-only offer parses, and comes back out with CRLF after every line."""
    text = str(parse_sdp(LINPHONE))
    assert text == LINPHONE.replace("\n", "\r\n")


def test_sipp_offer_is_answered_with_pcmu() -> None:
    """SIPp offers only PCMU, so the answer accepts PCMU on our address and port."""
    answer = answer_offer(parse_sdp(SIPP_UAC), CONFIG)
    assert _lines(answer.sdp) == [
        "v=0",
        "o=callserver 42 1 IN IP4 203.0.113.5",
        "s=-",
        "c=IN IP4 203.0.113.5",
        "t=0 0",
        "m=audio 20000 RTP/AVP 0",
        "a=rtpmap:0 PCMU/8000",
        "a=ptime:20",
        "a=sendrecv",
    ]
    assert answer.media == NegotiatedMedia(
        codecs=(Codec("PCMU", 0),),
        telephone_event=None,
        remote_address="127.0.0.1",
        remote_port=6000,
        ptime=20,
        direction="sendrecv",
        rtcp_mux=False,
    )


def test_static_payload_type_needs_no_rtpmap() -> None:
    """Static payload type 8 is recognised as PCMA even without an rtpmap line."""
    offer = parse_sdp(
        SIPP_UAC.replace("RTP/AVP 0", "RTP/AVP 8").replace("a=rtpmap:0 PCMU/8000\r\n", "")
    )
    assert answer_offer(offer, CONFIG).media.codec == Codec("PCMA", 8)


def test_linphone_offer_accepts_pcma_and_rejects_video() -> None:
    """Linphone's audio gets PCMA, PCMU and telephone-event/8000 (PT 101); video gets port 0."""
    answer = answer_offer(parse_sdp(LINPHONE), CONFIG)
    audio, video = answer.sdp.media
    assert audio.formats == ("8", "0", "101")
    assert audio.attributes == (
        ("rtpmap", "8 PCMA/8000"),
        ("rtpmap", "0 PCMU/8000"),
        ("rtpmap", "101 telephone-event/8000"),
        ("ptime", "20"),
        ("sendrecv", None),
        ("rtcp-mux", None),
    )
    assert video == MediaDescription(media="video", port=0, proto="RTP/AVP", formats=("96", "97"))
    assert answer.media.telephone_event == Codec("telephone-event", 101)
    assert answer.media.rtcp_mux is True


def test_asterisk_offer_follows_operator_preference() -> None:
    """Offered 0 8 3 101, the answer is 8 0 101: every codec we use, in operator order (PCMA
    first though offered second), GSM left out; the fmtp is echoed as sent."""
    answer = answer_offer(parse_sdp(ASTERISK), CONFIG)
    (audio,) = answer.sdp.media
    assert audio.formats == ("8", "0", "101")
    assert ("fmtp", "101 0-16") in audio.attributes
    assert answer.media.codec == Codec("PCMA", 8)
    assert answer.media.codecs == (Codec("PCMA", 8), Codec("PCMU", 0))
    pcmu_first = replace(CONFIG, codecs=("PCMU", "PCMA"))
    pcmu_answer = answer_offer(parse_sdp(ASTERISK), pcmu_first)
    assert pcmu_answer.sdp.media[0].formats == ("0", "8", "101")
    assert pcmu_answer.media.codec == Codec("PCMU", 0)
    pcma_only = replace(CONFIG, codecs=("PCMA",))
    assert answer_offer(parse_sdp(ASTERISK), pcma_only).sdp.media[0].formats == ("8", "101")
    offer = parse_sdp(ASTERISK.replace("a=fmtp:101 0-16", "a=fmtp:101 0-15"))
    assert ("fmtp", "101 0-15") in answer_offer(offer, CONFIG).sdp.media[0].attributes


def test_dynamic_payload_type_matches_encoding_name_case_insensitively() -> None:
    """A dynamic payload type with a lower-case 'pcma' rtpmap is accepted as PCMA."""
    offer = parse_sdp(SIPP_UAC.replace("RTP/AVP 0", "RTP/AVP 110").replace("0 PCMU", "110 pcma"))
    answer = answer_offer(offer, CONFIG)
    assert answer.media.codec == Codec("PCMA", 110)
    assert answer.sdp.media[0].attributes[0] == ("rtpmap", "110 PCMA/8000")


def test_hold_reoffer_with_sendonly_is_answered_recvonly() -> None:
    """A hold re-offer (a=sendonly) is answered recvonly; a session-level direction counts too."""
    hold = ASTERISK.replace("a=sendrecv", "a=sendonly").replace("1700000001 IN", "1700000002 IN")
    answer = answer_offer(parse_sdp(hold), CONFIG)
    assert ("recvonly", None) in answer.sdp.media[0].attributes
    assert answer.media.direction == "recvonly"
    offer = parse_sdp(SIPP_UAC.replace("t=0 0\r\n", "t=0 0\r\na=inactive\r\n"))
    assert answer_offer(offer, CONFIG).media.direction == "inactive"


@pytest.mark.parametrize(
    ("direction", "expected"),
    [
        ("sendrecv", "recvonly"),
        ("sendonly", "recvonly"),
        ("recvonly", "inactive"),
        ("inactive", "inactive"),
    ],
)
def test_rfc2543_hold_address_stops_our_sending(direction: str, expected: str) -> None:
    """An offered c=0.0.0.0 means we send nothing (RFC 3264 §8.4), so our send half is dropped."""
    offer = parse_sdp(
        ASTERISK.replace("10.1.2.3\r\nt=", "0.0.0.0\r\nt=").replace("sendrecv", direction)
    )
    answer = answer_offer(offer, CONFIG)
    assert answer.media.direction == expected
    assert answer.media.remote_address == "0.0.0.0"
    assert (expected, None) in answer.sdp.media[0].attributes


def test_media_level_connection_is_used() -> None:
    """A media-level c= gives the remote address, alone or overriding the session's."""
    text = SIPP_UAC.replace("c=IN IP4 127.0.0.1\r\n", "").replace(
        "RTP/AVP 0\r\n", "RTP/AVP 0\r\nc=IN IP4 198.51.100.7\r\n"
    )
    offer = parse_sdp(text)
    assert offer.connection is None
    assert offer.media[0].connection == "198.51.100.7"
    assert answer_offer(offer, CONFIG).media.remote_address == "198.51.100.7"
    both = parse_sdp(SIPP_UAC.replace("RTP/AVP 0\r\n", "RTP/AVP 0\r\nc=IN IP4 198.51.100.8\r\n"))
    assert answer_offer(both, CONFIG).media.remote_address == "198.51.100.8"


def test_ipv6_offer_and_ipv6_answer() -> None:
    """An IPv6 offer is answered from an IPv6 address with IP6 in o= and c=."""
    offer = parse_sdp(SIPP_UAC.replace("IP4 127.0.0.1", "IP6 2001:db8::10"))
    config = AnswerConfig(address="2001:db8::1", port=20000, session_id=7, session_version=3)
    answer = answer_offer(offer, config)
    assert answer.media.remote_address == "2001:db8::10"
    assert _lines(answer.sdp)[1:4] == [
        "o=callserver 7 3 IN IP6 2001:db8::1",
        "s=-",
        "c=IN IP6 2001:db8::1",
    ]


def test_ptime_is_echoed_or_defaulted() -> None:
    """An offered a=ptime:30 is echoed; without one, the configured ptime is used."""
    offered = answer_offer(parse_sdp(ASTERISK.replace("ptime:20", "ptime:30")), CONFIG)
    assert (offered.media.ptime, ("ptime", "30") in offered.sdp.media[0].attributes) == (30, True)
    assert answer_offer(parse_sdp(SIPP_UAC), replace(CONFIG, ptime=40)).media.ptime == 40


def test_unusable_streams_are_rejected_and_the_first_usable_accepted() -> None:
    """SRTP, port-0 and codec-less audio are rejected; the first usable audio is accepted."""
    text = SIPP_UAC.replace(
        "m=audio 6000 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n",
        "m=audio 6000 RTP/SAVP 0\r\nm=audio 0 RTP/AVP 8\r\nm=audio 6002 RTP/AVP 18\r\n"
        "m=audio 6004 RTP/AVP 8\r\nm=audio 6006 RTP/AVP 0\r\nm=application 6008 UDP/BFCP *\r\n",
    )
    answer = answer_offer(parse_sdp(text), CONFIG)
    assert [(m.port, m.proto, m.formats) for m in answer.sdp.media] == [
        (0, "RTP/SAVP", ("0",)),
        (0, "RTP/AVP", ("8",)),
        (0, "RTP/AVP", ("18",)),
        (20000, "RTP/AVP", ("8",)),
        (0, "RTP/AVP", ("0",)),
        (0, "UDP/BFCP", ("*",)),
    ]
    assert answer.media.remote_port == 6004


def test_answer_copies_every_offered_timing_line() -> None:
    """The answer's t= lines equal the offer's (RFC 3264 §6), even when there are several."""
    offer = parse_sdp(SIPP_UAC.replace("t=0 0\r\n", "t=0 0\r\nt=3034423619 3042462419\r\n"))
    assert offer.timing == ((0, 0), (3034423619, 3042462419))
    assert answer_offer(offer, CONFIG).sdp.timing == offer.timing


def test_no_common_codec_raises_a_488_error() -> None:
    """G.729 only, or no audio at all, raises NoCommonCodec (an SdpError) saying which."""
    offer = parse_sdp(SIPP_UAC.replace("RTP/AVP 0", "RTP/AVP 18").replace("0 PCMU", "18 G729"))
    with pytest.raises(NoCommonCodec, match=r"codecs \(G729\) is one we use \(PCMA, PCMU\)"):
        answer_offer(offer, CONFIG)
    assert issubclass(NoCommonCodec, SdpError)
    offer = parse_sdp(SIPP_UAC.replace("m=audio", "m=video"))
    with pytest.raises(NoCommonCodec, match="no RTP/AVP audio stream"):
        answer_offer(offer, CONFIG)


@pytest.mark.parametrize(
    ("offered", "answered"),
    [
        ("sendrecv", "sendrecv"),
        ("sendonly", "recvonly"),
        ("recvonly", "sendonly"),
        ("inactive", "inactive"),
    ],
)
def test_hold_answer_direction(offered: str, answered: str) -> None:
    """Each offered direction maps to its RFC 3264 §6.1 answer."""
    assert hold_answer_direction(offered) == answered


def test_hold_answer_direction_rejects_unknown() -> None:
    """A word that is not a direction attribute raises SdpError."""
    with pytest.raises(SdpError, match="not an SDP direction attribute"):
        hold_answer_direction("sendsome")


def test_build_offer() -> None:
    """Our offer lists the codecs in operator order, then telephone-event 0-16."""
    assert _lines(build_offer(CONFIG, telephone_event_pt=96)) == [
        "v=0",
        "o=callserver 42 1 IN IP4 203.0.113.5",
        "s=-",
        "c=IN IP4 203.0.113.5",
        "t=0 0",
        "m=audio 20000 RTP/AVP 8 0 96",
        "a=rtpmap:8 PCMA/8000",
        "a=rtpmap:0 PCMU/8000",
        "a=rtpmap:96 telephone-event/8000",
        "a=fmtp:96 0-16",
        "a=ptime:20",
        "a=sendrecv",
    ]
    with pytest.raises(ValueError, match=r"not in 96\.\.127"):
        build_offer(CONFIG, telephone_event_pt=8)


def test_uac_reads_an_asterisk_style_answer() -> None:
    """A real answer choosing PCMU, telephone-event and recvonly makes us sendonly with PCMU."""
    answer = parse_sdp(
        "v=0\r\no=- 5 6 IN IP4 10.9.9.9\r\ns=Asterisk\r\nc=IN IP4 10.9.9.9\r\nt=0 0\r\n"
        "m=audio 17000 RTP/AVP 0 101\r\na=rtpmap:0 PCMU/8000\r\n"
        "a=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-16\r\na=ptime:30\r\na=recvonly\r\n"
    )
    assert negotiated_from_answer(build_offer(CONFIG), answer) == NegotiatedMedia(
        codecs=(Codec("PCMU", 0),),
        telephone_event=Codec("telephone-event", 101),
        remote_address="10.9.9.9",
        remote_port=17000,
        ptime=30,
        direction="sendonly",
        rtcp_mux=False,
    )


def test_uac_takes_every_codec_of_the_answer_and_sends_the_first() -> None:
    """An answer listing PCMU then PCMA: we send PCMU (RFC 3264 §7) and take either."""
    answer = parse_sdp(
        "v=0\r\no=- 5 6 IN IP4 10.9.9.9\r\ns=-\r\nc=IN IP4 10.9.9.9\r\nt=0 0\r\n"
        "m=audio 17000 RTP/AVP 0 8 101\r\na=rtpmap:101 telephone-event/8000\r\n"
    )
    media = negotiated_from_answer(build_offer(CONFIG), answer)
    assert media.codecs == (Codec("PCMU", 0), Codec("PCMA", 8))
    assert media.codec == Codec("PCMU", 0)
    with pytest.raises(ValueError, match="at least one audio codec"):
        replace(media, codecs=())


def test_our_offer_and_our_answer_agree() -> None:
    """Answering our own offer and reading that answer back gives the same media both ways."""
    offer = build_offer(CONFIG)
    peer = replace(CONFIG, address="198.51.100.1", port=30000)
    answer = answer_offer(offer, peer)
    ours = negotiated_from_answer(offer, answer.sdp)
    assert (ours.codec, ours.telephone_event) == (answer.media.codec, answer.media.telephone_event)
    assert (ours.remote_address, ours.remote_port) == ("198.51.100.1", 30000)


def test_uac_answer_errors() -> None:
    """A wrong m= count, a rejected stream and a format we never offered each raise."""
    offer = build_offer(CONFIG)
    good = answer_offer(offer, CONFIG).sdp
    extra = SessionDescription(
        origin=good.origin, connection="10.0.0.1", media=(*good.media, good.media[0])
    )
    with pytest.raises(SdpError, match="the answer has 2 m= lines for the offer's 1"):
        negotiated_from_answer(offer, extra)
    rejected = parse_sdp(str(good).replace("m=audio 20000", "m=audio 0"))
    with pytest.raises(NoCommonCodec, match="rejected every audio stream"):
        negotiated_from_answer(offer, rejected)
    foreign = parse_sdp(str(good).replace("RTP/AVP 8 0 101", "RTP/AVP 18"))
    with pytest.raises(SdpError, match="hold no codec of our offer"):
        negotiated_from_answer(offer, foreign)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"codecs": ("OPUS",)},
        {"codecs": ()},
        {"codecs": ("PCMA", "pcma")},
        {"port": 0},
        {"ptime": 0},
        {"session_version": -1},
    ],
)
def test_answer_config_validates(kwargs: dict[str, Any]) -> None:
    """Unknown or repeated codecs, a zero port, ptime or a negative version are refused."""
    with pytest.raises(ValueError):
        replace(CONFIG, **kwargs)


_TEXT = st.text(st.characters(exclude_categories=["Cs"], exclude_characters="\r\n"), max_size=12)
_LINE = st.tuples(st.sampled_from("vosctbamix"), st.sampled_from(["=", "= ", ""]), _TEXT)
_REAL_LINES = st.sampled_from((SIPP_UAC + ASTERISK + LINPHONE).replace("\r", "").split("\n"))


@given(st.lists(st.one_of(_REAL_LINES, _LINE.map("".join)), max_size=20), st.booleans())
def test_arbitrary_lines_only_ever_raise_sdp_error(lines: list[str], crlf: bool) -> None:
    """Arbitrary line soup either parses and answers, or raises SdpError; nothing else escapes."""
    text = ("\r\n" if crlf else "\n").join(["v=0", *lines])
    try:
        answer = answer_offer(parse_sdp(text), CONFIG)
    except SdpError:
        return
    assert len(answer.sdp.media) == len(parse_sdp(text).media)
