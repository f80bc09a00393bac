"""What a dialplan session and the calls layer exchange.

``SessionHost`` is the port a ``session.CallSession`` drives (``hosting.SessionHosting``
implements it): answer, ring, play, record, forward, conference, queue and hang up. It is generic in
the session it is given (``SessionHost[CallSession]``), so this module needs no import of the
session's. The values are
what the session's awaits return to the verbs: ``ForwardOutcome`` (how a forwarded leg ended),
``Collected`` (digits), ``Recorded`` (a voicemail message kept or discarded) and
``QueueOutcome`` (how a wait in a call centre queue ended, asked with a ``QueueRequest``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, Protocol, TypeVar

from callserver.calls.call_recorder import RecordedCall
from callserver.media.prompts import PlaylistItem
from callserver.media.recording_writer import RecordingMode
from callserver.media.settings import RecordingSettings
from callserver.queues.queue import QueueConfig

__all__ = [
    "AgentDisplay",
    "Collected",
    "ForwardOutcome",
    "QueueOutcome",
    "QueueRequest",
    "Recorded",
    "SessionHost",
    "Shown",
]

Session = TypeVar("Session", contravariant=True)


@dataclass(frozen=True, slots=True, kw_only=True)
class ForwardOutcome:
    """How a forwarded leg ended: ``answered`` (bridged until one side hung up) or why not;
    ``detail``: what the CDR's ``end_detail`` says of a refusal (e.g. "do not disturb")."""

    result: Literal["answered", "busy", "no_answer", "failed", "barred"]
    sip_code: int | None = None
    detail: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Collected:
    """Digits the caller entered; ``reason`` is how the entry ended."""

    digits: str
    reason: Literal["max_digits", "terminator", "timeout", "no_input"]


@dataclass(frozen=True, slots=True, kw_only=True)
class Recorded:
    """A recording kept (``path``) or discarded (None: shorter than the minimum)."""

    path: str | None
    duration: float


@dataclass(frozen=True, slots=True, kw_only=True)
class AgentDisplay:
    """What an agent's phone shows of a queue call: ``prefix`` before the caller's display
    name in From (RFC 3261 §20.20), an ``Alert-Info`` (RFC 3261 §20.4, a distinctive ring) and
    a ``Call-Info`` (RFC 3261 §20.9); None leaves each out."""

    prefix: str | None = None
    alert_info: str | None = None
    call_info: str | None = None

    def headers(self) -> tuple[tuple[str, str], ...]:
        """The extra headers of the INVITE to the agent's phone."""
        named = (("Alert-Info", self.alert_info), ("Call-Info", self.call_info))
        return tuple((name, value) for name, value in named if value)

    def shown(self, caller: str) -> Shown:
        """What the agent's phone is sent for ``caller`` (its number or name)."""
        display = None if self.prefix is None else f"{self.prefix}{caller}"
        return Shown(display=display, headers=self.headers())


@dataclass(frozen=True, slots=True, kw_only=True)
class Shown:
    """What a leg's INVITE shows the called phone: the From display name (RFC 3261 §20.20;
    None: none) and extra headers."""

    display: str | None = None
    headers: tuple[tuple[str, str], ...] = ()

    def display_name(self) -> str:
        """The display name as a quoted-string (RFC 3261 §25.1), empty without one."""
        if self.display is None:
            return ""
        escaped = self.display.replace("\\", "\\\\").replace('"', '\\"')
        return f'"{escaped}" '


Announcement = Callable[[int, float | None], Sequence[PlaylistItem]]
"""What a waiting caller hears of its place: its position and estimated wait (seconds, None
when unknown) as a playlist."""


@dataclass(frozen=True, slots=True, kw_only=True)
class QueueRequest:
    """A wait in a call centre queue, as a ``queue`` step asks for it.

    ``config`` is the queue (defined in the centre as the caller joins); ``priority`` higher
    waits ahead (VIP callers); ``skills`` the agents must have; every ``announce_every``
    seconds (None: never) the caller hears ``announcement`` of its position and estimated
    wait, over ``music`` on hold (else silence); ``leave_key`` (None: none) leaves the queue.
    ``record`` (None: not) records the caller and the agent from the answer on, in that mode,
    after ``record_announcement`` is played to the caller before it joins.
    ``callback_key`` (None: none) leaves a callback request in the caller's place: the caller
    hears ``callback_confirm``; a caller whose number is not known (anonymous) hears
    ``callback_refused`` instead and waits on. ``callback_display`` goes before the number
    on the agent's phone when the request rings it.
    """

    config: QueueConfig
    priority: int = 0
    skills: frozenset[str] = frozenset()
    announce_every: float | None = None
    announcement: Announcement | None = None
    greeting: Sequence[PlaylistItem] = ()
    music: bool = True
    leave_key: str | None = None
    display: AgentDisplay = field(default_factory=AgentDisplay)
    record: RecordingMode | None = None
    record_announcement: Sequence[PlaylistItem] = ()
    callback_key: str | None = None
    callback_confirm: Sequence[PlaylistItem] = ()
    callback_refused: Sequence[PlaylistItem] = ()
    callback_display: str = "Callback: "


@dataclass(frozen=True, slots=True, kw_only=True)
class QueueOutcome:
    """How a wait in a queue ended: ``answered`` (bridged to ``agent`` until the call ended),
    ``timeout`` (the queue's max wait), ``full``, ``no_agents``, ``left`` (the leave key),
    ``callback`` (a callback request left in the caller's place) or ``abandoned`` (the caller
    hung up); ``wait`` in seconds (0 when it never joined)."""

    result: Literal["answered", "timeout", "full", "no_agents", "left", "callback", "abandoned"]
    wait: float = 0.0
    agent: str | None = None


class SessionHost(Protocol[Session]):
    """The calls-layer operations a session uses (``hosting.SessionHosting`` provides them)."""

    def answer_session(self, session: Session, *, early: bool) -> bool:
        """Send 200 OK (or 183 with SDP when ``early``); False when the call is gone."""

    def ring_session(self, session: Session) -> None:
        """Send 180 Ringing if the INVITE is still pending."""

    def play_session(
        self, session: Session, items: Sequence[PlaylistItem], barge_in: bool, loop: bool
    ) -> None:
        """Start a playlist on the call's stream, repeated with ``loop`` (``PlaybackFinished``
        reports its end)."""

    def stop_session_playback(self, session: Session) -> None:
        """Stop the call's playback, if any."""

    def record_session(
        self, session: Session, path: Path, limits: RecordingSettings, *, keys: bool = False
    ) -> None:
        """Start recording the caller to ``path`` (``RecordingFinished`` reports its end);
        ``keys``: ``stop_session_recording`` may end it."""

    def stop_session_recording(self, session: Session) -> None:
        """End the call's recording now: its last key ended it (its tone is left out)."""

    def record_call_session(
        self, session: Session, mode: RecordingMode, customer: str | None = None
    ) -> RecordedCall | None:
        """Record the whole call from now on (``calls.call_recorder``), filed under
        ``customer`` (None: the call's); None: no call."""

    def stop_call_recording_session(self, session: Session) -> None:
        """End the whole call's recording, if one runs."""

    async def forward_session(
        self,
        session: Session,
        *,
        target: str,
        route: str | None,
        ring_timeout: float,
        caller_id: str | None,
        originating: bool = False,
    ) -> ForwardOutcome:
        """Place a forwarded leg and bridge it (``calls.b2bua``); ``originating``: the leg
        is the caller's own call out (presented and paid as the caller's)."""

    async def conference_session(
        self, session: Session, *, room: str, limit: int, tones: bool, time_limit: float | None
    ) -> bool:
        """Keep the call in conference ``room`` until it ends (``calls.conference``); False:
        the room is full."""

    async def queue_session(self, session: Session, request: QueueRequest) -> QueueOutcome:
        """Wait in a call centre queue (``calls.queue_calls``) until an agent's call ends, the
        wait ends otherwise, or the caller hangs up."""

    def hang_up_session(self, session: Session, code: int, cause: int | None, reason: str) -> None:
        """BYE an answered call, else answer the INVITE with ``code``; ``reason`` for the CDR."""
