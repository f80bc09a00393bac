"""The UAC's CANCEL with extra headers (RFC 3326 Reason) and dialogs kept on a flow (RFC 5626).

Driven by the pair harness: alice's UAC calls bob, who rings.
"""

from __future__ import annotations

from dataclasses import replace

from callserver.sip.events import Peer, RequestReceived, TransactionTimedOut
from callserver.sip.message import Request
from callserver.sip.transaction_user import peer_for_dialog
from tests.sip.pair import Pair

ELSEWHERE = (("Reason", 'SIP;cause=200;text="Call completed elsewhere"'),)


def _ringing(**invite: object) -> tuple[Pair, object]:
    pair = Pair.create()
    handle = pair.invite(**invite)
    (event,) = [e for e in pair.events["bob"] if isinstance(e, RequestReceived)]
    pair.bob.respond(event.key, 180, pair.now)
    pair.flush()
    return pair, handle


def _cancels(pair: Pair) -> list[Request]:
    sent = pair.sent("alice", lambda m: isinstance(m, Request) and m.method == "CANCEL")
    return [m for m in sent if isinstance(m, Request)]


def test_a_cancel_carries_the_headers_it_was_given_and_is_sent_once() -> None:
    """cancel(..., headers) puts the Reason in the CANCEL; asking again sends no second one."""
    pair, handle = _ringing()
    pair.alice.uac.cancel(handle, pair.now, ELSEWHERE)  # type: ignore[arg-type]
    pair.alice.uac.cancel(handle, pair.now)  # type: ignore[arg-type]
    pair.flush()
    (cancel,) = _cancels(pair)
    assert cancel.headers.values("Reason") == ['SIP;cause=200;text="Call completed elsewhere"']


def test_a_cancel_asked_before_any_provisional_waits_for_it_with_its_headers() -> None:
    """RFC 3261 §9.1: no CANCEL before a provisional response; it then goes with its Reason."""
    pair = Pair.create()
    pair.drop = lambda m: getattr(m, "status", 0) == 180  # the 180 is lost at first
    handle = pair.invite()
    (event,) = [e for e in pair.events["bob"] if isinstance(e, RequestReceived)]
    pair.bob.respond(event.key, 180, pair.now)
    pair.flush()
    pair.alice.uac.cancel(handle, pair.now, ELSEWHERE)  # type: ignore[arg-type]
    pair.flush()
    assert _cancels(pair) == []
    pair.drop = lambda m: False
    pair.bob.respond(event.key, 183, pair.now)
    pair.flush()
    (cancel,) = _cancels(pair)
    assert cancel.headers.get("Reason") == ELSEWHERE[0][1]


def test_a_dialog_on_a_flow_sends_to_its_peer_whatever_its_remote_target() -> None:
    """A phone behind NAT gives a private Contact: with ``flow`` in-dialog requests still go
    to the address and port its REGISTER came from (RFC 5626 §5.3)."""
    pair, _ = _ringing(flow=True)
    (dialog,) = pair.alice.dialogs.values()
    assert dialog.flow
    natted = replace(dialog, peer=Peer("udp", "198.51.100.7", 40000))
    assert peer_for_dialog(natted) == Peer("udp", "198.51.100.7", 40000)
    assert peer_for_dialog(replace(natted, flow=False)) != natted.peer


def test_an_invite_cancelled_but_never_answered_ends_64_t1_after_the_cancel() -> None:
    """RFC 3261 §9.1: bob answers the CANCEL but never the INVITE (its 487 is lost, as with a
    phone that sends none); 64*T1 after the CANCEL alice's INVITE times out and is forgotten."""
    pair, handle = _ringing()
    pair.drop = lambda m: getattr(m, "status", 0) == 487
    pair.alice.uac.cancel(handle, pair.now)  # type: ignore[arg-type]
    pair.flush()
    pair.advance(31.9)
    assert pair.take("alice", TransactionTimedOut) == []
    assert pair.alice.statistics().transactions == 1  # the INVITE's, still Proceeding
    pair.advance(0.2)
    (timed_out,) = pair.take("alice", TransactionTimedOut)
    assert isinstance(timed_out, TransactionTimedOut) and timed_out.key == handle
    assert pair.alice.statistics().transactions == 0
