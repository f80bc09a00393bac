"""A UAC endpoint and a UAS endpoint joined by an in-memory network (h11's ConnectionPair)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from callserver.sip.endpoint import EndpointConfig, SipEndpoint
from callserver.sip.events import CloseConnection, Peer, SipEvent, Transmit
from callserver.sip.headers import parse_address
from callserver.sip.message import Request, Response
from callserver.sip.parser import parse_message
from callserver.sip.uri import parse_uri

ALICE = Peer("udp", "127.0.0.1", 5061)
BOB = Peer("udp", "127.0.0.1", 5060)

OFFER = (
    b"v=0\r\no=alice 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
    b"m=audio 40000 RTP/AVP 8 0 101\r\na=rtpmap:101 telephone-event/8000\r\n"
)


@dataclass
class Pair:
    """``alice`` places calls, ``bob`` answers; ``now`` is the shared fake time."""

    alice: SipEndpoint
    bob: SipEndpoint
    now: float = 1000.0
    drop: Callable[[Request | Response], bool] = field(default=lambda m: False)
    wire: list[tuple[str, Request | Response]] = field(default_factory=list)
    events: dict[str, list[object]] = field(default_factory=lambda: {"alice": [], "bob": []})

    @classmethod
    def create(cls, **bob_config: object) -> Pair:
        """Two endpoints on 127.0.0.1:5061 (alice) and :5060 (bob)."""
        alice = SipEndpoint(EndpointConfig(host=ALICE.host, port=ALICE.port))
        bob = SipEndpoint(EndpointConfig(host=BOB.host, port=BOB.port, **bob_config))  # type: ignore[arg-type]
        return cls(alice, bob)

    def flush(self) -> None:
        """Deliver queued datagrams both ways until the network is quiet."""
        moved = True
        while moved:
            moved = self._move(self.alice, ALICE, self.bob, "alice")
            moved = self._move(self.bob, BOB, self.alice, "bob") or moved
        for name, endpoint in (("alice", self.alice), ("bob", self.bob)):
            while (event := endpoint.next_event()) is not None:
                assert isinstance(event, SipEvent)  # the union names every event queued
                self.events[name].append(event)

    def _move(self, src: SipEndpoint, src_peer: Peer, dst: SipEndpoint, name: str) -> bool:
        out = src.datagrams_to_send()
        for action in out:
            if isinstance(action, CloseConnection):
                continue
            assert isinstance(action, Transmit)
            message = parse_message(action.data)
            self.wire.append((name, message))
            if not self.drop(message):
                dst.receive_datagram(action.data, src_peer, self.now)
        return bool(out)

    def advance(self, seconds: float, step: float = 0.05) -> None:
        """Move time forward in small steps, firing both endpoints' timers and flushing."""
        end = self.now + seconds
        while self.now < end:
            self.now = min(end, self.now + step)
            for endpoint in (self.alice, self.bob):
                deadline = endpoint.get_timer()
                if deadline is not None and deadline <= self.now:
                    endpoint.handle_timer(self.now)
            self.flush()

    def take(self, name: str, kind: type) -> list[object]:
        """Remove and return the events of type ``kind`` that ``name`` received."""
        found = [e for e in self.events[name] if isinstance(e, kind)]
        self.events[name] = [e for e in self.events[name] if not isinstance(e, kind)]
        return found

    def sent(self, name: str, predicate: Callable[[Request | Response], bool]) -> list[object]:
        """Messages ``name`` put on the wire that match ``predicate``."""
        return [m for who, m in self.wire if who == name and predicate(m)]

    def invite(self, body: bytes = OFFER, **kwargs: object) -> object:
        """Alice sends an INVITE to bob; returns its handle."""
        key = self.alice.uac.invite(
            parse_uri("sip:bob@127.0.0.1:5060"),
            from_addr=parse_address("<sip:alice@127.0.0.1:5061>"),
            to_addr=parse_address("<sip:bob@127.0.0.1:5060>"),
            peer=BOB,
            now=self.now,
            body=body,
            **kwargs,  # type: ignore[arg-type]
        )
        self.flush()
        return key
