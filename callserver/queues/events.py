"""What the call centre tells its adapter and the queue event log: events and answers.

Every queue event names its ``queue`` and ``customer``, the ``caller`` (the call's id the
adapter joined it with), ``now`` (monotonic) and ``at`` (UTC) and, where it applies, the
``agent``, the caller's ``wait`` so far (seconds), its ``position`` (1-based, just before the
event) and a ``reason``. ``kind`` is the name the event log writes: ``join``, ``refused``,
``ring``, ``ring_noanswer``, ``ring_cancelled``, ``answer``, ``abandon``, ``leave``,
``timeout``, ``call_end``, and for callback requests ``callback_requested``,
``callback_dialled``, ``callback_answered``, ``callback_failed``, ``callback_dropped``; agent
changes are ``agents.AgentStateChanged`` (``agent``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import ClassVar

from callserver.queues.agents import AgentStateChanged
from callserver.queues.queue import CallbackTarget

__all__ = [
    "AgentRung",
    "CallbackAnswered",
    "CallbackDialled",
    "CallbackDropped",
    "CallbackFailed",
    "CallbackRequested",
    "CallerAbandoned",
    "CallerAnswered",
    "CallerJoined",
    "CallerLeft",
    "CallerRefused",
    "CallerTimedOut",
    "CentreEvent",
    "Full",
    "Joined",
    "NoAgents",
    "Offer",
    "QueueCallEnded",
    "QueueEvent",
    "RingCancelled",
    "RingNoAnswer",
]


@dataclass(frozen=True, slots=True, kw_only=True)
class QueueEvent:
    """What every queue event carries (module docstring)."""

    kind: ClassVar[str] = ""
    queue: str
    customer: str
    caller: str
    now: float
    at: datetime


@dataclass(frozen=True, slots=True, kw_only=True)
class CallerJoined(QueueEvent):
    """The caller waits at ``position``; ``estimated_wait`` in seconds (None: unknown);
    ``number`` is its telephone number when known."""

    kind: ClassVar[str] = "join"
    position: int
    priority: int
    estimated_wait: float | None
    number: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class CallerRefused(QueueEvent):
    """The caller could not join: ``reason`` is ``full`` or ``no_agents``; ``number`` is its
    telephone number when known."""

    kind: ClassVar[str] = "refused"
    reason: str
    number: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class AgentRung(QueueEvent):
    """``agent``'s phone is to ring for the caller."""

    kind: ClassVar[str] = "ring"
    agent: str
    wait: float
    position: int


@dataclass(frozen=True, slots=True, kw_only=True)
class RingNoAnswer(QueueEvent):
    """``agent`` did not answer within ``ring`` seconds (``reason`` ``timeout``), or its phone
    refused the call (the phone's reason)."""

    kind: ClassVar[str] = "ring_noanswer"
    agent: str
    wait: float
    ring: float
    reason: str


@dataclass(frozen=True, slots=True, kw_only=True)
class RingCancelled(QueueEvent):
    """``agent``'s ring for the caller is to stop: ``reason`` is ``answered_elsewhere``,
    ``abandon``, ``leave`` or ``timeout``."""

    kind: ClassVar[str] = "ring_cancelled"
    agent: str
    reason: str


@dataclass(frozen=True, slots=True, kw_only=True)
class CallerAnswered(QueueEvent):
    """``agent`` answered the caller after ``wait`` seconds, at ``position``."""

    kind: ClassVar[str] = "answer"
    agent: str
    wait: float
    position: int


@dataclass(frozen=True, slots=True, kw_only=True)
class CallerAbandoned(QueueEvent):
    """The caller hung up while waiting."""

    kind: ClassVar[str] = "abandon"
    wait: float
    position: int


@dataclass(frozen=True, slots=True, kw_only=True)
class CallerLeft(QueueEvent):
    """The caller left the queue by choice (``reason``: a key to voicemail, a callback ...)."""

    kind: ClassVar[str] = "leave"
    wait: float
    position: int
    reason: str


@dataclass(frozen=True, slots=True, kw_only=True)
class CallerTimedOut(QueueEvent):
    """The caller waited the queue's ``max_wait``: the dialplan's ``timeout`` branch."""

    kind: ClassVar[str] = "timeout"
    wait: float
    position: int


@dataclass(frozen=True, slots=True, kw_only=True)
class QueueCallEnded(QueueEvent):
    """The call ``agent`` answered ended after ``talk`` seconds; its wrap-up starts."""

    kind: ClassVar[str] = "call_end"
    agent: str
    wait: float
    talk: float


@dataclass(frozen=True, slots=True, kw_only=True)
class CallbackRequested(QueueEvent):
    """The caller asked to be called back at ``number`` after waiting ``wait`` seconds at
    ``position``: its live wait ends, the request keeps its place."""

    kind: ClassVar[str] = "callback_requested"
    number: str
    wait: float
    position: int


@dataclass(frozen=True, slots=True, kw_only=True)
class CallbackDialled(QueueEvent):
    """``agent`` answered the request's ring: ``number`` is called (``attempt``, from 1)."""

    kind: ClassVar[str] = "callback_dialled"
    agent: str
    number: str
    attempt: int
    wait: float
    position: int


@dataclass(frozen=True, slots=True, kw_only=True)
class CallbackAnswered(QueueEvent):
    """``number`` answered and talks with ``agent``; ``wait`` from the caller's join."""

    kind: ClassVar[str] = "callback_answered"
    agent: str
    number: str
    wait: float


@dataclass(frozen=True, slots=True, kw_only=True)
class CallbackFailed(QueueEvent):
    """The call to ``number`` for ``agent`` was not answered (``reason``: ``busy``,
    ``no_answer``, ``failed``, ``barred``, ``agent_hung_up``): the request waits again, or is
    dropped after it (``CallbackDropped``)."""

    kind: ClassVar[str] = "callback_failed"
    agent: str
    number: str
    attempt: int
    reason: str


@dataclass(frozen=True, slots=True, kw_only=True)
class CallbackDropped(QueueEvent):
    """The request is given up after ``attempts`` calls (``reason``: the last failure's, or
    ``attempts`` when they are used up)."""

    kind: ClassVar[str] = "callback_dropped"
    number: str
    attempts: int
    wait: float
    reason: str


CentreEvent = (
    CallerJoined
    | CallerRefused
    | AgentRung
    | RingNoAnswer
    | RingCancelled
    | CallerAnswered
    | CallerAbandoned
    | CallerLeft
    | CallerTimedOut
    | QueueCallEnded
    | CallbackRequested
    | CallbackDialled
    | CallbackAnswered
    | CallbackFailed
    | CallbackDropped
    | AgentStateChanged
)


@dataclass(frozen=True, slots=True, kw_only=True)
class Joined:
    """The caller waits at ``position``; ``estimated_wait`` seconds (None: unknown)."""

    position: int
    estimated_wait: float | None


@dataclass(frozen=True, slots=True, kw_only=True)
class Full:
    """The queue already holds its ``max_waiting`` callers: the step's ``full`` branch."""

    max_waiting: int


@dataclass(frozen=True, slots=True, kw_only=True)
class NoAgents:
    """No agent of the queue that could take the caller is logged in: ``no_agents``."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Offer:
    """Ring ``agents`` for ``caller`` of ``queue`` now (several only for ``ring_all``);
    ``callback``: the caller is a callback request (no live call), whom it calls."""

    queue: str
    customer: str
    caller: str
    agents: tuple[str, ...]
    callback: CallbackTarget | None = None
