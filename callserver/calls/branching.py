"""How a forwarded leg's INVITEs go out, and what the leg settles with.

A leg through an outbound route sends one INVITE at a time, to the next address its
destination resolved to (RFC 3263 §4.3 failover, driven by ``ringing.ringing``). A leg to a
Centrex phone sends one INVITE to each registered contact at once, each on the flow it
registered from (RFC 5626 §5.3) with its Path as Route (RFC 3327 §5.3): the first 2xx wins
and the others are cancelled with ``phones.COMPLETED_ELSEWHERE``; when every contact has
refused, the leg settles with the response a forking proxy would pass on (RFC 3261 §16.7
step 6): a 6xx, else busy, else the lowest other failure, else the no-answer kind.
"""

from __future__ import annotations

from callserver.calls.call import stream_config
from callserver.calls.leg import Leg
from callserver.calls.phones import COMPLETED_ELSEWHERE
from callserver.calls.registry import Calls
from callserver.calls.services import CallServices
from callserver.calls.session import ForwardOutcome
from callserver.sip.dialog import DialogId
from callserver.sip.events import Peer, ResponseReceived
from callserver.sip.headers import parse_address
from callserver.sip.offer_answer import NoCommonCodec, negotiated_from_answer
from callserver.sip.sdp import SdpError, parse_sdp
from callserver.sip.transaction_key import TransactionKey

__all__ = [
    "best",
    "cancel",
    "outcome_of",
    "refused",
    "ring_all",
    "send_invite",
    "settled",
    "take_response",
]


def send_invite(services: CallServices, calls: Calls, leg: Leg) -> None:
    """Send the leg's INVITE to its next target: a new client transaction each time."""
    assert leg.destination is not None
    uri = leg.destination.uri
    target = leg.destination.targets[leg.tried]
    leg.tried += 1
    handle = services.endpoint.uac.invite(
        uri,
        from_addr=leg.from_addr,
        to_addr=parse_address(f"<{uri}>"),
        peer=Peer(target.transport, target.host, target.port),
        now=services.now(),
        body=str(leg.offer).encode(),
        credentials=leg.destination.credentials,
        headers=leg.headers,
        call_id=leg.facts.call_id,
        max_forwards=leg.a.max_forwards - 1,
    )
    calls.leg_sent(leg, handle)
    leg.a.log.info(
        "call.forward_target", transport=target.transport, host=target.host, port=target.port
    )
    services.wake()


def ring_all(services: CallServices, calls: Calls, leg: Leg) -> None:
    """An INVITE to each registered contact of a phone (``leg.branches``) at once."""
    now = services.now()
    to_addr = parse_address(f"<sip:{leg.facts.called}@{services.endpoint.config.host}>")
    for branch in leg.branches:
        handle = services.endpoint.uac.invite(
            branch.uri,
            from_addr=leg.from_addr,
            to_addr=to_addr,
            peer=branch.peer,
            now=now,
            body=str(leg.offer).encode(),
            headers=(*(("Route", hop) for hop in branch.route), *leg.headers),
            call_id=leg.facts.call_id,
            max_forwards=leg.a.max_forwards - 1,
            flow=True,
        )
        calls.fork_sent(leg, handle)
    leg.a.log.info("call.ringing_contacts", contacts=len(leg.branches))
    services.wake()


def cancel(services: CallServices, leg: Leg, headers: tuple[tuple[str, str], ...] = ()) -> None:
    """CANCEL what of the leg still rings: its INVITE, or every contact not answered."""
    now = services.now()
    uac = services.endpoint.uac
    for handle in leg.pending_forks() if leg.forks is not None else [leg.handle]:
        uac.cancel(handle, now, headers)


def take_response(services: CallServices, calls: Calls, leg: Leg, event: ResponseReceived) -> None:
    """A response to one of the leg's INVITEs: settle the leg with a final one (a phone's
    first 2xx cancels the other contacts), and for a 2xx take the SDP answer to our offer and
    the dialog (RFC 3261 §13.2.2.4; an unusable answer settles as 488)."""
    response = event.response
    leg.responded = True
    status: int | None = response.status
    if leg.forks is not None and response.status >= 200 and not leg.setup.done():
        status = settled(leg, event.key, response.status)
        if status is not None and status < 300:
            leg.handle = event.key  # the contact that answered; the others lose
            cancel(services, leg, COMPLETED_ELSEWHERE)
    if status is None or status < 200 or leg.setup.done():
        return
    if status >= 300:
        leg.setup.set_result(status)
        return
    dialog = DialogId(response.call_id(), response.from_().tag or "", response.to().tag or "")
    try:
        media = negotiated_from_answer(leg.offer, parse_sdp(response.body))
    except (SdpError, NoCommonCodec) as exc:
        leg.a.log.warning("call.forward_bad_answer", error=str(exc))
        leg.setup.set_result(488)
        calls.leg_answered(leg, dialog)
        return
    services.media.configure(leg.stream, stream_config(media))
    calls.leg_answered(leg, dialog)
    leg.facts.answered_at = event.rtime  # a UAC leg is answered when its 2xx arrives
    services.reporter.answered(leg.facts)
    leg.setup.set_result(response.status)


def settled(leg: Leg, handle: TransactionKey | None, status: int) -> int | None:
    """A contact's final ``status``: what the whole leg settles with (a 2xx at once, else
    :func:`best` once every contact has answered), or None while others still ring. A leg
    through a route settles with its one status."""
    forks = leg.forks
    if forks is None:
        return status
    if handle in forks and forks[handle] is None:
        forks[handle] = status
    if status < 300:
        return status
    finals = [s for s in forks.values() if s is not None]
    return None if len(finals) < len(forks) else best(finals)


def best(finals: list[int]) -> int:
    """The failure a forking proxy passes on (RFC 3261 §16.7 step 6): a 6xx, else 486, else
    the lowest other, else the no-answer kind (487 cancelled, 408 timed out, 480)."""
    if declined := [s for s in finals if s >= 600]:
        return min(declined)
    if 486 in finals:
        return 486
    if others := [s for s in finals if s not in (408, 480, 487)]:
        return min(others)
    return next(s for s in (487, 408, 480) if s in finals)


def outcome_of(status: int, cancelled: bool) -> ForwardOutcome:
    """The outcome of a leg that failed with ``status`` (``cancelled``: by its ring timeout)."""
    if cancelled or status in (408, 480, 487):
        return ForwardOutcome(result="no_answer", sip_code=status)
    if status in (486, 600):
        return ForwardOutcome(result="busy", sip_code=status)
    return ForwardOutcome(result="failed", sip_code=status)


def refused(reason: str, code: int) -> ForwardOutcome:
    """The outcome of a leg that was never placed (``reason`` as its CDR says)."""
    if reason == "barred":
        return ForwardOutcome(result="barred", sip_code=code)
    if reason == "unavailable":  # a phone registered nowhere: as if it did not answer
        return ForwardOutcome(result="no_answer", sip_code=code)
    return ForwardOutcome(result="failed", sip_code=code)
