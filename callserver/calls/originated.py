"""A call the server originates for a campaign: the values a campaign and the calls layer
exchange (the placing itself is ``OriginatedCalls.place``, wired in app.py).

``OriginatedRequest`` says whom to call, as whose call (the customer: its channels, barring
and rating), presenting which number, and which number's dialplan runs when it is answered;
``OriginatedResult`` is how it ended: ``answered`` (the plan ran; ``answers`` are the survey
answers it noted), ``busy`` (486/600), ``no_answer`` (no answer within ``ring_timeout``, or
480), ``barred`` (the customer may not call the number: 403 with no INVITE sent) or
``failed`` (anything else: no route, no channel, an error response).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Literal

__all__ = ["Originate", "OriginatedRequest", "OriginatedResult"]


@dataclass(frozen=True, slots=True, kw_only=True)
class OriginatedRequest:
    """Call ``number`` (E.164) as ``customer``'s call from ``caller_id``; run ``plan``'s
    dialplan on the answered call with ``variables``; ``campaign`` names it in the CDR."""

    campaign: str
    customer: str
    caller_id: str
    number: str
    plan: str
    ring_timeout: float
    variables: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))


@dataclass(frozen=True, slots=True, kw_only=True)
class OriginatedResult:
    """How an originated call ended (see the module docstring)."""

    result: Literal["answered", "busy", "no_answer", "failed", "barred"]
    sip_code: int | None = None
    answers: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))


Originate = Callable[[OriginatedRequest], Awaitable[OriginatedResult]]
"""Place an originated call and return when it is over."""
