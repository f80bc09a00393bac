"""A forwarded leg: the UAC side of a B2BUA call (RFC 3261 §16-like, with its own dialog).

``Leg`` is what ``b2bua.Forwarder`` keeps of one leg it places for a call's ``forward`` step:
its client transaction (``handle``, one per target tried), its dialog once answered, its
stream, channel and CDR facts, and the bridge that answers both legs' in-dialog requests.
A leg to a Centrex phone rings all its registered contacts at once: ``forks`` has one client
transaction per contact and its final status (None while it rings); ``handle`` becomes the
one whose 2xx won. The ``Calls`` registry finds it by any of its handles and by dialog, and
while it rings at a phone, by the phone's number (call pickup). A leg picked up by another
phone (``calls.pickup``) is answered by that phone's call instead: ``picked``.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from callserver.calls.bridge import Bridge
from callserver.calls.call import Call
from callserver.calls.destination import Destination, Route
from callserver.calls.phones import Branch
from callserver.calls.reporting import CallFacts
from callserver.media.stream import MediaStream
from callserver.policy.limits import Grant
from callserver.sip.dialog import DialogId
from callserver.sip.headers import Address
from callserver.sip.ids import new_call_id
from callserver.sip.sdp import SessionDescription
from callserver.sip.transaction_key import TransactionKey

__all__ = ["Leg", "PickedUp", "leg_facts"]


@dataclass(slots=True, kw_only=True)
class PickedUp:
    """The answered call of the phone that picked a ringing leg up (call pickup): it takes the
    place of the leg's phones until ``over`` (set when the caller's side ends the bridge)."""

    call: Call
    subscriber: str  # the picking phone's number (E.164)
    over: asyncio.Event


@dataclass(slots=True)
class Leg:
    """One forwarded leg of the inbound call ``a``, from its INVITE to its teardown."""

    a: Call
    handle: TransactionKey | None
    stream: MediaStream
    offer: SessionDescription
    facts: CallFacts
    grant: Grant | None
    setup: asyncio.Future[int]  # the final response's status (408: timed out)
    ended: asyncio.Event
    destination: Destination | None  # None: a phone's contacts (``branches``)
    from_addr: Address
    dialog_id: DialogId | None = None
    cancelled: bool = False
    cancel_headers: tuple[tuple[str, str], ...] = ()  # the CANCEL's Reason, when it has one
    end_reason: str = "bye_sent"  # bye_received when the forwarded party hung up
    tried: int = 0  # destination targets sent an INVITE so far
    responded: bool = False  # the current target sent a response, provisional or final
    bridge: Bridge | None = None  # while bridged: the in-dialog requests of both legs
    later_routes: tuple[Route, ...] = ()  # routes to fail over to, in order
    headers: tuple[tuple[str, str], ...] = ()  # identity toward a carrier; Diversion, History-Info
    branches: tuple[Branch, ...] = ()  # a phone's registered contacts, rung at once
    forks: dict[TransactionKey | None, int | None] | None = None  # branch: final status
    picked: PickedUp | None = None  # another phone picked the ringing leg up
    transfer: asyncio.Future[Leg | None] | None = None  # the leg a REFER puts in its place
    sdp_version: int = 1  # our o= version on this leg (a leg moved by a transfer keeps it)
    detached: bool = False  # a transfer from the caller's side holds it (calls.handover)
    orphaned: bool = False  # its forward ended while it was detached: the transfer releases it

    def pending_forks(self) -> list[TransactionKey | None]:
        """The branches still ringing (none for a leg through a route)."""
        return [] if self.forks is None else [k for k, s in self.forks.items() if s is None]


def leg_facts(a: Call, target: str, now: float, inside_group: bool) -> CallFacts:
    """The CDR facts of a leg the call ``a`` places to ``target`` at ``now``: leg ``b``,
    outbound, linked to ``a``, with its caller, trunk and customer; ``inside_group`` when the
    target is a number of the caller's own Centrex group."""
    facts = CallFacts(
        call_id=new_call_id(),
        caller=a.facts.caller if a.facts else "",
        called=target,
        offered_at=now,
    )
    facts.leg, facts.linked_id, facts.direction = "b", a.call_id, "outbound"
    if a.facts is not None:
        facts.trunk, facts.customer = a.facts.trunk, a.facts.customer
        facts.inside_group = inside_group
        facts.forwarded_from = a.facts.called  # its zone surcharge (free phone abroad)
        facts.caller_e164, facts.caller_country = a.facts.caller_e164, a.facts.caller_country
    return facts
