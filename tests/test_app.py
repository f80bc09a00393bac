"""The asyncio wiring: a failure in call handling is logged and answered 500, never fatal."""

from __future__ import annotations

import asyncio

import pytest
from structlog.testing import capture_logs

from callserver.app import Server
from callserver.config.settings import load_settings
from callserver.process.gctuning import FullCollections
from callserver.sip.events import Peer

INVITE = (
    b"INVITE sip:service@127.0.0.1:5060 SIP/2.0\r\n"
    b"Via: SIP/2.0/UDP 127.0.0.1:6000;branch=z9hG4bK-app-1\r\n"
    b"From: <sip:a@127.0.0.1:6000>;tag=1\r\nTo: <sip:service@127.0.0.1:5060>\r\n"
    b"Call-ID: app-1\r\nCSeq: 1 INVITE\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n"
)


class _Sink:
    local_address = ("127.0.0.1", 5060)

    def __init__(self) -> None:
        self.sent: list[bytes] = []

    def send(self, data: bytes, peer: Peer) -> None:
        self.sent.append(data)

    def receive_backlog(self) -> int:
        return 0  # nothing waits: every datagram is fed in by hand


async def test_call_handling_error_is_answered_500(monkeypatch: pytest.MonkeyPatch) -> None:
    """An exception while handling an INVITE is logged and the INVITE gets 500."""
    server = Server(load_settings(None, {"sip": {"listen": ["udp:127.0.0.1:5060"]}}))
    sink = _Sink()
    server.sockets.udp.append(sink)  # type: ignore[arg-type]

    def broken(event: object, now: float) -> None:
        raise RuntimeError("bug in a call handler")

    monkeypatch.setattr(server.calls, "handle_event", broken)
    with capture_logs() as logs:
        server.datagram_received(INVITE, Peer("udp", "127.0.0.1", 6000))
    assert any(d.startswith(b"SIP/2.0 500") for d in sink.sent)
    assert [e["event"] for e in logs if e["log_level"] == "error"] == ["calls.event_failed"]


async def test_scheduled_full_collections_are_logged_and_rearmed() -> None:
    """Each scheduled full GC pass logs its pause and what it found, and arms the next one."""
    collections = FullCollections(asyncio.get_running_loop(), interval=0.01)
    with capture_logs() as logs:
        collections.start()
        for _ in range(1000):
            if sum(e["event"] == "gc.full_collection" for e in logs) >= 2:
                break
            await asyncio.sleep(0.01)
        collections.stop()
    lines = [e for e in logs if e["event"] == "gc.full_collection"]
    assert len(lines) >= 2
    assert all(line["pause_ms"] >= 0 and line["unreachable"] >= 0 for line in lines)


async def test_invite_refused_while_draining_leaves_a_rejected_cdr() -> None:
    """While draining, a new INVITE gets 503 and its leg still gets a CDR (end reason shutdown)."""
    from callserver.cdr.record import CdrRecord
    from tests.calls.test_reporting import Sink

    server = Server(load_settings(None, {"sip": {"listen": ["udp:127.0.0.1:5060"]}}))
    sink, cdrs = _Sink(), Sink()
    server.sockets.udp.append(sink)  # type: ignore[arg-type]
    server.reporter.sink = cdrs  # type: ignore[assignment]
    server.calls.draining = True
    server.datagram_received(INVITE, Peer("udp", "127.0.0.1", 6000))
    assert any(d.startswith(b"SIP/2.0 503") for d in sink.sent)
    [record] = cdrs.records
    assert isinstance(record, CdrRecord)
    assert (record.call_id, record.disposition, record.end_reason, record.sip_code) == (
        "app-1",
        "FAILED",
        "shutdown",
        503,
    )
