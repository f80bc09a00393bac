"""Tests for the MWI notifier: SUBSCRIBE answered and authenticated like REGISTER, NOTIFYs in
the dialog and unsolicited, refresh, unsubscribe, expiry, a gone phone, and a restart."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from callserver.config.centrex import Subscriber
from callserver.registrar.binding import Binding
from callserver.sip.auth import build_authorization, parse_challenge
from callserver.sip.endpoint import EndpointConfig
from callserver.sip.events import RequestReceived, ResponseReceived, TransactionTimedOut
from callserver.sip.message import Headers, Request, Response
from callserver.sip.peer import Peer
from callserver.sip.uri import parse_uri
from callserver.voicemail.box import Summary
from callserver.voicemail.mwi import Mwi
from callserver.voicemail.subscription_store import SubscriptionStore
from tests.calls.fakes import PinnedLoop
from tests.registrar.support import AOR, REALM, UDP, registrar

WALL = 1_900_000_000.0
OTHER_HOST = Peer("udp", "198.51.100.7", 5062)


@dataclass
class Response_:
    """A response the notifier sent."""

    key: object
    status: int
    headers: tuple[tuple[str, str], ...]
    to_tag: str | None


@dataclass
class Sent:
    """A request the notifier sent through the UAC core."""

    key: str
    method: str
    uri: str
    to: str
    peer: Peer
    headers: dict[str, str]
    body: bytes
    call_id: str | None
    cseq: int


@dataclass
class Endpoint:
    """The endpoint as the notifier sees it; what it is asked to send is kept."""

    config: EndpointConfig = field(
        default_factory=lambda: EndpointConfig(host="127.0.0.1", port=5060)
    )
    responses: list[Response_] = field(default_factory=list)
    sent: list[Sent] = field(default_factory=list)

    @property
    def uac(self) -> Endpoint:
        """Itself: requests are kept in ``sent``."""
        return self

    def respond(self, key: object, status: int, now: float, **rest: Any) -> None:
        """Keep the response."""
        self.responses.append(Response_(key, status, rest.get("headers", ()), rest.get("to_tag")))

    def request(self, method: str, uri: object, **rest: Any) -> str:
        """Keep the request; its key is ``n-<count>``."""
        key = f"n-{len(self.sent) + 1}"
        headers = dict(rest.get("headers", ()))
        self.sent.append(
            Sent(
                key,
                method,
                str(uri),
                str(rest["to_addr"]),
                rest["peer"],
                headers,
                rest.get("body", b""),
                rest.get("call_id"),
                rest.get("cseq", 1),
            )
        )
        return key


PHONE = Subscriber(
    number=AOR,
    group="g",
    extension="201",
    name=None,
    username="201",
    realm=REALM,
    ha1={},
    barring=(),
    clir=False,
    max_contacts=None,
)
BOXES = {AOR: Summary(new=0, saved=0)}


def notifier(tmp_path: Path, loop: PinnedLoop, endpoint: Endpoint, **kw: Any) -> Mwi:
    """A notifier over the test registrar's accounts, its store in ``tmp_path``."""
    digest = registrar().digest

    async def summary(number: str) -> Summary:
        return BOXES[number]

    return Mwi(
        endpoint=endpoint,  # type: ignore[arg-type]
        store=SubscriptionStore(tmp_path / "mwi.sqlite", wall=lambda: WALL),
        authorize=digest.authorize,
        respond=endpoint.respond,
        subscriber=lambda user: PHONE if user.lstrip("+") in ("201", AOR.lstrip("+")) else None,
        contacts=kw.get("contacts", lambda aor, now: []),
        summary=summary,
        expires=lambda: 3600,
        loop=loop,  # type: ignore[arg-type]
        wake=lambda: None,
    )


def subscribe(
    *,
    cseq: int = 1,
    to_tag: str | None = None,
    expires: str = "600",
    event: str = "message-summary",
    extra: tuple[tuple[str, str], ...] = (),
    box: str = AOR,
) -> Request:
    """A SUBSCRIBE of the phone 201 to ``box`` (its own by default)."""
    to = f"<sip:{box}@{REALM}>" + (f";tag={to_tag}" if to_tag else "")
    headers = Headers(
        [
            ("Via", "SIP/2.0/UDP 192.0.2.10:5062;branch=z9hG4bK-sub"),
            ("Max-Forwards", "70"),
            ("From", f"<sip:{AOR}@{REALM}>;tag=ph1"),
            ("To", to),
            ("Call-ID", "sub-1@192.0.2.10"),
            ("CSeq", f"{cseq} SUBSCRIBE"),
            ("Contact", "<sip:201@192.0.2.10:5062>"),
            ("Event", event),
            ("Expires", expires),
            *extra,
        ]
    )
    return Request("SUBSCRIBE", parse_uri(f"sip:{box}@{REALM}"), headers)


def deliver(mwi: Mwi, loop: PinnedLoop, request: Request, key: str, peer: Peer = UDP) -> None:
    """Hand one SUBSCRIBE to the notifier."""
    mwi.handle(RequestReceived(request=request, peer=peer, key=key, rtime=loop.now), loop.now)


def credentials(
    endpoint: Endpoint, password: str = "pw201", username: str = "201", uri: str = ""
) -> tuple[str, str]:
    """An Authorization answering the last 401's SHA-256 challenge for a SUBSCRIBE."""
    for _, value in endpoint.responses[-1].headers:
        challenge = parse_challenge(value)
        if challenge.algorithm == "SHA-256":
            answer = build_authorization(
                challenge,
                method="SUBSCRIBE",
                uri=uri or f"sip:{AOR}@{REALM}",
                username=username,
                password=password,
                cnonce="c0ffee",
                nonce_count=1,
            )
            return ("Authorization", answer)
    raise AssertionError("no challenge")


async def subscribed(tmp_path: Path) -> tuple[Mwi, PinnedLoop, Endpoint, str]:
    """A notifier with 201 subscribed (401, then 200) and its first NOTIFY sent; our tag."""
    loop, endpoint = PinnedLoop(), Endpoint()
    mwi = notifier(tmp_path, loop, endpoint)
    deliver(mwi, loop, subscribe(), "k1")
    assert endpoint.responses[-1].status == 401
    deliver(mwi, loop, subscribe(cseq=2, extra=(credentials(endpoint),)), "k2")
    answer = endpoint.responses[-1]
    assert answer.status == 200 and answer.to_tag
    await settle()
    return mwi, loop, endpoint, answer.to_tag


async def settle() -> None:
    """Let the notifier's tasks (box summaries, then NOTIFYs) run."""
    for _ in range(5):
        await asyncio.sleep(0)


async def test_subscribe_is_challenged_then_accepted_and_notified(tmp_path: Path) -> None:
    """200 with Expires and our tag, then a NOTIFY in the dialog: nothing waits, active."""
    mwi, _, endpoint, tag = await subscribed(tmp_path)
    assert dict(endpoint.responses[-1].headers)["Expires"] == "600"
    [notify] = endpoint.sent
    assert (notify.method, notify.call_id, notify.cseq) == ("NOTIFY", "sub-1@192.0.2.10", 1)
    assert notify.uri == "sip:201@192.0.2.10:5062" and notify.peer == UDP
    assert notify.headers["Event"] == "message-summary"
    assert notify.headers["Subscription-State"] == "active;expires=600"
    assert notify.headers["Content-Type"] == "application/simple-message-summary"
    assert b"Messages-Waiting: no\r\n" in notify.body and b"Voice-Message: 0/0" in notify.body
    assert f";tag={tag}" not in notify.to and "tag=ph1" in notify.to
    await mwi.close()


async def test_refusals(tmp_path: Path) -> None:
    """Another event package 489, under a minute 423, another phone's credentials 403, a
    number that is no box challenged and refused like a wrong password (no enumeration), an
    unknown dialog 481."""
    loop, endpoint = PinnedLoop(), Endpoint()
    mwi = notifier(tmp_path, loop, endpoint)
    deliver(mwi, loop, subscribe(event="presence"), "k1")
    deliver(mwi, loop, subscribe(expires="30"), "k2")
    assert [(r.status, r.headers) for r in endpoint.responses] == [
        (489, (("Allow-Events", "message-summary"),)),
        (423, (("Min-Expires", "60"),)),
    ]
    deliver(mwi, loop, subscribe(), "k3")
    wrong = credentials(endpoint, password="pw202", username="202")
    deliver(mwi, loop, subscribe(cseq=2, extra=(wrong,)), "k4")
    assert endpoint.responses[-1].status == 403
    nobox = "+38733100299"
    deliver(mwi, loop, subscribe(cseq=3, box=nobox), "k5")
    assert endpoint.responses[-1].status == 401
    mine = credentials(endpoint, uri=f"sip:{nobox}@{REALM}")
    deliver(mwi, loop, subscribe(cseq=4, box=nobox, extra=(mine,)), "k6")
    assert endpoint.responses[-1].status == 403
    deliver(mwi, loop, subscribe(cseq=5, to_tag="nosuch"), "k7")
    assert endpoint.responses[-1].status == 481
    assert endpoint.sent == [] and len(mwi.table) == 0
    await mwi.close()


async def test_refresh_and_unsubscribe(tmp_path: Path) -> None:
    """A refresh from the phone's host gets 200 and a NOTIFY with the next CSeq; one from
    elsewhere 403, one with an old CSeq 500; Expires 0 ends it with a NOTIFY terminated."""
    mwi, loop, endpoint, tag = await subscribed(tmp_path)
    deliver(mwi, loop, subscribe(cseq=3, to_tag=tag), "k3", peer=OTHER_HOST)
    assert endpoint.responses[-1].status == 403
    deliver(mwi, loop, subscribe(cseq=2, to_tag=tag), "k3b")
    assert endpoint.responses[-1].status == 500  # a CSeq not above the last one
    loop.advance(100)
    deliver(mwi, loop, subscribe(cseq=4, to_tag=tag, expires="900"), "k4")
    assert endpoint.responses[-1].status == 200
    await settle()
    assert (endpoint.sent[-1].cseq, endpoint.sent[-1].headers["Subscription-State"]) == (
        2,
        "active;expires=900",
    )
    deliver(mwi, loop, subscribe(cseq=5, to_tag=tag, expires="0"), "k5")
    await settle()
    assert endpoint.sent[-1].headers["Subscription-State"] == "terminated;reason=timeout"
    assert len(mwi.table) == 0
    await mwi.close()


async def test_expiry_sends_a_last_notify(tmp_path: Path) -> None:
    """At its deadline the subscription ends with NOTIFY terminated;reason=timeout."""
    mwi, loop, endpoint, _ = await subscribed(tmp_path)
    loop.advance(600)
    await settle()
    assert endpoint.sent[-1].headers["Subscription-State"] == "terminated;reason=timeout"
    assert len(mwi.table) == 0
    await mwi.close()


async def test_a_box_change_notifies_and_a_gone_phone_ends_it(tmp_path: Path) -> None:
    """A new message: NOTIFY yes 1/0; a NOTIFY answered 481 ends the subscription, and one
    never answered does too."""
    mwi, loop, endpoint, _ = await subscribed(tmp_path)
    BOXES[AOR] = Summary(new=1, saved=0)
    try:
        mwi.box_changed("38733100201")
        await settle()
        notify = endpoint.sent[-1]
        assert b"Messages-Waiting: yes" in notify.body and b"Voice-Message: 1/0" in notify.body
        response = Response(481, "Call/Transaction Does Not Exist", Headers([]))
        answered = ResponseReceived(
            response=response,
            peer=UDP,
            key=notify.key,  # type: ignore[arg-type]
            rtime=loop.now,
        )
        assert mwi.handle_event(answered, loop.now)
        assert len(mwi.table) == 0
    finally:
        BOXES[AOR] = Summary(new=0, saved=0)
    await mwi.close()
    (tmp_path / "again").mkdir()
    mwi, loop, endpoint, _ = await subscribed(tmp_path / "again")
    timed_out = TransactionTimedOut(
        key=endpoint.sent[-1].key,  # type: ignore[arg-type]
        request=subscribe(),
    )
    assert mwi.handle_event(timed_out, loop.now)
    assert len(mwi.table) == 0
    await mwi.close()


async def test_a_restart_keeps_the_subscription(tmp_path: Path) -> None:
    """A notifier started again on the same store NOTIFYs the phone on the next change, in
    its dialog, with a CSeq above the ones sent before."""
    mwi, _, _, _ = await subscribed(tmp_path)
    await mwi.close()
    loop2, endpoint2 = PinnedLoop(now=50.0), Endpoint()
    again = notifier(tmp_path, loop2, endpoint2)
    assert len(again.table) == 1
    again.box_changed(AOR)
    await settle()
    [notify] = endpoint2.sent
    assert notify.call_id == "sub-1@192.0.2.10" and notify.cseq == 2
    assert notify.headers["Subscription-State"].startswith("active;expires=")
    await again.close()


async def test_a_phone_that_never_subscribed_gets_an_unsolicited_notify(tmp_path: Path) -> None:
    """With nobody subscribed, each registered contact of the box gets a NOTIFY out of dialog."""
    loop, endpoint = PinnedLoop(), Endpoint()
    binding = Binding(
        aor=AOR,
        contact="sip:201@192.0.2.10:5062",
        expires=5000.0,
        q=None,
        call_id="r",
        cseq=1,
        flow=UDP,
        path=("<sip:edge.example.net;lr>",),
    )
    mwi = notifier(tmp_path, loop, endpoint, contacts=lambda aor, now: [binding])
    mwi.box_changed(AOR)
    await settle()
    [notify] = endpoint.sent
    assert (notify.uri, notify.peer, notify.call_id) == (binding.contact, UDP, None)
    assert notify.headers["Route"] == "<sip:edge.example.net;lr>"
    assert notify.headers["Subscription-State"] == "active"
    await mwi.close()
