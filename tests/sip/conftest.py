"""Shared fixtures for the SIP tests: a hand-driven clock and a message factory."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable
from typing import Protocol

import pytest

from callserver.sip.events import Peer
from callserver.sip.message import Headers, Request, Response, reason_phrase
from callserver.sip.uri import parse_uri

UDP_PEER = Peer("udp", "192.0.2.20", 5060)
TCP_PEER = Peer("tcp", "192.0.2.20", 5060, conn_id=7)


class FakeClock:
    """A monotonic clock that only moves when a test advances it."""

    def __init__(self, start: float = 1000.0) -> None:
        self.now = start

    def advance(self, seconds: float) -> float:
        """Move forward by ``seconds`` and return the new time."""
        self.now += seconds
        return self.now


class SipFactory:
    """Builds minimal valid requests (RFC 3261 §8.1.1) and responses (§8.2.6) for tests."""

    udp = UDP_PEER
    tcp = TCP_PEER

    def __init__(self) -> None:
        self._branches = itertools.count(1)

    def branch(self) -> str:
        """A fresh RFC 3261 branch."""
        return f"z9hG4bK-test{next(self._branches)}"

    def request(
        self,
        method: str = "INVITE",
        *,
        branch: str | None = None,
        via: str | None = None,
        uri: str = "sip:bob@example.com",
        cseq: int = 1,
        call_id: str = "call-1@192.0.2.10",
        from_tag: str = "ft-1",
        to_tag: str | None = None,
        extra: Iterable[tuple[str, str]] = (),
    ) -> Request:
        """A request from alice to bob; ``via`` replaces the whole top Via value."""
        top_via = via or f"SIP/2.0/UDP 192.0.2.10:5060;branch={branch or self.branch()}"
        to = "<sip:bob@example.com>" + (f";tag={to_tag}" if to_tag else "")
        headers = Headers(
            [
                ("Via", top_via),
                ("Max-Forwards", "70"),
                ("From", f"Alice <sip:alice@example.org>;tag={from_tag}"),
                ("To", to),
                ("Call-ID", call_id),
                ("CSeq", f"{cseq} {method}"),
                *extra,
            ]
        )
        return Request(method, parse_uri(uri), headers)

    def response(self, request: Request, status: int, *, to_tag: str | None = "tt-1") -> Response:
        """A response to ``request``: Via, From, Call-ID, CSeq copied, To tagged with ``to_tag``."""
        headers = Headers()
        for name, value in request.headers:
            if name == "To" and to_tag and status != 100 and ";tag=" not in value:
                value = f"{value};tag={to_tag}"
            if name in ("Via", "From", "To", "Call-ID", "CSeq"):
                headers.add(name, value)
        return Response(status, reason_phrase(status), headers)

    def ack(self, request: Request, to: str) -> Request:
        """The ACK for a non-2xx to ``request`` as a UAC sends it: same Via, To from the reply."""
        headers = request.headers.copy()
        headers.set("To", to)
        headers.set("CSeq", f"{request.cseq().seq} ACK")
        return Request("ACK", request.uri, headers)


class TimerDriven(Protocol):
    """Anything with the sans-IO timer pair (the transaction layer, the endpoint)."""

    def get_timer(self) -> float | None: ...

    def handle_timer(self, now: float) -> list[object]: ...


def fire_timers_until(layer: TimerDriven, until: float) -> list[tuple[float, object]]:
    """Call ``handle_timer`` exactly at each deadline up to ``until``; return (time, action)."""
    fired: list[tuple[float, object]] = []
    while (deadline := layer.get_timer()) is not None and deadline <= until:
        fired.extend((deadline, action) for action in layer.handle_timer(deadline))
    return fired


@pytest.fixture
def clock() -> FakeClock:
    """A fresh fake clock at t=1000."""
    return FakeClock()


@pytest.fixture(scope="session")
def fire_timers() -> Callable[[TimerDriven, float], list[tuple[float, object]]]:
    """``fire_timers(layer, until)``: drive a layer's timers deadline by deadline."""
    return fire_timers_until


@pytest.fixture(scope="session")
def sip() -> SipFactory:
    """The message factory (stateless apart from its branch counter)."""
    return SipFactory()
