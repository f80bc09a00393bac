"""Who called, behind the SIP edge: the one decision (``cluster.edge.caller_address``), the
endpoint's filter under ``edge.only`` and a server's answers and counters."""

from __future__ import annotations

from pathlib import Path

import pytest

from callserver.admin.metrics import ServerCollector
from callserver.cluster.edge import (
    BAD_SOURCE_HEADER,
    NO_SOURCE_HEADER,
    NOT_FROM_EDGE,
    Caller,
    EdgeSources,
    caller_address,
    parse_source,
)
from callserver.config.cluster import EdgeSettings
from callserver.sip.dialog import DialogId
from callserver.sip.events import Peer, RequestReceived
from callserver.sip.headers import parse_address
from callserver.sip.message import Request
from callserver.sip.parser import parse_message
from callserver.sip.transaction_key import TransactionKey
from callserver.sip.uri import parse_uri
from tests.admin.in_process import PLANS, in_process_server
from tests.sip.pair import ALICE, Pair

EDGE = Peer("udp", "192.0.2.10", 5060)
CALLER = Peer("udp", "198.51.100.7", 5070)
SETTINGS = EdgeSettings(addresses=["192.0.2.10"])
ONLY = EdgeSettings(addresses=["192.0.2.10"], only=True)


def test_the_edge_names_the_caller() -> None:
    """A request from the edge is the caller's whose address the edge's header names."""
    found = caller_address(EDGE, ["203.0.113.5:5062"], SETTINGS)
    assert found == Caller("203.0.113.5", 5062, through_edge=True)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("[2001:db8::7]:5060", ("2001:db8::7", 5060)),
        ("2001:db8::7:5060", ("2001:db8::7", 5060)),  # Kamailio's $si:$sp of an IPv6 source
        (" 203.0.113.5:1 ", ("203.0.113.5", 1)),
        ("203.0.113.5", None),
        ("203.0.113.5:0", None),
        ("203.0.113.5:65536", None),
        ("pbx.example.com:5060", None),
        ("203.0.113.5:50x", None),
        ("", None),
    ],
)
def test_source_values(value: str, expected: tuple[str, int] | None) -> None:
    """The header holds one IP and a port from 1 to 65535, nothing else."""
    assert parse_source(value) == expected


def test_the_edge_without_a_valid_header_is_answered_400() -> None:
    """None, two, or a value that is no address: the edge is misconfigured, 400."""
    assert caller_address(EDGE, [], SETTINGS) is NO_SOURCE_HEADER
    assert caller_address(EDGE, ["203.0.113.5:5062", "1.2.3.4:5"], SETTINGS) is BAD_SOURCE_HEADER
    assert caller_address(EDGE, ["203.0.113.5"], SETTINGS) is BAD_SOURCE_HEADER
    assert NO_SOURCE_HEADER.status == BAD_SOURCE_HEADER.status == 400


def test_a_forged_header_from_elsewhere_is_not_believed() -> None:
    """From any other address the source is the caller; under only it is dropped."""
    found = caller_address(CALLER, ["192.0.2.99:5060"], SETTINGS)
    assert found == Caller(CALLER.host, CALLER.port, through_edge=False)
    assert caller_address(CALLER, ["192.0.2.99:5060"], ONLY) is NOT_FROM_EDGE
    assert NOT_FROM_EDGE.status is None


def test_an_edge_address_with_a_port_is_only_that_port() -> None:
    """``IP:PORT`` names the edge's one source port: the same IP on another port is a caller."""
    settings = EdgeSettings(addresses=["127.0.0.1:5080", "[::1]:5080"], only=True)
    edge = Peer("udp", "127.0.0.1", 5080)
    assert caller_address(edge, ["127.0.0.1:40000"], settings) == Caller(
        "127.0.0.1", 40000, through_edge=True
    )
    beside = Peer("udp", "127.0.0.1", 40000)
    assert caller_address(beside, ["127.0.0.1:1"], settings) is NOT_FROM_EDGE
    assert caller_address(Peer("udp", "::1", 5080), ["[::1]:9"], settings) == Caller(
        "::1", 9, through_edge=True
    )


def _invite(header: str = "") -> Request:
    text = (
        "INVITE sip:100@192.0.2.1 SIP/2.0\r\n"
        "Via: SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bK-edge-1\r\n"
        "From: <sip:alice@example.com>;tag=a1\r\nTo: <sip:100@192.0.2.1>\r\n"
        f"Call-ID: edge-1\r\nCSeq: 1 INVITE\r\nMax-Forwards: 69\r\n{header}"
        "Contact: <sip:alice@198.51.100.7:5070>\r\nContent-Length: 0\r\n\r\n"
    )
    request = parse_message(text.encode())
    assert isinstance(request, Request)
    return request


class _Endpoint:
    """Keeps what :class:`EdgeSources` answered or discarded."""

    def __init__(self) -> None:
        self.answers: list[tuple[int, str | None]] = []
        self.discarded = 0

    def respond(
        self, key: TransactionKey | None, status: int, now: float, *, reason: str | None = None
    ) -> None:
        self.answers.append((status, reason))

    def discard(self, key: TransactionKey | None, now: float) -> None:
        self.discarded += 1


def _event(request: Request, peer: Peer) -> RequestReceived:
    return RequestReceived(request=request, peer=peer, key=None, rtime=1.0)


def test_sources_answer_400_once_logged_and_count_by_reason() -> None:
    """The caller of a good request is returned; a bad one is answered 400 and counted."""
    endpoint = _Endpoint()
    sources = EdgeSources(SETTINGS, endpoint, {})
    good = _event(_invite("X-Callserver-Source: 203.0.113.5:5062\r\n"), EDGE)
    assert sources.caller(good, 1.0) == ("203.0.113.5", 5062)
    assert sources.caller(_event(_invite(), EDGE), 1.0) is None
    assert sources.caller(_event(_invite("X-Callserver-Source: x\r\n"), EDGE), 1.0) is None
    reason = "Missing or invalid X-Callserver-Source"
    assert endpoint.answers == [(400, reason), (400, reason)]
    stats = sources.statistics()
    assert stats.refused == {"no_source_header": 1, "bad_source_header": 1}
    assert stats.dropped == {}


def test_sources_read_the_configured_header_name() -> None:
    """``source_header`` names the field the edge writes."""
    settings = EdgeSettings(addresses=["192.0.2.10"], source_header="X-Edge-Caller")
    sources = EdgeSources(settings, _Endpoint(), {})
    event = _event(_invite("X-Edge-Caller: 203.0.113.9:7\r\n"), EDGE)
    assert sources.caller(event, 1.0) == ("203.0.113.9", 7)


def test_only_drops_what_is_not_from_the_edge_but_a_dialog_of_the_node() -> None:
    """Under only, the endpoint forgets a new request from elsewhere unanswered, and lets in
    the BYE of the far end of a leg the node placed itself (a trunk talks to it directly)."""
    pair = Pair.create()  # alice is the node here: she places the call, bob is a trunk
    settings = EdgeSettings(addresses=["127.0.0.1:5999"], only=True)
    sources = EdgeSources(settings, pair.alice, pair.alice.dialogs)
    pair.alice.filter_requests(sources.accept)
    pair.invite()
    (invite,) = pair.take("bob", RequestReceived)
    assert isinstance(invite, RequestReceived)
    pair.bob.respond(invite.key, 200, pair.now, body=b"")
    pair.flush()
    (dialog,) = pair.bob.dialogs
    pair.bob.bye(dialog, pair.now)
    pair.flush()
    assert not pair.alice.dialogs and sources.statistics().dropped == {}
    sent_before = len(pair.wire)
    pair.bob.uac.invite(
        parse_uri("sip:alice@127.0.0.1:5061"),
        from_addr=parse_address("<sip:bob@127.0.0.1:5060>"),
        to_addr=parse_address("<sip:alice@127.0.0.1:5061>"),
        peer=ALICE,
        now=pair.now,
    )
    pair.flush()
    pair.advance(0.3)  # past the 200 ms of a 100 (Trying): none comes, nothing at all
    assert [who for who, _ in pair.wire[sent_before:]] == ["bob"]
    assert pair.take("alice", RequestReceived) == []
    assert sources.statistics().dropped == {"not_from_edge": 1}


def test_a_request_naming_an_unknown_dialog_is_dropped_too() -> None:
    """A made-up To tag is no way in: only a dialog the node holds is."""
    sources = EdgeSources(ONLY, _Endpoint(), {DialogId("c", "ours", "theirs")})
    forged = parse_message(
        b"BYE sip:x@192.0.2.1 SIP/2.0\r\nVia: SIP/2.0/UDP 198.51.100.7;branch=z9hG4bK1\r\n"
        b"From: <sip:a@b>;tag=theirs\r\nTo: <sip:x@y>;tag=guess\r\nCall-ID: c\r\n"
        b"CSeq: 2 BYE\r\nContent-Length: 0\r\n\r\n"
    )
    assert isinstance(forged, Request)
    assert not sources.accept(forged, CALLER)
    assert sources.accept(forged, EDGE)


def _families(server: object) -> dict[str, dict[str, float]]:
    """Each sip family's samples by their reason label."""
    found: dict[str, dict[str, float]] = {}
    for family in ServerCollector(server).collect():  # type: ignore[arg-type]
        if family.name.startswith("callserver_sip_"):
            found[family.name] = {s.labels["reason"]: s.value for s in family.samples}
    return found


def _udp_invite(header: str) -> bytes:
    return (
        "INVITE sip:100@127.0.0.1:5060 SIP/2.0\r\n"
        "Via: SIP/2.0/UDP 127.0.0.1:5999;branch=z9hG4bK-edge-9\r\n"
        "From: <sip:alice@127.0.0.1>;tag=a9\r\nTo: <sip:100@127.0.0.1>\r\n"
        f"Call-ID: edge-9\r\nCSeq: 1 INVITE\r\nMax-Forwards: 69\r\n{header}"
        "Contact: <sip:alice@127.0.0.1:5999>\r\nContent-Length: 0\r\n\r\n"
    ).encode()


async def test_a_server_behind_the_edge_drops_and_refuses_and_its_metrics_say_so(
    tmp_path: Path,
) -> None:
    """A node with edge.only: a request from beside the edge gets nothing, one from the edge
    without the header 400; /metrics counts both."""
    edge = {"addresses": ["127.0.0.1:5999"], "only": True}
    server, socket = in_process_server(tmp_path, PLANS, {"cluster": {"edge": edge}})
    forged = "X-Callserver-Source: 127.0.0.1:5999\r\n"
    server.datagram_received(_udp_invite(forged), Peer("udp", "127.0.0.1", 40000))
    options = _udp_invite("").replace(b"INVITE", b"OPTIONS")
    server.datagram_received(options, Peer("udp", "127.0.0.1", 40000))
    assert socket.sent == []
    server.datagram_received(_udp_invite(""), Peer("udp", "127.0.0.1", 5999))
    assert [data.split(b"\r\n", 1)[0] for data in socket.sent] == [
        b"SIP/2.0 400 Missing or invalid X-Callserver-Source"
    ]
    families = _families(server)
    assert families["callserver_sip_dropped"] == {"unanswerable": 0, "not_from_edge": 2}
    assert families["callserver_sip_edge_refusals"] == {"no_source_header": 1}
