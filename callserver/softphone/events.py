"""What a softphone's SIP agent tells its session (and the session the browser)."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["AgentEvent", "CallChanged", "CallOffered", "RegistrationChanged"]


@dataclass(frozen=True, slots=True, kw_only=True)
class RegistrationChanged:
    """The agent's phone is registered (``registered``) or not, and why (``detail``)."""

    registered: bool
    detail: str


@dataclass(frozen=True, slots=True, kw_only=True)
class CallOffered:
    """A call rings the softphone: who calls (``caller``: the From's user part, ``display``:
    its display name, which a queue prefixes) and the INVITE's ``Alert-Info``/``Call-Info``."""

    call_id: str
    caller: str
    display: str | None
    alert_info: str | None
    call_info: str | None


@dataclass(frozen=True, slots=True, kw_only=True)
class CallChanged:
    """The call is now ``state``: ``talking``, ``held``, ``transferring`` or ``ended``;
    ``detail`` says why for a person."""

    call_id: str
    state: str
    detail: str


AgentEvent = RegistrationChanged | CallOffered | CallChanged
