"""Tests for call pickup (``calls.pickup``) on a CallManager wired to tests/calls/fakes.py.

Call ``a1`` to the group's number rings phone 202 (one registered contact); call ``c1`` is
phone 203's call to ``*8`` (admitted as 203: the test names its subscriber, as digest
admission would). Which codes a session's call asks for is tested on ``Pickup.route`` alone.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Awaitable
from pathlib import Path

from callserver.calls.phones import COMPLETED_ELSEWHERE, PhoneBook
from callserver.calls.pickup import Pickup
from callserver.calls.session import CallSession, ForwardOutcome
from callserver.config.centrex import Centrex, compile_centrex
from callserver.config.centrex_file import CentrexFile
from callserver.policy.caller import CallerId
from callserver.policy.service_codes import ServiceCodes
from callserver.registrar.binding import Binding
from callserver.sip.peer import Peer
from callserver.sip.sdp import parse_sdp
from tests.calls.fakes import OFFER
from tests.calls.harness import Harness, dialog

PHONES = {"202": None, "203": None, "204": "back"}  # extension: pickup group (None: default)


def _centrex() -> Centrex:
    subscribers = {
        f"+387 33 100 {ext}": {
            "username": f"u{ext}",
            "ha1_md5": "0" * 32,
            **({"pickup_group": group} if group else {}),
        }
        for ext, group in PHONES.items()
    }
    group = {
        "customer": "acme",
        "numbers": ["+387 33 100 200-299"],
        "realm": "callserver",
        "extensions": {"digits": 3},
        "subscribers": subscribers,
    }
    centrex, errors = compile_centrex(CentrexFile.model_validate({"groups": {"g": group}}))
    assert errors == []
    return centrex


CENTREX = _centrex()
BINDING = Binding(
    aor="+38733100202",
    contact="sip:phone@127.0.0.1:5070",
    expires=600.0,
    q=None,
    call_id="reg-202",
    cseq=1,
    flow=Peer("udp", "127.0.0.1", 5070),
    path=(),
)


def _harness(tmp_path: Path, picker: str = "+38733100203") -> tuple[Harness, list[object]]:
    """``a1`` rings 202; ``c1`` (to ``*8``) is ``picker``'s pickup; outcomes of a1's forward."""
    outcomes: list[object] = []
    pickup: Pickup

    def plan(session: CallSession) -> Awaitable[None]:
        if session.called == "*8":
            call = harness.manager.calls.by_key(("invite", session.call_id))
            assert call is not None and call.facts is not None
            call.facts.subscriber = picker  # as digest admission names a phone's call
            return pickup._pick(session, None)
        return ring(session)

    async def ring(session: CallSession) -> None:
        outcome = await session.forward(target="202", route=None, ring_timeout=20.0, caller_id=None)
        outcomes.append(outcome)
        await session.hangup(code=None, cause=None, reason="normal")

    harness = Harness.create(tmp_path, plan=plan)
    book = PhoneBook(lambda: CENTREX, lambda aor, now: [BINDING] if aor == BINDING.aor else [],
                     lambda: 20.0)  # fmt: skip
    harness.manager.forwarder.phones = book
    pickup = Pickup(harness.manager.services, harness.manager.calls, lambda: CENTREX)
    return harness, outcomes


async def _picked(harness: Harness) -> None:
    """a1 rings 202, then c1 dials *8 and picks it up."""
    harness.invite("a1", number="38733100200")
    await harness.settle()
    (invited,) = harness.endpoint.uac.invites
    harness.leg_response(invited, 180)
    assert harness.manager.calls.ringing(["+38733100202"])
    harness.invite("c1", number="*8")
    await harness.settle()


async def test_star_8_answers_the_picker_cancels_the_phone_and_bridges_the_caller(
    tmp_path: Path,
) -> None:
    """c1 is answered, 202's INVITE cancelled as completed elsewhere, a1 answered and its
    stream bridged to c1's; nothing rings any more."""
    harness, outcomes = _harness(tmp_path)
    await _picked(harness)
    (invited,) = harness.endpoint.uac.invites
    assert harness.endpoint.uac.cancels == [invited.handle]
    assert harness.endpoint.uac.cancel_headers[invited.handle] == COMPLETED_ELSEWHERE
    answered = [(s.key, s.status) for s in harness.endpoint.responses if s.status == 200]
    assert answered == [(("invite", "c1"), 200), (("invite", "a1"), 200)]
    a = harness.manager.calls.by_key(("invite", "a1"))
    c = harness.manager.calls.by_key(("invite", "c1"))
    assert a is not None and c is not None and a.stream and c.stream
    assert a.stream.peer is c.stream and c.stream.peer is a.stream
    assert harness.manager.calls.ringing(["+38733100202"]) == []
    harness.leg_response(invited, 487)  # the cancelled phone's answer: ignored
    await harness.settle()
    assert outcomes == []


async def test_the_picker_hanging_up_hangs_the_caller_up_and_the_cdrs_name_it(
    tmp_path: Path,
) -> None:
    """c1's BYE: a1 gets BYE; the leg's and a1's CDRs say 203 answered, c1's is linked."""
    harness, outcomes = _harness(tmp_path)
    await _picked(harness)
    harness.ended("c1", "bye_received")
    await harness.settle()
    assert harness.endpoint.byes == [dialog("a1")]
    assert outcomes == [ForwardOutcome(result="answered", sip_code=200)]
    harness.ended("a1", "bye_sent")
    await harness.settle()
    records = {(r.call_id, r.leg): r for r in harness.sink.records}
    leg = next(r for (_, kind), r in records.items() if kind == "b")
    caller, picker = records[("a1", "a")], records[("c1", "a")]
    assert leg.answered_by == caller.answered_by == "+38733100203"
    assert leg.disposition == "ANSWERED" and leg.called_raw == "+38733100202"
    assert leg.linked_id == picker.linked_id == "a1"
    assert picker.steps == ("pickup",)


async def test_the_caller_hanging_up_hangs_the_picker_up(tmp_path: Path) -> None:
    """a1's BYE: c1 gets BYE from us."""
    harness, _ = _harness(tmp_path)
    await _picked(harness)
    harness.ended("a1", "bye_received")
    await harness.settle()
    assert harness.endpoint.byes == [dialog("c1")]


async def test_the_picking_phone_holds_and_the_caller_hears_music(tmp_path: Path) -> None:
    """A re-INVITE a=sendonly from the picking phone is answered recvonly on its own dialog
    and the caller is held (music), as in any bridged call."""
    harness, _ = _harness(tmp_path)
    await _picked(harness)
    caller = harness.manager.calls.by_key(("invite", "a1"))
    assert caller is not None and caller.stream is not None
    key = harness.in_dialog("INVITE", "c1", body=OFFER + b"a=sendonly\r\n")
    (sent,) = [s for s in harness.endpoint.responses if s.key == key]
    assert sent.status == 200 and parse_sdp(sent.body).media[0].direction == "recvonly"
    assert harness.media.kinds("hold") == [("hold", caller.stream.stream_id)]


async def test_another_pickup_group_gets_404_and_the_phone_rings_on(tmp_path: Path) -> None:
    """204 (pickup group ``back``) dials *8 while 202 rings: 404, nothing cancelled."""
    harness, _ = _harness(tmp_path, picker="+38733100204")
    await _picked(harness)
    refused = [(s.key, s.status) for s in harness.endpoint.responses if s.status >= 400]
    assert refused == [(("invite", "c1"), 404)]
    assert harness.endpoint.uac.cancels == []
    assert harness.manager.calls.ringing(["+38733100202"])


def _session(called: str, caller: str, *, originating: bool = True) -> CallSession:
    session = CallSession(
        object(),  # type: ignore[arg-type]  # route never asks the host anything
        call_id="x",
        caller=CallerId(raw=caller, e164=caller),
        called=called,
        language="en",
        voicemail_dir=Path("."),
    )
    session.originating = originating
    return session


def test_only_a_phones_call_to_a_pickup_code_is_a_pickup(tmp_path: Path) -> None:
    """*8 and **EXT from a subscriber's phone are pickups; other numbers, a caller that is
    nobody's phone, and a call that is not a customer's are routed as any other."""
    harness, _ = _harness(tmp_path)
    pickup = Pickup(harness.manager.services, harness.manager.calls, lambda: CENTREX)
    for called in ("*8", "**202"):
        work = pickup.route(_session(called, "+38733100203"))
        assert work is not None
        work.close()  # type: ignore[attr-defined]  # a coroutine never awaited
    assert pickup.route(_session("**", "+38733100203")) is None
    assert pickup.route(_session("*81", "+38733100203")) is None
    assert pickup.route(_session("202", "+38733100203")) is None
    assert pickup.route(_session("*8", "+38761000000")) is None
    assert pickup.route(_session("*8", "+38733100203", originating=False)) is None


def test_the_group_pickup_code_is_centrex_yamls(tmp_path: Path) -> None:
    """With service_codes' pickup set to 88, *88 picks up and *8 is routed as any number;
    directed pickup stays **EXT."""
    harness, _ = _harness(tmp_path)
    centrex = dataclasses.replace(CENTREX, codes=ServiceCodes(pickup="88"))
    pickup = Pickup(harness.manager.services, harness.manager.calls, lambda: centrex)
    for called in ("*88", "**202"):
        work = pickup.route(_session(called, "+38733100203"))
        assert work is not None
        work.close()  # type: ignore[attr-defined]  # a coroutine never awaited
    assert pickup.route(_session("*8", "+38733100203")) is None
