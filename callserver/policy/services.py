"""A Centrex subscriber's supplementary services: what is in force, and where a call diverts.

Theory of operation
-------------------
A subscriber's services are one immutable ``ServiceSettings``: the four forwarding targets
(unconditional, on busy, on no answer with its ring time, when not reachable), call waiting
and do-not-disturb. The operator writes the defaults in config/centrex.yaml (the group's,
then the subscriber's own on top, ``config.centrex``) together with the services a subscriber
may not change from the phone (``locks``); what a subscriber sets from the phone is kept
apart and laid over them.

A forwarding target is a number (E.164 or an extension of the subscriber's group) or
``VM``, the subscriber's own voicemail box. ``target_for`` answers which target a diversion
of a given reason takes; the reasons are RFC 5806's ``diversion-reason`` values, so the
``Diversion`` header carries them as they are.

Pure: values and functions, no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from typing import Final, Literal

__all__ = [
    "LOCKABLE",
    "NO_ANSWER_SECONDS",
    "VOICEMAIL",
    "DiversionReason",
    "Override",
    "ServiceSettings",
    "fits",
]

VOICEMAIL: Final = "VM"
"""The forwarding target that is the subscriber's own voicemail box."""

NO_ANSWER_SECONDS: Final = (5, 60)
"""The ring time before forwarding on no answer may be set between these (seconds)."""

DiversionReason = Literal["unconditional", "user-busy", "no-answer", "unavailable"]
"""Why a call diverts (RFC 5806 §4 ``diversion-reason``): CFU, CFB, CFNR, not reachable."""

LOCKABLE: Final = frozenset(
    {"forward_always", "forward_busy", "forward_no_answer", "forward_unreachable"}
    | {"call_waiting", "dnd"}
)
"""The services a group or subscriber may lock against changes from the phone."""


@dataclass(frozen=True, slots=True, kw_only=True)
class ServiceSettings:
    """One subscriber's services in force (a target: a number, an extension or ``VM``)."""

    forward_always: str | None = None
    forward_busy: str | None = None
    forward_no_answer: str | None = None
    no_answer_seconds: int = 20
    forward_unreachable: str | None = None
    call_waiting: bool = True
    dnd: bool = False

    def target_for(self, reason: DiversionReason) -> str | None:
        """Where a call diverted for ``reason`` goes, or None when that forwarding is off."""
        return {
            "unconditional": self.forward_always,
            "user-busy": self.forward_busy,
            "no-answer": self.forward_no_answer,
            "unavailable": self.forward_unreachable,
        }[reason]

    def forwarding_off(self) -> ServiceSettings:
        """These settings with every forwarding off (``##002#``)."""
        return replace(
            self,
            forward_always=None,
            forward_busy=None,
            forward_no_answer=None,
            forward_unreachable=None,
        )


_SETTINGS = frozenset(f.name for f in fields(ServiceSettings))


@dataclass(frozen=True, slots=True, kw_only=True)
class Override:
    """A setting a phone changed: its subscriber's number, the setting, the new value."""

    number: str
    service: str
    value: str | bool | int | None


def fits(service: str, value: object) -> bool:
    """Whether ``value`` is one ``service`` (a ServiceSettings name) can take."""
    if service in ("call_waiting", "dnd"):
        return isinstance(value, bool)
    if service == "no_answer_seconds":
        low, high = NO_ANSWER_SECONDS
        return type(value) is int and low <= value <= high
    return service in _SETTINGS and (value is None or isinstance(value, str))
