"""Tests for the call phase table (callserver.calls.phase)."""

from __future__ import annotations

import pytest

from callserver.calls.phase import TRANSITIONS, CallPhase, CallPhaseError, check_transition


def test_every_phase_but_offered_and_ending_reaches_ended_in_one_move() -> None:
    """A call can be torn down from wherever it is once taken in; ENDED is terminal."""
    direct = {phase for phase, targets in TRANSITIONS.items() if CallPhase.ENDED in targets}
    assert direct == set(CallPhase) - {CallPhase.OFFERED, CallPhase.ENDED}
    assert TRANSITIONS[CallPhase.ENDED] == frozenset()


def test_a_call_refused_at_screening_never_leaves_offered_but_for_admitted() -> None:
    """OFFERED goes only to ADMITTED: a refused INVITE is never tracked."""
    assert TRANSITIONS[CallPhase.OFFERED] == frozenset({CallPhase.ADMITTED})


@pytest.mark.parametrize(
    ("current", "target"),
    [
        (CallPhase.ENDED, CallPhase.ANSWERED),
        (CallPhase.ANSWERED, CallPhase.RINGING),  # no 180 after our 2xx
        (CallPhase.OFFERED, CallPhase.ANSWERED),  # answered before it was taken in
        (CallPhase.ENDING, CallPhase.BRIDGED),
        (CallPhase.ADMITTED, CallPhase.ENDING),  # BYE needs a dialog
    ],
)
def test_moves_outside_the_table_raise(current: CallPhase, target: CallPhase) -> None:
    """A move the table does not hold is our bug: CallPhaseError names both phases."""
    with pytest.raises(CallPhaseError, match=f"{current.name} to {target.name}"):
        check_transition(current, target)


def test_in_dialog_and_pending_split_the_phases_of_a_live_call() -> None:
    """Once taken in, a live call either waits for our final response or has its dialog."""
    live = set(CallPhase) - {CallPhase.OFFERED, CallPhase.ENDED}
    pending = {phase for phase in live if phase.pending}
    in_dialog = {phase for phase in live if phase.in_dialog}
    assert pending == {CallPhase.ADMITTED, CallPhase.RINGING, CallPhase.EARLY}
    assert in_dialog == live - pending and not CallPhase.ENDED.in_dialog
