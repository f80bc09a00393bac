"""Tests for the client transactions (RFC 3261 §17.1, RFC 6026 §8.4) through the layer."""

from __future__ import annotations

from callserver.sip.events import (
    ResponseReceived,
    TransactionTerminated,
    TransactionTimedOut,
    Transmit,
)
from callserver.sip.message import Request
from callserver.sip.parser import parse_message
from callserver.sip.timers import SipTimers
from callserver.sip.transaction import ClientKey, TransactionLayer, TransactionState


def _layer() -> TransactionLayer:
    return TransactionLayer(SipTimers())


def _times(fired: list[tuple[float, object]], cls: type, start: float) -> list[float]:
    return [round(t - start, 6) for t, a in fired if isinstance(a, cls)]


def test_timer_a_doubles_without_cap_until_timer_b(sip, clock, fire_timers) -> None:
    """Over UDP the INVITE is resent at T1, 2*T1, 4*T1... and Timer B ends it at 64*T1."""
    layer, start = _layer(), clock.now
    key, sent = layer.send_request(sip.request("INVITE"), sip.udp, start)
    assert len([a for a in sent if isinstance(a, Transmit)]) == 1
    fired = fire_timers(layer, start + 100)
    assert _times(fired, Transmit, start) == [0.5, 1.5, 3.5, 7.5, 15.5, 31.5]
    assert {a.data for _, a in fired if isinstance(a, Transmit)} == {sent[0].data}
    assert _times(fired, TransactionTimedOut, start) == [32.0]
    assert [a for _, a in fired][-1] == TransactionTerminated(key=key)
    assert len(layer) == 0 and layer.get_timer() is None


def test_timer_does_not_fire_before_its_deadline(sip, clock) -> None:
    """handle_timer just before a deadline does nothing; at the deadline it retransmits."""
    layer = _layer()
    layer.send_request(sip.request("INVITE"), sip.udp, clock.now)
    assert layer.handle_timer(clock.now + 0.4999) == []
    assert [type(a) for a in layer.handle_timer(clock.now + 0.5)] == [Transmit]


def test_provisional_stops_retransmissions_and_timer_b(sip, clock) -> None:
    """A 1xx moves the INVITE to Proceeding, passes it up, and disarms Timers A and B."""
    layer, invite = _layer(), sip.request("INVITE")
    key, _ = layer.send_request(invite, sip.udp, clock.now)
    out = layer.receive_response(sip.response(invite, 180), sip.udp, clock.advance(0.2))
    assert out == [ResponseReceived(response=out[0].response, peer=sip.udp, key=key, rtime=1000.2)]
    assert layer.state_of(key) is TransactionState.PROCEEDING
    assert layer.get_timer() is None


def test_a_cancel_sent_arms_timer_b_again_which_later_1xx_do_not_stop(
    sip, clock, fire_timers
) -> None:
    """RFC 3261 §9.1: with no final response 64*T1 after the CANCEL, the INVITE times out."""
    layer, invite = _layer(), sip.request("INVITE")
    key, _ = layer.send_request(invite, sip.udp, clock.now)
    layer.receive_response(sip.response(invite, 180), sip.udp, clock.advance(0.2))
    cancelled = clock.advance(1.0)
    assert layer.cancel_sent(key, cancelled) == []
    layer.receive_response(sip.response(invite, 183), sip.udp, clock.advance(5.0))
    fired = fire_timers(layer, cancelled + 100)
    assert _times(fired, TransactionTimedOut, cancelled) == [32.0]
    assert len(layer) == 0


def test_a_cancel_sent_changes_nothing_once_the_final_response_came(sip, clock) -> None:
    """After the 487 the INVITE is Completed (Timer D only); cancel_sent leaves it so, and a
    key of no transaction is ignored."""
    layer, invite = _layer(), sip.request("INVITE")
    key, _ = layer.send_request(invite, sip.udp, clock.now)
    layer.receive_response(sip.response(invite, 487), sip.udp, clock.advance(0.2))
    deadline = layer.get_timer()
    assert layer.cancel_sent(key, clock.advance(0.1)) == []
    assert layer.state_of(key) is TransactionState.COMPLETED and layer.get_timer() == deadline
    assert layer.cancel_sent(ClientKey("z9hG4bK-none", "INVITE"), clock.now) == []


def test_non_2xx_final_is_acked_exactly_as_section_17_1_1_3(sip, clock) -> None:
    """The ACK has the INVITE's URI, Via, From, Call-ID, Routes, CSeq number and the reply's To."""
    layer = _layer()
    routes = [("Route", "<sip:p1.example.net;lr>"), ("Route", "<sip:p2.example.net;lr>")]
    invite = sip.request("INVITE", uri="sip:bob@198.51.100.9", cseq=7, extra=routes)
    key, _ = layer.send_request(invite, sip.udp, clock.now)
    reply = sip.response(invite, 486, to_tag="uas-tag")
    out = layer.receive_response(reply, sip.udp, clock.advance(1))
    assert isinstance(out[1], ResponseReceived) and out[1].key == key
    assert out[0].peer == sip.udp
    ack = parse_message(out[0].data)
    assert isinstance(ack, Request) and ack.method == "ACK"
    assert str(ack.uri) == "sip:bob@198.51.100.9"
    assert ack.headers.get_all("Via") == [invite.headers.get("Via")]
    assert ack.headers.get_all("Route") == [v for _, v in routes]
    assert ack.headers.get("From") == invite.headers.get("From")
    assert ack.headers.get("Call-ID") == invite.headers.get("Call-ID")
    assert ack.headers.get("To") == reply.headers.get("To")
    assert ack.to().tag == "uas-tag"
    assert (ack.cseq().seq, ack.cseq().method) == (7, "ACK")
    assert ack.body == b"" and layer.state_of(key) is TransactionState.COMPLETED


def test_retransmitted_non_2xx_is_reacked_and_not_passed_up(sip, clock) -> None:
    """In Completed a repeated 486 re-sends the same ACK bytes and is hidden from the TU."""
    layer, invite = _layer(), sip.request("INVITE")
    layer.send_request(invite, sip.udp, clock.now)
    reply = sip.response(invite, 486)
    first = layer.receive_response(reply, sip.udp, clock.advance(0.1))
    again = layer.receive_response(reply, sip.udp, clock.advance(0.1))
    assert again == [first[0]]
    assert layer.statistics().retransmissions == 1


def test_timer_d_ends_completed_after_32_seconds(sip, clock, fire_timers) -> None:
    """Timer D (32 s over UDP) silently terminates a Completed INVITE client transaction."""
    layer, invite = _layer(), sip.request("INVITE")
    key, _ = layer.send_request(invite, sip.udp, clock.now)
    layer.receive_response(sip.response(invite, 603), sip.udp, clock.advance(2))
    assert layer.get_timer() == clock.now + 32
    fired = fire_timers(layer, clock.now + 40)
    assert [a for _, a in fired] == [TransactionTerminated(key=key)]


def test_2xx_enters_accepted_until_timer_m(sip, clock, fire_timers) -> None:
    """RFC 6026: a 2xx is passed up without an ACK, repeats too, until Timer M (64*T1)."""
    layer, invite = _layer(), sip.request("INVITE")
    key, _ = layer.send_request(invite, sip.udp, clock.now)
    ok = sip.response(invite, 200)
    first = layer.receive_response(ok, sip.udp, clock.advance(1))
    assert [type(a) for a in first] == [ResponseReceived] and first[0].key == key
    assert layer.state_of(key) is TransactionState.ACCEPTED
    again = layer.receive_response(ok, sip.udp, clock.advance(1))
    assert [type(a) for a in again] == [ResponseReceived] and again[0].key == key
    assert fire_timers(layer, clock.now + 30.9) == []
    assert [a for _, a in fire_timers(layer, clock.now + 31)] == [TransactionTerminated(key=key)]
    stray = layer.receive_response(ok, sip.udp, clock.advance(40))
    assert stray[0].key is None and layer.statistics().unmatched_responses == 1


def test_response_matches_on_branch_and_cseq_method(sip, clock) -> None:
    """A response with the INVITE's branch but CSeq method CANCEL does not match the INVITE."""
    layer, invite = _layer(), sip.request("INVITE")
    layer.send_request(invite, sip.udp, clock.now)
    cancel_reply = sip.response(invite, 200)
    cancel_reply.headers.set("CSeq", "1 CANCEL")
    assert layer.receive_response(cancel_reply, sip.udp, clock.now)[0].key is None


# -- client non-INVITE -----------------------------------------------------------------------


def test_timer_e_doubles_up_to_t2_then_timer_f_times_out(sip, clock, fire_timers) -> None:
    """Timer E fires at 0.5, 1, 2, then every 4 s (T2) until Timer F at 64*T1."""
    layer, start = _layer(), clock.now
    key, _ = layer.send_request(sip.request("OPTIONS"), sip.udp, start)
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
    assert _times(fired, TransactionTimedOut, start) == [32.0]
    assert [a for _, a in fired][-1] == TransactionTerminated(key=key)


def test_timer_e_resets_to_t2_in_proceeding(sip, clock, fire_timers) -> None:
    """After a 1xx, the next Timer E firing re-arms it with T2 instead of doubling."""
    layer, request, start = _layer(), sip.request("BYE"), clock.now
    layer.send_request(request, sip.udp, start)
    fire_timers(layer, start + 0.5)
    layer.receive_response(sip.response(request, 100), sip.udp, start + 0.7)
    fired = fire_timers(layer, start + 14)
    assert _times(fired, Transmit, start) == [1.5, 5.5, 9.5, 13.5]


def test_non_invite_final_absorbs_repeats_until_timer_k(sip, clock, fire_timers) -> None:
    """A final is passed up once; repeats are absorbed; Timer K (T4) terminates the transaction."""
    layer, request = _layer(), sip.request("REGISTER")
    key, _ = layer.send_request(request, sip.udp, clock.now)
    ok = sip.response(request, 200)
    assert [type(a) for a in layer.receive_response(ok, sip.udp, clock.advance(1))] == [
        ResponseReceived
    ]
    assert layer.receive_response(ok, sip.udp, clock.advance(1)) == []
    assert layer.get_timer() == clock.now - 1 + 5
    fired = fire_timers(layer, clock.now + 10)
    assert [a for _, a in fired] == [TransactionTerminated(key=key)]
