"""Tests for stream framing with ReceiveBuffer (RFC 3261 §18.3, RFC 5626 §4.4.1)."""

from __future__ import annotations

import pytest

from callserver.sip import framing, parser
from callserver.sip.errors import SipParseError
from callserver.sip.framing import ReceiveBuffer
from callserver.sip.message import Request
from callserver.sip.parser import ParseLimits, parse_message

BODY = b"v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=-\r\n"


def message(call_id: str = "a@h", body: bytes = BODY, length_name: str = "Content-Length") -> bytes:
    """Build one complete OPTIONS with ``body``."""
    head = (
        "OPTIONS sip:bob@example.com SIP/2.0\r\n"
        "Via: SIP/2.0/TCP 192.0.2.1;branch=z9hG4bKx\r\n"
        "From: <sip:a@example.net>;tag=1\r\n"
        "To: <sip:bob@example.com>\r\n"
        f"Call-ID: {call_id}\r\n"
        "CSeq: 1 OPTIONS\r\n"
        "Content-Type: application/sdp\r\n"
        f"{length_name}: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


def drain(buffer: ReceiveBuffer) -> list[bytes]:
    """Take every complete message out of ``buffer``."""
    out: list[bytes] = []
    while (msg := buffer.next_message()) is not None:
        out.append(msg)
    return out


def test_one_whole_message() -> None:
    """A complete message comes out as it went in."""
    buffer = ReceiveBuffer()
    buffer.feed(message())
    assert drain(buffer) == [message()]
    assert len(buffer) == 0


def test_partial_head_then_rest() -> None:
    """Nothing comes out until the head and body are complete."""
    data = message()
    buffer = ReceiveBuffer()
    buffer.feed(data[:50])
    assert buffer.next_message() is None
    buffer.feed(data[50:-5])
    assert buffer.next_message() is None
    buffer.feed(data[-5:])
    assert buffer.next_message() == data


def test_pipelined_messages() -> None:
    """Back-to-back messages come out one by one, in order."""
    first, second = message("one@h"), message("two@h", body=b"")
    buffer = ReceiveBuffer()
    buffer.feed(first + second + first[:10])
    assert drain(buffer) == [first, second]
    assert len(buffer) == 10


def test_byte_by_byte() -> None:
    """Feeding one octet at a time still frames every message."""
    data = message("one@h") + b"\r\n" + message("two@h")
    buffer = ReceiveBuffer()
    out: list[bytes] = []
    for i in range(len(data)):
        buffer.feed(data[i : i + 1])
        out += drain(buffer)
    assert out == [message("one@h"), message("two@h")]


def test_compact_and_folded_content_length() -> None:
    """``l`` and a folded Content-Length both frame the body."""
    compact = message(length_name="l")
    folded = message().replace(b"Content-Length: ", b"Content-Length:\r\n  ")
    buffer = ReceiveBuffer()
    buffer.feed(compact + folded)
    assert drain(buffer) == [compact, folded]


def test_missing_content_length_means_empty_body() -> None:
    """Without Content-Length a stream message has no body (RFC 3261 §18.3)."""
    data = message(body=b"").replace(b"Content-Length: 0\r\n", b"")
    buffer = ReceiveBuffer()
    buffer.feed(data + data)
    assert drain(buffer) == [data, data]


def test_keepalive_pings_are_counted() -> None:
    """CRLFCRLF between messages is a ping; a lone CRLF is skipped (RFC 5626 §4.4.1)."""
    buffer = ReceiveBuffer()
    buffer.feed(b"\r\n\r\n\r\n\r\n" + message() + b"\r\n" + message() + b"\r\n\r\n")
    assert drain(buffer) == [message(), message()]
    assert buffer.take_pings() == 3
    assert buffer.take_pings() == 0


def test_split_ping_waits_for_rest() -> None:
    """A ping split across reads is still one ping, not a skipped CRLF."""
    buffer = ReceiveBuffer()
    buffer.feed(b"\r\n")
    assert buffer.next_message() is None
    buffer.feed(b"\r")
    assert buffer.next_message() is None
    buffer.feed(b"\n")
    assert buffer.next_message() is None
    assert buffer.take_pings() == 1


def test_framed_message_parses() -> None:
    """A framed message goes straight into parse_message(datagram=False)."""
    buffer = ReceiveBuffer()
    buffer.feed(message())
    framed = buffer.next_message()
    assert framed is not None
    msg = parse_message(framed, datagram=False)
    assert isinstance(msg, Request) and msg.body == BODY


def test_endless_head_raises_413() -> None:
    """A head growing past max_message_bytes without its end raises 413."""
    buffer = ReceiveBuffer(ParseLimits(max_message_bytes=200))
    buffer.feed(b"OPTIONS sip:a@b SIP/2.0\r\n" + b"X-Pad: " + b"a" * 100)
    assert buffer.next_message() is None
    buffer.feed(b"a" * 100)
    with pytest.raises(SipParseError) as info:
        buffer.next_message()
    assert info.value.status_hint == 413


def test_oversized_declared_body_raises_413() -> None:
    """A Content-Length that would exceed the limit raises 413 before the body arrives."""
    buffer = ReceiveBuffer(ParseLimits(max_message_bytes=500))
    length = f"Content-Length: {len(BODY)}".encode()
    buffer.feed(message().replace(length, b"Content-Length: 100000").removesuffix(BODY))
    with pytest.raises(SipParseError) as info:
        buffer.next_message()
    assert info.value.status_hint == 413


@pytest.mark.parametrize("value", [b"-5", b"abc", b"5\r\nContent-Length: 6"])
def test_bad_content_length_raises_400(value: bytes) -> None:
    """An unusable Content-Length is a framing error (RFC 4475 §3.3.9: close the stream)."""
    buffer = ReceiveBuffer()
    buffer.feed(message(body=b"").replace(b"Content-Length: 0", b"Content-Length: " + value))
    with pytest.raises(SipParseError) as info:
        buffer.next_message()
    assert info.value.status_hint == 400


def test_byte_by_byte_is_linear() -> None:
    """Feeding a large head octet by octet rescans nothing (bounded work per octet)."""
    pad = b"X-Pad: " + b"a" * 60000 + b"\r\n"
    data = message().replace(b"CSeq:", pad + b"CSeq:")
    buffer = ReceiveBuffer(ParseLimits(max_message_bytes=70000))
    out: list[bytes] = []
    for i in range(len(data)):
        buffer.feed(data[i : i + 1])
        if (msg := buffer.next_message()) is not None:
            out.append(msg)
    assert out == [data]


def test_limits_and_content_length_are_shared_with_the_parser() -> None:
    """The parser re-exports the framing layer's ParseLimits and Content-Length reader."""
    assert parser.ParseLimits is framing.ParseLimits
    assert parser.parse_content_length is framing.parse_content_length
    assert framing.parse_content_length(["007", " 007 "]) == 7
