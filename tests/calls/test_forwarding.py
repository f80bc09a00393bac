"""Tests for call forwarding and call waiting in front of the forwarder (``calls.forwarding``).

The legs are placed by a stand-in for ``Forwarder.forward`` that records each leg and answers
with the outcome the test scripts for its target; the subscribers are a compiled centrex file,
their services injected per test.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Mapping

import structlog

from callserver.calls.call import Call
from callserver.calls.diverted import Diverted
from callserver.calls.forwarding import Forwarding
from callserver.calls.phones import PhoneBook
from callserver.calls.plan_transfer import PlanTransfers
from callserver.calls.reporting import CallFacts
from callserver.calls.session import CallSession, ForwardOutcome
from callserver.config.centrex import Centrex, compile_centrex
from callserver.config.centrex_file import CentrexFile
from callserver.policy.diversion import Chain
from callserver.policy.services import VOICEMAIL, ServiceSettings
from callserver.registrar.binding import Binding
from callserver.sip.peer import Peer

A, B, C = "+38733100201", "+38733100202", "+38733100203"
OUTSIDE = "+38761200300"
IVR = "+38733100700"
ANSWERED = ForwardOutcome(result="answered", sip_code=200)
BUSY = ForwardOutcome(result="busy", sip_code=486)


def _busy(detail: str) -> ForwardOutcome:
    """A 486 refusal with what its CDR's end_detail says."""
    return ForwardOutcome(result="busy", sip_code=486, detail=detail)


NO_ANSWER = ForwardOutcome(result="no_answer", sip_code=487)


def _centrex(numbers: tuple[str, ...]) -> Centrex:
    subscribers = {n: {"username": n[1:], "ha1_md5": "0" * 32} for n in numbers}
    group = {
        "customer": "acme",
        "numbers": ["+387 33 100 200-299"],
        "realm": "callserver",
        "extensions": {"digits": 3},
        "subscribers": subscribers,
    }
    centrex, errors = compile_centrex(CentrexFile.model_validate({"groups": {"office": group}}))
    assert errors == []
    return centrex


class Legs:
    """The stand-in forwarder: every leg asked for, answered as ``outcomes`` says."""

    def __init__(self, outcomes: Mapping[str, ForwardOutcome]) -> None:
        self.outcomes = outcomes
        self.placed: list[tuple[str, float, Diverted | None]] = []

    async def __call__(
        self,
        call: Call,
        *,
        target: str,
        route: str | None,
        ring_timeout: float,
        caller_id: str | None,
        originating: bool = False,
        diverted: Diverted | None = None,
    ) -> ForwardOutcome:
        self.placed.append((target, ring_timeout, diverted))
        return self.outcomes.get(target, ANSWERED)


def _run(
    settings: Mapping[str, ServiceSettings],
    outcomes: Mapping[str, ForwardOutcome],
    *,
    numbers: tuple[str, ...] = (A, B, C),
    registered: tuple[str, ...] | None = None,
    busy: tuple[str, ...] = (),
    target: str = A,
    plans: PlanTransfers | None = None,
) -> tuple[ForwardOutcome, Legs, list[str]]:
    centrex = _centrex(numbers)
    registered = numbers if registered is None else registered
    legs = Legs(outcomes)
    boxes: list[str] = []

    async def voicemail(session: CallSession, mailbox: str) -> None:
        boxes.append(mailbox)

    def bindings(aor: str, now: float) -> list[Binding]:
        flow = Peer("udp", "127.0.0.1", 5062)
        contact = "sip:p@127.0.0.1:5062"
        one = Binding(
            aor=aor, contact=contact, expires=600.0, q=None, call_id="r", cseq=1, flow=flow
        )
        return [one] if aor in registered else []

    forwarding = Forwarding(
        legs,
        phones=PhoneBook(lambda: centrex, bindings, lambda: 30.0),
        centrex=lambda: centrex,
        settings_of=lambda n: settings.get(n, ServiceSettings()),
        in_call=lambda n: n in busy,
        voicemail=voicemail,
        outbound_ring_timeout=lambda: 90.0,
        host="127.0.0.1",
        now=lambda: 0.0,
        plans=plans,
    )
    call = Call(call_id="c1", key=None, offered_at=0.0, log=structlog.get_logger())
    call.facts = CallFacts(call_id="c1", caller="38761000000", called=target, offered_at=0.0)
    call.session = object()  # type: ignore[assignment]  # only handed to the voicemail
    outcome = asyncio.run(
        forwarding.forward(call, target=target, route=None, ring_timeout=30.0, caller_id=None)
    )
    return outcome, legs, boxes


def test_a_subscriber_without_services_rings_for_the_callers_ring_timeout() -> None:
    """No forwarding: one leg to the subscriber's number, the ring timeout as given."""
    outcome, legs, _ = _run({}, {A: BUSY})
    assert outcome == BUSY
    assert legs.placed == [(A, 30.0, None)]


def test_cfu_diverts_before_anything_rings_and_the_target_is_rung() -> None:
    """CFU to an extension of the group: only the target's phones ring, as a diverted leg
    paid by the forwarding subscriber's customer."""
    outcome, legs, _ = _run({A: ServiceSettings(forward_always="202")}, {})
    assert outcome == ANSWERED
    [(target, _, diverted)] = legs.placed
    assert target == B and diverted is not None
    assert (diverted.by.number, diverted.reason, diverted.customer) == (A, "unconditional", "acme")


def test_cfb_diverts_when_the_phones_answer_busy() -> None:
    """A busy answer diverts to the busy target, an outside number through the routes."""
    outcome, legs, _ = _run({A: ServiceSettings(forward_busy=OUTSIDE)}, {A: BUSY})
    assert outcome == ANSWERED
    assert [(t, r) for t, r, _ in legs.placed] == [(A, 30.0), (OUTSIDE, 90.0)]
    assert legs.placed[1][2] is not None and legs.placed[1][2].reason == "user-busy"


def test_cfnr_rings_its_own_time_then_diverts() -> None:
    """With CFNR the phones ring no_answer_seconds, then the no-answer target rings."""
    settings = {A: ServiceSettings(forward_no_answer="203", no_answer_seconds=5)}
    outcome, legs, _ = _run(settings, {A: NO_ANSWER})
    assert outcome == ANSWERED
    assert [(t, r) for t, r, _ in legs.placed] == [(A, 5.0), (C, 30.0)]


def test_not_reachable_diverts_without_ringing_and_never_diverts_on_no_answer() -> None:
    """No binding: the unreachable target at once; without it the leg is placed (480 from the
    forwarder) and CFNR does not apply."""
    outcome, legs, _ = _run({A: ServiceSettings(forward_unreachable=B)}, {}, registered=(B,))
    assert [t for t, _, _ in legs.placed] == [B] and outcome == ANSWERED
    unregistered = ForwardOutcome(result="no_answer", sip_code=480)
    settings = {A: ServiceSettings(forward_no_answer=B)}
    outcome, legs, _ = _run(settings, {A: unregistered}, registered=(B,))
    assert outcome == unregistered and [t for t, _, _ in legs.placed] == [A]


def test_call_waiting_off_while_in_a_call_is_busy_or_cfb() -> None:
    """In a call with call waiting off: 486 without CFB (nothing rings), CFB with it; with
    call waiting on the second call rings."""
    off = ServiceSettings(call_waiting=False)
    outcome, legs, _ = _run({A: off}, {}, busy=(A,))
    assert outcome == _busy("in a call, call waiting off") and legs.placed == []
    off_cfb = ServiceSettings(call_waiting=False, forward_busy="202")
    outcome, legs, _ = _run({A: off_cfb}, {}, busy=(A,))
    assert [t for t, _, _ in legs.placed] == [B]
    outcome, legs, _ = _run({A: ServiceSettings()}, {}, busy=(A,))
    assert [t for t, _, _ in legs.placed] == [A]


def test_dnd_is_busy() -> None:
    """Do-not-disturb refuses with 486 without ringing."""
    outcome, legs, _ = _run({A: ServiceSettings(dnd=True)}, {})
    assert outcome == _busy("do not disturb") and legs.placed == []


def test_forwarding_to_voicemail_records_into_the_subscribers_box() -> None:
    """CFNR to VM: the message goes to the mailbox named by the number's digits."""
    settings = {A: ServiceSettings(forward_no_answer=VOICEMAIL, no_answer_seconds=5)}
    outcome, legs, boxes = _run(settings, {A: NO_ANSWER})
    assert outcome.result == "answered" and boxes == ["38733100201"]
    assert [t for t, _, _ in legs.placed] == [A]


def test_the_targets_own_forwarding_applies_in_a_chain() -> None:
    """A busy diverts to B whose CFU sends the call to an outside number paid by B."""
    settings = {A: ServiceSettings(forward_busy="202"), B: ServiceSettings(forward_always=OUTSIDE)}
    _, legs, _ = _run(settings, {A: BUSY})
    assert [t for t, _, _ in legs.placed] == [A, OUTSIDE]
    diverted = legs.placed[1][2]
    assert diverted is not None and diverted.by.number == B and diverted.chain.count == 2


def test_a_loop_of_two_subscribers_ends_ringing_the_second() -> None:
    """A and B forward always to each other: B's CFU back to A is refused as a loop, so B is
    treated as without forwarding and its phones ring."""
    settings = {A: ServiceSettings(forward_always="202"), B: ServiceSettings(forward_always="201")}
    outcome, legs, _ = _run(settings, {B: BUSY})
    assert outcome == BUSY
    assert [t for t, _, _ in legs.placed] == [B]


def test_a_busy_loop_gives_the_last_subscribers_busy() -> None:
    """A busy diverts to B, B busy would divert back to A: refused, the caller gets B's 486."""
    settings = {A: ServiceSettings(forward_busy="202"), B: ServiceSettings(forward_busy="201")}
    outcome, legs, _ = _run(settings, {A: BUSY, B: BUSY})
    assert outcome == BUSY
    assert [t for t, _, _ in legs.placed] == [A, B]


def test_a_long_chain_stops_after_five_diversions() -> None:
    """Six subscribers in a CFU chain: the fifth diversion is the last, the sixth subscriber's
    own phones ring although it forwards on too."""
    numbers = tuple(f"+3873310021{n}" for n in range(8))
    pairs = itertools.pairwise(numbers)
    settings = {n: ServiceSettings(forward_always=following) for n, following in pairs}
    _, legs, _ = _run(settings, {}, numbers=numbers, target=numbers[0])
    assert [t for t, _, _ in legs.placed] == [numbers[5]]
    assert legs.placed[0][2] is not None and legs.placed[0][2].chain.count == 5


def test_an_extension_the_group_does_not_have_is_no_target() -> None:
    """CFB to extension 299, which nobody has: no diversion, the caller gets the busy."""
    outcome, legs, _ = _run({A: ServiceSettings(forward_busy="299")}, {A: BUSY})
    assert outcome == BUSY and [t for t, _, _ in legs.placed] == [A]


def test_a_diverted_leg_is_the_forwarding_subscribers() -> None:
    """Barring reads the forwarding subscriber (its number, group, customer), and the leg's
    CDR facts are paid by its customer, say why and by whom, and are no call out."""
    centrex = _centrex((A, B, C))
    by = centrex.subscriber(A)
    assert by is not None
    chain = Chain.of(called=A, host="h", diversion=(), history=()).diverted(
        by=A, to=OUTSIDE, reason="no-answer", host="h"
    )
    diverted = Diverted(by=by, customer="acme", reason="no-answer", chain=chain)
    barring = diverted.barring_facts(OUTSIDE, 5.0)
    assert (barring.subscriber, barring.group, barring.customer) == (A, "office", "acme")
    assert (barring.caller, barring.trunk) == (A, None)
    facts = CallFacts(call_id="leg", caller="38761000000", called=OUTSIDE, offered_at=5.0)
    facts.customer, facts.originating = "carrier-customer", True
    diverted.mark(facts, inside_group=False)
    assert (facts.customer, facts.forwarded_from, facts.originating) == ("acme", A, False)
    assert facts.extra == {"diversion_reason": "no-answer", "diverted_from": A}
    assert [name for name, _ in diverted.headers] == ["Diversion", "History-Info"]


def test_placing_with_another_place_and_no_voicemail_refuses_a_diversion_to_vm() -> None:
    """A copy placing through other legs (a transfer's) places there, and a diversion to VM
    fails 480 instead of recording; the original keeps its own legs."""
    centrex = _centrex((A, B, C))
    original, other = Legs({}), Legs({A: BUSY})
    boxes: list[str] = []

    async def voicemail(session: CallSession, mailbox: str) -> None:
        boxes.append(mailbox)

    forwarding = Forwarding(
        original,
        phones=PhoneBook(lambda: centrex, lambda aor, now: [], lambda: 30.0),
        centrex=lambda: centrex,
        settings_of=lambda n: ServiceSettings(forward_busy="VM") if n == A else ServiceSettings(),
        in_call=lambda n: False,
        voicemail=voicemail,
        outbound_ring_timeout=lambda: 90.0,
        host="127.0.0.1",
        now=lambda: 0.0,
    )
    call = Call(call_id="c1", key=None, offered_at=0.0, log=structlog.get_logger())
    call.facts = CallFacts(call_id="c1", caller="38761000000", called=A, offered_at=0.0)
    call.session = object()  # type: ignore[assignment]  # only handed to the voicemail
    copy = forwarding.placing_with(other, None)
    outcome = asyncio.run(
        copy.forward(call, target=A, route=None, ring_timeout=30.0, caller_id=None)
    )
    assert outcome == ForwardOutcome(
        result="failed", sip_code=480, detail="voicemail not reachable"
    )
    assert [t for t, _, _ in other.placed] == [A] and original.placed == [] and boxes == []


def _ivr_plans(ran: list[str]) -> PlanTransfers:
    """PlanTransfers whose only plan is the IVR's; its router notes the number it ran."""
    plans = PlanTransfers()
    plans.hosts = lambda number: number == IVR

    async def run(session: CallSession) -> None:
        ran.append(session.called)

    plans.router = run
    return plans


def test_a_diversion_to_a_number_with_a_plan_here_hands_the_caller_to_it() -> None:
    """CFU to the IVR's number: nothing is placed, the forward reports the call answered and
    the IVR's hand-off waits for the session host's follow; a diversion to a number without
    a plan here still goes out."""
    plans = _ivr_plans([])
    outcome, legs, _ = _run({A: ServiceSettings(forward_always=IVR)}, {}, plans=plans)
    assert outcome == ANSWERED and legs.placed == []
    pending = Call(call_id="c1", key=None, offered_at=0.0, log=structlog.get_logger())
    assert asyncio.run(plans.follow(pending, NO_ANSWER)) == NO_ANSWER, "no session: as it was"
    _, legs, _ = _run({A: ServiceSettings(forward_always=OUTSIDE)}, {}, plans=_ivr_plans([]))
    assert [t for t, _, _ in legs.placed] == [OUTSIDE]


def test_cfnr_to_a_plan_number_rings_first_then_hands_over() -> None:
    """CFNR to the IVR: the phones ring their ring time, then the caller is handed to the
    IVR's plan instead of a leg through the routes."""
    settings = {A: ServiceSettings(forward_no_answer=IVR, no_answer_seconds=5)}
    outcome, legs, _ = _run(settings, {A: NO_ANSWER}, plans=_ivr_plans([]))
    assert outcome == ANSWERED and legs.placed == [(A, 5.0, None)]


def test_a_transfers_diversion_to_a_plan_without_a_hand_off_goes_out_through_the_routes() -> None:
    """A transfer's copy with no hand-off into plans (its transferee is a leg the server
    placed) places the diverted leg to the IVR's number like any outside number."""
    centrex = _centrex((A, B, C))
    other = Legs({})
    forwarding = Forwarding(
        Legs({}),
        phones=PhoneBook(lambda: centrex, lambda aor, now: [], lambda: 30.0),
        centrex=lambda: centrex,
        settings_of=lambda n: ServiceSettings(forward_always=IVR),
        in_call=lambda n: False,
        voicemail=None,
        outbound_ring_timeout=lambda: 90.0,
        host="127.0.0.1",
        now=lambda: 0.0,
        plans=_ivr_plans([]),
    )
    call = Call(call_id="c1", key=None, offered_at=0.0, log=structlog.get_logger())
    call.facts = CallFacts(call_id="c1", caller="38761000000", called=A, offered_at=0.0)
    copy = forwarding.placing_with(other, None)
    asyncio.run(copy.forward(call, target=A, route=None, ring_timeout=30.0, caller_id=None))
    assert [(t, d is not None) for t, _, d in other.placed] == [(IVR, True)]
