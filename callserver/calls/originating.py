"""Calls from a customer to the world: a Centrex phone or a PBX trunk calling out.

A call is *originating* when it comes from a customer: a trunk of a customer of
config/trunks.yaml (Business Trunking: a PBX), or a Centrex phone (its group's customer). For
such a call ``dialplan.routing`` decides, in order:

1. an extension or number of the caller's group: its phones ring (``calls.phones``);
2. a number with a dialplan of its own, or another of the operator's own numbers (a
   customer's, ``numbers`` of trunks.yaml, a Centrex block): it terminates as any inbound call
   does, through its plan or its phones;
3. anything else goes out: ``Outbound.route`` gives the session ``forward_then_end``, a
   forward to the number through the outbound routes (``calls.b2bua``: the routes for its
   prefix in order, barring, channels, the leg's CDR), and the caller is answered as that leg
   ended.

``caller_identity`` is who such a call says it is toward a carrier (``policy.cli``): a phone's
own number, a PBX's presented number when its customer owns it (else the trunk's main number),
or a number a dialplan step names; in E.164, in From and P-Asserted-Identity, anonymous with
``Privacy: id`` when the phone restricts its number (its ``clir``, or ``#31#`` dialled before
the number for this call; ``*31#`` shows it for this call: ``calls.service_codes``).

``end_as`` turns the end of a forwarded leg into the answer the caller gets, for calls out and
calls to phones alike: 486 busy (Q.850 17), 480 when nobody answered (19) or nobody is
registered (20), 403 barred (21), 503 when the leg's channels are all in use (34: its CDR and
the caller's end ``channel_limit``), else the leg's own failure.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from callserver.calls.admission import Admission
from callserver.calls.diverted import OVER_CHANNEL_LIMIT
from callserver.calls.reporting import CallFacts
from callserver.calls.session import CallSession, ForwardOutcome
from callserver.policy.cli import (
    ANONYMOUS_DISPLAY,
    ANONYMOUS_HOST,
    ANONYMOUS_USER,
    Presentation,
    presentation,
    screen_cli,
)
from callserver.policy.numbering import normalise

__all__ = ["Outbound", "caller_identity", "end_as", "forward_then_end", "leg_from"]


class Outbound:
    """Which originating calls go out; see the module docstring.

    Args:
        own_number: True for an E.164 number that is the operator's own (not its plans':
            ``dialplan.routing`` checks those first).
        ring_timeout: how long a call out may ring before it is given up, in seconds.
    """

    def __init__(
        self, own_number: Callable[[str], bool], ring_timeout: Callable[[], float]
    ) -> None:
        self._own_number = own_number
        self._ring_timeout = ring_timeout

    def route(self, session: CallSession) -> Awaitable[None] | None:
        """The call out of an originating session to a number not the operator's, or None."""
        if not session.originating:
            return None
        try:
            number = normalise(session.called)
        except ValueError:
            number = session.called  # a short code (112, 1182): the routes decide
        if not number.lstrip("+").isdigit() or self._own_number(number):
            return None  # a name (sip:service@...) is nobody's to call out to
        return forward_then_end(session, number, self._ring_timeout(), originating=True)


async def forward_then_end(
    session: CallSession, number: str, ring_timeout: float, *, originating: bool = False
) -> None:
    """Forward the call to ``number`` (our phones, or out through the routes for the caller's
    own call out: ``originating``) and end it as that leg ended (``end_as``)."""
    outcome = await session.forward(
        target=number,
        route=None,
        ring_timeout=ring_timeout,
        caller_id=None,
        originating=originating,
    )
    session.note("forward", {"target": number, "result": outcome.result})
    await end_as(session, outcome)


async def end_as(session: CallSession, outcome: ForwardOutcome) -> None:
    """Hang the caller up as the forwarded leg ended (see the module docstring)."""
    if outcome.detail is not None:
        session.note("end_detail", outcome.detail)
    if outcome.result == "answered":
        await session.hangup(code=None, cause=None, reason="normal")
    elif outcome.result == "barred":
        await session.hangup(code=403, cause=21, reason="barred")
    elif outcome.result == "busy":
        await session.hangup(code=486, cause=17, reason="normal")
    elif outcome.detail == OVER_CHANNEL_LIMIT:  # the leg's pools are full (calls.diverted)
        await session.hangup(code=503, cause=34, reason="channel_limit")
    elif outcome.result == "no_answer":
        absent = outcome.sip_code == 480  # registered nowhere, or the far end said so
        await session.hangup(code=480, cause=20 if absent else 19, reason="normal")
    else:
        code = outcome.sip_code if outcome.sip_code and outcome.sip_code >= 400 else 500
        await session.hangup(code=code, cause=None, reason="normal")


def caller_identity(
    facts: CallFacts | None, caller_id: str | None, admission: Admission, host: str
) -> Presentation | None:
    """How the originating call of ``facts`` presents its caller toward a carrier (module
    docstring), or None when it has no number to present (a PBX trunk without a main number)."""
    if facts is None:
        return None
    clir = False
    number = caller_id
    if number is None and facts.subscriber is not None:
        phone = admission.centrex.subscriber(facts.subscriber)
        number, clir = facts.subscriber, phone is not None and phone.clir
        clir = clir if facts.clir is None else facts.clir  # dialled for this call
    elif number is None and facts.trunk is not None:
        trunk = admission.table.config.trunks.get(facts.trunk)
        number = screen_cli(
            facts.caller or None,
            owned=lambda n: admission.inside_group(facts.customer, n),
            main=None if trunk is None else trunk.number,
        )
    if number is None:
        return None
    try:
        return presentation(number, clir=clir, host=host)
    except ValueError:
        return None  # a short code or a name: nothing to assert


def leg_from(
    a: CallFacts | None, caller_id: str | None, admission: Admission, host: str, leg: CallFacts
) -> tuple[str, tuple[tuple[str, str], ...]]:
    """The From header of a leg the call of ``a`` places, and the identity headers for a
    carrier: a call out (``leg.originating``) presents its caller as ``caller_identity``
    says (anonymous when it has no number it may assert: a PBX trunk without a main number
    presenting a number its customer does not own); any other leg shows the number a step
    names, else the caller's, at our ``host``."""
    if not leg.originating:
        caller = caller_id or (a.caller if a else "") or "anonymous"
        return f"<sip:{caller}@{host}>", ()
    shown = caller_identity(a, caller_id, admission, host)
    if shown is None:  # nothing the screening lets us assert: the network withholds it
        return f'"{ANONYMOUS_DISPLAY}" <sip:{ANONYMOUS_USER}@{ANONYMOUS_HOST}>', ()
    display = "" if shown.display is None else f'"{shown.display}" '
    return f"{display}<{shown.from_uri}>", shown.headers
