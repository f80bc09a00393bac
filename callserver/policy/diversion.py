"""Where a call to a Centrex subscriber goes, and the diversion history it carries.

Theory of operation
-------------------
A call to a subscriber is decided in two moments, from its ``ServiceSettings``:

1. ``before_ringing``: forwarding always (CFU, ``unconditional``) first; then do-not-disturb,
   or a subscriber already in a call with call waiting off, is busy (CFB, ``user-busy``, or
   486 without it); then a subscriber with no usable registration diverts when not reachable
   (``unavailable``). Otherwise its phones ring, for ``ring_time`` seconds (the no-answer
   forwarding's own ring time when it is set).
2. ``after_ringing``: the phones answered busy (CFB, ``user-busy``) or nobody answered (CFNR,
   ``no-answer``).

Each diversion adds one entry to the call's ``Chain``: a ``Diversion`` entry (RFC 5806 §4,
the diverting number with ``reason`` and ``counter=1``, newest first) and a ``History-Info``
entry (RFC 7044 §9.2: the new target as a child of the entry before it, with ``mp`` naming
that parent, and the RFC 4458 §3 ``cause`` of the diversion in its URI). An incoming INVITE's
own entries are kept in front of ours; its diversions count toward the limit (the sum of its
``Diversion`` counters, or its ``History-Info`` entries with a ``cause``, whichever is more).
A chain takes at most ``MAX_DIVERSIONS`` diversions and never returns to a number it has
already been at (a loop): ``Chain.allows`` says whether one more may happen.

Pure: values and functions, no I/O.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Final, Literal

from callserver.policy.services import VOICEMAIL, DiversionReason, ServiceSettings
from callserver.sip.grammar import split_commas
from callserver.sip.headers import parse_address
from callserver.sip.uri import SipUri

__all__ = [
    "CAUSES",
    "MAX_DIVERSIONS",
    "Chain",
    "Refusal",
    "after_ringing",
    "before_ringing",
    "ring_time",
]

MAX_DIVERSIONS: Final = 5
"""Diversions one call may take, the incoming INVITE's ``counter`` values included."""

CAUSES: Final[dict[DiversionReason, int]] = {
    "unconditional": 302,
    "user-busy": 486,
    "no-answer": 408,
    "unavailable": 503,
}
"""The RFC 4458 §3 ``cause`` of each diversion reason (as RFC 6044 §5 maps them)."""

Refusal = Literal["busy"]
"""A subscriber that may not be rung and has no forwarding for it: the caller gets 486."""


def before_ringing(
    settings: ServiceSettings, *, registered: bool, in_call: bool
) -> DiversionReason | Refusal | None:
    """What happens before the phones ring: a diversion, ``busy``, or None (ring them)."""
    if settings.forward_always:
        return "unconditional"
    if settings.dnd or (in_call and not settings.call_waiting):
        return "user-busy" if settings.forward_busy else "busy"
    if not registered and settings.forward_unreachable:
        return "unavailable"
    return None


def after_ringing(settings: ServiceSettings, result: str) -> DiversionReason | None:
    """The diversion after the phones rang and ended with ``result`` (a ``ForwardOutcome``'s:
    ``busy``, ``no_answer``, ...), or None."""
    if result == "busy" and settings.forward_busy:
        return "user-busy"
    if result == "no_answer" and settings.forward_no_answer:
        return "no-answer"
    return None


def ring_time(settings: ServiceSettings, default: float) -> float:
    """How long the phones ring: the no-answer forwarding's time when set, else ``default``."""
    return float(settings.no_answer_seconds) if settings.forward_no_answer else default


@dataclass(frozen=True, slots=True, kw_only=True)
class Chain:
    """The diversions a call has taken (RFC 5806 and RFC 7044 entries); see the module
    docstring. ``numbers`` are where the call has been, for loop detection."""

    numbers: tuple[str, ...]
    count: int = 0
    diversion: tuple[str, ...] = ()  # Diversion entries, newest first
    history: tuple[str, ...] = ()  # History-Info entries, in index order
    last_index: str = "1"

    @classmethod
    def of(
        cls, *, called: str, host: str, diversion: Sequence[str], history: Sequence[str]
    ) -> Chain:
        """The chain of a call to ``called`` whose INVITE carried these ``Diversion`` and
        ``History-Info`` field values (unreadable entries are kept as they are, counted once)."""
        div = tuple(e for value in diversion for e in _entries(value))
        hist = tuple(e for value in history for e in _entries(value))
        numbers = {_number(e) for e in (*div, *hist)} - {None}
        count = max(sum(_counter(e) for e in div), sum(map(_diverted, hist)))
        if not hist:
            hist = (f"<{_uri(called, host)}>;index=1",)
        last = _param(hist[-1], "index") or "1"
        known = tuple(sorted(n for n in numbers if n is not None))
        return cls(
            numbers=(*known, called), count=count, diversion=div, history=hist, last_index=last
        )

    def allows(self, target: str) -> bool:
        """True when one more diversion, to ``target``, is neither over the limit nor a loop
        (the subscriber's own box, ``VM``, is never a loop)."""
        loop = target != VOICEMAIL and target in self.numbers
        return self.count < MAX_DIVERSIONS and not loop

    def diverted(
        self, *, by: str, to: str, reason: DiversionReason, host: str, status: int | None = None
    ) -> Chain:
        """The chain after ``by`` diverted the call to ``to`` for ``reason``; ``status``: the
        phones' final response that made it divert, escaped as a ``Reason`` header into the
        URI of the entry it retargets (RFC 7044 §10.2)."""
        index = f"{self.last_index}.1"
        entry = f"<{_uri(by, host)}>;reason={reason};counter=1"
        target = to if to != VOICEMAIL else by
        info = f"<{_uri(target, host)};cause={CAUSES[reason]}>;index={index};mp={self.last_index}"
        return replace(
            self,
            numbers=(*self.numbers, to),
            count=self.count + 1,
            diversion=(entry, *self.diversion),
            history=(*self.history[:-1], _with_reason(self.history[-1], status), info),
            last_index=index,
        )

    def headers(self) -> tuple[tuple[str, str], ...]:
        """The ``Diversion`` and ``History-Info`` fields of a diverted INVITE."""
        if not self.count:
            return ()
        return (("Diversion", ", ".join(self.diversion)), ("History-Info", ", ".join(self.history)))


def _with_reason(entry: str, status: int | None) -> str:
    """``entry`` with ``Reason: SIP;cause=status`` escaped into its URI (RFC 7044 §10.2),
    unless it has no status or its URI carries headers already."""
    end = entry.find(">")
    if status is None or end < 0 or "?" in entry[:end]:
        return entry
    return f"{entry[:end]}?Reason=SIP%3Bcause%3D{status}{entry[end:]}"


def _uri(number: str, host: str) -> str:
    return f"sip:{number}@{host}"


def _entries(value: str) -> list[str]:
    try:
        return split_commas(value)
    except ValueError:
        return [value.strip()] if value.strip() else []


def _number(entry: str) -> str | None:
    """The user part of an entry's URI as an E.164-looking number (``+`` and digits)."""
    try:
        uri = parse_address(entry).uri
    except ValueError:
        return None
    user = uri.user if isinstance(uri, SipUri) else None
    if not user:
        return None
    digits = user.split(";")[0]
    return digits if digits.startswith("+") else f"+{digits}" if digits.isdigit() else digits


def _param(entry: str, name: str) -> str | None:
    try:
        return parse_address(entry).param(name)
    except ValueError:
        return None


def _counter(entry: str) -> int:
    """A Diversion entry's diversions: its ``counter``, at least 1 (RFC 5806 §4)."""
    value = _param(entry, "counter")
    return max(1, int(value)) if value is not None and value.isdigit() else 1


def _diverted(entry: str) -> bool:
    """True for a History-Info entry of a diversion: its URI has an RFC 4458 ``cause``."""
    try:
        uri = parse_address(entry).uri
    except ValueError:
        return False
    return isinstance(uri, SipUri) and uri.param("cause") is not None
