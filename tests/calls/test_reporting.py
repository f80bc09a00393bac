"""REPORTING: each leg's CDR from what the call saw; rated when answered, journalled first."""

from __future__ import annotations

from concurrent.futures import Future
from decimal import Decimal
from pathlib import Path

from callserver.calls.reporting import CallFacts, CdrReporter
from callserver.cdr.record import CdrRecord, Disposition, EndReason
from callserver.commands.rate import quote
from callserver.config.tariffs import load_tariffs

TARIFFS = load_tariffs(Path(__file__).parents[2] / "config" / "tariffs.yaml")


class Sink:
    """Keeps what the reporter sends, as the spool would write it."""

    def __init__(self) -> None:
        self.opened: list[tuple[str, dict[str, object]]] = []
        self.updated: list[tuple[str, dict[str, object]]] = []
        self.records: list[CdrRecord] = []

    def _done(self) -> Future[bool]:
        future: Future[bool] = Future()
        future.set_result(True)
        return future

    def open_call(self, call_id: str, known: dict[str, object]) -> Future[bool]:
        self.opened.append((call_id, dict(known)))
        return self._done()

    def update_call(self, call_id: str, known: dict[str, object]) -> Future[bool]:
        self.updated.append((call_id, dict(known)))
        return self._done()

    def write(self, record: CdrRecord) -> Future[bool]:
        self.records.append(record)
        return self._done()


def reporter(now: list[float]) -> tuple[CdrReporter, Sink]:
    sink = Sink()
    reporting = CdrReporter(TARIFFS, lambda: now[0])
    reporting.sink = sink  # type: ignore[assignment]
    return reporting, sink


def facts(called: str) -> CallFacts:
    out = CallFacts(call_id="c1@test", caller="38761000000", called=called, offered_at=100.0)
    out.trunk = "test"
    return out


def test_answered_premium_call_is_journalled_rated_and_written() -> None:
    """Open, answer and end give two journal entries and one rated ANSWERED record."""
    now = [100.0]
    reporting, sink = reporter(now)
    call = facts("092291123")
    reporting.opened(call)
    call.answered_at = 101.0
    reporting.answered(call)
    now[0] = 281.5
    record = reporting.ended(call, "max_duration", sip_code=200)
    assert record is not None
    assert [entry[0] for entry in sink.opened + sink.updated] == ["c1@test", "c1@test"]
    assert sink.records == [record]
    assert record.disposition is Disposition.ANSWERED
    assert record.end_reason is EndReason.MAX_DURATION
    assert (record.billsec, record.duration) == (180, 181)
    assert (record.cost, record.billed_units, record.trunk) == (Decimal("0.4900"), 1, "test")


def test_refused_and_cancelled_legs() -> None:
    """A channel-limit refusal is REJECTED (cause 34); a CANCEL before answer is CANCELLED."""
    now = [100.5]
    reporting, sink = reporter(now)
    refused = reporting.ended(facts("38733123456"), "channel_limit", sip_code=503)
    assert refused is not None
    assert (refused.disposition, refused.q850_cause, refused.hangup_by) == (
        Disposition.REJECTED,
        34,
        "server",
    )
    assert refused.end_reason is EndReason.CHANNEL_LIMIT and refused.cost is None
    cancelled = reporting.ended(facts("38733123456"), "cancelled")
    assert cancelled is not None
    assert (cancelled.disposition, cancelled.hangup_by) == (Disposition.CANCELLED, "caller")
    assert len(sink.records) == 2


def test_a_number_the_plan_cannot_read_is_written_unrated() -> None:
    """An answered call to a non-numeric user part still gets its record, without a price."""
    now = [100.0]
    reporting, _ = reporter(now)
    call = facts("service")
    call.answered_at = 100.2
    now[0] = 110.0
    record = reporting.ended(call, "bye_received", sip_code=200)
    assert record is not None
    assert (record.disposition, record.hangup_by, record.cost) == (
        Disposition.ANSWERED,
        "caller",
        None,
    )


def test_an_invalid_record_is_logged_with_its_fields_not_raised() -> None:
    """Facts that cannot make a valid record (end before start) are logged, never raised."""
    from structlog.testing import capture_logs

    now = [50.0]  # before the call was offered: the end clamps to the start
    reporting, sink = reporter(now)
    call = facts("38733123456")
    call.answered_at = 120.0  # an answer after the end: stamps out of order
    with capture_logs() as logs:
        assert reporting.ended(call, "bye_received") is None
    assert [entry["event"] for entry in logs] == ["cdr.record_invalid"]
    assert logs[0]["called_raw"] == "38733123456" and not sink.records


def test_stamps_of_one_record_come_from_one_clock_reading() -> None:
    """A monotonic clock that ticks between readings can no longer end a leg before it began."""
    ticks = iter([100.0, 100.0, 100.001, 100.002])
    reporting = CdrReporter(TARIFFS, lambda: next(ticks))
    leg = CallFacts(call_id="b1@test", caller="061234567", called="+38763200300", offered_at=100.0)
    record = reporting.ended(leg, "channel_limit", sip_code=503)
    assert record is not None and record.start_stamp <= record.end_stamp


def test_rating_uses_the_records_own_billsec() -> None:
    """The billed seconds are the record's billsec, whatever the clocks did between readings."""
    ticks = iter([102.0, 102.0, 102.0, 102.001])
    reporting = CdrReporter(TARIFFS, lambda: next(ticks))
    leg = facts("033100200")
    leg.answered_at = 100.001
    record = reporting.ended(leg, "bye_received", sip_code=200)
    assert record is not None
    assert record.billed_seconds == record.billsec


def test_an_unanswered_leg_ended_with_486_is_busy() -> None:
    """A dialplan's hangup 486 (or a forwarded leg's busy) is BUSY / USER_BUSY / cause 17."""
    reporting, _ = reporter([101.0])
    record = reporting.ended(facts("033100200"), "normal", sip_code=486)
    assert record is not None
    assert (record.disposition, record.hangup_cause, record.q850_cause) == (
        Disposition.BUSY,
        "USER_BUSY",
        17,
    )


def test_a_200_never_acked_ends_with_ack_timeout() -> None:
    """A leg whose 200 was never ACKed: FAILED, unanswered, end reason ack_timeout, cause 102."""
    reporting, _ = reporter([132.5])
    record = reporting.ended(facts("38733100200"), "ack_timeout", sip_code=200)
    assert record is not None
    assert record.end_reason is EndReason.ACK_TIMEOUT
    assert (record.disposition, record.hangup_cause, record.q850_cause) == (
        Disposition.FAILED,
        "RECOVERY_ON_TIMER_EXPIRE",
        102,
    )
    assert (record.answer_stamp, record.billsec, record.sip_code) == (None, 0, 200)
    assert (record.hangup_by, record.cost) == ("server", None)


def test_a_call_hung_up_through_the_admin_api_says_admin() -> None:
    """The admin API's hang-up: hangup_by and end_reason admin, answered or not (487)."""
    reporting, _ = reporter([130.0])
    answered = facts("38733100200")
    answered.answered_at = 110.0
    record = reporting.ended(answered, "admin")
    assert record is not None
    assert (record.hangup_by, record.end_reason) == ("admin", EndReason.ADMIN)
    assert (record.disposition, record.billsec) == (Disposition.ANSWERED, 20)
    record = reporting.ended(facts("38733100200"), "admin", sip_code=487)
    assert record is not None
    assert (record.hangup_by, record.end_reason, record.sip_code) == ("admin", EndReason.ADMIN, 487)
    assert (record.disposition, record.hangup_cause, record.q850_cause) == (
        Disposition.FAILED,
        "MANAGER_REQUEST",
        16,
    )


def test_a_forwarded_leg_is_paid_by_the_subscriber_who_forwarded() -> None:
    """A b-leg to a mobile number is rated by that number's tariff, payer called."""
    reporting, _ = reporter([160.0])
    leg = facts("+38763200300")
    leg.leg, leg.linked_id, leg.direction = "b", "a1@test", "outbound"
    leg.answered_at = 100.0
    record = reporting.ended(leg, "bye_sent", sip_code=200)
    assert record is not None
    assert (record.leg, record.direction, record.payer) == ("b", "outbound", "called")
    assert record.cost is not None and record.cost > 0


def test_a_leg_inside_the_callers_centrex_group_is_free() -> None:
    """Calls inside a Centrex group cost nothing (tariff centrex_group, payer none)."""
    reporting, _ = reporter([160.0])
    leg = facts("033100201")
    leg.inside_group, leg.answered_at = True, 100.0
    record = reporting.ended(leg, "bye_received", sip_code=200)
    assert record is not None
    assert (record.tariff, record.cost, record.payer) == ("centrex_group", Decimal(0), "none")


def _charges(record: CdrRecord | None) -> list[tuple[str, str, int, str, str]]:
    assert record is not None
    return [(c.payer, c.tariff, c.billed_seconds, str(c.cost), str(c.vat)) for c in record.charges]


def test_a_unique_access_call_from_bh_telecoms_fixed_network_charges_two_payers() -> None:
    """90 s from 033 to 081 92X: the caller pays 0.042, the subscriber 0.020 KM/min, both kept."""
    reporting, _ = reporter([190.0])
    call = facts("081920123")
    call.caller_e164, call.answered_at = "38733200300", 100.0
    record = reporting.ended(call, "bye_received", sip_code=200)
    assert _charges(record) == [
        ("caller", "unique_access_bh_telecom_fixed", 90, "0.0630", "0.0107"),
        ("called", "unique_access_bh_telecom_fixed", 90, "0.0300", "0.0051"),
    ]
    assert record is not None
    assert (record.payer, record.cost, record.vat) == (
        "caller",
        Decimal("0.0630"),
        Decimal("0.0107"),
    )


def test_a_unique_access_call_from_another_fixed_network_is_paid_by_the_subscriber() -> None:
    """From an 036 number (another operator's fixed network) only the subscriber pays, 0.077."""
    reporting, _ = reporter([160.0])
    call = facts("+38781921000")
    call.caller, call.answered_at = "036123456", 100.0  # no asserted E.164: the raw caller
    record = reporting.ended(call, "bye_received", sip_code=200)
    assert _charges(record) == [("called", "unique_access_other_fixed", 60, "0.0770", "0.0131")]


def test_a_free_phone_call_forwarded_abroad_carries_the_zone_surcharge() -> None:
    """A b-leg to Croatia forwarded from 080: the Croatian price and the zone I surcharge."""
    reporting, _ = reporter([160.0])
    leg = facts("+38512345678")
    leg.leg, leg.linked_id, leg.direction = "b", "a1@test", "outbound"
    leg.forwarded_from, leg.answered_at = "080050050", 100.0
    record = reporting.ended(leg, "bye_sent", sip_code=200)
    assert _charges(record) == [
        ("called", "croatia_fixed", 60, "0.3000", "0.0510"),
        ("called", "forwarded_abroad_zone_1", 60, "0.3000", "0.0510"),
    ]
    leg.forwarded_from = "033100200"  # a geographic number forwarding abroad: no surcharge
    assert _charges(reporting.ended(leg, "bye_sent", sip_code=200)) == [
        ("called", "croatia_fixed", 60, "0.3000", "0.0510")
    ]


def test_an_originating_leg_is_paid_by_the_callers_customer_by_destination() -> None:
    """A phone's outbound leg abroad is direction outbound, payer caller, the customer's and
    the phone's, rated by destination as `callserver rate` quotes it."""
    reporting, sink = reporter([160.0])
    leg = CallFacts(call_id="o1@test", caller="201", called="+4930123456", offered_at=100.0)
    leg.leg, leg.linked_id, leg.direction, leg.originating = "b", "a1@test", "outbound", True
    leg.customer, leg.subscriber, leg.group = "acme", "+38733100201", "office"
    reporting.opened(leg)
    leg.answered_at = 100.0
    record = reporting.ended(leg, "bye_received", sip_code=200)
    assert record is not None
    assert (record.leg, record.direction, record.payer) == ("b", "outbound", "caller")
    assert (record.customer, record.subscriber) == ("acme", "+38733100201")
    assert sink.opened[0][1]["subscriber"] == "+38733100201"
    quoted = quote(TARIFFS, "+4930123456", seconds=record.billsec, caller="+38733100201")
    charges = quoted["charges"]
    assert isinstance(charges, list) and len(charges) == 1 == len(record.charges)
    assert (record.tariff, str(record.cost)) == (charges[0]["tariff"], charges[0]["cost"])
    assert record.tariff == "europe_fixed" and record.cost == Decimal("0.5500")
    assert CdrRecord.from_json(record.to_json()) == record


def test_a_recorded_call_keeps_the_uuid_its_file_is_named_for() -> None:
    """The uuid a recording was named for becomes the record's; other records get a new one."""
    now = [100.0]
    reporting, _sink = reporter(now)
    call = facts("033123456")
    call.extra.update(uuid="rec-1", recording_path="recordings/x/rec-1.wav", recording_seconds=3)
    record = reporting.ended(call, "cancelled")
    assert record is not None and record.uuid == "rec-1"
    assert (record.recording_path, record.recording_seconds) == ("recordings/x/rec-1.wav", 3)
    other = reporting.ended(facts("033123456"), "cancelled")
    assert other is not None and other.uuid not in ("", "rec-1")
