"""Calls to Centrex phones: who a target names, where its phones are registered, ringing them.

A target (a called number, or what a ``forward`` step names) is a phone's when it is the E.164
number of a config/centrex.yaml subscriber, or an extension of the group the call belongs to
(the group of the called number, else of the calling phone). ``PhoneBook.contacts`` gives the
subscriber's usable bindings (``registrar.Registrar.lookup``: unexpired, on an open flow,
highest q first) as ``Branch`` values: the contact URI as Request-URI, the flow the REGISTER
came on as where to send it (RFC 5626 §5.3), the stored Path as Route (RFC 3327 §5.3).
``calls.b2bua`` rings every branch at once (RFC 3261 §16.6-like forking): the first 2xx wins,
the others are cancelled with ``Reason: SIP;cause=200;text="Call completed elsewhere"``.

A call to a subscriber's number runs no dialplan (a subscriber's number cannot have one):
``PhoneBook.route`` gives the session a forward to the number for ``calls.ring_timeout``
seconds (``originating.forward_then_end``), which then refuses the caller the way the phones
did: 486 when they were busy, 480 when none is registered or none
answered. A call from a customer may also dial an extension of its own group. Each call to
a subscriber's number is told to ``incoming`` (the last incoming call, which ``*39`` marks:
``calls.malicious``), and the callable it returns when the call ends; its forwarding and
do-not-disturb apply in ``calls.forwarding``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from callserver.calls.malicious import Received, received_of
from callserver.calls.originating import forward_then_end
from callserver.calls.session import CallSession
from callserver.config.centrex import Centrex, Subscriber
from callserver.registrar.binding import Binding
from callserver.sip.peer import Peer
from callserver.sip.uri import SipUri, parse_uri

__all__ = ["COMPLETED_ELSEWHERE", "Branch", "Incoming", "PhoneBook"]


class Incoming(Protocol):
    """MCID's: a call put through to a subscriber (``calls.malicious``)."""

    def __call__(
        self, number: str, call_id: str, received: Received, now: datetime
    ) -> Callable[[datetime], None]:
        """Note the call; returns what to call with the time it ends."""


COMPLETED_ELSEWHERE = (("Reason", 'SIP;cause=200;text="Call completed elsewhere"'),)
"""The CANCEL of the branches that lost to another's 2xx (RFC 3326 §2, RFC 3261 §16.7)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Branch:
    """One registered contact to ring: Request-URI, the flow to send on, the Route set."""

    uri: SipUri
    peer: Peer
    route: tuple[str, ...] = ()


class PhoneBook:
    """Subscribers and their registered contacts, read where they are kept in force.

    Args:
        centrex: the groups and subscribers in force (a reload replaces them).
        lookup: the usable bindings of an AOR at ``now`` (the registrar's).
        ring_timeout: how long a call to a subscriber's own number rings, in seconds.
    """

    def __init__(
        self,
        centrex: Callable[[], Centrex],
        lookup: Callable[[str, float], list[Binding]],
        ring_timeout: Callable[[], float],
    ) -> None:
        self._centrex = centrex
        self._lookup = lookup
        self._ring_timeout = ring_timeout
        self.incoming: Incoming | None = None  # MCID's

    def subscriber(self, target: str, *groups_of: str | None) -> Subscriber | None:
        """The subscriber ``target`` names: its number, or an extension of the group of the
        first of ``groups_of`` (numbers: the called one, the caller's) that has a group."""
        centrex = self._centrex()
        found = centrex.subscriber(target) if target.lstrip("+").isdigit() else None
        if found is not None or not target.isdigit():
            return found
        for number in groups_of:
            group = None if not number else centrex.group_of(number)
            if group is not None:
                return centrex.extension(group.id, target)
        return None

    def contacts(self, subscriber: Subscriber, now: float) -> tuple[Branch, ...]:
        """Where ``subscriber``'s phones are registered now, best first (none: ``()``)."""
        return tuple(_branch(b) for b in self._lookup(subscriber.number, now))

    def route(self, session: CallSession) -> Awaitable[None] | None:
        """Ring the subscriber whose number the session's call is to (or, for a call from a
        customer, whose extension in the caller's group it dialled); None when not one."""
        if session.originating:
            caller = session.caller.e164 or session.caller.raw
            subscriber = self.subscriber(session.called, caller)
        else:
            subscriber = self._centrex().subscriber(session.called)
        if subscriber is None:
            return None
        ringing = forward_then_end(session, subscriber.number, self._ring_timeout())
        invite = session.invite
        if self.incoming is None or invite is None:
            return ringing
        ended = self.incoming(
            subscriber.number, session.call_id, received_of(invite), session.now()
        )
        return _until_ended(ringing, ended, session.now)


async def _until_ended(
    call: Awaitable[None], ended: Callable[[datetime], None], now: Callable[[], datetime]
) -> None:
    try:
        await call
    finally:  # also when the caller's BYE cancels it
        ended(now())


def _branch(binding: Binding) -> Branch:
    uri = parse_uri(binding.contact)
    assert isinstance(uri, SipUri)  # the registrar keeps sip: and sips: contacts only
    return Branch(uri=uri, peer=binding.flow, route=binding.path)
