"""Where a call is, from its INVITE to its end, and the moves allowed between those places.

Theory of operation
-------------------
Every ``Call`` is in one ``CallPhase``; ``TRANSITIONS`` is the only source of the moves
between them, in the manner of the transaction machines' tables (RFC 3261 §17):

- ``OFFERED``: the INVITE came and is being screened; a call refused here never goes further;
- ``ADMITTED``: taken in (channels, an RTP port, an SDP answer or our offer) and tracked;
- ``RINGING``: 180 Ringing sent (RFC 3261 §13.3.1.1);
- ``EARLY``: 183 Session Progress with SDP sent: early media or a refusal's announcement
  (RFC 3960);
- ``ANSWERED``: our 2xx went out, so the call has a dialog (RFC 3261 §13.3.1.4); the ACK's
  arrival is the answer time the CDR keeps, not a phase of its own;
- ``BRIDGED``: answered and relayed to a forwarded leg (back to ``ANSWERED`` when the leg ends);
- ``ENDING``: we sent BYE (RFC 3261 §15.1.1) and wait for the dialog to end; a second reason to
  hang up (a cap after an RTP timeout) may send it again, as the endpoint allows;
- ``ENDED``: torn down once; nothing leaves it.

A move not in the table is our own bug, never bad input: it raises ``CallPhaseError``.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import Enum
from typing import Final

__all__ = ["TRANSITIONS", "CallPhase", "CallPhaseError", "check_transition"]


class CallPhase(Enum):
    """Where a call is; see the module docstring."""

    OFFERED = "offered"
    ADMITTED = "admitted"
    RINGING = "ringing"
    EARLY = "early"
    ANSWERED = "answered"
    BRIDGED = "bridged"
    ENDING = "ending"
    ENDED = "ended"

    __hash__ = object.__hash__  # members are unique: identity, not Enum's hash of the name

    @property
    def in_dialog(self) -> bool:
        """True once our 2xx created the dialog and until the call ended (RFC 3261 §12.1.1)."""
        return self in _IN_DIALOG

    @property
    def pending(self) -> bool:
        """True while the INVITE still waits for our final response (RFC 3261 §13.3.1)."""
        return self in _PENDING


class CallPhaseError(RuntimeError):
    """Our own code moved a call between two phases the table does not join."""


P = CallPhase

TRANSITIONS: Final[Mapping[CallPhase, frozenset[CallPhase]]] = {
    P.OFFERED: frozenset({P.ADMITTED}),
    P.ADMITTED: frozenset({P.RINGING, P.EARLY, P.ANSWERED, P.ENDED}),
    P.RINGING: frozenset({P.RINGING, P.EARLY, P.ANSWERED, P.ENDED}),
    P.EARLY: frozenset({P.RINGING, P.ANSWERED, P.ENDED}),
    P.ANSWERED: frozenset({P.BRIDGED, P.ENDING, P.ENDED}),
    P.BRIDGED: frozenset({P.ANSWERED, P.ENDING, P.ENDED}),
    P.ENDING: frozenset({P.ENDING, P.ENDED}),
    P.ENDED: frozenset(),
}

_IN_DIALOG = frozenset({P.ANSWERED, P.BRIDGED, P.ENDING})
_PENDING = frozenset({P.ADMITTED, P.RINGING, P.EARLY})


def check_transition(current: CallPhase, target: CallPhase) -> CallPhase:
    """``target`` when ``TRANSITIONS`` allows the move from ``current``.

    Raises:
        CallPhaseError: for a move the table does not hold.
    """
    if target not in TRANSITIONS[current]:
        raise CallPhaseError(f"a call cannot go from {current.name} to {target.name}")
    return target
