"""REPORTING: the CDR of every inbound call leg (docs/architecture.md, "The path of a call").

A leg is journalled at admission (``open_call``) and when answered (``update_call``), so a
crash leaves an ABORTED record after the next start; when it ends its ``CdrRecord`` is built
from what the call saw, rated against the tariffs when answered, and queued to the spool,
which writes and fsyncs it on its own thread: teardown never waits for the disk. A call
refused at admission gets a REJECTED record too. Times are the calls layer's ``rtime`` values
(monotonic) turned into UTC wall-clock stamps.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import structlog

from callserver.calls.call_recorder import RecordedCall
from callserver.cdr.charge import Charge
from callserver.cdr.rating import Rating
from callserver.cdr.record import (
    CdrRecord,
    CdrSink,
    Disposition,
    parse_stamp,
    stamp_from_epoch,
)
from callserver.config.tariffs import Tariffs
from callserver.policy.numbering import NumberClass, normalise

__all__ = ["CallFacts", "CdrReporter"]

log = structlog.get_logger("callserver.cdr")

# Why an unanswered leg ended -> disposition, hangup cause (FreeSWITCH's names) and Q.850
# cause. A CANCEL has no Q.850 cause of its own (FreeSWITCH's 487 is a SIP code): 16, normal
# clearing, as Asterisk records it.
_UNANSWERED = {
    "cancelled": (Disposition.CANCELLED, "ORIGINATOR_CANCEL", 16),
    "timeout": (Disposition.NO_ANSWER, "NO_ANSWER", 19),
    "shutdown": (Disposition.FAILED, "SYSTEM_SHUTDOWN", 41),
    "overload": (Disposition.REJECTED, "SWITCH_CONGESTION", 42),
    "busy": (Disposition.BUSY, "USER_BUSY", 17),
    "no_answer": (Disposition.NO_ANSWER, "NO_ANSWER", 19),
    "failed": (Disposition.FAILED, "NORMAL_TEMPORARY_FAILURE", 41),
    "no_route": (Disposition.FAILED, "NO_ROUTE_DESTINATION", 3),
    "loop": (Disposition.FAILED, "EXCHANGE_ROUTING_ERROR", 25),  # 483 Too Many Hops
    # Our 2xx was never ACKed (RFC 3261 §13.3.1.4): the caller never confirmed the answer.
    "ack_timeout": (Disposition.FAILED, "RECOVERY_ON_TIMER_EXPIRE", 102),
    # Hung up through the admin API before the answer (487): FreeSWITCH's uuid_kill cause.
    "admin": (Disposition.FAILED, "MANAGER_REQUEST", 16),
}
# An unanswered leg ended with a SIP final response (a dialplan's hangup, a forwarded leg's
# answer): its disposition and Q.850 cause, after RFC 3398 §8.2.6.1 read backwards.
_BUSY = (Disposition.BUSY, "USER_BUSY", 17)
_BY_SIP_CODE = {
    486: _BUSY,
    600: _BUSY,
    480: (Disposition.NO_ANSWER, "NO_ANSWER", 19),
    408: (Disposition.NO_ANSWER, "NO_ANSWER", 19),
    404: (Disposition.FAILED, "UNALLOCATED_NUMBER", 1),
    403: (Disposition.REJECTED, "CALL_REJECTED", 21),
    603: (Disposition.REJECTED, "CALL_REJECTED", 21),
}
_END_REASONS = {
    "ack_timeout",
    "rtp_timeout",
    "max_duration",
    "shutdown",
    "overload",
    "channel_limit",
    "cps_limit",
    "blacklist",
    "error",
    "barred",
    "no_route",
    "transferred",
    "admin",
}
# Refusals before any answer: REJECTED, with the Q.850 cause (21 call rejected, 34 no circuit).
_REFUSED = {
    "channel_limit": 34,
    "cps_limit": 34,
    "rejected": 34,
    "unknown_source": 21,
    "auth_failed": 21,
    "blacklist": 21,
    "barred": 21,
}
# The reasons ``ended_by_reason`` names; any other counts as "other" (a bounded set of labels).
_COUNTED = frozenset(
    {*_UNANSWERED, *_REFUSED, *_END_REASONS, "anonymous", "respond_failed"}
    | {"bye_received", "bye_sent", "session_expired", "refresh_failed"}  # the dialog's end
)
_RENAMED = {"auth_failed": "unauthorized", "unknown_source": "unauthorized", "loop": "error"}


class CallFacts:
    """What a call leg's CDR needs, gathered as the call goes (mutable, one per call)."""

    __slots__ = (
        "answered_at",
        "call_id",
        "called",
        "caller",
        "caller_country",
        "caller_e164",
        "clir",
        "customer",
        "direction",
        "extra",
        "forwarded_from",
        "group",
        "inside_group",
        "leg",
        "linked_id",
        "offered_at",
        "originating",
        "subscriber",
        "trunk",
    )

    def __init__(self, *, call_id: str, caller: str, called: str, offered_at: float) -> None:
        self.call_id = call_id
        self.caller = caller
        self.called = called
        self.offered_at = offered_at
        self.answered_at: float | None = None
        self.trunk: str | None = None
        self.customer: str | None = None  # the trunk's or the phone's group's: the payer
        self.subscriber: str | None = None  # a phone's call: its E.164 number
        self.clir: bool | None = None  # this call's CLIR, dialled (#31#/*31#); None: the phone's
        self.group: str | None = None  # a phone's call: its Centrex group
        self.caller_e164: str | None = None  # digits, no "+"
        self.caller_country: str | None = None
        self.extra: dict[str, Any] = {}  # what a dialplan adds: language, steps, digits, ...
        self.leg = "a"  # "b": a leg we placed (forwarding), linked to the inbound call
        self.linked_id = ""
        self.direction = "inbound"
        self.inside_group = False  # a leg to a number of the caller's own Centrex group
        self.forwarded_from: str | None = None  # leg "b": the inbound number that forwarded
        # Leg "b" placed for a phone's or a PBX's own call to its number (not a forward): the
        # caller pays, by destination, as for any call it makes.
        self.originating = False


class CdrReporter:
    """Builds each leg's CDR and hands it to the spool; see the module docstring."""

    def __init__(self, tariffs: Tariffs, monotonic: Callable[[], float] = time.monotonic) -> None:
        self.sink: CdrSink | None = None  # the spool, attached when the server starts
        self.tariffs = tariffs
        self._monotonic = monotonic
        self.ended_by_reason: dict[tuple[str, str], int] = {}  # (leg, reason): legs ended
        # The same for each customer's legs (the admin API shows a customer its own).
        self.ended_by_customer: dict[str, dict[tuple[str, str], int]] = {}

    def _offset(self) -> float:
        """Wall clock minus monotonic clock, read once for all the stamps of one record: two
        readings could differ by a tick and put an end before its start."""
        return time.time() - self._monotonic()

    def opened(self, facts: CallFacts) -> None:
        """Journal an admitted leg, so a crash cannot lose it."""
        if self.sink is not None:
            self.sink.open_call(facts.call_id, self._known(facts, self._offset()))

    def answered(self, facts: CallFacts) -> None:
        """Journal the answer time of an open leg."""
        assert facts.answered_at is not None
        if self.sink is not None:
            stamp = stamp_from_epoch(self._offset() + facts.answered_at)
            self.sink.update_call(facts.call_id, {"answer_stamp": stamp})

    def ended(
        self,
        facts: CallFacts,
        reason: str,
        *,
        sip_code: int | None = None,
        recorded: RecordedCall | None = None,
    ) -> CdrRecord | None:
        """Write the leg's final record; ``reason`` is the calls layer's (cause or event).
        With ``recorded`` (the call's recording) still being written, the record, stamped
        now, is written once the file is durable or failed, with what became of it.

        Returns the record, or None if the facts could not make a valid one (logged as
        ``cdr.record_invalid`` with every field, so billing can reconstruct it) or it waits
        for its recording.
        """
        key = (facts.leg, reason if reason in _COUNTED else "other")
        self.ended_by_reason[key] = self.ended_by_reason.get(key, 0) + 1
        if facts.customer is not None:
            own = self.ended_by_customer.setdefault(facts.customer, {})
            own[key] = own.get(key, 0) + 1
        now = self._monotonic()
        offset = time.time() - now  # as _offset(), with this reading of the clock as ``now``
        fields: dict[str, Any] = self._known(facts, offset)
        end_stamp = stamp_from_epoch(offset + max(now, facts.offered_at))
        fields.update(end_stamp=end_stamp, sip_code=sip_code)
        if facts.answered_at is not None:
            fields.update(self._answered(facts, reason, offset, end_stamp))
        elif reason in _REFUSED:
            fields.update(disposition=Disposition.REJECTED, hangup_cause="CALL_REJECTED")
            fields.update(q850_cause=_REFUSED[reason], hangup_by="server")
        else:
            disposition, cause, q850 = _UNANSWERED.get(
                reason,
                _BY_SIP_CODE.get(
                    sip_code or 0, (Disposition.FAILED, "NORMAL_TEMPORARY_FAILURE", 41)
                ),
            )
            hangup_by = {"cancelled": "caller", "admin": "admin"}.get(reason, "server")
            fields.update(disposition=disposition, hangup_cause=cause, q850_cause=q850)
            fields["hangup_by"] = hangup_by
        fields["end_reason"] = (
            reason if reason in _END_REASONS else _RENAMED.get(reason) or _other(reason)
        )
        fields.update(facts.extra)
        if recorded is not None and not recorded.settled() and _on_loop():
            # The record names the file only once it is durable (calls.call_recorder).
            recorded.when_settled(lambda: self._write({**fields, **recorded.cdr_fields()}))
            return None
        return self._write(fields)

    def _write(self, fields: dict[str, Any]) -> CdrRecord | None:
        """Make the record of ``fields`` and hand it to the sink."""
        try:
            # A recorded call's uuid names its file (calls.call_recorder).
            record = CdrRecord(uuid=fields.pop("uuid", None) or str(uuid.uuid4()), **fields)
        except ValueError as exc:  # a bug here must not take the call's teardown with it
            log.error(
                "cdr.record_invalid", error=str(exc), **{k: str(v) for k, v in fields.items()}
            )
            return None
        if self.sink is not None:
            self.sink.write(record)
        return record

    def _answered(
        self, facts: CallFacts, reason: str, offset: float, end_stamp: str
    ) -> dict[str, Any]:
        assert facts.answered_at is not None
        answer_stamp = stamp_from_epoch(offset + facts.answered_at)
        out: dict[str, Any] = {
            "answer_stamp": answer_stamp,
            "disposition": Disposition.ANSWERED,
            "hangup_cause": "NORMAL_CLEARING",
            "q850_cause": 16,
            "hangup_by": _hangup_by(facts, reason),
        }
        try:
            number_class = self.tariffs.classify(facts.called)
        except ValueError:
            return out
        # Rated on the record's own billsec (whole seconds between the two stamps).
        billsec = (parse_stamp(end_stamp) - parse_stamp(answer_stamp)) // timedelta(seconds=1)
        billsec = max(0, billsec)  # an answer after the end: the record says so, not rating
        ratings = self._ratings(facts, number_class, billsec)
        first = ratings[0]  # the single-payer fields repeat the first charge
        out.update(
            number_class=number_class.name,
            tariff=first.tariff,
            billed_units=first.billed_units,
            billed_seconds=first.billed_seconds,
            payer=first.payer.value,
            cost=first.cost,
            vat=first.vat,
            currency="BAM",
            charges=tuple(_charge(rating) for rating in ratings),
        )
        return out

    def _ratings(
        self, facts: CallFacts, number_class: NumberClass, billsec: int
    ) -> tuple[Rating, ...]:
        """Every payer's rating: a forwarded leg is paid by the subscriber whose number
        forwarded (with the zone surcharge abroad); a call, and an outbound leg placed for a
        phone's or a PBX's call, by its caller (the record's customer), by destination and as
        its caller's network decides."""
        if facts.leg == "b" and not facts.originating:
            return self.tariffs.forwarded_charges(
                number_class,
                billsec,
                forwarded_from=facts.forwarded_from,
                inside_group=facts.inside_group,
            )
        caller = facts.subscriber or (
            "+" + facts.caller_e164 if facts.caller_e164 else facts.caller
        )
        return self.tariffs.charges(
            number_class, billsec, caller=caller, inside_group=facts.inside_group
        )

    def _known(self, facts: CallFacts, offset: float) -> dict[str, Any]:
        return {
            "call_id": facts.call_id,
            "leg": facts.leg,
            "linked_id": facts.linked_id,
            "direction": facts.direction,
            "trunk": facts.trunk,
            "customer": facts.customer,
            "subscriber": facts.subscriber,
            "caller_raw": facts.caller,
            "caller_e164": facts.caller_e164,
            "caller_country": facts.caller_country,
            "called_raw": facts.called,
            "called_e164": _e164(facts.called),
            "start_stamp": stamp_from_epoch(offset + facts.offered_at),
        }


def _charge(rating: Rating) -> Charge:
    return Charge(
        payer=rating.payer.value,
        tariff=rating.tariff,
        billed_units=rating.billed_units,
        billed_seconds=rating.billed_seconds,
        cost=rating.cost,
        vat=rating.vat,
    )


def _hangup_by(facts: CallFacts, reason: str) -> str:
    """Who ended an answered leg: its far end when the BYE came from there, the admin API's
    hang-up, else the server."""
    if reason == "admin":
        return "admin"
    if reason != "bye_received":
        return "server"
    return "callee" if facts.leg == "b" else "caller"


def _e164(number: str) -> str | None:
    """E.164 digits (no ``+``) of a called number, None for short codes and junk."""
    try:
        key = normalise(number)
    except ValueError:
        return None
    return key[1:] if key.startswith("+") else None


def _on_loop() -> bool:
    """True inside a running event loop (the server's): a record may wait for its file."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


def _other(reason: str) -> str:
    return "error" if reason in ("respond_failed", "error") else "normal"
