"""The CDR: one frozen record per call leg, written once when the leg ends.

Theory of operation
-------------------
A ``CdrRecord`` is a value. The calls layer builds it in the REPORTING phase (FreeSWITCH's
``CS_REPORTING``) from what the leg knew; rating fills ``number_class``, ``tariff``,
``billed_units``, ``billed_seconds``, ``payer``, ``cost``, ``vat``, ``currency`` and
``charges`` with ``dataclasses.replace`` (the derived fields are recomputed, never passed).
The spool stores ``to_json()`` as one line; ``from_json`` gives back an equal record.

Field names follow FreeSWITCH's CDR variables where one exists (``uuid``, ``start_stamp``,
``answer_stamp``, ``end_stamp``, ``duration``, ``billsec``, ``billmsec``, ``hangup_cause``,
``sip_hangup_disposition`` -> ``hangup_by``); FreeSWITCH's ``caller_id_number`` and
``destination_number`` are ``caller_raw`` and ``called_raw`` here, beside their E.164 forms
(ITU-T E.164 §6, digits without "+").

Times. Stamps are ISO 8601 UTC strings with milliseconds, ``2026-11-22T10:15:30.123Z``: fixed
width, so they sort as text. ``duration``, ``billsec`` and ``billmsec`` are derived from the
stamps and cannot disagree with them: ``duration = floor((end - start) / 1 s)``,
``billmsec = end - answer`` in ms (0 when unanswered), ``billsec = floor(billmsec / 1000)``.
Whole seconds are truncated, as FreeSWITCH and Asterisk (``initiatedseconds=no``) do; rating
that bills an initiated second rounds ``billmsec`` up itself.

Money. ``cost`` and ``vat`` (the VAT amount, not the rate) are ``Decimal`` and appear in JSON
as strings, never floats; ``None`` until the record is rated.

Who pays what. ``charges`` lists every payer's ``Charge`` of a rated leg (empty until rated).
The single-payer fields before it (``tariff``, ``billed_units``, ``billed_seconds``, ``payer``,
``cost``, ``vat``) repeat the first charge, so a reader that knows only them still sees one
payer's price; a second payer (the unique access number's subscriber, a forwarding surcharge)
is only in ``charges``. The leg's whole price is the sum of its charges.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from concurrent.futures import Future
from dataclasses import dataclass, field, fields
from datetime import datetime, timedelta
from decimal import Decimal
from enum import StrEnum
from operator import attrgetter
from types import MappingProxyType
from typing import Any, Literal, NoReturn, Protocol

from callserver.cdr.charge import Charge, decimal_of
from callserver.cdr.stamps import naive_moment, parse_stamp, stamp_from_epoch, utc_stamp

__all__ = [
    "CdrRecord",
    "CdrSink",
    "Direction",
    "Disposition",
    "EndReason",
    "HangupBy",
    "Leg",
    "RecordStatus",
    "SurveyValue",
    "parse_stamp",
    "stamp_from_epoch",
    "utc_stamp",
]

Leg = Literal["a", "b"]
RecordStatus = Literal["final", "aborted"]
Direction = Literal["inbound", "outbound", "internal"]
HangupBy = Literal["caller", "callee", "server", "admin"]  # admin: the admin API's hang-up
SurveyValue = str | int

_LEGS = ("a", "b")
_STATUSES = ("final", "aborted")
_DIRECTIONS = ("inbound", "outbound", "internal")
_HANGUP_BY = ("caller", "callee", "server", "admin")
_DIVERSION_REASONS = ("unconditional", "user-busy", "no-answer", "unavailable")
_MS = timedelta(milliseconds=1)
_ENCODER = json.JSONEncoder(separators=(",", ":"))  # ensure_ascii: every line is pure ASCII


class Disposition(StrEnum):
    """How the leg ended, in Asterisk's CDR vocabulary plus REJECTED and CANCELLED."""

    ANSWERED = "ANSWERED"
    NO_ANSWER = "NO_ANSWER"
    BUSY = "BUSY"
    FAILED = "FAILED"
    REJECTED = "REJECTED"  # refused by policy: blacklist, barring, limits
    CANCELLED = "CANCELLED"  # the caller gave up before an answer (CANCEL, RFC 3261 §9)


class EndReason(StrEnum):
    """Why the leg ended, in the server's terms (the SIP and Q.850 view is beside it)."""

    NORMAL = "normal"
    BLACKLIST = "blacklist"
    BARRED = "barred"
    CHANNEL_LIMIT = "channel_limit"
    CPS_LIMIT = "cps_limit"
    MAX_DURATION = "max_duration"
    PREMIUM_CAP = "premium_cap"
    RTP_TIMEOUT = "rtp_timeout"
    ACK_TIMEOUT = "ack_timeout"  # our 2xx was never ACKed (RFC 3261 §13.3.1.4)
    SESSION_TIMEOUT = "session_timeout"
    NO_ROUTE = "no_route"
    UNAUTHORIZED = "unauthorized"
    ERROR = "error"
    SHUTDOWN = "shutdown"
    OVERLOAD = "overload"  # refused by overload control before any work (503, Retry-After)
    ABORTED = "aborted"  # the server died with the leg open; written by spool recovery
    TRANSFERRED = "transferred"  # the transferor's leg, released once its transfer answered
    ADMIN = "admin"  # hung up through the admin API (DELETE /api/calls/{id})


class CdrSink(Protocol):
    """Where the calls layer sends a leg's CDR events (``CdrSpool``, or a fake in tests).

    Every method returns at once; the future says whether the entry reached the disk. In
    asyncio, ``await asyncio.wrap_future(sink.write(record))``.
    """

    def open_call(self, call_id: str, known: Mapping[str, object]) -> Future[bool]:
        """Journal a leg at admission."""

    def update_call(self, call_id: str, known: Mapping[str, object]) -> Future[bool]:
        """Journal more facts about an open leg."""

    def write(self, record: CdrRecord) -> Future[bool]:
        """Store the leg's final record (REPORTING)."""


def _ms_between(first: datetime, last: datetime, name: str, before: str) -> int:
    elapsed = (last - first) // _MS
    if elapsed < 0:
        raise ValueError(f"{name} is earlier than {before}")
    return elapsed


@dataclass(frozen=True, slots=True, kw_only=True)
class CdrRecord:
    """One call leg's CDR (FreeSWITCH field names; see the module docstring).

    ``duration``, ``billsec`` and ``billmsec`` are computed from the stamps. ``linked_id``
    (the call-level id shared by all legs, Asterisk's ``linkedid``) defaults to ``uuid``.

    Raises:
        ValueError: if a field has the wrong type or value, a stamp is malformed, the stamps
            are out of order (start <= answer <= end), the disposition is ANSWERED without
            an answer_stamp (or the other way round), or money is not a finite Decimal.
    """

    uuid: str
    call_id: str
    leg: Leg = "a"
    linked_id: str = ""
    status: RecordStatus = "final"
    direction: Direction
    trunk: str | None = None
    customer: str | None = None
    caller_raw: str | None = None
    caller_e164: str | None = None
    caller_country: str | None = None
    called_raw: str | None = None
    called_e164: str | None = None
    dialplan: str | None = None
    dialplan_version: str | None = None
    start_stamp: str
    answer_stamp: str | None = None
    end_stamp: str
    duration: int = field(init=False)
    billsec: int = field(init=False)
    billmsec: int = field(init=False)
    disposition: Disposition
    hangup_cause: str
    q850_cause: int | None = None
    sip_code: int | None = None
    hangup_by: HangupBy | None = None
    end_reason: EndReason
    language: str | None = None
    steps: tuple[str, ...] = ()
    digits: str = ""
    survey: Mapping[str, SurveyValue] = field(default_factory=dict, hash=False)
    voicemail_path: str | None = None
    recording_path: str | None = None
    number_class: str | None = None
    tariff: str | None = None
    billed_units: int | None = None
    billed_seconds: int | None = None
    payer: str | None = None
    cost: Decimal | None = None
    vat: Decimal | None = None
    currency: str | None = None
    # What exactly ended the leg, beyond end_reason: the blacklist entry and its reason, the
    # barring class. After the older fields, so CSV columns before it keep their places.
    end_detail: str | None = None
    charges: tuple[Charge, ...] = ()  # every payer's charge; the first repeats payer/cost/vat
    # A Centrex phone's call: the phone's number (E.164, with "+"); ``customer`` is its group's
    # customer, who pays the caller's charges of the leg (an outbound leg to a carrier too).
    subscriber: str | None = None
    # A leg a Centrex subscriber's forwarding placed (leg b, paid by that subscriber): why
    # (RFC 5806 reason: unconditional, user-busy, no-answer, unavailable) and whose number
    # diverted it. A call that went to the subscriber's voicemail box carries them on leg a.
    diversion_reason: str | None = None
    diverted_from: str | None = None
    conference: str | None = None  # the meet-me room the call joined (its last, if several)
    # Call pickup: the subscriber (E.164) whose phone answered a call that rang at another's.
    answered_by: str | None = None
    # When the called subscriber marked the call malicious (MCID, ``*39`` after it), a UTC
    # stamp; set on reading from the store (``cdr.marks``), never in the spooled line.
    malicious: str | None = None
    # A leg placed by a call transfer (REFER): the Call-ID of the transferor's leg it replaced
    # (that leg ends ``transferred``); ``linked_id`` stays the original call's. A caller a
    # transfer handed to a plan (or a voicemail box) of this server carries it on leg a.
    transferred_from: str | None = None
    # A supervisor's call (``*222EXT`` listen, ``*223EXT`` whisper, ``*224EXT`` barge): the
    # Call-ID of the call it monitored and how; that call's records name the supervisor
    # (E.164) in ``monitored_by`` (the last one, if several monitored it).
    monitored_call: str | None = None
    monitor_mode: str | None = None
    monitored_by: str | None = None
    # A recorded call (leg a): its recording's whole seconds; ``recording_path`` names the
    # file, relative to the data directory (``recordings/<customer>/YYYY/MM/DD/<uuid>.wav``).
    recording_seconds: int | None = None
    # A call the server placed for an outbound campaign: the campaign's name.
    campaign: str | None = None
    # A call centre queue the caller waited in (its last), and how long it waited there in
    # milliseconds (to its answer, or to its leaving); ``answered_by`` names the agent.
    queue: str | None = None
    queue_wait: int | None = None
    # A recorded call whose file could not be made durable (a full disk, a failed fsync or
    # rename): why; ``recording_path`` and ``recording_seconds`` are then empty.
    recording_error: str | None = None

    def __post_init__(self) -> None:
        _check_types(self)
        if type(self.disposition) is not Disposition:
            _SET(self, "disposition", Disposition(self.disposition))
        if type(self.end_reason) is not EndReason:  # a value: its member, or a ValueError
            end_reason = _END_REASONS.get(self.end_reason) or EndReason(self.end_reason)
            _SET(self, "end_reason", end_reason)
        if type(self.steps) is not tuple:
            _SET(self, "steps", tuple(self.steps))
        if type(self.charges) is not tuple:
            _SET(self, "charges", tuple(self.charges))
        _SET(self, "survey", MappingProxyType(dict(self.survey)))
        if not self.linked_id:
            _SET(self, "linked_id", self.uuid)
        if (self.disposition is Disposition.ANSWERED) != (self.answer_stamp is not None):
            raise ValueError("disposition is ANSWERED exactly when there is an answer_stamp")
        start, end = naive_moment(self.start_stamp), naive_moment(self.end_stamp)
        duration_ms = _ms_between(start, end, "end_stamp", "start_stamp")
        billmsec = 0
        if self.answer_stamp is not None:
            answer = naive_moment(self.answer_stamp)
            _ms_between(start, answer, "answer_stamp", "start_stamp")
            billmsec = _ms_between(answer, end, "end_stamp", "answer_stamp")
        _SET(self, "duration", duration_ms // 1000)
        _SET(self, "billmsec", billmsec)
        _SET(self, "billsec", billmsec // 1000)

    def to_dict(self) -> dict[str, object]:
        """The record as JSON-ready values: enums as strings, Decimal as strings, steps a list."""
        data: dict[str, object] = dict(zip(_FIELD_NAMES, _ALL_FIELDS(self), strict=True))
        data["disposition"] = self.disposition.value
        data["end_reason"] = self.end_reason.value
        data["steps"] = list(self.steps)
        data["survey"] = dict(self.survey)
        data["charges"] = [charge.to_dict() for charge in self.charges]
        if self.cost is not None:
            data["cost"] = str(self.cost)
        if self.vat is not None:
            data["vat"] = str(self.vat)
        return data

    def to_json(self) -> str:
        """One compact JSON object, pure ASCII (so no encoding can fail), no newline."""
        return _ENCODER.encode(self.to_dict())

    @classmethod
    def from_dict(cls, data: Mapping[str, object]) -> CdrRecord:
        """Build a record from ``to_dict`` output; derived fields, if present, must match.

        Raises:
            ValueError: for a missing or unknown key, a wrong type or value, or a
                ``duration``/``billsec``/``billmsec`` that disagrees with the stamps.
        """
        unknown = set(data) - set(_FIELD_NAMES)
        if unknown:
            raise ValueError(f"unknown CDR field(s): {', '.join(sorted(unknown))}")
        kwargs: dict[str, Any] = {k: v for k, v in data.items() if k not in _DERIVED}
        for name in _MONEY:
            kwargs[name] = decimal_of(name, kwargs.get(name))
        if isinstance(kwargs.get("steps"), list):
            kwargs["steps"] = tuple(kwargs["steps"])
        if isinstance(kwargs.get("charges"), list):
            kwargs["charges"] = tuple(Charge.from_dict(item) for item in kwargs["charges"])
        try:
            record = cls(**kwargs)
        except TypeError as exc:  # a missing required field
            raise ValueError(f"CDR is incomplete: {exc}") from None
        for name in _DERIVED:
            if name in data and data[name] != getattr(record, name):
                raise ValueError(f"{name} {data[name]!r} disagrees with the stamps")
        return record

    @classmethod
    def from_json(cls, line: str | bytes) -> CdrRecord:
        """Parse one ``to_json`` line; ``from_json(r.to_json()) == r``.

        Raises:
            ValueError: if the line is not a JSON object or not a valid record.
        """
        data = json.loads(line)
        if not isinstance(data, dict):
            raise ValueError("a CDR line must be a JSON object")
        return cls.from_dict(data)


_DERIVED = ("duration", "billsec", "billmsec")
_MONEY = ("cost", "vat")
_TEXT = ("uuid", "call_id", "linked_id", "start_stamp", "end_stamp", "hangup_cause", "digits")
_OPTIONAL_TEXT = (
    *("trunk", "customer", "caller_raw", "caller_e164", "caller_country", "called_raw"),
    *("called_e164", "dialplan", "dialplan_version", "answer_stamp", "language"),
    *("voicemail_path", "recording_path", "number_class", "tariff", "payer", "currency"),
    "end_detail",
    "subscriber",
    "diversion_reason",
    "diverted_from",
    "conference",
    "answered_by",
    "malicious",
    "transferred_from",
    "monitored_call",
    "monitor_mode",
    "monitored_by",
    "campaign",
    "queue",
    "recording_error",
)
_OPTIONAL_INT = (
    *("q850_cause", "sip_code", "billed_units", "billed_seconds"),
    *("recording_seconds", "queue_wait"),
)
_CHOICES = {
    "leg": _LEGS,
    "status": _STATUSES,
    "direction": _DIRECTIONS,
    "hangup_by": (*_HANGUP_BY, None),
    "diversion_reason": (*_DIVERSION_REASONS, None),
    "monitor_mode": ("listen", "whisper", "barge", None),
}
_FIELD_NAMES = tuple(f.name for f in fields(CdrRecord))
_ALL_FIELDS = attrgetter(*_FIELD_NAMES)
_TEXT_OF, _OPTIONAL_TEXT_OF = attrgetter(*_TEXT), attrgetter(*_OPTIONAL_TEXT)
_OPTIONAL_INT_OF = attrgetter(*_OPTIONAL_INT)
_END_REASONS = {reason.value: reason for reason in EndReason}  # cheaper than EndReason(value)
_SET = object.__setattr__  # a frozen record's derived fields, set in __post_init__


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _check_types(record: CdrRecord) -> None:
    # The fields of each kind read at once by one attrgetter (in C), not one getattr each;
    # the names only to say which one is wrong.
    for value in _TEXT_OF(record):
        if not isinstance(value, str):
            _wrong(record, _TEXT, value, "a string")
    for value in _OPTIONAL_TEXT_OF(record):
        if value is not None and not isinstance(value, str):
            _wrong(record, _OPTIONAL_TEXT, value, "a string or null")
    for value in _OPTIONAL_INT_OF(record):
        if value is not None and not _is_int(value):
            _wrong(record, _OPTIONAL_INT, value, "an integer or null")
    for name, allowed in _CHOICES.items():
        if getattr(record, name) not in allowed:
            raise ValueError(f"{name} {getattr(record, name)!r} is not one of {allowed}")
    for name in _MONEY:
        value = getattr(record, name)
        if value is not None and not (isinstance(value, Decimal) and value.is_finite()):
            raise ValueError(f"{name} must be a finite Decimal or null")
    _check_collections(record)


def _wrong(record: CdrRecord, names: tuple[str, ...], value: object, kind: str) -> NoReturn:
    """Raise naming the first of ``names`` that holds ``value`` (the first wrong one)."""
    name = next(name for name in names if getattr(record, name) is value)
    raise ValueError(f"{name} must be {kind}")


def _check_collections(record: CdrRecord) -> None:
    if not isinstance(record.steps, tuple | list) or not all(
        isinstance(s, str) for s in record.steps
    ):
        raise ValueError("steps must be a sequence of strings")
    if not isinstance(record.charges, tuple | list) or not all(
        isinstance(c, Charge) for c in record.charges
    ):
        raise ValueError("charges must be a sequence of charges")
    survey = record.survey
    if not isinstance(survey, dict | MappingProxyType | Mapping) or not all(
        isinstance(k, str) and (isinstance(v, str) or _is_int(v)) for k, v in survey.items()
    ):
        raise ValueError("survey must map strings to strings or integers")
    if record.q850_cause is not None and not 0 <= record.q850_cause <= 127:
        raise ValueError(f"q850_cause {record.q850_cause} is outside 0..127 (ITU-T Q.850 §2.2.5)")
    if record.recording_seconds is not None and record.recording_seconds < 0:
        raise ValueError(f"recording_seconds {record.recording_seconds} is negative")
    if record.sip_code is not None and not 100 <= record.sip_code <= 699:
        raise ValueError(f"sip_code {record.sip_code} is outside 100..699 (RFC 3261 §21)")
