"""Tests for calls to Centrex phones: ``PhoneBook`` lookups and ringing every contact at once.

The forking runs through a CallManager wired to tests/calls/fakes.py (the harness), with a
``PhoneBook`` over a compiled centrex file and bindings given by the test.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from callserver.calls.branching import best
from callserver.calls.phones import COMPLETED_ELSEWHERE, PhoneBook
from callserver.calls.session import CallSession, ForwardOutcome
from callserver.cdr.record import Disposition
from callserver.config.centrex import Centrex, compile_centrex
from callserver.config.centrex_file import CentrexFile
from callserver.registrar.binding import Binding
from callserver.sip.events import InviteCancelled
from callserver.sip.peer import Peer
from tests.calls.harness import Harness

NUMBER = "+38733100201"


def _centrex() -> Centrex:
    phone = {"username": "u201", "ha1_md5": "0" * 32}
    group = {
        "customer": "acme",
        "numbers": ["+387 33 100 200-299"],
        "realm": "callserver",
        "extensions": {"digits": 3},
        "subscribers": {NUMBER: phone},
    }
    centrex, errors = compile_centrex(CentrexFile.model_validate({"groups": {"g": group}}))
    assert errors == []
    return centrex


def _binding(port: int, *, path: tuple[str, ...] = ()) -> Binding:
    return Binding(
        aor=NUMBER,
        contact=f"sip:phone@127.0.0.1:{port}",
        expires=600.0,
        q=None,
        call_id=f"reg-{port}",
        cseq=1,
        flow=Peer("udp", "127.0.0.1", port),
        path=path,
    )


def _book(bindings: list[Binding], ring_timeout: float = 30.0) -> PhoneBook:
    centrex = _centrex()
    return PhoneBook(
        lambda: centrex,
        lambda aor, now: [b for b in bindings if b.aor == aor],
        lambda: ring_timeout,
    )


def test_a_target_names_a_phone_by_number_or_by_extension_of_the_calls_group() -> None:
    """The number itself, or 201 from a number of the group (called first, then the caller)."""
    book = _book([])
    assert book.subscriber(NUMBER) is not None
    assert book.subscriber("38733100201") is not None
    assert book.subscriber("201", "38733100200") is not None
    assert book.subscriber("201", None, "+38733100250") is not None
    assert book.subscriber("201", "38761000000", None) is None  # not a number of the group
    assert book.subscriber("+38733100299") is None  # in the block, but nobody's phone


def test_contacts_go_on_the_flow_they_registered_from_with_their_path() -> None:
    """RFC 5626 §5.3 and RFC 3327 §5.3: the branch keeps the binding's flow and Path."""
    book = _book([_binding(5070, path=("<sip:edge.example;lr>",))])
    subscriber = book.subscriber(NUMBER)
    assert subscriber is not None
    (branch,) = book.contacts(subscriber, 0.0)
    assert str(branch.uri) == "sip:phone@127.0.0.1:5070"
    assert branch.peer == Peer("udp", "127.0.0.1", 5070)
    assert branch.route == ("<sip:edge.example;lr>",)


@pytest.mark.parametrize(
    ("finals", "passed_on"),
    [
        ([486, 486], 486),
        ([486, 480], 486),
        ([603, 486], 603),
        ([487, 487], 487),
        ([408, 480], 408),
        ([480], 480),
        ([488, 487], 488),
    ],
)
def test_the_failure_passed_on_is_the_one_a_forking_proxy_picks(
    finals: list[int], passed_on: int
) -> None:
    """RFC 3261 §16.7 step 6: a 6xx first, then busy, then another failure, then no answer."""
    assert best(finals) == passed_on


def _ringing(tmp_path: Path, bindings: list[Binding], outcomes: list[ForwardOutcome]) -> Harness:
    async def ring(session: CallSession) -> None:
        outcomes.append(
            await session.forward(target="201", route=None, ring_timeout=20.0, caller_id=None)
        )

    harness = Harness.create(tmp_path, plan=ring)
    harness.manager.forwarder.phones = _book(bindings)
    return harness


async def test_every_contact_rings_and_the_first_2xx_cancels_the_others(tmp_path: Path) -> None:
    """Two contacts get an INVITE each; the second answers, the first is cancelled saying
    "Call completed elsewhere"; one b-leg CDR for the phone."""
    outcomes: list[ForwardOutcome] = []
    harness = _ringing(tmp_path, [_binding(5070), _binding(5072)], outcomes)
    harness.invite("c1", number="38733100200")
    await harness.settle()
    first, second = harness.endpoint.uac.invites
    assert (first.peer.port, second.peer.port) == (5070, 5072)
    assert first.call_id == second.call_id
    harness.leg_response(first, 180)
    harness.leg_response(second, 180)
    harness.leg_response(second, 200)
    await harness.settle()
    assert harness.endpoint.uac.cancels == [first.handle]
    assert harness.endpoint.uac.cancel_headers[first.handle] == COMPLETED_ELSEWHERE
    harness.leg_response(first, 487)  # the lost branch's answer to its CANCEL: ignored
    await harness.settle()
    assert outcomes == []  # bridged: the leg lasts until one side hangs up
    call = harness.manager.calls.by_key(("invite", "c1"))
    assert call is not None and harness.media.kinds("bridge")


async def test_all_contacts_busy_is_busy(tmp_path: Path) -> None:
    """486 from one contact and 480 from the other: the leg is busy (486)."""
    outcomes: list[ForwardOutcome] = []
    harness = _ringing(tmp_path, [_binding(5070), _binding(5072)], outcomes)
    harness.invite("c1", number="38733100200")
    await harness.settle()
    first, second = harness.endpoint.uac.invites
    harness.leg_response(first, 486)
    await harness.settle()
    assert outcomes == []  # the other still rings
    harness.leg_response(second, 480)
    await harness.settle()
    assert outcomes == [ForwardOutcome(result="busy", sip_code=486)]
    (leg,) = harness.sink.records
    assert leg.leg == "b" and leg.sip_code == 486


async def test_a_phone_registered_nowhere_is_no_answer_480_without_an_invite(
    tmp_path: Path,
) -> None:
    """No binding: no INVITE, ``no_answer`` with 480, a leg CDR saying not registered."""
    outcomes: list[ForwardOutcome] = []
    harness = _ringing(tmp_path, [], outcomes)
    harness.invite("c1", number="38733100200")
    await harness.settle()
    assert harness.endpoint.uac.invites == []
    assert outcomes == [ForwardOutcome(result="no_answer", sip_code=480)]
    (leg,) = harness.sink.records
    assert leg.sip_code == 480 and leg.end_detail == "not registered"


async def test_the_ring_timeout_cancels_every_contact_without_a_reason(tmp_path: Path) -> None:
    """No answer within ring_timeout: each ringing contact gets a plain CANCEL; no_answer."""
    outcomes: list[ForwardOutcome] = []
    harness = _ringing(tmp_path, [_binding(5070), _binding(5072)], outcomes)
    harness.invite("c1", number="38733100200")
    await harness.settle()
    first, second = harness.endpoint.uac.invites
    harness.leg_response(first, 180)
    harness.leg_response(second, 180)
    harness.loop.advance(20.0)
    assert harness.endpoint.uac.cancels == [first.handle, second.handle]
    assert set(harness.endpoint.uac.cancel_headers.values()) == {()}
    harness.leg_response(first, 487)
    harness.leg_response(second, 487)
    await harness.settle()
    assert outcomes == [ForwardOutcome(result="no_answer", sip_code=487)]


async def test_the_callers_cancel_cancels_every_ringing_contact(tmp_path: Path) -> None:
    """The caller's CANCEL ends its call while two contacts ring: each gets a CANCEL (no
    Reason: nobody answered), so no phone rings on for a caller who has gone."""
    outcomes: list[ForwardOutcome] = []
    harness = _ringing(tmp_path, [_binding(5070), _binding(5072)], outcomes)
    key = harness.invite("c1", number="38733100200")
    await harness.settle()
    first, second = harness.endpoint.uac.invites
    harness.leg_response(first, 180)
    harness.deliver(InviteCancelled(key=key, rtime=harness.loop.now))
    await harness.settle()
    assert harness.endpoint.uac.cancels == [first.handle, second.handle]
    assert set(harness.endpoint.uac.cancel_headers.values()) == {()}
    (caller, phone) = sorted(harness.sink.records, key=lambda record: record.leg)
    assert caller.disposition is Disposition.CANCELLED
    assert phone.sip_code == 487
