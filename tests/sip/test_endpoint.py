"""UAC <-> UAS endpoint pair tests: set-up, teardown, CANCEL, 2xx retransmission, UAS checks."""

from __future__ import annotations

import pytest

from callserver.sip.dialog import DialogState
from callserver.sip.endpoint import EndpointConfig, SipEndpoint
from callserver.sip.events import (
    DialogConfirmed,
    DialogTerminated,
    InviteCancelled,
    Peer,
    RequestReceived,
    ResponseReceived,
    Transmit,
)
from callserver.sip.message import Request, Response
from callserver.sip.parser import parse_message
from tests.sip.pair import ALICE, BOB, Pair

ANSWER = (
    b"v=0\r\no=bob 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
    b"m=audio 20000 RTP/AVP 8\r\n"
)


def _invite_event(pair: Pair) -> RequestReceived:
    (event,) = pair.take("bob", RequestReceived)
    assert isinstance(event, RequestReceived)
    return event


def _statuses(pair: Pair, name: str) -> list[int]:
    return [e.response.status for e in pair.take(name, ResponseReceived)]  # type: ignore[attr-defined]


def _answered_pair() -> tuple[Pair, object]:
    pair = Pair.create()
    pair.invite()
    event = _invite_event(pair)
    dialog_id = pair.bob.respond(event.key, 200, pair.now, body=ANSWER)
    pair.flush()
    return pair, dialog_id


def test_invite_answer_ack_and_caller_bye() -> None:
    """A full call: INVITE, 200 with SDP, ACK confirms both sides, caller BYE ends both."""
    pair, dialog_id = _answered_pair()
    assert _statuses(pair, "alice") == [200], "answered at once: no 100 Trying needed"
    assert len(pair.take("alice", DialogConfirmed)) == 1
    (confirmed,) = pair.take("bob", DialogConfirmed)
    assert confirmed.dialog_id == dialog_id  # type: ignore[attr-defined]
    (alice_dialog,) = pair.alice.dialogs
    pair.alice.bye(alice_dialog, pair.now)
    pair.flush()
    (ended,) = pair.take("bob", DialogTerminated)
    assert ended.reason == "bye_received"  # type: ignore[attr-defined]
    assert not pair.bob.dialogs and not pair.alice.dialogs


def test_a_rejected_call_leaves_no_early_dialog_behind() -> None:
    """180 made early dialogs on both sides; the 486 ends them (RFC 3261 §12.3): none is kept."""
    pair = Pair.create()
    pair.invite()
    event = _invite_event(pair)
    pair.bob.respond(event.key, 180, pair.now)
    pair.flush()
    assert [d.state for d in pair.alice.dialogs.values()] == [DialogState.EARLY]
    assert [d.state for d in pair.bob.dialogs.values()] == [DialogState.EARLY]
    pair.bob.respond(event.key, 486, pair.now)
    pair.flush()
    assert not pair.alice.dialogs and not pair.bob.dialogs


def test_100_trying_after_200ms_when_the_tu_is_silent() -> None:
    """A TU that has not answered within 200 ms makes the transaction send 100 (§17.2.1)."""
    pair = Pair.create()
    pair.invite()
    _invite_event(pair)
    pair.advance(0.15)
    assert not pair.sent("bob", lambda m: isinstance(m, Response))
    pair.advance(0.1)
    assert pair.sent("bob", lambda m: isinstance(m, Response) and m.status == 100)


def test_discarded_invite_is_never_answered_and_its_retransmission_is_new() -> None:
    """A discarded INVITE gets nothing, not even 100; its retransmission reaches the TU anew."""
    pair = Pair.create()
    pair.invite()
    event = _invite_event(pair)
    pair.bob.discard(event.key, pair.now)
    assert not pair.bob.is_pending_invite(event.key)
    assert pair.bob.statistics().transactions == 0
    pair.advance(0.6)  # past the 200 ms of the 100 and alice's first retransmission (T1)
    assert not pair.sent("bob", lambda m: isinstance(m, Response))
    (again,) = pair.take("bob", RequestReceived)
    assert again.key == event.key  # type: ignore[attr-defined]
    pair.bob.discard(object(), pair.now)  # a key that names nothing changes nothing


def test_server_bye_ends_the_caller_dialog() -> None:
    """The UAS sends BYE; the UAC answers 200 and reports the dialog ended."""
    pair, dialog_id = _answered_pair()
    pair.bob.bye(dialog_id, pair.now)  # type: ignore[arg-type]
    pair.flush()
    (ended,) = pair.take("alice", DialogTerminated)
    assert ended.reason == "bye_received"  # type: ignore[attr-defined]
    assert pair.sent("alice", lambda m: isinstance(m, Response) and m.cseq().method == "BYE")


def test_cancel_gets_200_and_invite_487() -> None:
    """CANCEL after 180: 200 for the CANCEL, 487 for the INVITE, the UAS told (RFC 3261 §9.2)."""
    pair = Pair.create()
    handle = pair.invite()
    event = _invite_event(pair)
    pair.bob.respond(event.key, 180, pair.now)
    pair.flush()
    pair.alice.uac.cancel(handle, pair.now)
    pair.flush()
    assert pair.take("bob", InviteCancelled)
    assert 487 in _statuses(pair, "alice")
    ack = pair.sent("alice", lambda m: isinstance(m, Request) and m.method == "ACK")
    assert ack, "the non-2xx final must be ACKed by the client transaction"


def test_2xx_retransmitted_until_ack_then_bye_after_64_t1() -> None:
    """Without an ACK the 200 is resent at T1, 2T1, ... capped at T2; after 64*T1 comes BYE."""
    pair = Pair.create()
    pair.drop = lambda m: isinstance(m, Request) and m.method == "ACK"
    pair.invite()
    event = _invite_event(pair)
    pair.bob.respond(event.key, 200, pair.now, body=ANSWER)
    pair.flush()
    pair.advance(33.0)
    oks = pair.sent("bob", lambda m: isinstance(m, Response) and m.status == 200)
    # 0, 0.5, 1.5, 3.5, 7.5, 11.5, ... every 4 s up to 32 s: 1 + 3 + 7 (doubling then T2 steps)
    assert 9 <= len(oks) <= 12
    (ended,) = pair.take("bob", DialogTerminated)
    assert ended.reason == "ack_timeout"  # type: ignore[attr-defined]
    assert pair.sent("bob", lambda m: isinstance(m, Request) and m.method == "BYE")


def test_retransmitted_invite_gets_the_same_response() -> None:
    """A lost 100 is recovered: the INVITE retransmission is absorbed and answered again."""
    pair = Pair.create()
    pair.drop = lambda m: isinstance(m, Response) and m.status == 100
    pair.invite()
    _invite_event(pair)
    pair.advance(0.6)
    assert not pair.take("bob", RequestReceived), "a retransmission must not reach the TU"
    invites = pair.sent("alice", lambda m: isinstance(m, Request) and m.method == "INVITE")
    assert len(invites) == 2
    trying = pair.sent("bob", lambda m: isinstance(m, Response) and m.status == 100)
    assert len(trying) == 2, "one after 200 ms, one for the retransmission"


def test_merged_request_gets_482() -> None:
    """The same INVITE arriving over a second path (new branch) is answered 482 (§8.2.2.2)."""
    pair = Pair.create()
    pair.invite()
    event = _invite_event(pair)
    copy = Request(
        event.request.method, event.request.uri, event.request.headers.copy(), event.request.body
    )
    copy.headers.set("Via", "SIP/2.0/UDP 127.0.0.1:5061;branch=z9hG4bK-other-path")
    pair.bob.receive_datagram(copy.serialize(), ALICE, pair.now)
    out = pair.bob.datagrams_to_send()
    assert any(b"SIP/2.0 482" in a.data for a in out)  # type: ignore[union-attr]


def test_bye_for_unknown_dialog_gets_481() -> None:
    """A BYE naming no dialog we know is answered 481."""
    pair = Pair.create()
    pair.bob.receive_datagram(
        b"BYE sip:bob@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5061;branch=z9hG4bK-x1\r\n"
        b"From: <sip:a@b>;tag=1\r\nTo: <sip:b@c>;tag=2\r\nCall-ID: nope\r\nCSeq: 2 BYE\r\n"
        b"Max-Forwards: 70\r\nContent-Length: 0\r\n\r\n",
        BOB,
        pair.now,
    )
    assert any(b"SIP/2.0 481" in a.data for a in pair.bob.datagrams_to_send())  # type: ignore[union-attr]


def _answer_to(pair: Pair, raw: bytes) -> bytes:
    pair.bob.receive_datagram(raw, BOB, pair.now)
    (first, *_) = [a for a in pair.bob.datagrams_to_send() if not a.data.startswith(b"SIP/2.0 100")]  # type: ignore[union-attr]
    return first.data  # type: ignore[union-attr]


def _request(method: str, *extra: str, uri: str = "sip:bob@127.0.0.1") -> bytes:
    lines = [
        f"{method} {uri} SIP/2.0",
        "Via: SIP/2.0/UDP 127.0.0.1:5061;branch=z9hG4bK-u1",
        "From: <sip:a@127.0.0.1>;tag=1",
        "To: <sip:b@127.0.0.1>",
        "Call-ID: c1",
        f"CSeq: 1 {method}",
        "Max-Forwards: 70",
        *extra,
        "Content-Length: 0",
        "",
        "",
    ]
    return "\r\n".join(lines).encode()


def test_options_gets_200_with_allow_accept_supported() -> None:
    """OPTIONS outside a dialog is answered 200 with Allow, Accept and Supported."""
    data = _answer_to(Pair.create(), _request("OPTIONS"))
    assert data.startswith(b"SIP/2.0 200")
    for name in (b"Allow: ", b"Accept: ", b"Supported: "):
        assert name in data


@pytest.mark.parametrize("method", ["OPTIONS", "REGISTER", "SUBSCRIBE", "MESSAGE", "FROB"])
def test_responses_outside_a_dialog_carry_a_to_tag_and_one_allow(method: str) -> None:
    """OPTIONS 200 and the 405 to methods we do not serve get a To tag (RFC 3261 §8.2.6.2)
    and exactly one Allow; the retransmitted request gets the same tag back."""
    pair = Pair.create()
    data = _answer_to(pair, _request(method))
    response = parse_message(data)
    assert isinstance(response, Response)
    assert response.status == (200 if method == "OPTIONS" else 405)
    tag = response.to().tag
    assert tag
    assert data.count(b"\r\nAllow: ") == 1
    assert set(response.headers.values("Allow")) >= {"INVITE", "OPTIONS", "BYE"}
    again = parse_message(_answer_to(pair, _request(method)))
    assert isinstance(again, Response) and again.to().tag == tag


def test_cancel_and_487_share_the_invite_to_tag() -> None:
    """The 200 to a CANCEL carries the To tag of the INVITE's responses (RFC 3261 §9.2)."""
    pair = Pair.create()
    handle = pair.invite()
    event = _invite_event(pair)
    pair.bob.respond(event.key, 180, pair.now)
    pair.flush()
    pair.alice.uac.cancel(handle, pair.now)
    pair.flush()
    responses = pair.sent("bob", lambda m: isinstance(m, Response) and m.status != 100)
    tags = {(r.cseq().method, r.status): r.to().tag for r in responses}  # type: ignore[union-attr]
    assert tags[("CANCEL", 200)] == tags[("INVITE", 180)] == tags[("INVITE", 487)]
    assert tags[("CANCEL", 200)]


def test_uas_policy_answers() -> None:
    """Unknown method 405+Allow, unknown Require 420+Unsupported, Max-Forwards 0 -> 483."""
    assert _answer_to(Pair.create(), _request("FROB")).startswith(b"SIP/2.0 405")
    data = _answer_to(Pair.create(), _request("INVITE", "Require: foo"))
    assert data.startswith(b"SIP/2.0 420") and b"Unsupported: foo" in data
    raw = _request("INVITE").replace(b"Max-Forwards: 70", b"Max-Forwards: 0")
    assert _answer_to(Pair.create(), raw).startswith(b"SIP/2.0 483")


def test_session_interval_too_small_gets_422() -> None:
    """Session-Expires below our Min-SE is answered 422 with Min-SE (RFC 4028 §9)."""
    data = _answer_to(Pair.create(), _request("INVITE", "Session-Expires: 30", "Supported: timer"))
    assert data.startswith(b"SIP/2.0 422") and b"Min-SE: 90" in data


def test_session_timer_refreshed_by_the_uac_keeps_the_call() -> None:
    """With refresher=uac the caller refreshes at half the interval and the call stays up."""
    pair = Pair.create(session_expires=120)
    pair.invite()
    event = _invite_event(pair)
    pair.bob.respond(event.key, 200, pair.now, body=ANSWER)
    pair.flush()
    pair.advance(130.0, step=1.0)
    updates = pair.sent("alice", lambda m: isinstance(m, Request) and m.method == "UPDATE")
    assert len(updates) == 2, "refreshes at 60 s and 120 s"
    assert pair.bob.dialogs and pair.alice.dialogs
    assert not pair.take("bob", DialogTerminated)


def test_session_expiry_without_refresh_sends_bye() -> None:
    """If the refresher stays silent, the other side sends BYE before the session expires."""
    pair = Pair.create(session_expires=120)
    pair.drop = lambda m: isinstance(m, Request) and m.method == "UPDATE"
    pair.invite()
    event = _invite_event(pair)
    pair.bob.respond(event.key, 200, pair.now, body=ANSWER)
    pair.flush()
    pair.advance(89.0, step=1.0)
    (ended,) = pair.take("bob", DialogTerminated)
    assert ended.reason == "session_expired"  # type: ignore[attr-defined]
    assert pair.sent("bob", lambda m: isinstance(m, Request) and m.method == "BYE")


def test_session_timer_without_uac_support_makes_us_refresher() -> None:
    """A caller without Supported: timer gets refresher=uas, and we refresh at half the interval."""
    pair = Pair.create(session_expires=120)
    raw = _request("INVITE", "Contact: <sip:a@127.0.0.1:5061>", "Allow: INVITE, ACK, BYE, UPDATE")
    pair.bob.receive_datagram(raw, ALICE, pair.now)
    pair.bob.datagrams_to_send()
    (event,) = [e for e in iter(pair.bob.next_event, None) if isinstance(e, RequestReceived)]
    pair.bob.respond(event.key, 200, pair.now, body=ANSWER)
    (ok,) = [a for a in pair.bob.datagrams_to_send() if a.data.startswith(b"SIP/2.0 200")]  # type: ignore[union-attr]
    assert b"Session-Expires: 120;refresher=uas" in ok.data  # type: ignore[union-attr]
    assert b"Require: timer" not in ok.data  # type: ignore[union-attr]
    ack = _request("ACK").replace(
        b"To: <sip:b@127.0.0.1>",
        b"To: <sip:b@127.0.0.1>;tag=" + next(iter(pair.bob.dialogs)).local_tag.encode(),
    )
    pair.bob.receive_datagram(ack, ALICE, pair.now)
    pair.bob.handle_timer(pair.now + 60.5)
    sent = [a.data for a in pair.bob.datagrams_to_send()]  # type: ignore[union-attr]
    assert any(d.startswith(b"UPDATE sip:a@127.0.0.1:5061") for d in sent)


def test_out_of_order_cseq_gets_500() -> None:
    """An in-dialog request with a CSeq below the last one is answered 500 (§12.2.2)."""
    pair, _ = _answered_pair()
    (alice_dialog,) = pair.alice.dialogs.values()
    alice_dialog.local_cseq = 10
    pair.alice.send_in_dialog(alice_dialog, "INFO", pair.now)
    pair.flush()
    alice_dialog.local_cseq = 3
    pair.alice.send_in_dialog(alice_dialog, "INFO", pair.now)
    pair.flush()
    assert any(r.status == 500 for r in pair.sent("bob", lambda m: isinstance(m, Response)))  # type: ignore[attr-defined]


def test_digest_challenge_is_answered_once() -> None:
    """A 401 with a SHA-256 challenge is answered by a retry carrying Authorization."""
    pair = Pair.create()
    handle = pair.invite(credentials=("alice", "secret"))
    event = _invite_event(pair)
    pair.bob.respond(
        event.key,
        401,
        pair.now,
        headers=(
            (
                "WWW-Authenticate",
                'Digest realm="callserver", nonce="abc", algorithm=SHA-256, qop="auth"',
            ),
        ),
    )
    pair.flush()
    retry = _invite_event(pair)
    assert "algorithm=SHA-256" in (retry.request.headers.get("Authorization") or "")
    assert retry.request.cseq().seq == 2
    pair.bob.respond(retry.key, 200, pair.now, body=ANSWER)
    pair.flush()
    finals = [e for e in pair.take("alice", ResponseReceived) if e.response.status >= 200]  # type: ignore[attr-defined]
    assert [e.response.status for e in finals] == [200]  # type: ignore[attr-defined]
    statuses = finals
    assert statuses[0].key == handle  # type: ignore[attr-defined]


def test_bye_before_the_ack_waits_for_it() -> None:
    """A BYE asked for before the ACK arrived goes out only once it has (RFC 3261 §15)."""
    pair = Pair.create()
    pair.drop = lambda m: isinstance(m, Request) and m.method == "ACK"
    pair.invite()
    event = _invite_event(pair)
    dialog_id = pair.bob.respond(event.key, 200, pair.now, body=ANSWER)
    pair.flush()
    assert pair.bob.bye(dialog_id, pair.now) is None  # type: ignore[arg-type]
    pair.flush()
    assert not pair.sent("bob", lambda m: isinstance(m, Request) and m.method == "BYE")
    pair.drop = lambda m: False
    pair.advance(1.0)  # the 2xx retransmission draws the ACK again
    assert pair.sent("bob", lambda m: isinstance(m, Request) and m.method == "BYE")
    (ended,) = pair.take("bob", DialogTerminated)
    assert ended.reason == "bye_sent"  # type: ignore[attr-defined]


def test_response_goes_back_per_rport_with_received_stamped() -> None:
    """A request from behind NAT (rport) is answered to its source with received/rport set."""
    pair = Pair.create()
    raw = _request("OPTIONS").replace(
        b"Via: SIP/2.0/UDP 127.0.0.1:5061;branch=z9hG4bK-u1",
        b"Via: SIP/2.0/UDP 10.1.2.3:5060;branch=z9hG4bK-u1;rport, "
        b"SIP/2.0/UDP 10.9.9.9;branch=z9hG4bK-0",
    )
    nat = Peer("udp", "198.51.100.7", 40123)
    pair.bob.receive_datagram(raw, nat, pair.now)
    (sent,) = pair.bob.datagrams_to_send()
    assert isinstance(sent, Transmit) and sent.peer == nat
    response = parse_message(sent.data)
    top, second = response.vias()
    assert (top.received, top.rport) == ("198.51.100.7", 40123)
    assert second.host == "10.9.9.9"


def test_provisional_and_final_answers_carry_the_record_route_of_the_invite() -> None:
    """A 180 and a 200 to an INVITE through a record-routing proxy copy its Record-Route
    values in order (RFC 3261 §12.1.1), so the caller's route set reaches the proxy (the 100
    copies them too: no UAC reads a route set from it)."""
    bob = SipEndpoint(EndpointConfig(host=BOB.host, port=BOB.port))
    invite = (
        b"INVITE sip:bob@127.0.0.1:5060 SIP/2.0\r\n"
        b"Via: SIP/2.0/UDP 127.0.0.1:5090;branch=z9hG4bK-proxy-1\r\n"
        b"Via: SIP/2.0/UDP 127.0.0.1:5061;branch=z9hG4bK-alice-1\r\n"
        b"Record-Route: <sip:127.0.0.1:5090;lr>\r\nRecord-Route: <sip:192.0.2.1;lr>\r\n"
        b"From: <sip:alice@127.0.0.1>;tag=a1\r\nTo: <sip:bob@127.0.0.1>\r\n"
        b"Call-ID: rr-1\r\nCSeq: 1 INVITE\r\nContact: <sip:alice@127.0.0.1:5061>\r\n"
        b"Max-Forwards: 69\r\nContent-Length: 0\r\n\r\n"
    )
    bob.receive_datagram(invite, Peer("udp", "127.0.0.1", 5090), 1.0)
    event = bob.next_event()
    assert isinstance(event, RequestReceived)
    for status in (100, 180, 200):
        bob.respond(event.key, status, 1.0, body=ANSWER if status == 200 else b"")
    routes = []
    for action in bob.datagrams_to_send():
        assert isinstance(action, Transmit)
        response = parse_message(action.data)
        assert isinstance(response, Response)
        routes.append((response.status, response.headers.get_all("Record-Route")))
    both = ["<sip:127.0.0.1:5090;lr>", "<sip:192.0.2.1;lr>"]
    assert routes == [(100, both), (180, both), (200, both)]
