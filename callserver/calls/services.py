"""What the parts of the calls layer share: the endpoint, the media engine, the operator's files.

``CallServices`` is handed to each part of the calls layer (negotiation, forwarding, bridges,
duration caps, session hosting, screening) instead of the ``CallManager``: each reaches only
the services it needs, and the manager's own operations a part needs (ending a call, refusing
one) are passed to it as plain callables. ``Provisioned`` holds what a configuration reload
replaces (the settings, the tariffs, the prompt store), so every part sees the new values
without being told.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from typing import Generic, Protocol, TypeVar, cast

from callserver.calls.admission import Admission
from callserver.calls.call import Call, answer_config
from callserver.calls.reporting import CdrReporter
from callserver.config.settings import Settings
from callserver.config.tariffs import Tariffs
from callserver.media.engine import MediaEngine
from callserver.media.hold_music import Music
from callserver.media.prompts import PromptStore
from callserver.sip.endpoint import SipEndpoint
from callserver.sip.offer_answer import AnswerConfig

__all__ = ["CallOperations", "CallServices", "EndCall", "Live", "Provisioned", "RefuseCall"]

T = TypeVar("T")


@dataclass(slots=True, kw_only=True)
class Provisioned:
    """The operator's files in force: a reload replaces them (``CallManager``'s setters)."""

    settings: Settings
    tariffs: Tariffs
    prompts: PromptStore
    music: Music | None = None  # the music on hold (None: not loaded yet, silence)


class _HasLive(Protocol):
    live: Provisioned


class Live(Generic[T]):
    """An attribute kept in its owner's ``live`` (``Provisioned``), where a reload sets it."""

    def __set_name__(self, owner: type, name: str) -> None:
        self._name = name

    def __get__(self, holder: _HasLive, kind: type | None = None) -> T:
        return cast(T, getattr(holder.live, self._name))

    def __set__(self, holder: _HasLive, value: T) -> None:
        setattr(holder.live, self._name, value)


@dataclass(frozen=True, slots=True, kw_only=True)
class CallServices:
    """The services every part of the calls layer may use; see the module docstring."""

    endpoint: SipEndpoint
    media: MediaEngine
    media_host: str  # the address our SDP gives for RTP
    admission: Admission
    reporter: CdrReporter
    loop: asyncio.AbstractEventLoop
    wake: Callable[[], None]  # send what the endpoint queued (after acting outside an event)
    live: Provisioned

    def now(self) -> float:
        """The loop's clock: the time SIP timers and media deadlines are counted in."""
        return self.loop.time()

    def answer_config(self, port: int, session_id: int = 0, version: int = 0) -> AnswerConfig:
        """How our SDP for ``port`` reads: the operator's codecs and ptime, our address, and the
        ``o=`` line's session id and version (RFC 3264 §5, §8)."""
        media = self.live.settings.media
        return answer_config(media, self.media_host, port, session_id, version)


class RefuseCall(Protocol):
    """Answer an INVITE taken in with an error; its channels go back, its CDR is written."""

    def __call__(
        self,
        call: Call,
        status: int,
        now: float,
        headers: tuple[tuple[str, str], ...] = (),
        reason: str = "rejected",
    ) -> None: ...


class EndCall(Protocol):
    """Tear a call down once: timers, media, channels, its plan, then its CDR."""

    def __call__(self, call: Call, reason: str, sip_code: int | None = None) -> None: ...


@dataclass(frozen=True, slots=True, kw_only=True)
class CallOperations:
    """The call manager's own operations a part of the layer needs, as plain callables."""

    refuse: RefuseCall
    end_call: EndCall
    send_answer: Callable[[Call, float], bool]  # 200 OK with our SDP; False: the call ended
