"""What every verb module shares: its step model, its precondition, the call it drives.

A verb module (after jambonz's verbs; docs/architecture.md, "Dialplans as data") holds:

- ``name``: the key that names the verb in a step (``play: greeting``);
- ``Params``: the step's pydantic model, a ``StepParams`` whose field ``name`` is the verb's
  main argument and whose other fields are its options and branches;
- ``requires``: the ``Precondition`` the runner establishes before ``run``;
- ``prepare(params, context)`` (optional): the load-time work (time windows, number lists,
  prompt checks) whose result ``run`` gets as ``step.prepared``; it raises ``StepError``;
- ``async run(call, step) -> str | None``: drives the call and returns the next step's name,
  or None when the call is over. It is cancel-safe: a caller's BYE cancels it at any await.

``CallControl`` is the call as verbs see it; the calls layer implements it, unit tests fake it.
"""

from __future__ import annotations

import enum
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, ClassVar, Protocol

from pydantic import BaseModel, ConfigDict

from callserver.calls.b2bua import ForwardOutcome
from callserver.calls.session import Collected, QueueOutcome, QueueRequest, Recorded
from callserver.dialplan.values import PromptItem, StepName
from callserver.media.prompts import PlaylistItem
from callserver.media.recording_writer import RecordingMode
from callserver.policy.caller import CallerId

__all__ = [
    "AgentLookup",
    "CallControl",
    "Collected",
    "CompileContext",
    "Precondition",
    "QueueOutcome",
    "QueueRequest",
    "Recorded",
    "Registry",
    "Step",
    "StepError",
    "StepParams",
    "Verb",
    "present",
]


class Precondition(enum.Enum):
    """What a verb needs before it runs (jambonz's verb preconditions)."""

    NONE = "none"  # runs in any state (set, goto, hours, language by number, blacklist)
    ANSWERED = "answered"  # a 200 OK: the runner answers first when needed
    MEDIA = "media"  # audio either way: early media (183) or answered


class StepParams(BaseModel):
    """Keys every step may hold besides its verb's: ``next`` (default: the following step).

    A verb that never continues with ``next`` says why in ``next_unused``; the compiler then
    refuses a ``next`` written on it and does not fall through from it.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)
    next_unused: ClassVar[str] = ""
    next: StepName | None = None

    def targets(self) -> dict[tuple[str | int, ...], str]:
        """The steps this one may continue with, by field path (``next`` excluded)."""
        return {}

    def waits_for_caller(self) -> bool:
        """True when the step waits for the caller (digits, speech): loops through it are fine."""
        return False

    def prompts(self) -> dict[tuple[str | int, ...], list[PromptItem]]:
        """The playlists the step may play, by field path (for the load-time prompt check)."""
        return {}


def present(**playlists: list[PromptItem] | None) -> dict[tuple[str | int, ...], list[PromptItem]]:
    """The playlists given, by field name (a ``prompts()`` helper)."""
    return {(name,): items for name, items in playlists.items() if items}


class StepError(ValueError):
    """A step's load-time check failed; ``problems`` pairs a field path below the step (e.g.
    ``("open", "mon-fri")``) with its message, one pair for each mistake found."""

    def __init__(self, path: tuple[str | int, ...], message: str) -> None:
        super().__init__(message)
        self.problems: list[tuple[tuple[str | int, ...], str]] = [(path, message)]

    @classmethod
    def many(cls, problems: list[tuple[tuple[str | int, ...], str]]) -> StepError:
        """One error carrying several problems."""
        error = cls(*problems[0])
        error.problems = list(problems)
        return error


@dataclass(frozen=True, slots=True, kw_only=True)
class CompileContext:
    """What load-time preparation may consult: defaults of the file and the server."""

    timezone: str
    source: str
    routes: frozenset[str] | None = None  # config/trunks.yaml's outbound routes (None: unchecked)
    number: str = ""  # the plan's number (its file name: E.164 digits, or "default")
    agents: AgentLookup | None = None  # config/centrex.yaml's subscribers (None: unchecked)


class AgentLookup(Protocol):
    """Who a queue step's agent is: an extension or subscriber number as written, of the
    Centrex group of the plan's number."""

    def __call__(self, plan: str, written: str) -> tuple[str, str]:
        """The customer and the agent's E.164 number.

        Raises:
            ValueError: why ``written`` is not a subscriber of the plan's customer.
        """


@dataclass(frozen=True, slots=True, kw_only=True)
class Step:
    """One compiled step: its verb, its validated params, the step after it and prepared data."""

    name: str
    verb: str
    params: StepParams
    next: str | None
    prepared: object = None
    line: int = 0


class CallControl(Protocol):
    """The call as verbs drive it (implemented by the calls layer; faked in unit tests)."""

    caller: CallerId
    called: str
    language: str
    variables: dict[str, str]

    @property
    def answered(self) -> bool:
        """True after the 200 OK."""

    @property
    def early_media(self) -> bool:
        """True while a 183 with SDP carries audio before any answer."""

    def now(self) -> datetime:
        """The current time, UTC and aware."""

    def since_answer(self) -> float | None:
        """Seconds since the 200 OK was sent; None before it."""

    async def ring(self) -> None:
        """Send 180 Ringing (RFC 3261 §21.1.2) on an unanswered call."""

    async def pause(self, seconds: float) -> None:
        """Wait ``seconds`` with nothing sent (the call's playback goes on)."""

    async def answer(self, *, early: bool = False) -> None:
        """Answer with 200 OK, or with 183 Session Progress and SDP when ``early``."""

    async def play(
        self, items: Sequence[PlaylistItem], *, barge_in: bool, loop: bool = False
    ) -> str | None:
        """Play a playlist (from its start again at its end with ``loop``); with
        ``barge_in`` a digit stops it and is returned (and queued)."""

    async def collect(
        self,
        *,
        max_digits: int,
        first_timeout: float,
        digit_timeout: float,
        terminator: str | None,
        complete: Callable[[str], bool] | None = None,
    ) -> Collected:
        """Collect digits (already typed ones first) until max, terminator, a timeout, or
        ``complete`` says the entry so far is whole."""

    async def record(
        self,
        *,
        mailbox: str,
        max_length: float,
        silence_end: float,
        min_length: float,
        stop_keys: str = "",
    ) -> Recorded:
        """Record the caller into ``mailbox`` (a voicemail message with its metadata); one of
        ``stop_keys`` ends it, its tone left out of the message."""

    async def forward(
        self, *, target: str, route: str | None, ring_timeout: float, caller_id: str | None
    ) -> ForwardOutcome:
        """Place a second leg to ``target`` and bridge it; returns when it ends or fails."""

    async def conference(
        self, *, room: str, limit: int, tones: bool, time_limit: float | None = None
    ) -> bool:
        """Join conference ``room`` (at most ``limit`` participants; join and leave tones with
        ``tones``) and stay until the call ends or ``time_limit`` s; False: the room is full."""

    async def record_call(
        self, *, mode: RecordingMode, announcement: Sequence[PlaylistItem] = ()
    ) -> bool:
        """Record the whole call from now on (caller and other party, ``mode`` mixed or
        stereo) after ``announcement``; False: the call ended first."""

    def stop_call_recording(self) -> None:
        """End the whole call's recording."""

    async def queue(self, request: QueueRequest) -> QueueOutcome:
        """Wait in a call centre queue, hearing music and announcements, until an agent's
        call ends, the wait ends otherwise (timeout, full, no agents, the leave key) or the
        caller hangs up."""

    async def hangup(self, *, code: int | None, cause: int | None, reason: str) -> None:
        """End the call: BYE when answered, else a final ``code`` (None: 480); ``reason``
        goes to the CDR. A second hangup does nothing."""

    def note(self, key: str, value: object) -> None:
        """Record a fact for the CDR (step visited, digits, survey result, voicemail path)."""


Prepare = Callable[[Any, CompileContext], object]
Run = Callable[[CallControl, Step], Awaitable[str | None]]


@dataclass(frozen=True, slots=True, kw_only=True)
class Verb:
    """A verb module's entry in the registry (``verbs/__init__.py``)."""

    name: str
    params: type[StepParams]
    requires: Precondition
    run: Run
    prepare: Prepare | None = None


Registry = Mapping[str, Verb]
