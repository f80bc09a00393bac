"""A blind transfer into a number this server runs a dialplan for (a conference room, an IVR).

Theory of operation
-------------------
A transfer's target that is a number with a dialplan of its own (``hosts``: wired in app.py
to the plan set in force) is not called through the routes: the transferee is handed to that
plan here. That is possible when the transferee is the caller of a session (a call this
server answered, its plan waiting in a ``forward`` for the leg the transferor answered:
``PlanTransfers.takes``). ``hand_over`` then keeps the target for the call (``Handoff``),
sends the last NOTIFY (200: the plan has the call) and ends the transferor's leg
``transferred``; the forward returns, the leg is released (BYE, its CDR), and the session
host's ``follow`` runs the target's plan on the same session (``run``: the routing, with the
session's called number the target's) instead of what the old plan would do after its
forward. The transferee's CDR then names the target's plan (``dialplan``, and ``conference``
for a room) and carries ``transferred_from``: the Call-ID of the transferor's leg.

A transfer to a subscriber whose forwarding goes to its voicemail box (``VM``:
``calls.transfer_services``) is handed over the same way: the forwarding notes the mailbox
(``boxing``), the transfer finds it (``boxed``) and hands the call to the box (``voicemail``:
the caller's message into it) instead of a plan.

A transferee that is a leg this server placed (the phone that placed the call transfers the
far party: ``calls.handover``) cannot run a plan: a plan drives a ``CallSession``, which is
hosted on a call the server answered (its INVITE server transaction, its dialog's requests,
the media events of its stream, its CDR as leg ``a``); a placed leg has none of these (its
digits reach only the bridges, its BYE only the forwarder). Such a transfer goes where a
``forward`` step's leg to the number goes, out through the routes, and the log says why
(``call.transfer_to_plan_routed``).

A subscriber's forwarding (``calls.forwarding``) to a number with a plan here is handed over
the same way (``diverts``): the caller of a session whose forward rings the subscriber is
given to the target's plan by ``follow`` once that forward returns, its CDR carrying the
diversion (``diversion_reason``, ``diverted_from``) instead of ``transferred_from``. A
transfer's forwarding (``calls.transfer_services``) notes the plan (``diverting``) and the
transfer hands the transferee to it as to a voicemail box. A diverted caller that is a leg the
server placed goes out through the routes, and the log says why
(``call.diversion_to_plan_routed``). A plan the call was already handed to is not run again
for it (a loop): the diversion is refused as ``policy.diversion.Chain`` refuses a loop.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace

from callserver.calls.call import Call
from callserver.calls.leg import Leg
from callserver.calls.phase import CallPhase
from callserver.calls.session import CallSession, ForwardOutcome

__all__ = ["Handoff", "IntoPlan", "PlanTransfers", "Voicemail"]

Router = Callable[[CallSession], Awaitable[None] | None]
"""The run of a session's plan for its called number (``dialplan.routing.Routing.route``)."""


Voicemail = Callable[[CallSession, str], Awaitable[None]]
"""Record the caller's message into a mailbox (``voicemail.service.Voicemail.leave``)."""


IntoPlan = Callable[[Call, str, str, str], bool]
"""Hand a diverted caller to a number's plan (the call, the number, the RFC 5806 reason, the
diverting subscriber's number); False when it cannot be (a loop)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Handoff:
    """A call transferred into ``number``'s plan, or into the voicemail box ``mailbox`` (its
    subscriber's forwarding to ``VM``), replacing the leg ``transferred_from``; or diverted
    into ``number``'s plan by ``diverted_from``'s forwarding for ``diversion_reason``."""

    number: str
    transferred_from: str | None = None
    mailbox: str | None = None
    diversion_reason: str | None = None
    diverted_from: str | None = None


class PlanTransfers:
    """The transfers into this server's plans; see the module docstring.

    ``hosts`` (True for a number with a plan of its own) and ``router`` are set by app.py;
    until then no number is one.
    """

    def __init__(self) -> None:
        self.hosts: Callable[[str], bool] = lambda number: False
        self.router: Router | None = None
        self.voicemail: Voicemail | None = None  # the boxes (wired with the phones' services)
        self._pending: dict[str, Handoff] = {}
        self._boxes: dict[str, str] = {}  # call: the mailbox a transfer's forwarding chose
        self._diverted: dict[str, Handoff] = {}  # call: the plan a transfer's forwarding chose
        self._visited: dict[str, set[str]] = {}  # call: the plans diversions handed it to

    def takes(self, leg: Leg, target: str) -> bool:
        """True when the transfer of ``leg``'s far party to ``target`` runs ``target``'s plan
        here: the number has one and the transferee is a session's caller whose forward
        placed ``leg``."""
        a = leg.a
        hosted = a.session is not None and a.phase is CallPhase.BRIDGED and leg.bridge is not None
        return hosted and self.router is not None and self.hosts(target)

    def boxing(self, call: Call) -> Voicemail | None:
        """What a transfer's forwarding to ``VM`` runs for ``call``'s caller (it notes the
        mailbox for ``hand_over``), or None when there are no boxes or ``call`` is not a
        session's bridged call (the transferee of a pair a transfer joined has no session)."""
        if self.voicemail is None or call.session is None or call.phase is not CallPhase.BRIDGED:
            return None

        async def note(session: CallSession, mailbox: str) -> None:
            self._boxes[call.call_id] = mailbox

        return note

    def boxed(self, call: Call) -> bool:
        """True when a transfer's forwarding chose a voicemail box or a plan for ``call``'s
        caller."""
        return call.call_id in self._boxes or call.call_id in self._diverted

    def diverts(self, call: Call, number: str, reason: str, by: str) -> bool:
        """A forward's diversion of ``call`` to ``number``'s plan: noted for ``follow`` (True),
        or False when the call was already handed to that plan (a loop)."""
        return self._note(self._pending, call, number, reason, by)

    def diverting(self, call: Call) -> IntoPlan | None:
        """What a transfer's forwarding to a number with a plan runs for ``call``'s caller (it
        notes the plan for ``hand_over``), or None when ``call`` is not a session's bridged
        call (as ``boxing``)."""
        if call.session is None or call.phase is not CallPhase.BRIDGED:
            return None

        def note(call: Call, number: str, reason: str, by: str) -> bool:
            return self._note(self._diverted, call, number, reason, by)

        return note

    def _note(
        self, into: dict[str, Handoff], call: Call, number: str, reason: str, by: str
    ) -> bool:
        """Note in ``into`` that ``by``'s forwarding diverts ``call`` to ``number``'s plan for
        ``reason``; False (nothing noted) when the call has been handed to that plan before."""
        visited = self._visited.setdefault(call.call_id, set())
        if number in visited:
            call.log.warning("call.diversion_stopped", target=number, why="loop")
            return False
        visited.add(number)
        into[call.call_id] = Handoff(number=number, diversion_reason=reason, diverted_from=by)
        return True

    def hand_over(self, leg: Leg, target: str) -> None:
        """Give ``leg``'s call to ``target``'s plan, or to the box its forwarding chose: the
        leg ends ``transferred`` (its forward returns and releases it), then the session
        host ``follow``s."""
        box = self._boxes.pop(leg.a.call_id, None)
        diverted = self._diverted.pop(leg.a.call_id, None) or Handoff(number=target)
        handoff = replace(diverted, transferred_from=leg.facts.call_id, mailbox=box)
        self._pending[leg.a.call_id] = handoff
        leg.a.log.info("call.transferred", target=handoff.number, plan=box is None, mailbox=box)
        leg.end_reason = "transferred"
        leg.ended.set()

    def discard(self, call: Call) -> None:
        """``call`` ended: a hand-off it did not follow is dropped."""
        self._pending.pop(call.call_id, None)
        self._boxes.pop(call.call_id, None)
        self._diverted.pop(call.call_id, None)
        self._visited.pop(call.call_id, None)

    async def follow(self, call: Call, outcome: ForwardOutcome) -> ForwardOutcome:
        """After a forward of ``call`` returned ``outcome``: run the plan a transfer handed
        the call to, then report the call answered (the plan ended it); else ``outcome``."""
        handoff = self._pending.pop(call.call_id, None)
        session = call.session
        if handoff is None or session is None or self.router is None:
            return outcome
        _mark(call, handoff)
        if handoff.mailbox is not None and self.voicemail is not None:
            await self.voicemail(session, handoff.mailbox)
            return ForwardOutcome(result="answered", sip_code=200)
        session.called = session.variables["called"] = handoff.number
        run = self.router(session)
        if run is None:  # the plan was removed by a reload meanwhile
            call.log.warning("call.transfer_plan_gone", target=handoff.number)
            await session.hangup(code=None, cause=None, reason="normal")
            return outcome
        event = "call.plan_transferred" if handoff.transferred_from else "call.plan_diverted"
        call.log.info(event, target=handoff.number, dialplan=session.dialplan)
        await run
        return ForwardOutcome(result="answered", sip_code=200)


def _mark(call: Call, handoff: Handoff) -> None:
    """The caller's CDR says how it came to the plan: the transfer, the diversion, or both."""
    if call.facts is None:
        return
    extra = call.facts.extra
    if handoff.transferred_from is not None:
        extra["transferred_from"] = handoff.transferred_from
    if handoff.diverted_from is not None:
        extra["diversion_reason"] = handoff.diversion_reason
        extra["diverted_from"] = handoff.diverted_from
