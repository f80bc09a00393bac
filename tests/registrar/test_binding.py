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
    ],
)
def test_the_table_follows_the_lifecycle(
    state: BindingState, change: BindingChange, after: BindingState
) -> None:
    """A binding is made, refreshed (also after its flow closed), removed and expired."""
    assert next_state(state, change) is after


def test_nothing_happens_to_an_absent_binding_but_registration() -> None:
    """An absent binding can be neither refreshed, removed, expired nor lose its flow."""
    allowed = {c for (s, c) in TRANSITIONS if s is BindingState.ABSENT}
    assert allowed == {BindingChange.REGISTERED}
