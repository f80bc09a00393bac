"""How a forwarded leg rings until it settles: the caller hears it ring, the leg fails over.

Theory of operation
-------------------
``b2bua.Forwarder`` places a leg and sends its first INVITE; ``ringing`` then waits for the
leg's final status. No response at all within ``calls.forward_response_timeout``, or a 503,
sends a new INVITE to the next address of its route, if any (RFC 3263 §4.3); when a route's
addresses are done, or it answered 408 or 5xx, the next route the number has takes the leg.
The abandoned INVITE is cancelled should it answer late. No final status within
``ring_timeout`` CANCELs the leg (``no_answer``). Meanwhile ``ring_caller`` gives the caller
180 Ringing, or, when audio already flows (answered, or early media), a 425 Hz ringback tone
(ETSI TR 101 041).
"""

from __future__ import annotations

from callserver.calls.branching import cancel, send_invite
from callserver.calls.leg import Leg
from callserver.calls.leg_target import locate
from callserver.calls.phase import CallPhase
from callserver.calls.registry import Calls
from callserver.calls.services import CallServices
from callserver.media import g711
from callserver.media.tones import ringback
from callserver.sip.transaction_key import TransactionKey
from callserver.transport.resolver import SipResolver

__all__ = ["ring_caller", "ringing"]


async def ringing(
    services: CallServices, calls: Calls, resolver: SipResolver, leg: Leg, ring_timeout: float
) -> int:
    """The leg's final status: its targets' and routes' in turn, or the CANCEL's when it
    rings longer than ``ring_timeout``."""
    timer = services.loop.call_later(ring_timeout, _ring_timeout, services, leg)
    try:
        return await _attempts(services, calls, resolver, leg)
    finally:
        timer.cancel()


async def _attempts(services: CallServices, calls: Calls, resolver: SipResolver, leg: Leg) -> int:
    """The final status of the first target that gives one other than no response or 503;
    on those, the next target gets a new INVITE (RFC 3263 §4.3). When a route's targets
    are done, or it answered 408 or 5xx, the next route the number has takes the leg."""
    loop = services.loop
    while True:
        destination = leg.destination
        in_route = destination is not None and leg.tried < len(destination.targets)
        more = in_route or bool(leg.later_routes)
        handle = leg.handle
        timeout = services.live.settings.calls.forward_response_timeout
        timer = loop.call_later(timeout, _no_response, leg, handle) if more else None
        try:
            status = await leg.setup
        finally:
            if timer is not None:
                timer.cancel()
        next_target = in_route and (status == 503 or (status == 408 and not leg.responded))
        next_route = bool(leg.later_routes) and (status == 408 or 500 <= status < 600)
        if leg.cancelled or not (next_target or next_route):
            return status
        leg.a.log.info("call.forward_failover", status=status, responded=leg.responded)
        calls.leg_abandoned(handle)
        if not leg.responded:  # still trying: CANCEL it should it answer after all
            services.endpoint.uac.cancel(handle, loop.time())
        if not next_target and not await _next_route(resolver, leg):
            return status
        leg.setup, leg.responded = loop.create_future(), False
        send_invite(services, calls, leg)


async def _next_route(resolver: SipResolver, leg: Leg) -> bool:
    """Move the leg to the next of its routes that resolves; False when none does."""
    located = await locate(resolver, leg.a, leg.facts.called, leg.later_routes)
    if isinstance(located, str):
        return False
    leg.destination, leg.later_routes = located
    leg.tried = 0
    leg.a.log.info("call.forward_next_route", host=leg.destination.uri.host)
    return True


def _no_response(leg: Leg, handle: TransactionKey | None) -> None:
    if leg.handle is handle and not leg.responded and not leg.setup.done():
        leg.setup.set_result(408)


def ring_caller(services: CallServices, leg: Leg) -> None:
    """180 Ringing to an unanswered caller; the ringback tone when audio already flows
    (answered, or early media: RFC 3960 lets the sender of 183 play its own tones)."""
    a = leg.a
    session = a.session
    audio = session is not None and (session.answered or session.early_media)
    if audio and a.stream is not None:
        services.media.play(a.stream, _ringback(a.stream.codec), loop=True)
    elif services.endpoint.is_pending_invite(a.key):
        a.enter(CallPhase.RINGING)
        services.endpoint.respond(a.key, 180, services.now())
        services.wake()


def _ring_timeout(services: CallServices, leg: Leg) -> None:
    if not leg.setup.done():
        leg.cancelled = True
        cancel(services, leg)
        services.wake()


_RINGBACK: dict[str, bytes] = {}


def _ringback(codec: str) -> bytes:
    """One cadence of the ringback tone, encoded once per codec."""
    if codec not in _RINGBACK:
        _RINGBACK[codec] = g711.encode(codec, ringback())
    return _RINGBACK[codec]
