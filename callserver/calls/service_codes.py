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
from typing import Final

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
from callserver.policy.services import NO_ANSWER_SECONDS, VOICEMAIL

__all__ = ["SETTABLE", "ServiceCodeCalls", "check_changes", "check_target"]

log = structlog.get_logger("callserver.services")

ACTIVATED = (Play("service_activated"),)
DEACTIVATED = (Play("service_deactivated"),)
NOT_ALLOWED = (Play("service_not_allowed"),)
INVALID = (Play("service_invalid"),)
Values = Mapping[str, str | bool | int | None]

SETTABLE: Final = (*FORWARDING, "no_answer_seconds", "call_waiting", "dnd")
"""What a phone changes with its codes (``ServiceSettings`` names), so what may be set for it."""


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


def check_changes(centrex: Centrex, subscriber: Subscriber, asked: Mapping[str, object]) -> Values:
    """``asked`` (setting: value) checked as the codes check it: a forwarding is None (off)
    or a target :func:`check_target` accepts (kept as it gives it), ``no_answer_seconds`` a
    whole number in ``NO_ANSWER_SECONDS``, ``call_waiting`` and ``dnd`` true or false.

    Raises:
        ValueError: the first setting that is not one of ``SETTABLE`` or has a value it
            cannot take, in a sentence saying what it takes.
    """
    checked: dict[str, str | bool | int | None] = {}
    for name, value in asked.items():
        if name not in SETTABLE:
            raise ValueError(f"{name!r} is not a service a phone sets: {', '.join(SETTABLE)}")
        checked[name] = _checked(centrex, subscriber, name, value)
    return checked


def _checked(
    centrex: Centrex, subscriber: Subscriber, name: str, value: object
) -> str | bool | int | None:
    if name in FORWARDING:
        if value is None:
            return None
        target = check_target(centrex, subscriber, value) if isinstance(value, str) else None
        if target is None:
            raise ValueError(
                f"{name}: {value!r} is not a target: write a number, an extension of group "
                f"{subscriber.group} other than its own, {VOICEMAIL}, or null for off"
            )
        return target
    if name == "no_answer_seconds":
        low, high = NO_ANSWER_SECONDS
        if type(value) is not int or not low <= value <= high:
            raise ValueError(f"{name}: {value!r} is not a ring time: {low} to {high} seconds")
        return value
    if not isinstance(value, bool):
        raise ValueError(f"{name}: {value!r} is not true or false")
    return value


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
        """What ``request`` sets, checked by :func:`check_changes` (as the admin API's
        changes are); None when a target is refused."""
        service = request.service
        asked: dict[str, object]
        if service == "all_forwarding":
            asked = dict.fromkeys(FORWARDING)
        elif service not in FORWARDING:
            asked = {service: request.procedure == "activate"}
        elif request.procedure != "activate":
            asked = {service: None}
        else:
            asked = {service: request.target}
            if request.seconds is not None:
                asked["no_answer_seconds"] = request.seconds
        try:
            return check_changes(self._centrex(), subscriber, asked)
        except ValueError:
            return None

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
