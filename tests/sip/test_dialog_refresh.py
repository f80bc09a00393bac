"""Requests inside a confirmed dialog that renegotiate it: re-INVITE and UPDATE with an offer.

Each is a session refresh too (RFC 4028 §9): the 2xx carries the negotiated Session-Expires and
the timer runs again from it. Our own refreshes name us, their UAC, the refresher (§7.4); an
offer of the peer's while our refresh re-INVITE is pending gets 491 (RFC 3261 §14.2); the ACK
that answers an offer we put in a 2xx reaches the application with its body (§13.2.1).
"""

from __future__ import annotations

from callserver.sip.dialog import Dialog
from callserver.sip.events import (
    DialogConfirmed,
    DialogTerminated,
    RequestReceived,
    ResponseReceived,
)
from callserver.sip.message import Request, Response
from tests.sip.pair import ALICE, OFFER, Pair

ANSWER = (
    b"v=0\r\no=bob 1 2 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
    b"m=audio 20000 RTP/AVP 8\r\na=sendonly\r\n"
)
TIMER = (("Session-Expires", "150;refresher=uac"), ("Supported", "timer"))


def _call(pair: Pair, **invite: object) -> tuple[Dialog, Dialog]:
    """Alice calls bob, bob answers 200; returns (alice's dialog, bob's dialog)."""
    pair.invite(**invite)
    (event,) = pair.take("bob", RequestReceived)
    pair.bob.respond(event.key, 200, pair.now, body=ANSWER)  # type: ignore[attr-defined]
    pair.flush()
    pair.take("bob", DialogConfirmed)
    pair.take("alice", ResponseReceived)
    return next(iter(pair.alice.dialogs.values())), next(iter(pair.bob.dialogs.values()))


def _bob_answers(pair: Pair, method: str, body: bytes = ANSWER) -> Response:
    """Bob's application answers alice's in-dialog ``method`` 200; returns that 200."""
    (event,) = [e for e in pair.take("bob", RequestReceived) if e.request.method == method]  # type: ignore[attr-defined]
    pair.bob.respond(event.key, 200, pair.now, body=body)  # type: ignore[attr-defined]
    pair.flush()
    ok = pair.sent(
        "bob", lambda m: isinstance(m, Response) and m.cseq().method == method and m.status == 200
    )[-1]
    assert isinstance(ok, Response)
    return ok


def test_reinvite_2xx_carries_the_negotiated_session_expires() -> None:
    """A re-INVITE with Session-Expires refreshes: the 2xx names the interval and refresher."""
    pair = Pair.create(session_expires=120)
    alice, bob = _call(pair)
    pair.alice.send_in_dialog(alice, "INVITE", pair.now, body=OFFER, headers=TIMER)
    pair.flush()
    ok = _bob_answers(pair, "INVITE")
    assert ok.headers.get("Session-Expires") == "150;refresher=uac"
    assert ok.headers.get("Require") == "timer"
    assert bob.session_timer is not None and bob.session_timer.interval == 150


def test_update_with_an_offer_refreshes_the_session_timer() -> None:
    """An UPDATE with SDP at 50 s moves bob's expiry: no BYE at 88 s, the call is up at 160 s."""
    pair = Pair.create(session_expires=120)
    pair.drop = lambda m: isinstance(m, Request) and m.method == "UPDATE" and not m.body
    alice, bob = _call(pair)
    pair.advance(50.0, step=1.0)
    pair.alice.send_in_dialog(alice, "UPDATE", pair.now, body=OFFER, headers=TIMER)
    pair.flush()
    ok = _bob_answers(pair, "UPDATE")
    assert ok.body == ANSWER and ok.headers.get("Session-Expires") == "150;refresher=uac"
    pair.advance(110.0, step=1.0)
    assert not pair.take("bob", DialogTerminated), "bob's timer runs from the UPDATE's 2xx"
    assert bob.id in pair.bob.dialogs


def test_our_refresh_names_us_the_refresher_even_as_the_dialogs_uas() -> None:
    """Bob, UAS and refresher, sends refresher=uac; alice, answering, never starts refreshing."""
    pair = Pair.create(session_expires=120)
    _call(pair, headers=(("Session-Expires", "120;refresher=uas"),))
    pair.advance(130.0, step=1.0)
    updates = pair.sent("bob", lambda m: isinstance(m, Request) and m.method == "UPDATE")
    assert len(updates) == 2
    assert {u.headers.get("Session-Expires") for u in updates} == {"120;refresher=uac"}  # type: ignore[attr-defined]
    assert not pair.sent("alice", lambda m: isinstance(m, Request) and m.method == "UPDATE")
    assert pair.alice.dialogs and pair.bob.dialogs


def test_an_offer_while_our_refresh_reinvite_is_pending_gets_491() -> None:
    """Glare: bob's refresh re-INVITE is unanswered when alice's re-INVITE comes: 491."""
    pair = Pair.create(session_expires=120)
    alice, bob = _call(pair, headers=(("Session-Expires", "120;refresher=uas"),))
    bob.remote_allow = frozenset({"INVITE", "ACK", "BYE"})  # no UPDATE: bob re-INVITEs
    pair.bob.handle_timer(pair.now + 60.5)
    (refresh,) = pair.bob.datagrams_to_send()  # lost on its way: still pending
    assert refresh.data.startswith(b"INVITE ")  # type: ignore[union-attr]
    pair.alice.send_in_dialog(alice, "INVITE", pair.now, body=OFFER)
    pair.flush()
    statuses = [e.response.status for e in pair.take("alice", ResponseReceived)]  # type: ignore[attr-defined]
    assert statuses == [491]
    assert not pair.take("bob", RequestReceived)


def test_the_ack_answering_our_offer_reaches_the_application_with_its_body() -> None:
    """A re-INVITE without SDP: bob offers in the 200, the ACK's answer is in DialogConfirmed."""
    pair = Pair.create()
    pair.drop = lambda m: isinstance(m, Request) and m.method == "ACK"
    alice, _ = _call(pair)
    pair.alice.send_in_dialog(alice, "INVITE", pair.now)
    pair.flush()
    _bob_answers(pair, "INVITE", body=OFFER)
    ack = pair.sent("alice", lambda m: isinstance(m, Request) and m.method == "ACK")[-1]
    assert isinstance(ack, Request)
    ack.headers.set("Content-Type", "application/sdp")
    ack.body = ANSWER
    pair.bob.receive_datagram(ack.serialize(), ALICE, pair.now)
    pair.flush()
    (confirmed,) = pair.take("bob", DialogConfirmed)
    assert confirmed.body == ANSWER  # type: ignore[attr-defined]
