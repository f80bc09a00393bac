"""The binding transition table (RFC 3261 §10.3, RFC 5626 §4.2)."""

from __future__ import annotations

import itertools

import pytest

from callserver.registrar.binding import TRANSITIONS, BindingChange, BindingState, next_state


def test_every_state_and_change_transitions_or_raises() -> None:
    """Each (state, change) pair either leads where the table says or raises LookupError."""
    for state, change in itertools.product(BindingState, BindingChange):
        if (state, change) in TRANSITIONS:
            assert next_state(state, change) is TRANSITIONS[state, change]
        else:
            with pytest.raises(LookupError, match=change.value):
                next_state(state, change)


@pytest.mark.parametrize(
    ("state", "change", "after"),
    [
        (BindingState.ABSENT, BindingChange.REGISTERED, BindingState.ACTIVE),
        (BindingState.ACTIVE, BindingChange.REFRESHED, BindingState.ACTIVE),
        (BindingState.FLOW_CLOSED, BindingChange.REFRESHED, BindingState.ACTIVE),
        (BindingState.ACTIVE, BindingChange.REMOVED, BindingState.ABSENT),
        (BindingState.ACTIVE, BindingChange.EXPIRED, BindingState.ABSENT),
        (BindingState.FLOW_CLOSED, BindingChange.EXPIRED, BindingState.ABSENT),
        (BindingState.ACTIVE, BindingChange.FLOW_CLOSED, BindingState.FLOW_CLOSED),
        (BindingState.ACTIVE, BindingChange.QUALIFY_TIMED_OUT, BindingState.UNREACHABLE),
        (BindingState.UNREACHABLE, BindingChange.QUALIFY_ANSWERED, BindingState.ACTIVE),
        (BindingState.UNREACHABLE, BindingChange.REFRESHED, BindingState.ACTIVE),
        (BindingState.UNREACHABLE, BindingChange.REMOVED, BindingState.ABSENT),
        (BindingState.UNREACHABLE, BindingChange.EXPIRED, BindingState.ABSENT),
    ],
)
def test_the_table_follows_the_lifecycle(
    state: BindingState, change: BindingChange, after: BindingState
) -> None:
    """A binding is made, refreshed (also after its flow closed or its phone stopped answering
    OPTIONS), removed and expired; a timed-out OPTIONS and a later answer move it."""
    assert next_state(state, change) is after


def test_nothing_happens_to_an_absent_binding_but_registration() -> None:
    """An absent binding can be neither refreshed, removed, expired nor lose its flow."""
    allowed = {c for (s, c) in TRANSITIONS if s is BindingState.ABSENT}
    assert allowed == {BindingChange.REGISTERED}


def test_only_an_active_binding_becomes_unreachable_and_only_an_unreachable_one_answers() -> None:
    """QUALIFY_TIMED_OUT leaves only ACTIVE and QUALIFY_ANSWERED only UNREACHABLE."""
    timed_out = {s for (s, c) in TRANSITIONS if c is BindingChange.QUALIFY_TIMED_OUT}
    answered = {s for (s, c) in TRANSITIONS if c is BindingChange.QUALIFY_ANSWERED}
    assert (timed_out, answered) == ({BindingState.ACTIVE}, {BindingState.UNREACHABLE})
