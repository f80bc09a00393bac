"""Tests for calls from customers: which go out (``Outbound.route``) and how a caller is
answered when the leg it was forwarded to ends (``end_as``)."""

from __future__ import annotations

from collections.abc import Coroutine
from pathlib import Path

import pytest

from callserver.calls.originating import Outbound, end_as
from callserver.calls.session import CallSession, ForwardOutcome
from callserver.policy.caller import CallerId


class _Host:
    """Records the hang-ups a session asks for."""

    def __init__(self) -> None:
        self.hangups: list[tuple[int, int | None, str]] = []

    def hang_up_session(self, session: object, code: int, cause: int | None, reason: str) -> None:
        self.hangups.append((code, cause, reason))


def _session(called: str, *, originating: bool, host: object = None) -> CallSession:
    session = CallSession(
        host or _Host(),  # type: ignore[arg-type]
        call_id="c1",
        caller=CallerId(raw="38733100201", e164="38733100201"),
        called=called,
        language="bs",
        voicemail_dir=Path("/nonexistent"),
    )
    session.originating = originating
    return session


def _outbound() -> Outbound:
    return Outbound(lambda number: number == "+38733100250", lambda: 120.0)


def _closed(work: object) -> bool:
    """True for a coroutine (closed unawaited here); False for None."""
    if work is None:
        return False
    assert isinstance(work, Coroutine)
    work.close()
    return True


@pytest.mark.parametrize(
    ("called", "originating", "goes_out"),
    [
        ("+38761200300", True, True),  # another operator's mobile
        ("061200300", True, True),  # the same, dialled nationally
        ("112", True, True),  # a short code: the routes decide
        ("+38733100250", True, False),  # the operator's own
        ("service", True, False),  # a name, not a number
        ("+38761200300", False, False),  # from the network: never out
    ],
)
def test_only_an_originating_call_to_a_number_not_ours_goes_out(
    called: str, originating: bool, goes_out: bool
) -> None:
    """A customer's call to another operator's number goes out; own numbers, names and calls
    from the network do not."""
    work = _outbound().route(_session(called, originating=originating))
    assert _closed(work) is goes_out


@pytest.mark.parametrize(
    ("outcome", "answer"),
    [
        (ForwardOutcome(result="answered", sip_code=200), (480, None, "normal")),
        (ForwardOutcome(result="barred", sip_code=403), (403, 21, "barred")),
        (ForwardOutcome(result="busy", sip_code=486), (486, 17, "normal")),
        (ForwardOutcome(result="no_answer", sip_code=480), (480, 20, "normal")),
        (ForwardOutcome(result="no_answer", sip_code=487), (480, 19, "normal")),
        (ForwardOutcome(result="failed", sip_code=503), (503, None, "normal")),
        (ForwardOutcome(result="failed", sip_code=None), (500, None, "normal")),
    ],
)
async def test_the_caller_is_answered_as_the_forwarded_leg_ended(
    outcome: ForwardOutcome, answer: tuple[int, int | None, str]
) -> None:
    """busy 486/17, nobody registered 480/20, no answer 480/19, barred 403/21, else the leg's
    failure; after an answered leg a plain hang-up (BYE, or 480 if it never answered)."""
    host = _Host()
    await end_as(_session("+38761200300", originating=True, host=host), outcome)
    assert host.hangups == [answer]
