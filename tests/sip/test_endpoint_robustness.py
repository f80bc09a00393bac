"""Bad input at the endpoint: random bytes, RFC 4475 torture messages, floods; never a raise."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from callserver.sip.endpoint import EndpointConfig, SipEndpoint
from callserver.sip.events import CloseConnection, MessageDropped, Peer, RequestReceived, Transmit
from tests.vectors import RFC4475

VECTORS = RFC4475
UDP = Peer("udp", "127.0.0.1", 5062)
TCP = Peer("tcp", "127.0.0.1", 5062, conn_id=1)

# What the endpoint answers to each RFC 4475 message: a status, "event" (delivered to the
# application, which decides), or "drop" (unanswerable: counted, no response). Notes:
# wsinv carries a To tag, so it is an in-dialog request of a dialog we do not have (481);
# REGISTER is not served here, so the §8.2.1 method check (405) answers regbadct before its
# Contact is looked at; baddate's non-GMT Date is tolerated (§3.1.2.12 allows it, we never
# use Date); badinv01's top Via does not parse, so no response can be routed (drop); sdp01
# asks for a body type we cannot produce (406, §3.3.15); novelsc's scheme is unsupported (416).
EXPECTED: dict[str, int | str] = {
    "wsinv.dat": 481,
    "intmeth.dat": 405,
    "esc01.dat": "event",
    "escnull.dat": 405,
    "esc02.dat": 405,
    "lwsdisp.dat": 200,
    "longreq.dat": "event",
    "dblreq.dat": 405,
    "semiuri.dat": 200,
    "transports.dat": 200,
    "mpart01.dat": 405,
    "unreason.dat": "drop",
    "noreason.dat": "drop",
    "badinv01.dat": "drop",
    "clerr.dat": 400,
    "ncl.dat": 400,
    "scalar02.dat": 400,
    "scalarlg.dat": "drop",
    "quotbal.dat": 400,
    "ltgtruri.dat": 400,
    "lwsruri.dat": 400,
    "lwsstart.dat": 400,
    "trws.dat": 400,
    "escruri.dat": 400,
    "baddate.dat": "event",
    "regbadct.dat": 405,
    "badaspec.dat": 400,
    "baddn.dat": 400,
    "badvers.dat": 505,
    "mismatch01.dat": 400,
    "mismatch02.dat": 400,
    "bigcode.dat": "drop",
    "badbranch.dat": 200,
    "insuf.dat": "drop",
    "unkscm.dat": 416,
    "novelsc.dat": 416,
    "unksm2.dat": 405,
    "bext01.dat": 420,
    "invut.dat": 415,
    "regaut01.dat": 405,
    "multi01.dat": 400,
    "mcl01.dat": 400,
    "bcast.dat": "drop",
    "zeromf.dat": 483,
    "cparam01.dat": 405,
    "cparam02.dat": 405,
    "regescrt.dat": 405,
    "sdp01.dat": 406,
    "inv2543.dat": "event",
}


def _endpoint() -> SipEndpoint:
    return SipEndpoint(EndpointConfig(host="127.0.0.1", port=5060))


def _outcome(endpoint: SipEndpoint) -> int | str:
    sent = [a for a in endpoint.datagrams_to_send() if isinstance(a, Transmit)]
    finals = [a.data for a in sent if not a.data.startswith(b"SIP/2.0 100")]
    events = []
    while (event := endpoint.next_event()) is not None:
        events.append(event)
    if finals:
        return int(finals[0].split(b" ", 2)[1])
    if any(isinstance(e, RequestReceived) for e in events):
        return "event"
    assert any(isinstance(e, MessageDropped) for e in events) or not sent, events
    return "drop"


def _vector(name: str) -> bytes:
    return (VECTORS / name).read_bytes()


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_torture_message_gets_the_rfc_answer(name: str) -> None:
    """Each RFC 4475 message gets its expected status, reaches the application, or is dropped."""
    endpoint = _endpoint()
    endpoint.receive_datagram(_vector(name), UDP, 1000.0)
    assert _outcome(endpoint) == EXPECTED[name]


def test_every_vector_is_pinned() -> None:
    """All 49 vector files have an expected outcome above."""
    assert len(EXPECTED) == 49
    assert {p.name for p in VECTORS.glob("*.dat")} == set(EXPECTED)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=2048))
def test_arbitrary_datagrams_only_produce_events_or_drops(data: bytes) -> None:
    """Random bytes never raise; they become responses, events or counted drops."""
    endpoint = _endpoint()
    endpoint.receive_datagram(data, UDP, 1000.0)
    endpoint.datagrams_to_send()
    while endpoint.next_event() is not None:
        pass


@settings(max_examples=100, deadline=None)
@given(st.lists(st.binary(max_size=512), max_size=8))
def test_arbitrary_stream_chunks_never_raise(chunks: list[bytes]) -> None:
    """Random stream data never raises; at worst the connection is closed."""
    endpoint = _endpoint()
    for chunk in chunks:
        endpoint.receive_stream_data(chunk, TCP, 1000.0)
    endpoint.datagrams_to_send()


def test_huge_header_on_a_stream_closes_the_connection() -> None:
    """A peer sending a 10 MB header without end is cut off; memory stays bounded."""
    endpoint = _endpoint()
    endpoint.receive_stream_data(b"INVITE sip:a@b SIP/2.0\r\nX-Flood: ", TCP, 1000.0)
    closed = False
    for _ in range(160):
        endpoint.receive_stream_data(b"a" * 65536, TCP, 1000.0)
        if any(isinstance(a, CloseConnection) for a in endpoint.datagrams_to_send()):
            closed = True
            break
    assert closed
    assert endpoint.statistics().messages_dropped >= 1


@pytest.mark.parametrize(
    ("field", "outcome"),
    [("Subject: a\x00b", 400), ("User-Agent: x\x00y", 400), ("Call-ID: a\x00b@host", "drop")],
)
def test_nul_in_a_header_value_is_refused(field: str, outcome: int | str) -> None:
    """A request with NUL in a header value never reaches the application: 400, or dropped."""
    endpoint = _endpoint()
    lines = [
        "OPTIONS sip:100@127.0.0.1 SIP/2.0",
        "Via: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bKnul",
        "From: <sip:a@127.0.0.1>;tag=1",
        "To: <sip:100@127.0.0.1>",
        "Call-ID: nul@127.0.0.1",
        "CSeq: 1 OPTIONS",
        "Max-Forwards: 70",
    ]
    if field.startswith("Call-ID"):
        lines[4] = field
    else:
        lines.append(field)
    data = ("\r\n".join(lines) + "\r\nContent-Length: 0\r\n\r\n").encode()
    endpoint.receive_datagram(data, UDP, 1000.0)
    assert _outcome(endpoint) == outcome
