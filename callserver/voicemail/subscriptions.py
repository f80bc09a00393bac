"""Message-summary subscriptions and their one transition table (RFC 6665, RFC 3842).

Theory of operation
-------------------
A phone that SUBSCRIBEs to its own AOR with ``Event: message-summary`` (RFC 3842 §4) makes
a :class:`Subscription`: a dialog (RFC 6665 §4.1.2.1; our To tag, its From tag, the Call-ID)
with the phone's Contact as the NOTIFYs' Request-URI, the SUBSCRIBE's Record-Route as their
route set (RFC 3261 §12.1.1), the flow it came on, and an expiry (``expires``, a deadline on
the clock of ``now``). Every change is a :class:`Change` put through :data:`TRANSITIONS`,
the one ``{(state, change): next state}`` table; a pair missing from it is a bug of ours and
raises ``LookupError``.

:class:`SubscriptionTable` holds them (pure: no I/O, ``now`` passed in): it answers which
subscriptions watch a box, which expire first, and the CSeq of each NOTIFY sent in a dialog
(RFC 3261 §12.2.1.1). ``summary_body`` is the NOTIFY body (RFC 3842 §5.2).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from enum import Enum

from callserver.sip.peer import Peer

__all__ = [
    "EVENT",
    "MEDIA_TYPE",
    "TRANSITIONS",
    "Change",
    "DialogKey",
    "State",
    "Subscription",
    "SubscriptionTable",
    "summary_body",
]

EVENT = "message-summary"
MEDIA_TYPE = "application/simple-message-summary"


class State(Enum):
    """Where a subscription is (RFC 6665 §4.1.2: active until it expires or ends)."""

    ABSENT = "absent"
    ACTIVE = "active"
    TERMINATED = "terminated"


class Change(Enum):
    """What happens to a subscription."""

    SUBSCRIBED = "subscribed"  # a SUBSCRIBE out of dialog, accepted
    REFRESHED = "refreshed"  # a SUBSCRIBE in its dialog with Expires > 0
    UNSUBSCRIBED = "unsubscribed"  # Expires: 0 (RFC 6665 §4.1.2.3)
    EXPIRED = "expired"  # its deadline passed (§4.2.2: NOTIFY terminated;reason=timeout)
    UNREACHABLE = "unreachable"  # a NOTIFY got 481 or no answer (§4.1.3)


TRANSITIONS: dict[tuple[State, Change], State] = {
    (State.ABSENT, Change.SUBSCRIBED): State.ACTIVE,
    (State.ACTIVE, Change.REFRESHED): State.ACTIVE,
    (State.ACTIVE, Change.UNSUBSCRIBED): State.TERMINATED,
    (State.ACTIVE, Change.EXPIRED): State.TERMINATED,
    (State.ACTIVE, Change.UNREACHABLE): State.TERMINATED,
}


@dataclass(frozen=True, slots=True)
class DialogKey:
    """A subscription's dialog: Call-ID, our tag (the To tag we gave), the phone's tag."""

    call_id: str
    local_tag: str
    remote_tag: str


@dataclass(frozen=True, slots=True, kw_only=True)
class Subscription:
    """One phone's subscription to a box's message summary; see the module docstring."""

    key: DialogKey
    aor: str  # the box's number
    local: str  # our address with our tag: the NOTIFYs' From
    remote: str  # the phone's From: the NOTIFYs' To
    target: str  # the phone's Contact URI: the NOTIFYs' Request-URI
    route: tuple[str, ...]
    peer: Peer
    expires: float
    cseq: int = 0  # of the last NOTIFY we sent in the dialog
    remote_cseq: int = 0  # of the phone's last SUBSCRIBE in it (RFC 3261 §12.2.2)
    state: State = State.ABSENT


@dataclass(frozen=True, slots=True, kw_only=True)
class Changed:
    """A subscription after ``change``."""

    subscription: Subscription
    change: Change


def summary_body(new: int, old: int, account: str) -> bytes:
    """The ``application/simple-message-summary`` body (RFC 3842 §5.2) for a box of ``new``
    and ``old`` (saved) voice messages; ``account`` is the box's SIP URI."""
    waiting = "yes" if new else "no"
    text = (
        f"Messages-Waiting: {waiting}\r\n"
        f"Message-Account: {account}\r\n"
        f"Voice-Message: {new}/{old}\r\n"
    )
    return text.encode("ascii")


class SubscriptionTable:
    """Every live subscription, by dialog and by box; see the module docstring."""

    def __init__(self) -> None:
        self._by_key: dict[DialogKey, Subscription] = {}

    def __len__(self) -> int:
        return len(self._by_key)

    def get(self, key: DialogKey) -> Subscription | None:
        """The live subscription of dialog ``key``, or None."""
        return self._by_key.get(key)

    def watching(self, aor: str) -> list[Subscription]:
        """The live subscriptions to the box ``aor``."""
        return [s for s in self._by_key.values() if s.aor == aor]

    def restore(self, subscriptions: list[Subscription]) -> None:
        """Take back what the store kept (start-up); each is ACTIVE."""
        for subscription in subscriptions:
            self._by_key[subscription.key] = replace(subscription, state=State.ACTIVE)

    def apply(self, subscription: Subscription, change: Change) -> Changed:
        """Put ``subscription`` (new, or a refreshed copy) through ``change``.

        Raises:
            LookupError: the table has no such transition from its state.
        """
        current = self._by_key.get(subscription.key)
        state = State.ABSENT if current is None else current.state
        after = TRANSITIONS[(state, change)]
        updated = replace(subscription, state=after)
        if after is State.ACTIVE:
            self._by_key[updated.key] = updated
        else:
            self._by_key.pop(updated.key, None)
        return Changed(subscription=updated, change=change)

    def next_cseq(self, key: DialogKey) -> Subscription | None:
        """The subscription with its CSeq advanced for one more NOTIFY, or None when gone."""
        current = self._by_key.get(key)
        if current is None:
            return None
        updated = self._by_key[key] = replace(current, cseq=current.cseq + 1)
        return updated

    def expired(self, now: float) -> list[Changed]:
        """Terminate every subscription whose deadline is not after ``now``."""
        due = [s for s in self._by_key.values() if s.expires <= now]
        return [self.apply(s, Change.EXPIRED) for s in due]

    def get_timer(self) -> float | None:
        """The earliest expiry, or None."""
        return min((s.expires for s in self._by_key.values()), default=None)
