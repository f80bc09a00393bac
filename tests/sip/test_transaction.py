"""Tests for the transaction layer as a whole: reliable transports, errors, scale."""

from __future__ import annotations

import pytest

from callserver.sip.errors import LocalProtocolError
from callserver.sip.events import (
    MessageDropped,
    Peer,
    ResponseReceived,
    TransactionTerminated,
    TransactionTimedOut,
    Transmit,
)
from callserver.sip.timers import SipTimers
from callserver.sip.transaction import (
    TransactionFailed,
    TransactionLayer,
    TransactionMachine,
    TransactionState,
)

OTHER_PEER = Peer("udp", "198.51.100.7", 5060)


def _layer() -> TransactionLayer:
    return TransactionLayer(SipTimers())


def test_tcp_client_invite_never_retransmits_and_timer_d_is_zero(sip, clock) -> None:
    """Over TCP only Timer B runs, and a 486 is ACKed and terminates the transaction at once."""
    layer, invite = _layer(), sip.request("INVITE")
    layer.send_request(invite, sip.tcp, clock.now)
    assert layer.get_timer() == clock.now + 32
    assert layer.handle_timer(clock.now + 31.9) == []
    out = layer.receive_response(sip.response(invite, 486), sip.tcp, clock.advance(1))
    assert [type(a) for a in out] == [Transmit, ResponseReceived, TransactionTerminated]
    assert out[1].peer == sip.tcp and len(layer) == 0


def test_tcp_client_non_invite_never_retransmits_and_timer_k_is_zero(sip, clock) -> None:
    """Over TCP only Timer F runs, and the final response terminates the transaction at once."""
    layer, request = _layer(), sip.request("OPTIONS")
    key, _ = layer.send_request(request, sip.tcp, clock.now)
    assert layer.get_timer() == clock.now + 32
    out = layer.receive_response(sip.response(request, 200), sip.tcp, clock.advance(1))
    assert out[-1] == TransactionTerminated(key=key) and len(layer) == 0


def test_tcp_server_invite_has_no_timer_g_and_timer_i_is_zero(sip, clock) -> None:
    """Over TCP a 486 is not resent (only Timer H runs) and the ACK terminates at once."""
    layer, invite = _layer(), sip.request("INVITE")
    key = layer.receive_request(invite, sip.tcp, clock.now)[0].key
    reply = sip.response(invite, 486)
    layer.send_response(key, reply, clock.now)
    assert layer.get_timer() == clock.now + 32
    out = layer.receive_request(sip.ack(invite, reply.headers.get("To") or ""), sip.tcp, 1)
    assert out == [TransactionTerminated(key=key)]


def test_tcp_server_non_invite_timer_j_is_zero(sip, clock) -> None:
    """Over TCP a final response to a non-INVITE terminates the server transaction at once."""
    layer, request = _layer(), sip.request("BYE")
    key = layer.receive_request(request, sip.tcp, clock.now)[0].key
    out = layer.send_response(key, sip.response(request, 200), clock.now)
    assert [type(a) for a in out] == [Transmit, TransactionTerminated] and len(layer) == 0


# -- transport errors and requests the TU may not send ---------------------------------------


def test_transport_failure_ends_only_the_states_that_act_on_it(sip, clock) -> None:
    """Calling and Trying fail with TransactionFailed; Proceeding INVITE and other peers stay."""
    layer = _layer()
    calling, _ = layer.send_request(sip.request("INVITE"), sip.udp, 0)
    proceeding_invite = sip.request("INVITE")
    proceeding, _ = layer.send_request(proceeding_invite, sip.udp, 0)
    layer.receive_response(sip.response(proceeding_invite, 180), sip.udp, 0.1)
    trying, _ = layer.send_request(sip.request("MESSAGE"), sip.udp, 0)
    elsewhere, _ = layer.send_request(sip.request("MESSAGE"), OTHER_PEER, 0)
    out = layer.transport_failed(sip.udp, 1.0)
    failed = [a for a in out if isinstance(a, TransactionFailed)]
    assert {f.key for f in failed} == {calling, trying}
    assert all(isinstance(f, TransactionTimedOut) for f in failed)
    ended = {a.key for a in out if isinstance(a, TransactionTerminated)}
    assert ended == {calling, trying}
    assert layer.state_of(proceeding) is TransactionState.PROCEEDING
    assert layer.state_of(elsewhere) is TransactionState.TRYING
    assert layer.statistics().failed == 2


def test_send_request_refuses_ack_bad_branch_wrong_cseq_and_duplicates(sip, clock) -> None:
    """ACK, a cookie-less branch, a CSeq of another method and a reused key all raise."""
    layer = _layer()
    bad_cseq = sip.request("OPTIONS")
    bad_cseq.headers.set("CSeq", "1 INFO")
    invite = sip.request("INVITE")
    layer.send_request(invite, sip.udp, 0)
    for request in (
        sip.request("ACK"),
        sip.request("INVITE", via="SIP/2.0/UDP 192.0.2.10;branch=1234"),
        bad_cseq,
        invite,
    ):
        with pytest.raises(LocalProtocolError):
            layer.send_request(request, sip.udp, 0)
    assert len(layer) == 1


def test_status_outside_100_699_is_dropped(sip, clock) -> None:
    """A response with status 700 is dropped with MessageDropped, never raising."""
    layer, invite = _layer(), sip.request("INVITE")
    layer.send_request(invite, sip.udp, 0)
    bad = sip.response(invite, 200)
    bad.status = 700
    out = layer.receive_response(bad, sip.udp, 0)
    assert out == [MessageDropped(reason="status code 700", peer=sip.udp)]


# -- scale -----------------------------------------------------------------------------------


def test_ten_thousand_transactions_only_due_ones_are_touched(sip, monkeypatch) -> None:
    """With 10k live transactions, handle_timer fires only the due ones and get_timer scans none."""
    layer, fired = _layer(), []
    original = TransactionMachine.fire_due

    def counting(self: TransactionMachine, now: float) -> list[object]:
        fired.append(self.key)
        return original(self, now)

    monkeypatch.setattr(TransactionMachine, "fire_due", counting)
    requests = [sip.request("OPTIONS", call_id=f"c{i}") for i in range(10_000)]
    for i, request in enumerate(requests):
        layer.send_request(request, sip.udp, i * 0.001)
    assert len(layer) == 10_000 and layer.statistics().timer_entries == 10_000
    pops = layer.statistics().timer_pops
    for _ in range(100):
        assert layer.get_timer() == 0.5
    assert layer.statistics().timer_pops == pops
    out = layer.handle_timer(0.5 + 0.0095)
    assert len(fired) == 10 and len([a for a in out if isinstance(a, Transmit)]) == 10
    assert layer.statistics().timer_pops - pops == 10 and layer.statistics().timer_entries == 10_000
    for request in requests:
        layer.receive_response(sip.response(request, 200), sip.udp, 20.0)
    assert layer.statistics().timer_entries <= 2 * 10_000 + 64
    layer.handle_timer(1000.0)
    assert layer.get_timer() is None and len(layer) == 0
    stats = layer.statistics()
    assert (stats.timer_entries, stats.created, stats.terminated) == (0, 10_000, 10_000)
