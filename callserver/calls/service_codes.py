"""A phone dialling a service code: the change made, a confirmation prompt, then BYE.

``ServiceCodeCalls.route`` is ``dialplan.routing``'s first hook. For a call from a Centrex
phone (the session's ``subscriber``) whose Request-URI user is one of the codes of
``policy.service_codes`` (centrex.yaml's ``service_codes``), it answers the call, makes the
change in ``calls.services_store``, plays one prompt in the subscriber's language (else the
server's) and hangs up:

==============================  ==========================================================
what happened                   the phone hears
==============================  ==========================================================
a service turned on             ``service_activated``
a service turned off            ``service_deactivated``
a locked service                ``service_not_allowed`` (nothing changed)
a code or target written wrong  ``service_invalid`` (nothing changed)
``*#21#`` (read back)           ``forwarding_to`` and the target's digits,
                                ``forwarding_to_voicemail``, or ``forwarding_off``
==============================  ==========================================================

A forwarding target is checked against the subscriber's group: ``VM`` (its voicemail box), an
extension of the group (2 to 6 digits), or a number, normalised to E.164 as centrex.yaml's
targets are (``policy.numbering.e164``); the subscriber's own number or extension is refused.
``##002#`` turns every forwarding off, and is refused whole when one of them is locked.

``#31#NUMBER`` and ``*31#NUMBER`` are not answered here: the session's called number becomes
NUMBER, its ``clir`` says whether this call withholds the caller ID, and routing goes on as if
NUMBER had been dialled (``calls.originating.caller_identity``).

``*39`` (MCID) asks ``malicious`` to mark the subscriber's last incoming call, still going on
or ended within centrex.yaml's ``service_codes.mcid_window_seconds`` (a callable the server
wires; without one, or with no call to mark, the phone hears ``service_invalid``).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from datetime import datetime

import structlog

from callserver.calls.services_store import ServicesStore
from callserver.calls.session import CallSession
from callserver.config.centrex import Centrex, Subscriber
from callserver.media.prompts import Play, PlaylistItem, SayDigits
from callserver.policy.numbering import e164
from callserver.policy.service_codes import (
    FORWARDING,
    CallerIdOnce,
    Invalid,
    MaliciousCall,
    ServiceChange,
    ServiceRequest,
    parse,
)
from callserver.policy.services import VOICEMAIL

__all__ = ["ServiceCodeCalls", "check_target"]

log = structlog.get_logger("callserver.services")

ACTIVATED = (Play("service_activated"),)
DEACTIVATED = (Play("service_deactivated"),)
NOT_ALLOWED = (Play("service_not_allowed"),)
INVALID = (Play("service_invalid"),)
Values = Mapping[str, str | bool | int | None]


def check_target(centrex: Centrex, subscriber: Subscriber, dialled: str) -> str | None:
    """The forwarding target ``dialled`` names for ``subscriber`` (``VM``, an extension of its
    group, or an E.164 number), or None when it names none or the subscriber itself."""
    if dialled == VOICEMAIL:
        return VOICEMAIL
    if dialled.isdigit() and 2 <= len(dialled) <= 6:
        found = centrex.extension(subscriber.group, dialled)
        return dialled if found is not None and found is not subscriber else None
    try:
        number = e164(dialled)
    except ValueError:
        return None
    return None if number == subscriber.number else number


class ServiceCodeCalls:
    """Service codes dialled from phones; see the module docstring.

    Args:
        centrex: the groups, subscribers and codes in force.
        services: the services store the changes go to.
        malicious: marks the last incoming call of a subscriber's number at a time (MCID);
            False when it has none to mark.
    """

    def __init__(
        self,
        centrex: Callable[[], Centrex],
        services: ServicesStore,
        malicious: Callable[[str, datetime], bool] | None = None,
    ) -> None:
        self._centrex = centrex
        self._services = services
        self._malicious = malicious

    def route(self, session: CallSession) -> Awaitable[None] | None:
        """The confirmation of a service code the session's phone dialled, or None (not one:
        routing goes on, with a ``#31#``/``*31#`` prefix taken off the called number)."""
        if session.subscriber is None:
            return None
        centrex = self._centrex()
        subscriber = centrex.subscriber(session.subscriber)
        request = None if subscriber is None else parse(session.called, centrex.codes)
        if subscriber is None or request is None:
            return None
        if isinstance(request, CallerIdOnce):
            session.called = session.variables["called"] = request.number
            session.clir = request.withhold
            return None
        return self._confirm(session, subscriber, request)

    async def _confirm(
        self, session: CallSession, subscriber: Subscriber, request: ServiceRequest
    ) -> None:
        if subscriber.language is not None:
            session.language = subscriber.language
        items = self.perform(subscriber, request, session.now())
        await session.play(items, barge_in=False)
        await session.hangup(code=None, cause=None, reason="normal")

    def perform(
        self, subscriber: Subscriber, request: ServiceRequest, now: datetime
    ) -> tuple[PlaylistItem, ...]:
        """Do what ``request`` asks for ``subscriber`` at ``now`` (UTC, aware); the prompt
        that says how it went."""
        number = subscriber.number
        if isinstance(request, Invalid):
            log.info("services.invalid_code", number=number, reason=request.reason)
            return INVALID
        if isinstance(request, MaliciousCall):
            marked = self._malicious is not None and self._malicious(number, now)
            return ACTIVATED if marked else INVALID
        assert isinstance(request, ServiceChange)
        if request.procedure == "interrogate":
            return self._read_back(subscriber, request.service)
        values = self._values(subscriber, request)
        if values is None:
            log.info("services.invalid_target", number=number, target=request.target)
            return INVALID
        if not self._services.change(number, values):
            log.info("services.locked", number=number, service=request.service)
            return NOT_ALLOWED
        log.info("services.changed", number=number, service=request.service, values=dict(values))
        return ACTIVATED if request.procedure == "activate" else DEACTIVATED

    def _values(self, subscriber: Subscriber, request: ServiceChange) -> Values | None:
        service = request.service
        if service == "all_forwarding":
            return dict.fromkeys(FORWARDING)
        if service not in FORWARDING:
            return {service: request.procedure == "activate"}
        if request.procedure != "activate":
            return {service: None}
        assert request.target is not None  # the parser gives a forwarding its target
        target = check_target(self._centrex(), subscriber, request.target)
        if target is None:
            return None
        if request.seconds is None:
            return {service: target}
        return {service: target, "no_answer_seconds": request.seconds}

    def _read_back(self, subscriber: Subscriber, service: str) -> tuple[PlaylistItem, ...]:
        settings = self._services.settings_of(subscriber.number)
        value = getattr(settings, service)
        if isinstance(value, bool):
            return ACTIVATED if value else DEACTIVATED
        if value is None:
            return (Play("forwarding_off"),)
        if value == VOICEMAIL:
            return (Play("forwarding_to_voicemail"),)
        return (Play("forwarding_to"), SayDigits(str(value).lstrip("+")))
