"""REFER inside a dialog (RFC 3515), its refer-event NOTIFYs (RFC 6665) and Replaces (RFC 3891).

Alice, in a call with bob, sends bob a REFER; bob's application accepts it with 202 and
notifies the progress of the new call as ``message/sipfrag`` NOTIFYs in the same dialog:
100 Trying, then the final, which terminates the implicit subscription.
"""

from __future__ import annotations

import pytest

from callserver.sip.dialog import Dialog, DialogId
from callserver.sip.endpoint import EndpointConfig, SipEndpoint
from callserver.sip.errors import LocalProtocolError, SipParseError
from callserver.sip.events import DialogConfirmed, RequestReceived, ResponseReceived
from callserver.sip.message import Headers, Request, Response
from callserver.sip.refer import (
    SIPFRAG,
    ReferState,
    ReferSubscription,
    Replaces,
    parse_refer,
    parse_replaces,
)
from callserver.sip.uri import parse_uri
from callserver.sip.validate import UasPolicy
from tests.sip.pair import ALICE, BOB, Pair

ANSWER = (
    b"v=0\r\no=bob 1 2 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
    b"m=audio 20000 RTP/AVP 8\r\n"
)
REFER_TO = "<sip:300@example.net?Replaces=abc%40h1%3Bto-tag%3Dt1%3Bfrom-tag%3Df1>"


def _refer(*headers: tuple[str, str]) -> Request:
    base = [
        ("Via", "SIP/2.0/UDP 127.0.0.1:5061;branch=z9hG4bKr1"),
        ("From", "<sip:alice@127.0.0.1>;tag=a1"),
        ("To", "<sip:bob@127.0.0.1>;tag=b1"),
        ("Call-ID", "c1"),
        ("CSeq", "7 REFER"),
    ]
    return Request(
        method="REFER", uri=parse_uri("sip:bob@127.0.0.1"), headers=Headers([*base, *headers])
    )


def test_refer_to_with_an_escaped_replaces_is_split_into_target_and_dialog() -> None:
    """The Replaces embedded in Refer-To is unescaped and parsed; the target keeps no headers."""
    refer = parse_refer(_refer(("Refer-To", REFER_TO), ("Referred-By", "<sip:bob@h>")))
    assert str(refer.target) == "sip:300@example.net"
    assert refer.replaces == Replaces(call_id="abc@h1", to_tag="t1", from_tag="f1")
    assert refer.referred_by == "<sip:bob@h>"


def test_blind_refer_has_no_replaces() -> None:
    """A Refer-To without headers is a blind transfer's: no Replaces, no Referred-By."""
    refer = parse_refer(_refer(("Refer-To", "<sip:+38761200300@example.net>")))
    assert refer.replaces is None and refer.referred_by is None


@pytest.mark.parametrize("values", [(), ("<sip:a@h>", "<sip:b@h>")])
def test_refer_needs_exactly_one_refer_to(values: tuple[str, ...]) -> None:
    """No Refer-To, or two, is a 400 (RFC 3515 §2.4.1)."""
    with pytest.raises(SipParseError) as caught:
        parse_refer(_refer(*(("Refer-To", v) for v in values)))
    assert caught.value.status_hint == 400


def test_replaces_header_parses_and_formats_back() -> None:
    """A Replaces header value round-trips, early-only included (RFC 3891 §6.1)."""
    value = "98732@sip.example.com;to-tag=r33th4x0r;from-tag=ff87ff;early-only"
    replaces = parse_replaces(value)
    assert replaces.early_only and replaces.to_tag == "r33th4x0r"
    assert str(replaces) == value


def test_replaces_without_a_tag_is_refused() -> None:
    """A Replaces missing its from-tag is a 400."""
    with pytest.raises(SipParseError):
        parse_replaces("abc;to-tag=1")


def test_replaces_matches_our_dialog_with_the_tags_crossed() -> None:
    """to-tag is our local tag, from-tag the remote one (RFC 3891 §3)."""
    replaces = Replaces(call_id="c", to_tag="ours", from_tag="theirs")
    assert replaces.matches(DialogId("c", "ours", "theirs"))
    assert not replaces.matches(DialogId("c", "theirs", "ours"))


def test_subscription_notifies_trying_progress_then_terminates() -> None:
    """Active NOTIFYs carry the progress; the final one terminates; nothing follows it."""
    subscription = ReferSubscription(7, expires=30)
    first = subscription.trying()
    assert first.body == b"SIP/2.0 100 Trying\r\n" and first.content_type == SIPFRAG
    assert dict(first.headers) == {"Event": "refer;id=7", "Subscription-State": "active;expires=30"}
    assert subscription.progress(180, "Ringing").body == b"SIP/2.0 180 Ringing\r\n"
    last = subscription.final(486, "Busy Here")
    assert dict(last.headers)["Subscription-State"] == "terminated;reason=noresource"
    assert last.body == b"SIP/2.0 486 Busy Here\r\n"
    assert subscription.state is ReferState.TERMINATED
    with pytest.raises(LocalProtocolError):
        subscription.final(200, "OK")


def test_a_final_is_not_a_provisional() -> None:
    """progress() takes 1xx only, final() 2xx-6xx only."""
    subscription = ReferSubscription(1)
    with pytest.raises(LocalProtocolError):
        subscription.progress(200, "OK")
    with pytest.raises(LocalProtocolError):
        subscription.final(183, "Session Progress")


def _pair() -> Pair:
    """Alice (who takes NOTIFY with sipfrag) and bob, in a confirmed call."""
    policy = UasPolicy(
        allowed_methods=UasPolicy().allowed_methods | {"NOTIFY"},
        accepted_types=UasPolicy().accepted_types | {"message/sipfrag"},
    )
    alice = SipEndpoint(EndpointConfig(host=ALICE.host, port=ALICE.port, policy=policy))
    bob = SipEndpoint(EndpointConfig(host=BOB.host, port=BOB.port))
    pair = Pair(alice, bob)
    pair.invite()
    (event,) = pair.take("bob", RequestReceived)
    pair.bob.respond(event.key, 200, pair.now, body=ANSWER)  # type: ignore[attr-defined]
    pair.flush()
    pair.take("bob", DialogConfirmed)
    pair.take("alice", ResponseReceived)
    return pair


def _dialogs(pair: Pair) -> tuple[Dialog, Dialog]:
    return next(iter(pair.alice.dialogs.values())), next(iter(pair.bob.dialogs.values()))


def test_refer_in_dialog_gets_202_then_sipfrag_notifies_in_the_same_dialog() -> None:
    """Over the wire: REFER, 202, NOTIFY 100 Trying, NOTIFY 200 OK terminated, each answered."""
    pair = _pair()
    alice, bob = _dialogs(pair)
    pair.alice.send_in_dialog(alice, "REFER", pair.now, headers=(("Refer-To", REFER_TO),))
    pair.flush()
    (refer_event,) = pair.take("bob", RequestReceived)
    assert isinstance(refer_event, RequestReceived) and refer_event.request.method == "REFER"
    refer = parse_refer(refer_event.request)
    assert refer.replaces is not None and refer.replaces.call_id == "abc@h1"
    pair.bob.respond(refer_event.key, 202, pair.now)
    subscription = ReferSubscription(refer_event.request.cseq().seq)
    for notify in (subscription.trying(), subscription.final(200, "OK")):
        pair.bob.send_in_dialog(
            bob,
            "NOTIFY",
            pair.now,
            body=notify.body,
            content_type=notify.content_type,
            headers=notify.headers,
        )
    pair.flush()
    accepted = pair.sent("bob", lambda m: isinstance(m, Response) and m.status == 202)
    assert len(accepted) == 1
    notifies = [e for e in pair.take("alice", RequestReceived) if isinstance(e, RequestReceived)]
    assert [n.request.body for n in notifies] == [b"SIP/2.0 100 Trying\r\n", b"SIP/2.0 200 OK\r\n"]
    for n in notifies:
        assert n.request.headers.get("Call-ID") == alice.id.call_id
        assert n.request.headers.get("Event") == f"refer;id={refer_event.request.cseq().seq}"
        pair.alice.respond(n.key, 200, pair.now)
    assert notifies[1].request.headers.get("Subscription-State") == "terminated;reason=noresource"
    pair.flush()
    answered = [e for e in pair.take("bob", ResponseReceived) if isinstance(e, ResponseReceived)]
    assert [e.response.status for e in answered] == [200, 200]
