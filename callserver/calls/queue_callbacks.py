"""Callback requests of queue callers: taking the request, ringing the agent, calling back.

Theory of operation
-------------------
A waiting caller presses the queue step's callback key (``QueueRequest.callback_key``):
:meth:`QueueCallbacks.request` leaves a request in the caller's place in the centre
(``CallCentre.request_callback``, ``queues.callbacks``) to call the caller's number back,
presenting the number it had called; ``queue_calls`` then ends the caller's wait with the
``callback`` outcome and plays the confirmation. A caller whose number is withheld or not
known cannot be called back: it hears the step's refusal and waits on.

The request is offered to the agents in turn like a caller (``Offer.callback``). Each offered
agent's phone is rung as ``queue_calls`` rings it for a caller (``Calling.place_agent``), from
a caller side that stands for the customer, showing the step's display prefix and the number
(``Callback: +38761123456``). The first agent to answer takes the request (``answered``; the
other rings are cancelled with "Call completed elsewhere"), and the server calls the number as
the customer's own call out (``Calling.call_out``: routed, barred and rated like any outbound
call, one channel of the customer's; its CDR names the ``queue`` and the agent in
``answered_by``). Answered, the centre is told (``callback_answered``) and the agent's leg and
the number's are bridged (``Calling.join_legs``) until either hangs up. Not answered (busy, no
answer, failed; barred is not tried again), the centre is told (``callback_failed``) and puts
the request back in its place for a later try. An agent who hangs up while the number rings
cancels the call (the centre counts the attempt). Either way the agent's leg is released and
its queue call ends (``call_ended``: wrap-up).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Protocol, TypeVar

from callserver.calls.call import Call
from callserver.calls.customer_calls import CustomerCall, customer_side
from callserver.calls.leg import Leg
from callserver.calls.session import CallSession
from callserver.calls.session_host import ForwardOutcome, QueueRequest, Shown
from callserver.queues.centre import CallCentre
from callserver.queues.events import CentreEvent, Offer, RingCancelled
from callserver.queues.queue import CallbackTarget

__all__ = ["Calling", "CentreDriver", "QueueCallbacks"]

T = TypeVar("T")
_RING_SLACK = 2.0  # the leg's own ring limit beyond the centre's, which cancels it first


class CentreDriver(Protocol):
    """The server's driver of the call centre (its timer, event log and listeners)."""

    centre: CallCentre

    def moment(self) -> tuple[float, datetime]:
        """The monotonic time and the UTC time now."""

    def changed(self) -> None:
        """Called after every input: drain the events, hand the offers over, re-arm."""

    def on_event(self, listener: Callable[[CentreEvent], None]) -> None:
        """Call ``listener`` with each event the centre gives."""

    def on_offers(self, ringer: Callable[[list[Offer]], None]) -> None:
        """Call ``ringer`` with the offers of each pass."""


class Calling(Protocol):
    """How agents' phones are rung and numbers called (``b2bua.Forwarder``'s)."""

    async def place_agent(
        self, call: Call, target: str, ring_timeout: float, shown: Shown, lost: Callable[[], bool]
    ) -> Leg | None:
        """Ring ``target``'s phones for ``call``; the answered leg, or None (refused).
        ``lost``: a ring cancelled because another agent answered."""

    def release(self, leg: Leg) -> None:
        """Tear the leg down (CANCEL or BYE what of it is still up)."""

    async def call_out(
        self, request: CustomerCall, use: Callable[[Leg], Awaitable[T]]
    ) -> T | ForwardOutcome:
        """Call as the customer; ``use`` the answered leg, else how it failed."""

    async def join_legs(self, one: Leg, other: Leg) -> None:
        """Bridge two answered legs until either hangs up."""


class QueueCallbacks:
    """The callback requests' side of the calls (module docstring).

    Args:
        driver: the call centre's driver.
        calling: how the agents' phones are rung and the numbers called.
    """

    def __init__(
        self, driver: CentreDriver, calling: Calling, loop: asyncio.AbstractEventLoop
    ) -> None:
        self.driver = driver
        self.calling = calling
        self.loop = loop
        self._rings: dict[tuple[str, str], asyncio.Task[None]] = {}  # (request, agent)
        self._lost: set[tuple[str, str]] = set()  # rings another agent's answer ended
        self._calls: set[asyncio.Task[None]] = set()  # the calls back under way
        driver.on_event(self._event)

    async def request(
        self, session: CallSession, call: Call, request: QueueRequest
    ) -> float | None:
        """Leave a callback request in the waiting caller's place; the time it was made, or
        None when it was not (an anonymous caller, who heard the refusal; a caller no longer
        waiting)."""
        caller = session.caller
        name = request.config.name
        if caller.withheld or caller.e164 is None:
            call.log.info("queue.callback_refused", queue=name, reason="anonymous")
            if request.callback_refused:
                await session.play(request.callback_refused, barge_in=False)
            return None
        presented = _presented(session.called)
        display = request.callback_display
        target = CallbackTarget(number=caller.e164, caller_id=presented, display=display)
        now, at = self.driver.moment()
        if not self.driver.centre.request_callback(call.call_id, target, now, at):
            return None
        call.log.info("queue.callback_requested", queue=name, number=target.number)
        self.driver.changed()
        return now

    def offered(self, offer: Offer) -> None:
        """Ring the offer's agents for its request."""
        for agent in offer.agents:
            key = (offer.caller, agent)
            self._rings[key] = self.loop.create_task(self._ring(offer, agent))

    async def _ring(self, offer: Offer, agent: str) -> None:
        """Ring ``agent`` for the request; the first to answer calls its number back."""
        centre, target, key = self.driver.centre, offer.callback, (offer.caller, agent)
        config = centre.config_of((offer.customer, offer.queue))
        assert target is not None and config is not None
        member = next(m for m in config.agents if m.number == agent)
        ring_timeout = config.ring_timeout_of(member) + _RING_SLACK
        now, _ = self.driver.moment()
        side = customer_side(offer.customer, target.number, agent, now)
        shown = Shown(display=f"{target.display}{target.number}")
        try:
            leg = await self.calling.place_agent(
                side, agent, ring_timeout, shown, lambda: key in self._lost
            )
        finally:
            self._rings.pop(key, None)
            self._lost.discard(key)
        now, at = self.driver.moment()
        if leg is None:
            if centre.ring_failed(offer.caller, agent, "refused", now, at):
                self.driver.changed()
            return
        if not centre.answered(offer.caller, agent, now, at):
            self.calling.release(leg)  # another agent was first, or the request was dropped
            self.driver.changed()
            return
        self.driver.changed()
        task = asyncio.current_task()
        assert task is not None
        self._calls.add(task)
        try:
            await self._call_back(offer, target, agent, leg)
        finally:
            self._calls.discard(task)

    async def _call_back(self, offer: Offer, target: CallbackTarget, agent: str, leg: Leg) -> None:
        """Call the request's number for ``agent`` (its answered ``leg``) and bridge them."""
        call = CustomerCall(
            customer=offer.customer,
            caller_id=target.caller_id,
            number=target.number,
            extra={"queue": offer.queue, "answered_by": agent},
            tags={"queue": offer.queue, "agent": agent},
        )

        async def talk(answered: Leg) -> None:
            now, at = self.driver.moment()
            self.driver.centre.callback_answered(agent, now, at)
            self.driver.changed()
            try:
                await self.calling.join_legs(leg, answered)
            finally:
                self.calling.release(answered)

        dial = self.loop.create_task(self.calling.call_out(call, talk))
        hung_up = self.loop.create_task(leg.ended.wait())
        try:
            await asyncio.wait({dial, hung_up}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (dial, hung_up):
                task.cancel()  # the agent hung up first: the call back is cancelled
            await asyncio.gather(dial, hung_up, return_exceptions=True)
            self._ended(agent, leg, dial)

    def _ended(self, agent: str, leg: Leg, dial: asyncio.Task[ForwardOutcome | None]) -> None:
        """The agent's queue call is over: a failed call back puts the request back."""
        centre = self.driver.centre
        now, at = self.driver.moment()
        outcome = None if dial.cancelled() or dial.exception() else dial.result()
        if isinstance(outcome, ForwardOutcome):
            again = outcome.result != "barred"
            centre.callback_failed(agent, outcome.result, now, at, again=again)
        self.calling.release(leg)
        centre.call_ended(agent, now, at)  # a request still dialled: failed, agent_hung_up
        self.driver.changed()

    def _event(self, event: CentreEvent) -> None:
        if not isinstance(event, RingCancelled):
            return
        key = (event.caller, event.agent)
        ring = self._rings.pop(key, None)
        if ring is not None:
            if event.reason == "answered_elsewhere":
                self._lost.add(key)
            ring.cancel()  # its leg is cancelled (place_agent's cleanup)


def _presented(called: str) -> str:
    """The number a callback presents: the one the caller had called, E.164 with ``+``."""
    digits = called.lstrip("+")
    return f"+{digits}" if digits.isdigit() else called
