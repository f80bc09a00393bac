"""Tests for the server transactions (RFC 3261 §17.2, RFC 6026 §8.7) and request matching."""

from __future__ import annotations

import pytest

from callserver.sip.errors import LocalProtocolError
from callserver.sip.events import (
    Peer,
    RequestReceived,
    TransactionTerminated,
    TransactionTimedOut,
    Transmit,
)
from callserver.sip.parser import parse_message
from callserver.sip.timers import SipTimers
from callserver.sip.transaction import (
    ClientKey,
    LegacyServerKey,
    ServerKey,
    TransactionLayer,
    TransactionState,
)

OTHER_PEER = Peer("udp", "198.51.100.7", 5060)


def _layer() -> TransactionLayer:
    return TransactionLayer(SipTimers())


def _times(fired: list[tuple[float, object]], cls: type, start: float) -> list[float]:
    return [round(t - start, 6) for t, a in fired if isinstance(a, cls)]


def test_new_invite_reaches_tu_and_gets_100_trying(sip, clock) -> None:
    """A new INVITE reaches the TU (with rtime); 200 ms of TU silence bring a 100 (§8.2.6)."""
    layer, invite = _layer(), sip.request("INVITE", extra=[("Timestamp", "54")])
    out = layer.receive_request(invite, sip.udp, clock.now)
    assert out == [RequestReceived(request=invite, peer=sip.udp, key=out[0].key, rtime=clock.now)]
    assert isinstance(out[0].key, ServerKey)
    assert layer.get_timer() == clock.now + 0.2
    assert layer.handle_timer(clock.now + 0.19) == []
    (sent,) = layer.handle_timer(clock.advance(0.2))
    assert sent.peer == sip.udp
    trying = parse_message(sent.data)
    assert trying.status == 100 and trying.to().tag is None
    for name in ("Via", "From", "To", "Call-ID", "CSeq", "Timestamp"):
        assert trying.headers.get_all(name) == invite.headers.get_all(name)


def test_retransmitted_invite_gets_the_last_response_again(sip, clock) -> None:
    """A repeated INVITE is answered with the latest provisional, then with the final."""
    layer, invite = _layer(), sip.request("INVITE")
    key = layer.receive_request(invite, sip.udp, clock.now)[0].key
    ringing = layer.send_response(key, sip.response(invite, 180), clock.advance(0.1))
    assert layer.receive_request(invite, sip.udp, clock.advance(0.1)) == ringing
    busy = layer.send_response(key, sip.response(invite, 486), clock.advance(0.1))
    assert layer.receive_request(invite, sip.udp, clock.advance(0.1)) == busy
    assert layer.statistics().retransmissions == 2


def test_timer_g_doubles_capped_at_t2_and_timer_h_times_out(sip, clock, fire_timers) -> None:
    """An unacknowledged 486 is resent at 0.5, 1, 2, 4, 4... and Timer H gives up at 64*T1."""
    layer, invite, start = _layer(), sip.request("INVITE"), clock.now
    key = layer.receive_request(invite, sip.udp, start)[0].key
    busy = layer.send_response(key, sip.response(invite, 486), start)
    fired = fire_timers(layer, start + 100)
    assert _times(fired, Transmit, start) == [
        0.5,
        1.5,
        3.5,
        7.5,
        11.5,
        15.5,
        19.5,
        23.5,
        27.5,
        31.5,
    ]
    assert {a.data for _, a in fired if isinstance(a, Transmit)} == {busy[0].data}
    assert [a for _, a in fired if not isinstance(a, Transmit)] == [
        TransactionTimedOut(key=key, request=invite),
        TransactionTerminated(key=key),
    ]


def test_ack_for_non_2xx_is_absorbed_and_timer_i_ends_confirmed(sip, clock, fire_timers) -> None:
    """The ACK for a 486 never reaches the TU; Confirmed absorbs repeats until Timer I (T4)."""
    layer, invite = _layer(), sip.request("INVITE")
    key = layer.receive_request(invite, sip.udp, clock.now)[0].key
    reply = sip.response(invite, 486)
    layer.send_response(key, reply, clock.now)
    ack = sip.ack(invite, reply.headers.get("To") or "")
    assert layer.receive_request(ack, sip.udp, clock.advance(0.2)) == []
    assert layer.state_of(key) is TransactionState.CONFIRMED
    assert layer.receive_request(ack, sip.udp, clock.advance(0.2)) == []
    assert layer.receive_request(invite, sip.udp, clock.now) == []
    assert layer.get_timer() == clock.now - 0.2 + 5
    assert [a for _, a in fire_timers(layer, clock.now + 10)] == [TransactionTerminated(key=key)]


def test_2xx_enters_accepted_absorbs_invites_and_timer_l_ends_it(sip, clock, fire_timers) -> None:
    """RFC 6026: after a 2xx, INVITE repeats are absorbed, TU 2xx resends go out, L ends it."""
    layer, invite = _layer(), sip.request("INVITE")
    key = layer.receive_request(invite, sip.udp, clock.now)[0].key
    ok = sip.response(invite, 200)
    sent = layer.send_response(key, ok, clock.advance(1))
    assert layer.state_of(key) is TransactionState.ACCEPTED
    assert layer.receive_request(invite, sip.udp, clock.advance(0.5)) == []
    assert layer.send_response(key, ok, clock.now) == sent
    ack_2xx = sip.request("ACK", call_id=invite.call_id(), to_tag="tt-1")
    assert layer.receive_request(ack_2xx, sip.udp, clock.now)[0].key is None
    fired = fire_timers(layer, clock.now + 40)
    assert _times(fired, TransactionTerminated, clock.now - 0.5) == [32.0]


def test_ack_matching_an_accepted_invite_goes_to_the_tu(sip, clock) -> None:
    """An ACK that reuses the INVITE's branch after a 2xx is passed up with no key."""
    layer, invite = _layer(), sip.request("INVITE")
    key = layer.receive_request(invite, sip.udp, clock.now)[0].key
    ok = sip.response(invite, 200)
    layer.send_response(key, ok, clock.now)
    ack = sip.ack(invite, ok.headers.get("To") or "")
    out = layer.receive_request(ack, sip.udp, clock.advance(0.1))
    assert out == [RequestReceived(request=ack, peer=sip.udp, key=None, rtime=clock.now)]
    assert layer.state_of(key) is TransactionState.ACCEPTED


def test_send_response_rejects_unknown_keys_and_forbidden_states(sip, clock) -> None:
    """A 1xx after the final, or any response for an unknown key, raises LocalProtocolError."""
    layer, invite = _layer(), sip.request("INVITE")
    key = layer.receive_request(invite, sip.udp, clock.now)[0].key
    layer.send_response(key, sip.response(invite, 486), clock.now)
    with pytest.raises(LocalProtocolError):
        layer.send_response(key, sip.response(invite, 180), clock.now)
    with pytest.raises(LocalProtocolError):
        layer.send_response(key, sip.response(invite, 200), clock.now)
    with pytest.raises(LocalProtocolError):
        layer.send_response(ClientKey("z9hG4bKx", "INVITE"), sip.response(invite, 200), 0)
    with pytest.raises(LocalProtocolError):
        layer.request_for("no-such-key")
    assert layer.state_of(key) is TransactionState.COMPLETED


def test_cancel_is_its_own_transaction_and_finds_its_invite(sip, clock) -> None:
    """A CANCEL with the INVITE's branch creates a CANCEL transaction and locates the INVITE."""
    layer, branch = _layer(), sip.branch()
    invite_key = layer.receive_request(sip.request("INVITE", branch=branch), sip.udp, 0)[0].key
    cancel = sip.request("CANCEL", branch=branch)
    out = layer.receive_request(cancel, sip.udp, 0.1)
    assert [type(a) for a in out] == [RequestReceived] and out[0].key != invite_key
    assert layer.find_invite_for_cancel(cancel) == invite_key
    assert layer.find_invite_for_cancel(sip.request("CANCEL")) is None
    assert layer.request_for(out[0].key) is cancel


def test_same_branch_from_another_sent_by_is_another_transaction(sip, clock) -> None:
    """Matching includes the top Via sent-by, so an equal branch from elsewhere is new."""
    layer, branch = _layer(), sip.branch()
    first = layer.receive_request(sip.request("OPTIONS", branch=branch), sip.udp, 0)
    other_via = f"SIP/2.0/UDP 198.51.100.7:5070;branch={branch}"
    second = layer.receive_request(sip.request("OPTIONS", via=other_via), OTHER_PEER, 0)
    assert isinstance(second[0], RequestReceived) and second[0].key != first[0].key
    assert len(layer) == 2


def test_ack_for_2xx_without_a_transaction_reaches_the_tu(sip, clock) -> None:
    """An ACK that matches nothing is the ACK for a 2xx and goes up with key None."""
    layer, ack = _layer(), sip.request("ACK", to_tag="x")
    out = layer.receive_request(ack, sip.udp, clock.now)
    assert out == [RequestReceived(request=ack, peer=sip.udp, key=None, rtime=clock.now)]
    assert layer.statistics().unmatched_acks == 1 and len(layer) == 0


# -- server non-INVITE -----------------------------------------------------------------------


def test_non_invite_server_resends_until_timer_j(sip, clock, fire_timers) -> None:
    """Trying discards repeats; Proceeding and Completed resend the last response; J ends it."""
    layer, request = _layer(), sip.request("OPTIONS")
    out = layer.receive_request(request, sip.udp, clock.now)
    assert [type(a) for a in out] == [RequestReceived]
    key = out[0].key
    assert layer.receive_request(request, sip.udp, clock.advance(0.5)) == []
    trying = layer.send_response(key, sip.response(request, 100), clock.now)
    assert layer.receive_request(request, sip.udp, clock.advance(0.5)) == trying
    ok = layer.send_response(key, sip.response(request, 200), clock.now)
    assert layer.receive_request(request, sip.udp, clock.advance(0.5)) == ok
    assert layer.send_response(key, sip.response(request, 500), clock.now) == []
    fired = fire_timers(layer, clock.now + 40)
    assert _times(fired, TransactionTerminated, clock.now - 0.5) == [32.0]


def test_completed_non_invite_server_keeps_only_the_final_bytes(sip, clock) -> None:
    """Completed, a non-INVITE server transaction drops the parsed final and the request's
    header fields (it waits 64*T1 on UDP) and answers a retransmission with the bytes it
    sent; the TU cannot answer again, and a transport error still names the request."""
    layer, request = _layer(), sip.request("REGISTER")
    key = layer.receive_request(request, sip.udp, clock.now)[0].key
    ok = layer.send_response(key, sip.response(request, 200), clock.now)
    kept = layer._transactions[key]
    assert kept.last_response is None
    assert (kept.request.method, kept.request.uri, list(kept.request.headers)) == (
        "REGISTER",
        request.uri,
        [],
    )
    assert layer.receive_request(request, sip.udp, clock.advance(1.0)) == ok
    with pytest.raises(LocalProtocolError, match="final response"):
        layer.request_for(key)
    failed = layer.transport_failed(sip.udp, clock.now)
    assert [type(a).__name__ for a in failed] == ["TransactionFailed", "TransactionTerminated"]
    assert failed[0].request.method == "REGISTER"


# -- RFC 2543 matching -----------------------------------------------------------------------


def test_rfc2543_request_without_cookie_matches_on_the_legacy_key(sip, clock) -> None:
    """Without z9hG4bK the Request-URI/tags/Call-ID/CSeq/top Via key matches retransmits and ACK."""
    layer, via = _layer(), "SIP/2.0/UDP 192.0.2.30:5060;branch=legacy-1"
    invite = sip.request("INVITE", via=via)
    out = layer.receive_request(invite, sip.udp, clock.now)
    key = out[0].key
    assert isinstance(key, LegacyServerKey) and key.to_tag == ""
    (trying,) = layer.receive_request(invite, sip.udp, clock.now)
    assert trying.data.startswith(b"SIP/2.0 100"), "the retransmission is absorbed"
    reply = sip.response(invite, 404, to_tag="srv")
    layer.send_response(key, reply, clock.now)
    wrong = sip.ack(invite, "<sip:bob@example.com>;tag=other")
    assert layer.receive_request(wrong, sip.udp, clock.now)[0].key is None
    assert layer.receive_request(sip.ack(invite, reply.headers.get("To") or ""), sip.udp, 1) == []
    assert layer.state_of(key) is TransactionState.CONFIRMED


def test_rfc2543_cancel_finds_its_invite(sip, clock) -> None:
    """A CANCEL without a cookie branch finds the INVITE by the legacy key with method INVITE."""
    layer, via = _layer(), "SIP/2.0/UDP 192.0.2.30:5060"
    key = layer.receive_request(sip.request("INVITE", via=via), sip.udp, 0)[0].key
    assert layer.find_invite_for_cancel(sip.request("CANCEL", via=via)) == key
    assert layer.find_invite_for_cancel(sip.request("CANCEL", via=via, cseq=2)) is None
