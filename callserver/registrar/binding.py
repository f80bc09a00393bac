"""Bindings and their one transition table (RFC 3261 §10.3, RFC 5626 §6).

Theory of operation
-------------------
A :class:`Binding` ties one contact URI to an address-of-record until ``expires`` (a monotonic
deadline), with the Call-ID and CSeq of the REGISTER that last wrote it (RFC 3261 §10.3 step
7), its q-value, the Path it came through (RFC 3327) and the *flow* it came on (RFC 5626 §5.2:
transport, source address and port, and the connection of a stream transport).

A binding is in one :class:`BindingState`: ``ABSENT``, ``ACTIVE``, ``FLOW_CLOSED`` (its TCP
connection is gone, so requests can no longer reach the phone until it registers again, RFC
5626 §4.2) or ``UNREACHABLE`` (a UDP binding whose OPTIONS qualify timed out, RFC 3261 §11 and
§17.1.2.2 Timer F). An unreachable binding is kept until it expires, is removed, or comes back
to ``ACTIVE``: when the phone registers again or answers a later OPTIONS.

In a cluster a binding may have been written by another node (``node`` names it): this node
holds a copy, which the registrar replaces when that node's change arrives
(:meth:`callserver.registrar.registrar.Registrar.changed_elsewhere`), not through the table.

Every change is a :class:`BindingChange` put through :data:`TRANSITIONS`, the one
``{(state, change): next state}`` table; a pair missing from it is a bug of ours and raises
``LookupError`` (the registrar decides changes, never the peer directly).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from callserver.sip.peer import Peer

__all__ = [
    "TRANSITIONS",
    "Binding",
    "BindingChange",
    "BindingState",
    "Changed",
    "next_state",
]


class BindingState(Enum):
    """Where a binding is (RFC 3261 §10.3; FLOW_CLOSED from RFC 5626 §4.2; UNREACHABLE when
    its OPTIONS qualify timed out, RFC 3261 §11)."""

    ABSENT = "absent"
    ACTIVE = "active"
    FLOW_CLOSED = "flow_closed"
    UNREACHABLE = "unreachable"


class BindingChange(Enum):
    """What happens to a binding."""

    REGISTERED = "registered"  # a new contact for the AOR
    REFRESHED = "refreshed"  # the same contact again: expiry, CSeq, flow renewed
    REMOVED = "removed"  # Expires: 0 for it, or '*'
    EXPIRED = "expired"  # its deadline passed
    FLOW_CLOSED = "flow_closed"  # its TCP connection closed
    QUALIFY_TIMED_OUT = "qualify_timed_out"  # no response to its OPTIONS before Timer F
    QUALIFY_ANSWERED = "qualify_answered"  # an unreachable phone answered an OPTIONS again


TRANSITIONS: dict[tuple[BindingState, BindingChange], BindingState] = {
    (BindingState.ABSENT, BindingChange.REGISTERED): BindingState.ACTIVE,
    (BindingState.ACTIVE, BindingChange.REFRESHED): BindingState.ACTIVE,
    (BindingState.FLOW_CLOSED, BindingChange.REFRESHED): BindingState.ACTIVE,
    (BindingState.ACTIVE, BindingChange.REMOVED): BindingState.ABSENT,
    (BindingState.FLOW_CLOSED, BindingChange.REMOVED): BindingState.ABSENT,
    (BindingState.ACTIVE, BindingChange.EXPIRED): BindingState.ABSENT,
    (BindingState.FLOW_CLOSED, BindingChange.EXPIRED): BindingState.ABSENT,
    (BindingState.ACTIVE, BindingChange.FLOW_CLOSED): BindingState.FLOW_CLOSED,
    (BindingState.ACTIVE, BindingChange.QUALIFY_TIMED_OUT): BindingState.UNREACHABLE,
    (BindingState.UNREACHABLE, BindingChange.QUALIFY_ANSWERED): BindingState.ACTIVE,
    (BindingState.UNREACHABLE, BindingChange.REFRESHED): BindingState.ACTIVE,
    (BindingState.UNREACHABLE, BindingChange.REMOVED): BindingState.ABSENT,
    (BindingState.UNREACHABLE, BindingChange.EXPIRED): BindingState.ABSENT,
}


def next_state(state: BindingState, change: BindingChange) -> BindingState:
    """The state ``change`` leads to from ``state``.

    Raises:
        LookupError: the pair is not in :data:`TRANSITIONS` (our own bug).
    """
    try:
        return TRANSITIONS[state, change]
    except KeyError:
        raise LookupError(f"binding change {change.value} from {state.value}") from None


@dataclass(frozen=True, slots=True, kw_only=True)
class Binding:
    """One contact of an address-of-record (RFC 3261 §10.3, RFC 3327 §5.3, RFC 5626 §6).

    ``contact`` is the contact URI as registered, ``expires`` an absolute monotonic deadline,
    ``flow`` where the REGISTER came from; ``instance`` and ``reg_id`` are RFC 5626's
    ``+sip.instance`` and ``reg-id`` Contact parameters when given; ``user_agent`` the
    User-Agent of the REGISTER that last wrote it; ``node`` the cluster node that received
    that REGISTER when it was another (None: this node), which alone qualifies it.
    """

    aor: str
    contact: str
    expires: float
    q: float | None
    call_id: str
    cseq: int
    flow: Peer
    path: tuple[str, ...] = ()
    instance: str | None = None
    reg_id: int | None = None
    state: BindingState = BindingState.ACTIVE
    user_agent: str | None = None  # the REGISTER's User-Agent (RFC 3261 §20.41)
    node: str | None = None  # the cluster node that took its REGISTER, when not this one

    @property
    def usable(self) -> bool:
        """Requests can reach the phone through it: active (its flow open, its phone answering
        OPTIONS when qualified)."""
        return self.state is BindingState.ACTIVE


@dataclass(frozen=True, slots=True, kw_only=True)
class Changed:
    """``binding`` went through ``change``; it carries its new state."""

    change: BindingChange
    binding: Binding
