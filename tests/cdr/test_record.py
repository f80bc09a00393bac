"""Tests for the CDR record: exact JSON round trip, derived durations, stamps and validation."""

from __future__ import annotations

import dataclasses
import json
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from callserver.cdr.charge import Charge
from callserver.cdr.record import (
    CdrRecord,
    Disposition,
    EndReason,
    parse_stamp,
    stamp_from_epoch,
    utc_stamp,
)
from tests.cdr import make_record

SETTINGS = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])

texts = st.text(max_size=20)
optional_texts = st.one_of(st.none(), texts)
optional_ints = st.one_of(st.none(), st.integers(0, 10**9))
money = st.one_of(
    st.none(),
    st.decimals(
        allow_nan=False, allow_infinity=False, places=4, min_value=-(10**6), max_value=10**6
    ),
)
moments = st.datetimes(
    min_value=datetime(2000, 1, 1), max_value=datetime(2099, 1, 1), timezones=st.just(UTC)
)
gaps = st.integers(0, 10**8).map(lambda ms: timedelta(milliseconds=ms))
amounts = st.decimals(allow_nan=False, allow_infinity=False, places=4, min_value=0, max_value=10**6)
charges = st.builds(
    Charge,
    payer=st.sampled_from(["caller", "called", "none"]),
    tariff=texts,
    billed_units=st.integers(0, 10**6),
    billed_seconds=st.integers(0, 10**6),
    cost=amounts,
    vat=amounts,
)


@st.composite
def records(draw: st.DrawFn) -> CdrRecord:
    """Any valid record: arbitrary text (any code point), ordered stamps, optional rating."""
    start = draw(moments)
    answer = start + draw(gaps) if draw(st.booleans()) else None
    end = (answer or start) + draw(gaps)
    optional = {
        name: draw(optional_texts)
        for name in (
            *("trunk", "customer", "caller_raw", "caller_e164", "caller_country", "called_raw"),
            *("called_e164", "dialplan", "dialplan_version", "language", "voicemail_path"),
            *("recording_path", "number_class", "tariff", "payer", "currency"),
        )
    }
    return CdrRecord(
        uuid=draw(texts),
        call_id=draw(texts),
        leg=draw(st.sampled_from(["a", "b"])),
        linked_id=draw(texts),
        status=draw(st.sampled_from(["final", "aborted"])),
        direction=draw(st.sampled_from(["inbound", "outbound", "internal"])),
        start_stamp=utc_stamp(start),
        answer_stamp=None if answer is None else utc_stamp(answer),
        end_stamp=utc_stamp(end),
        disposition=Disposition.ANSWERED
        if answer
        else draw(st.sampled_from([d for d in Disposition if d is not Disposition.ANSWERED])),
        hangup_cause=draw(texts),
        q850_cause=draw(st.one_of(st.none(), st.integers(0, 127))),
        sip_code=draw(st.one_of(st.none(), st.integers(100, 699))),
        hangup_by=draw(st.sampled_from([None, "caller", "callee", "server"])),
        end_reason=draw(st.sampled_from(EndReason)),
        steps=tuple(draw(st.lists(texts, max_size=5))),
        digits=draw(texts),
        survey=draw(st.dictionaries(texts, st.one_of(texts, st.integers()), max_size=4)),
        billed_units=draw(optional_ints),
        billed_seconds=draw(optional_ints),
        cost=draw(money),
        vat=draw(money),
        charges=tuple(draw(st.lists(charges, max_size=3))),
        **optional,
    )


@SETTINGS
@given(records())
def test_json_round_trip_is_exact(record: CdrRecord) -> None:
    """from_json(to_json(r)) equals r, field by field, and the line is one line of ASCII."""
    line = record.to_json()
    assert line.isascii() and "\n" not in line
    again = CdrRecord.from_json(line)
    assert again == record
    assert again.to_json() == line
    assert (again.cost, again.vat) == (record.cost, record.vat)


@SETTINGS
@given(records())
def test_money_is_written_as_strings_never_floats(record: CdrRecord) -> None:
    """cost and vat appear in JSON as decimal strings (or null), never as JSON numbers."""
    data = json.loads(record.to_json())
    for name in ("cost", "vat"):
        assert data[name] is None or (
            isinstance(data[name], str) and Decimal(data[name]).is_finite()
        )


def test_durations_are_truncated_whole_seconds_of_the_stamps() -> None:
    """duration and billsec drop the milliseconds; billmsec keeps them."""
    record = make_record(
        start_stamp="2026-11-22T10:00:00.000Z",
        answer_stamp="2026-11-22T10:00:01.500Z",
        end_stamp="2026-11-22T10:00:10.400Z",
    )
    assert (record.duration, record.billsec, record.billmsec) == (10, 8, 8900)


def test_unanswered_leg_bills_nothing() -> None:
    """Without an answer stamp billsec and billmsec are 0 while duration counts the ringing."""
    record = make_record(answer_stamp=None, disposition="NO_ANSWER", end_reason="normal")
    assert (record.duration, record.billsec, record.billmsec) == (62, 0, 0)


def test_replace_recomputes_the_derived_fields_and_adds_rating() -> None:
    """dataclasses.replace with a new end_stamp or a cost gives a consistent record."""
    record = make_record()
    rated = dataclasses.replace(
        record, end_stamp="2026-11-22T10:02:02.000Z", cost=Decimal("0.1234"), vat=Decimal("0.0210")
    )
    assert (rated.duration, rated.billsec) == (122, 120)
    assert '"cost":"0.1234","vat":"0.0210"' in rated.to_json()


def test_linked_id_defaults_to_uuid_and_enums_accept_their_values() -> None:
    """A leg without linked_id links to itself; str values become Disposition and EndReason."""
    record = make_record(7)
    assert record.linked_id == "u7"
    assert record.disposition is Disposition.ANSWERED
    assert record.end_reason is EndReason.NORMAL


def test_disposition_values_are_those_of_the_specification() -> None:
    """The dispositions are exactly ANSWERED, NO_ANSWER, BUSY, FAILED, REJECTED, CANCELLED."""
    assert [d.value for d in Disposition] == [
        "ANSWERED",
        "NO_ANSWER",
        "BUSY",
        "FAILED",
        "REJECTED",
        "CANCELLED",
    ]


CHARGE = {
    "payer": "called",
    "tariff": "unique_access_other_fixed",
    "billed_units": 60,
    "billed_seconds": 60,
    "cost": "0.0770",
    "vat": "0.0131",
}


def test_charges_say_who_pays_what_and_come_back_equal() -> None:
    """A record's charges are JSON objects with string money, read back as equal Charges."""
    record = make_record(1, charges=[CHARGE])
    data = json.loads(record.to_json())
    assert data["charges"] == [CHARGE]
    assert CdrRecord.from_json(record.to_json()) == record
    (charge,) = record.charges
    assert (charge.payer, charge.cost, charge.vat) == (
        "called",
        Decimal("0.0770"),
        Decimal("0.0131"),
    )
    assert make_record(2).charges == ()


def test_a_phones_record_names_it_and_older_lines_have_no_subscriber() -> None:
    """The subscriber field round-trips; a line written before it existed reads as None."""
    record = make_record(1, subscriber="+38733100201", customer="acme")
    assert CdrRecord.from_json(record.to_json()).subscriber == "+38733100201"
    data = json.loads(make_record(2).to_json())
    del data["subscriber"]
    assert CdrRecord.from_json(json.dumps(data)).subscriber is None
    with pytest.raises(ValueError, match="subscriber must be a string or null"):
        make_record(3, subscriber=38733100201)


def test_a_diverted_legs_record_says_why_and_by_whom_and_older_lines_have_neither() -> None:
    """diversion_reason and diverted_from round-trip; older lines read as None; an unknown
    reason is refused."""
    record = make_record(1, diversion_reason="no-answer", diverted_from="+38733100201")
    back = CdrRecord.from_json(record.to_json())
    assert (back.diversion_reason, back.diverted_from) == ("no-answer", "+38733100201")
    data = json.loads(make_record(2).to_json())
    del data["diversion_reason"], data["diverted_from"]
    assert CdrRecord.from_json(json.dumps(data)).diversion_reason is None
    with pytest.raises(ValueError, match="diversion_reason 'deflection' is not one of"):
        make_record(3, diversion_reason="deflection")


def test_a_picked_up_call_names_who_answered_and_older_lines_have_none() -> None:
    """answered_by (call pickup) round-trips; a line written before it existed reads as None."""
    record = make_record(1, answered_by="+38733100203")
    assert CdrRecord.from_json(record.to_json()).answered_by == "+38733100203"
    data = json.loads(make_record(2).to_json())
    del data["answered_by"]
    assert CdrRecord.from_json(json.dumps(data)).answered_by is None
    with pytest.raises(ValueError, match="answered_by must be a string or null"):
        make_record(3, answered_by=38733100203)


def test_records_are_hashable_values() -> None:
    """Equal records hash alike (survey is left out of the hash), so they can go in sets."""
    assert len({make_record(1, survey={"q1": 5}), make_record(1, survey={"q1": 5})}) == 1


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"answer_stamp": "2026-11-22T09:59:59.000Z"}, "answer_stamp"),
        (
            {"end_stamp": "2026-11-22T09:00:00.000Z", "answer_stamp": None, "disposition": "BUSY"},
            "end_stamp",
        ),
        ({"start_stamp": "2026-11-22 10:00:00"}, "not a CDR stamp"),
        ({"start_stamp": "2026-11-22T10:00:00Z"}, "not a CDR stamp"),
        ({"leg": "c"}, "leg"),
        ({"answer_stamp": None}, "ANSWERED exactly when"),
        ({"disposition": "BUSY"}, "ANSWERED exactly when"),
        ({"disposition": "CONGESTION"}, "CONGESTION"),
        ({"end_reason": "bored"}, "bored"),
        ({"cost": "NaN"}, "cost"),
        ({"cost": 0.1}, "cost must be a decimal string"),
        ({"q850_cause": 200}, "Q.850"),
        ({"sip_code": 99}, "sip_code"),
        ({"q850_cause": True}, "q850_cause"),
        ({"survey": {"q": 1.5}}, "survey"),
        ({"steps": ["menu", 3]}, "steps"),
        ({"trunk": 5}, "trunk must be a string or null"),
        ({"uuid": 5}, "uuid must be a string"),
        ({"transferred_from": b"x"}, "transferred_from must be a string or null"),
        ({"billed_seconds": "3"}, "billed_seconds must be an integer or null"),
        ({"colour": "red"}, "unknown CDR field"),
        ({"duration": 61}, "duration"),
        ({"charges": [{"payer": "caller"}]}, "a charge is an object with exactly"),
        ({"charges": [{**CHARGE, "cost": 0.1}]}, "cost must be a decimal string"),
        ({"charges": [{**CHARGE, "vat": None}]}, "never null"),
        ({"charges": [{**CHARGE, "billed_units": -1}]}, "whole numbers"),
        ({"charges": [{**CHARGE, "tariff": 7}]}, "strings"),
        ({"charges": "caller"}, "charges must be a sequence of charges"),
    ],
)
def test_invalid_records_are_refused_with_a_specific_message(
    overrides: dict[str, object], message: str
) -> None:
    """Each kind of bad value raises ValueError naming the problem."""
    with pytest.raises(ValueError, match=message):
        make_record(0, **overrides)


def test_from_json_refuses_incomplete_and_non_object_lines() -> None:
    """A line missing a required field, or not a JSON object, raises ValueError."""
    data = json.loads(make_record().to_json())
    del data["end_stamp"]
    with pytest.raises(ValueError, match="incomplete"):
        CdrRecord.from_json(json.dumps(data))
    with pytest.raises(ValueError, match="JSON object"):
        CdrRecord.from_json("[1, 2]")
    with pytest.raises(ValueError):
        CdrRecord.from_json('{"uuid": "u1", ')


def test_utc_stamp_converts_zones_and_truncates_to_milliseconds() -> None:
    """A +02:00 time becomes Z, and 999999 µs becomes .999."""
    moment = datetime(2026, 3, 1, 1, 30, 5, 999_999, tzinfo=timezone(timedelta(hours=2)))
    assert utc_stamp(moment) == "2026-02-28T23:30:05.999Z"
    assert parse_stamp("2026-02-28T23:30:05.999Z") == datetime(
        2026, 2, 28, 23, 30, 5, 999_000, tzinfo=UTC
    )
    assert stamp_from_epoch(0.25) == "1970-01-01T00:00:00.250Z"


def test_utc_stamp_refuses_naive_times() -> None:
    """A datetime without a zone cannot be a CDR time."""
    with pytest.raises(ValueError, match="no time zone"):
        utc_stamp(datetime(2026, 1, 1))


def test_a_transferred_leg_names_the_leg_it_replaced_and_older_lines_have_none() -> None:
    """transferred_from round-trips, reads as None from older lines, and must be text; a
    transferor's leg may end ``transferred``."""
    record = make_record(1, transferred_from="leg-b-1")
    assert CdrRecord.from_json(record.to_json()).transferred_from == "leg-b-1"
    data = json.loads(make_record(2).to_json())
    del data["transferred_from"]
    assert CdrRecord.from_json(json.dumps(data)).transferred_from is None
    with pytest.raises(ValueError, match="transferred_from must be a string or null"):
        make_record(3, transferred_from=7)
    assert make_record(4, end_reason="transferred").end_reason.value == "transferred"


def test_a_supervisors_record_names_the_call_it_monitored_and_older_lines_have_none() -> None:
    """monitored_call, monitor_mode and monitored_by round-trip and read as None from older
    lines; the mode is listen, whisper or barge."""
    record = make_record(1, monitored_call="c-1", monitor_mode="whisper", monitored_by="+3871")
    again = CdrRecord.from_json(record.to_json())
    assert (again.monitored_call, again.monitor_mode, again.monitored_by) == (
        "c-1",
        "whisper",
        "+3871",
    )
    data = json.loads(make_record(2).to_json())
    for name in ("monitored_call", "monitor_mode", "monitored_by"):
        del data[name]
    assert CdrRecord.from_json(json.dumps(data)).monitor_mode is None
    with pytest.raises(ValueError, match="monitor_mode 'spy' is not one of"):
        make_record(3, monitor_mode="spy")


def test_a_recorded_call_names_its_file_and_seconds_and_older_lines_have_none() -> None:
    """recording_path and recording_seconds round-trip, read as None from older lines, and
    the seconds must be a whole number, not negative."""
    record = make_record(1, recording_path="recordings/acme/2026/12/07/u.wav", recording_seconds=9)
    again = CdrRecord.from_json(record.to_json())
    assert (again.recording_path, again.recording_seconds) == (record.recording_path, 9)
    data = json.loads(make_record(2).to_json())
    del data["recording_seconds"]
    assert CdrRecord.from_json(json.dumps(data)).recording_seconds is None
    with pytest.raises(ValueError, match="recording_seconds must be an integer or null"):
        make_record(3, recording_seconds=1.5)
    with pytest.raises(ValueError, match="recording_seconds -1 is negative"):
        make_record(4, recording_seconds=-1)
