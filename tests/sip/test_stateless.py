"""Overload refusals without a transaction (RFC 3261 §8.2.7) and the INVITEs in setup."""

from __future__ import annotations

from callserver.sip.events import InviteRefused, RequestReceived, ResponseReceived
from callserver.sip.message import Request, Response
from callserver.sip.stateless import Shed, StatelessRefusals
from tests.sip.pair import Pair

ANSWER = (
    b"v=0\r\no=bob 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
    b"m=audio 20000 RTP/AVP 8\r\n"
)


class _Gate:
    """Refuses (or not) and counts how often it was asked."""

    def __init__(self, shed: Shed | None) -> None:
        self.shed = shed
        self.asked = 0

    def __call__(self, now: float) -> Shed | None:
        self.asked += 1
        return self.shed


def _refusals_on_wire(pair: Pair) -> list[Response]:
    sent = pair.sent("bob", lambda m: isinstance(m, Response) and m.status == 503)
    return [m for m in sent if isinstance(m, Response)]


def test_a_shed_invite_gets_503_with_retry_after_and_no_transaction() -> None:
    """The gate's refusal is answered at once: 503, Retry-After, a To tag; nothing is kept."""
    pair = Pair.create()
    pair.bob.gate = _Gate(Shed(reason="clock_lag", retry_after=7))
    pair.invite()
    (refusal,) = _refusals_on_wire(pair)
    assert refusal.headers.get("Retry-After") == "7"
    assert refusal.to().tag is not None
    (refused,) = pair.take("bob", InviteRefused)
    assert isinstance(refused, InviteRefused) and refused.reason == "clock_lag"
    assert not pair.take("bob", RequestReceived)
    assert pair.bob.statistics().transactions == 0
    assert pair.bob.uas.invites_in_setup == 0
    assert pair.bob.refusal_acks == 1  # alice's ACK, dropped before it was parsed
    assert [r.response.status for r in pair.take("alice", ResponseReceived)] == [503]  # type: ignore[attr-defined]


def test_a_retransmitted_refused_invite_gets_the_same_503_and_no_second_event() -> None:
    """The 503 was lost: the retransmission gets the same response, the gate is not asked again."""
    pair = Pair.create()
    gate = _Gate(Shed(reason="calls_in_setup", retry_after=5))
    pair.bob.gate = gate
    lost = [True]

    def drop_first_503(message: Request | Response) -> bool:
        if isinstance(message, Response) and message.status == 503 and lost[0]:
            lost[0] = False
            return True
        return False

    pair.drop = drop_first_503
    pair.invite()
    pair.advance(0.6)  # Timer A: alice sends the INVITE again after T1
    first, second = _refusals_on_wire(pair)
    assert first.to().tag == second.to().tag
    assert gate.asked == 1
    assert len(pair.take("bob", InviteRefused)) == 1
    assert [r.response.status for r in pair.take("alice", ResponseReceived)] == [503]  # type: ignore[attr-defined]


def test_a_retransmission_of_an_admitted_invite_never_meets_the_gate() -> None:
    """Once an INVITE has its transaction, its retransmissions go there even while shedding."""
    pair = Pair.create()
    gate = _Gate(None)
    pair.bob.gate = gate
    pair.drop = lambda message: isinstance(message, Response)  # alice hears nothing: retransmits
    pair.invite()
    (event,) = pair.take("bob", RequestReceived)
    gate.shed = Shed(reason="clock_lag", retry_after=5)
    pair.advance(1.6)  # Timer A fired twice
    assert gate.asked == 1
    assert not _refusals_on_wire(pair)
    assert not pair.take("bob", InviteRefused)
    pair.drop = lambda message: False
    assert isinstance(event, RequestReceived)
    pair.bob.respond(event.key, 200, pair.now, body=ANSWER)
    pair.flush()
    assert [r.response.status for r in pair.take("alice", ResponseReceived)] == [200]  # type: ignore[attr-defined]


def test_invites_in_setup_count_until_the_final_response() -> None:
    """An INVITE is in setup from its arrival to its final response; a 180 does not end it."""
    pair = Pair.create()
    pair.invite()
    (event,) = pair.take("bob", RequestReceived)
    assert isinstance(event, RequestReceived)
    assert pair.bob.uas.invites_in_setup == 1
    pair.bob.respond(event.key, 180, pair.now)
    assert pair.bob.uas.invites_in_setup == 1
    pair.bob.respond(event.key, 486, pair.now)
    pair.flush()
    assert pair.bob.uas.invites_in_setup == 0
    pair.advance(40)  # the transaction ends (Timer H, I): no count goes twice
    assert pair.bob.uas.invites_in_setup == 0


def test_an_invite_whose_transaction_ends_unanswered_leaves_setup() -> None:
    """A CANCELled INVITE (487) leaves setup once, however its transaction ends."""
    pair = Pair.create()
    key = pair.invite()
    pair.take("bob", RequestReceived)
    pair.alice.uac.cancel(key, pair.now)
    pair.flush()
    pair.advance(40)
    assert pair.bob.uas.invites_in_setup == 0


def test_only_the_ack_of_a_refusal_is_dropped_unparsed() -> None:
    """An ACK carrying a refusal's To tag is recognised by its bytes; others are not."""
    refusals = StatelessRefusals(hold=32.0)
    tag = refusals.remember("k", Shed(reason="loop_load", retry_after=5), 100.0)
    ack = f"ACK sip:a@b SIP/2.0\r\nTo: <sip:a@b>;tag={tag}\r\n\r\n".encode()
    assert refusals.is_refusal_ack(ack)
    assert not refusals.is_refusal_ack(ack.replace(b"ACK ", b"BYE ", 1))
    other = f"ACK sip:a@b SIP/2.0\r\nTo: <sip:a@b>;tag={'0' * 16}\r\n\r\n".encode()
    assert not refusals.is_refusal_ack(other) or tag.startswith("0" * 8)


def test_refusals_are_kept_for_their_hold_then_forgotten() -> None:
    """A refusal is found until ``hold`` has passed; then the key is new again."""
    refusals = StatelessRefusals(hold=32.0)
    shed = Shed(reason="rtp_ports", retry_after=5)
    tag = refusals.remember("k", shed, 100.0)
    assert refusals.find("k", 131.9) == (tag, shed)
    assert refusals.find("k", 132.0) is None
    assert len(refusals) == 0


def test_past_the_limit_the_oldest_refusals_go_first() -> None:
    """The memory is bounded: the oldest keys are dropped to make room."""
    refusals = StatelessRefusals(hold=32.0, limit=2)
    shed = Shed(reason="clock_lag", retry_after=5)
    for n, key in enumerate(("a", "b", "c")):
        refusals.remember(key, shed, 100.0 + n)
    assert refusals.find("a", 103.0) is None
    assert refusals.find("b", 103.0) is not None and refusals.find("c", 103.0) is not None
