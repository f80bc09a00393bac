"""Tests for the forwarding decision and the diversion chain (``policy.diversion``)."""

from __future__ import annotations

import pytest

from callserver.policy.diversion import (
    MAX_DIVERSIONS,
    Chain,
    after_ringing,
    before_ringing,
    ring_time,
)
from callserver.policy.services import VOICEMAIL, ServiceSettings

A, B, C = "+38733100201", "+38733100202", "+38761200300"
HOST = "127.0.0.1"


def _chain() -> Chain:
    return Chain.of(called=A, host=HOST, diversion=(), history=())


@pytest.mark.parametrize(
    ("settings", "registered", "in_call", "expected"),
    [
        (ServiceSettings(), True, False, None),
        (ServiceSettings(forward_always=B, dnd=True), False, True, "unconditional"),
        (ServiceSettings(dnd=True), True, False, "busy"),
        (ServiceSettings(dnd=True, forward_busy=B), True, False, "user-busy"),
        (ServiceSettings(call_waiting=False), True, True, "busy"),
        (ServiceSettings(call_waiting=False, forward_busy=VOICEMAIL), True, True, "user-busy"),
        (ServiceSettings(call_waiting=True, forward_busy=B), True, True, None),
        (ServiceSettings(call_waiting=False, forward_busy=B), True, False, None),
        (ServiceSettings(forward_unreachable=C), False, False, "unavailable"),
        (ServiceSettings(forward_no_answer=C), False, False, None),
        (ServiceSettings(forward_unreachable=C), True, False, None),
    ],
)
def test_what_happens_before_the_phones_ring(
    settings: ServiceSettings, registered: bool, in_call: bool, expected: str | None
) -> None:
    """CFU first, then DND or busy without call waiting (CFB or 486), then not reachable."""
    assert before_ringing(settings, registered=registered, in_call=in_call) == expected


def test_what_happens_after_the_phones_rang() -> None:
    """Busy diverts on busy, no answer on no answer, each only when that forwarding is set."""
    both = ServiceSettings(forward_busy=B, forward_no_answer=C)
    assert after_ringing(both, "busy") == "user-busy"
    assert after_ringing(both, "no_answer") == "no-answer"
    assert after_ringing(both, "answered") is None
    assert after_ringing(both, "failed") is None
    assert after_ringing(ServiceSettings(), "busy") is None
    assert after_ringing(ServiceSettings(), "no_answer") is None


def test_the_no_answer_forwarding_sets_the_ring_time() -> None:
    """With CFNR the phones ring its no_answer_seconds, else the caller's ring timeout."""
    assert ring_time(ServiceSettings(forward_no_answer=C, no_answer_seconds=7), 30.0) == 7.0
    assert ring_time(ServiceSettings(no_answer_seconds=7), 30.0) == 30.0


def test_a_diversion_adds_diversion_and_history_info_entries() -> None:
    """The first diversion gives one Diversion entry and a History-Info child of the call's
    own entry with the RFC 4458 cause of its reason."""
    chain = _chain().diverted(by=A, to=C, reason="unconditional", host=HOST)
    headers = dict(chain.headers())
    assert headers["Diversion"] == f"<sip:{A}@{HOST}>;reason=unconditional;counter=1"
    assert headers["History-Info"] == (
        f"<sip:{A}@{HOST}>;index=1, <sip:{C}@{HOST};cause=302>;index=1.1;mp=1"
    )
    assert _chain().headers() == ()


def test_a_second_diversion_goes_on_top_and_one_level_deeper() -> None:
    """Diversion entries are newest first; the History-Info index deepens by one level."""
    chain = (
        _chain()
        .diverted(by=A, to=B, reason="user-busy", host=HOST)
        .diverted(by=B, to=C, reason="no-answer", host=HOST)
    )
    headers = dict(chain.headers())
    assert headers["Diversion"].startswith(f"<sip:{B}@{HOST}>;reason=no-answer;counter=1, ")
    assert headers["History-Info"].endswith(f"<sip:{C}@{HOST};cause=408>;index=1.1.1;mp=1.1")
    assert chain.count == 2


def test_a_diversion_on_the_phones_answer_escapes_it_as_reason_into_the_retargeted_entry() -> None:
    """The entry the phones' 486 retargeted carries Reason: SIP;cause=486 in its URI."""
    chain = _chain().diverted(by=A, to=B, reason="user-busy", host=HOST, status=486)
    history = dict(chain.headers())["History-Info"]
    assert history.startswith(f"<sip:{A}@{HOST}?Reason=SIP%3Bcause%3D486>;index=1, ")
    assert history.endswith(f"<sip:{B}@{HOST};cause=486>;index=1.1;mp=1")


def test_an_incoming_invites_entries_are_kept_and_counted() -> None:
    """The INVITE's own Diversion counters count toward the limit, its numbers toward loops,
    and its History-Info entries come first with ours below its last index."""
    chain = Chain.of(
        called=A,
        host=HOST,
        diversion=("<sip:38761999999@carrier.example>;reason=unconditional;counter=3",),
        history=("<sip:+38761999999@carrier.example>;index=1, <sip:+38733100201@x>;index=1.2",),
    )
    assert chain.count == 3
    assert not chain.allows("+38761999999")
    diverted = dict(chain.diverted(by=A, to=C, reason="unavailable", host=HOST).headers())
    assert diverted["Diversion"].endswith(
        "<sip:38761999999@carrier.example>;reason=unconditional;counter=3"
    )
    assert diverted["History-Info"].startswith("<sip:+38761999999@carrier.example>;index=1, ")
    assert diverted["History-Info"].endswith(";cause=503>;index=1.2.1;mp=1.2")


def test_incoming_diversions_count_however_they_are_written() -> None:
    """A counter of 0 still counts one; History-Info entries with a cause count when they
    say more than the Diversion header does."""
    zero = "<sip:+38761999999@carrier.example>;reason=unconditional;counter=0"
    assert Chain.of(called=A, host=HOST, diversion=(zero,) * 5, history=()).count == 5
    entries = ", ".join(f"<sip:+3876199999{n}@c;cause=302>;index=1.{n}" for n in range(6))
    chain = Chain.of(called=A, host=HOST, diversion=(), history=(entries,))
    assert chain.count == 6 and not chain.allows(C)


def test_a_chain_stops_after_five_diversions() -> None:
    """Five diversions are taken; the sixth is refused."""
    chain = _chain()
    for n in range(MAX_DIVERSIONS):
        target = f"+3873310030{n}"
        assert chain.allows(target)
        chain = chain.diverted(by=chain.numbers[-1], to=target, reason="no-answer", host=HOST)
    assert chain.count == MAX_DIVERSIONS
    assert not chain.allows("+38733100399")


def test_a_chain_refuses_a_loop_but_not_the_own_voicemail_box() -> None:
    """A number the call has already been at is a loop; ``VM`` never is."""
    chain = _chain().diverted(by=A, to=B, reason="unconditional", host=HOST)
    assert not chain.allows(A)
    assert not chain.allows(B)
    assert chain.allows(C)
    assert chain.allows(VOICEMAIL)
    assert not _chain().allows(A)


def test_unreadable_incoming_entries_are_kept_and_counted_once() -> None:
    """A Diversion value that is no address still travels on, counted as one diversion at
    most, and does not break the chain."""
    chain = Chain.of(called=A, host=HOST, diversion=("<<garbage",), history=())
    assert chain.count == 1
    assert dict(chain.diverted(by=A, to=B, reason="user-busy", host=HOST).headers())[
        "Diversion"
    ].endswith(", <<garbage")
