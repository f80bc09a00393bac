"""One line of the queue event log: what happened to a waiting caller or to an agent, and when.

A ``QueueLogRecord`` is one JSON object a line, with the keys ``at``, ``kind``, ``queue``,
``customer``, ``call_id``, ``caller``, ``agent``, ``position``, ``wait``, ``reason`` and
``uuid`` (unknown values are null). ``at`` is a UTC stamp to the millisecond, as the CDR's
(``YYYY-MM-DDTHH:MM:SS.mmmZ``); ``wait`` is seconds (milliseconds kept).

Caller events (``join`` ... ``no_agents``) name the queue and the caller's Call-ID; those that
end a wait (``answer``, ``abandon``, ``timeout``, ``leave``) carry the wait, the seconds from
the caller's ``join``; the rings (``ring``, ``ring_noanswer``, ``ring_cancelled``) name the
agent, and a cancelled ring its reason (``answered_elsewhere``, ``abandon``, ``leave``,
``timeout``, ``callback``). A callback request (``callback_requested`` ...
``callback_dropped``) names the number to call in ``caller``; its ``callback_requested`` ends
the live wait (with the wait), its calls name the agent, a failure or a drop its reason.
Agent events (``login`` ... ``call_end``) name the agent; a pause names its reason code, or
none (null) when the agent paused without one; the call events and wrap-up name the queue and
the Call-ID of the call.
``from_json`` checks all of that and raises ``ValueError`` with one sentence, so a reader can
report a bad line by file and line and go on.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Protocol

from callserver.cdr.stamps import parse_stamp, utc_stamp

__all__ = [
    "AGENT_EVENTS",
    "CALLBACK_EVENTS",
    "CALLER_EVENTS",
    "WAIT_ENDS",
    "QueueEventKind",
    "QueueEventSink",
    "QueueLogRecord",
]


class QueueEventKind(StrEnum):
    """What a queue log line records."""

    JOIN = "join"  # the caller entered the queue
    RING = "ring"  # an agent's phone rings for the caller
    RING_NOANSWER = "ring_noanswer"  # the agent's ring timeout passed, or its phone refused
    RING_CANCELLED = "ring_cancelled"  # the ring stopped: answered elsewhere, the caller gone
    ANSWER = "answer"  # an agent answered: the wait ends
    ABANDON = "abandon"  # the caller hung up while waiting
    TRANSFER = "transfer"  # the agent transferred the answered call
    LEAVE = "leave"  # the caller pressed the key to leave (voicemail, callback)
    TIMEOUT = "timeout"  # the queue's maximum wait passed
    FULL = "full"  # refused: the queue held its maximum of callers
    NO_AGENTS = "no_agents"  # refused: no agent logged in
    LOGIN = "login"
    LOGOUT = "logout"
    PAUSE = "pause"
    UNPAUSE = "unpause"
    WRAPUP_START = "wrapup_start"
    WRAPUP_END = "wrapup_end"
    CALL_START = "call_start"  # the agent's talk time starts
    CALL_END = "call_end"
    CALLBACK_REQUESTED = "callback_requested"  # the caller's key: its live wait ends
    CALLBACK_DIALLED = "callback_dialled"  # an agent took the request: its number is called
    CALLBACK_ANSWERED = "callback_answered"  # the number answered: it talks with the agent
    CALLBACK_FAILED = "callback_failed"  # busy, no answer ...: tried again later, or dropped
    CALLBACK_DROPPED = "callback_dropped"  # the request is given up


K = QueueEventKind
CALLBACK_EVENTS = frozenset(
    {K.CALLBACK_REQUESTED, K.CALLBACK_DIALLED, K.CALLBACK_ANSWERED, K.CALLBACK_FAILED}
    | {K.CALLBACK_DROPPED}
)
CALLER_EVENTS = (
    frozenset(
        {K.JOIN, K.RING, K.RING_NOANSWER, K.RING_CANCELLED, K.ANSWER, K.ABANDON, K.TRANSFER}
        | {K.LEAVE, K.TIMEOUT, K.FULL, K.NO_AGENTS}
    )
    | CALLBACK_EVENTS
)
AGENT_EVENTS = frozenset(K) - CALLER_EVENTS
WAIT_ENDS = frozenset({K.ANSWER, K.ABANDON, K.TIMEOUT, K.LEAVE, K.CALLBACK_REQUESTED})
_NEEDS_AGENT = AGENT_EVENTS | {K.RING, K.RING_NOANSWER, K.RING_CANCELLED, K.ANSWER, K.TRANSFER}
_NEEDS_AGENT |= {K.CALLBACK_DIALLED, K.CALLBACK_ANSWERED, K.CALLBACK_FAILED}
_NEEDS_CALL = CALLER_EVENTS | {K.CALL_START, K.CALL_END, K.WRAPUP_START, K.WRAPUP_END}
_TEXT_FIELDS = ("queue", "customer", "call_id", "caller", "agent", "reason", "uuid")
_KINDS = {kind.value: kind for kind in QueueEventKind}
_KEYS = frozenset({"at", "kind", "position", "wait", *_TEXT_FIELDS})


@dataclass(frozen=True, slots=True, kw_only=True)
class QueueLogRecord:
    """One queue event (see the module docstring for which fields each kind needs).

    Raises:
        ValueError: a naive ``at``, a field a kind needs left out, a negative wait or position.
    """

    at: datetime
    kind: QueueEventKind
    customer: str
    uuid: str
    queue: str | None = None
    call_id: str | None = None
    caller: str | None = None
    agent: str | None = None
    position: int | None = None
    wait: float | None = None
    reason: str | None = None

    def __post_init__(self) -> None:
        if self.at.tzinfo is None:
            raise ValueError(f"at {self.at.isoformat()} has no time zone")
        moment = self.at.astimezone(UTC)
        object.__setattr__(
            self, "at", moment.replace(microsecond=moment.microsecond // 1000 * 1000)
        )
        object.__setattr__(self, "kind", QueueEventKind(self.kind))
        for missing in self._missing():
            raise ValueError(f"the {self.kind.value} event has no {missing}")
        if self.wait is not None:
            if not math.isfinite(self.wait) or self.wait < 0:
                raise ValueError(f"wait {self.wait!r} is not 0 or more seconds")
            object.__setattr__(self, "wait", round(float(self.wait), 3))
        if self.position is not None and self.position < 1:
            raise ValueError(f"position {self.position} is not 1 or more")

    def _missing(self) -> list[str]:
        needs = {"customer": True, "uuid": True}
        needs["queue"] = self.kind in _NEEDS_CALL
        needs["call_id"] = self.kind in _NEEDS_CALL
        needs["agent"] = self.kind in _NEEDS_AGENT
        needs["wait"] = self.kind in WAIT_ENDS
        needs["reason"] = self.kind in (K.RING_CANCELLED, K.CALLBACK_FAILED, K.CALLBACK_DROPPED)
        needs["caller"] = self.kind in CALLBACK_EVENTS
        # A wait of 0 s is a wait (a caller who hung up as it joined); "" names nothing.
        return [
            name for name, needed in needs.items() if needed and getattr(self, name) in ("", None)
        ]

    @property
    def stamp(self) -> str:
        """``at`` as a UTC stamp, ``YYYY-MM-DDTHH:MM:SS.mmmZ``."""
        return utc_stamp(self.at)

    def to_json(self) -> str:
        """One compact ASCII JSON line (no newline) with every key, nulls included."""
        data: dict[str, object] = {"at": self.stamp, "kind": self.kind.value}
        data |= {name: getattr(self, name) for name in (*_TEXT_FIELDS, "position", "wait")}
        return json.dumps(data, separators=(",", ":"))  # ASCII: any str encodes, even a surrogate

    @classmethod
    def from_json(cls, line: str | bytes) -> QueueLogRecord:
        """Read one line written by ``to_json``.

        Raises:
            ValueError: not a JSON object, an unknown key or kind, a value of the wrong type, or
                a record its kind does not allow (one sentence, for a file:line report).
        """
        try:
            data = json.loads(line)
        except ValueError:
            raise ValueError("not a JSON line") from None
        if not isinstance(data, dict):
            raise ValueError("not a JSON object")
        unknown = sorted(set(data) - _KEYS)
        if unknown:
            raise ValueError(f"unknown key {unknown[0]!r}")
        raw = data.get("kind")
        kind = _KINDS.get(raw) if isinstance(raw, str) else None
        if kind is None:
            raise ValueError(f"unknown kind {raw!r}")
        return cls(
            at=_stamp(data.get("at")),
            kind=kind,
            **{name: _text(data, name) for name in _TEXT_FIELDS},  # type: ignore[arg-type]
            position=_integer(data.get("position")),
            wait=_number(data.get("wait")),
        )


class QueueEventSink(Protocol):
    """Where the queues hand their events (``QueueEventLog`` in the server); never blocks."""

    def write(self, record: QueueLogRecord, /) -> object:
        """Queue ``record`` for the durable log; what it returns (a future) may be ignored."""


def _stamp(value: object) -> datetime:
    try:
        return parse_stamp(value)  # type: ignore[arg-type]  # it checks that value is a str
    except ValueError:
        raise ValueError(f"at {value!r} is not a UTC stamp (YYYY-MM-DDTHH:MM:SS.mmmZ)") from None


def _text(data: dict[str, object], name: str) -> str | None:
    value = data.get(name)
    if value is None or isinstance(value, str):
        return value
    raise ValueError(f"{name} {value!r} is not a string")


def _integer(value: object) -> int | None:
    if value is None or (isinstance(value, int) and not isinstance(value, bool)):
        return value
    raise ValueError(f"position {value!r} is not a whole number")


def _number(value: object) -> float | None:
    if value is None:
        return None
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    raise ValueError(f"wait {value!r} is not a number of seconds")
