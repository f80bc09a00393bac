"""Tests for the queue log record: its JSON round trip and the checks made when a line is read."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from callserver.queues.records import QueueEventKind, QueueLogRecord
from tests.queues.scripted import at, scripted_day


def test_every_record_of_the_scripted_day_survives_the_json_round_trip() -> None:
    """from_json(to_json(r)) == r for every kind the day holds."""
    day = scripted_day()
    assert {r.kind for r in day} == set(QueueEventKind)
    assert [QueueLogRecord.from_json(r.to_json()) for r in day] == day


def test_at_is_kept_in_utc_to_the_millisecond() -> None:
    """A local time becomes its UTC instant, microseconds cut to milliseconds."""
    record = QueueLogRecord(
        at=at("08:05:10.123987"), kind=QueueEventKind.LOGIN, customer="acme", uuid="e", agent="1"
    )
    assert record.at == datetime(2026, 3, 2, 7, 5, 10, 123000, tzinfo=UTC)
    assert record.to_json().startswith('{"at":"2026-03-02T07:05:10.123Z","kind":"login"')


def test_a_wait_of_no_time_is_a_wait() -> None:
    """A caller who hung up in the millisecond it joined waited 0 s: the line is written."""
    record = QueueLogRecord(
        at=at("08:05:10"),
        kind=QueueEventKind.ABANDON,
        customer="acme",
        uuid="e",
        queue="sales",
        call_id="c1",
        wait=0.0,
    )
    assert QueueLogRecord.from_json(record.to_json()).wait == 0.0


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("{", "not a JSON line"),
        ("[1]", "not a JSON object"),
        ('{"at":"2026-03-02T07:00:00.000Z","kind":"hop"}', "unknown kind 'hop'"),
        ('{"at":"yesterday","kind":"login"}', "at 'yesterday' is not a UTC stamp"),
        ('{"at":"2026-03-02T07:00:00.000Z","kind":"login","colour":1}', "unknown key 'colour'"),
        (
            '{"at":"2026-03-02T07:00:00.000Z","kind":"login","customer":"a","uuid":"e"}',
            "the login event has no agent",
        ),
        (
            '{"at":"2026-03-02T07:00:00.000Z","kind":"abandon","customer":"a","uuid":"e",'
            '"queue":"q","call_id":"c"}',
            "the abandon event has no wait",
        ),
        (
            '{"at":"2026-03-02T07:00:00.000Z","kind":"ring_cancelled","customer":"a",'
            '"uuid":"e","queue":"q","call_id":"c","agent":"201"}',
            "the ring_cancelled event has no reason",
        ),
        (
            '{"at":"2026-03-02T07:00:00.000Z","kind":"join","customer":"a","uuid":"e",'
            '"queue":"q","call_id":"c","position":"first"}',
            "position 'first' is not a whole number",
        ),
        (
            '{"at":"2026-03-02T07:00:00.000Z","kind":"leave","customer":"a","uuid":"e",'
            '"queue":"q","call_id":"c","wait":-1}',
            "wait -1.0 is not 0 or more seconds",
        ),
        (
            '{"at":"2026-03-02T07:00:00.000Z","kind":"join","customer":7,"uuid":"e"}',
            "customer 7 is not a string",
        ),
    ],
)
def test_a_bad_line_raises_one_sentence(line: str, message: str) -> None:
    """Each kind of mistake in a line is a ValueError that says what is wrong."""
    with pytest.raises(ValueError, match="^" + message.replace("(", r"\(")):
        QueueLogRecord.from_json(line)


def test_a_naive_time_is_refused() -> None:
    """A record's time must say its zone."""
    with pytest.raises(ValueError, match="has no time zone"):
        QueueLogRecord(
            at=datetime(2026, 3, 2, 8), kind=QueueEventKind.LOGIN, customer="a", uuid="e", agent="1"
        )


_VALUES = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=30)
_JSON = st.recursive(
    _VALUES, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(), inner)
)
_FIELDS = ("at", "kind", "queue", "customer", "call_id", "caller", "agent", "reason", "uuid")


@given(
    st.dictionaries(
        st.sampled_from([*_FIELDS, "position", "wait"]),
        _JSON | st.sampled_from(["2026-03-02T07:00:00.000Z", *QueueEventKind]),
    )
)
def test_any_json_object_is_a_record_or_a_value_error(data: dict[str, object]) -> None:
    """Whatever a line holds, reading it gives a record that round-trips, or a ValueError."""
    try:
        record = QueueLogRecord.from_json(json.dumps(data))
    except ValueError as exc:
        assert str(exc)
    else:
        assert QueueLogRecord.from_json(record.to_json()) == record
