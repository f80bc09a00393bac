"""The campaign scheduler: the window, pacing, channels, retries and one result a number."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from callserver.campaigns.schedule import RESULTS, Rules, Schedule
from callserver.dialplan.hours import compile_hours

WINDOW = compile_hours(
    {"timezone": "Europe/Sarajevo", "holidays": "BA", "open": {"mon-fri": "09:00-17:00"}}
)
# Wednesday 2026-12-30, 10:00 in Sarajevo: open; Thursday 31 open; 1-2 January holidays.
WEDNESDAY = datetime(2026, 12, 30, 9, 0, tzinfo=UTC)
NUMBERS = [f"+38761{n:06d}" for n in range(8)]
RULES = Rules(calls_per_second=2, max_in_progress=3, max_attempts=3, delay=60, backoff=2)


def _schedule(rules: Rules = RULES, numbers: list[str] = NUMBERS) -> Schedule:
    return Schedule(numbers, rules, WINDOW)


def test_one_call_per_spacing_in_list_order() -> None:
    """Calls start in the list's order, one per 1/calls_per_second."""
    schedule = _schedule()
    first = schedule.due(WEDNESDAY, channels_free=10)
    assert [d.number for d in first] == NUMBERS[:1]
    assert schedule.due(WEDNESDAY + timedelta(seconds=0.4), channels_free=10) == []
    second = schedule.due(WEDNESDAY + timedelta(seconds=0.5), channels_free=10)
    assert [d.number for d in second] == NUMBERS[1:2]


def test_in_progress_capped_by_rule_and_channels() -> None:
    """No call starts past max_in_progress, nor past the customer's free channels."""
    schedule = _schedule()
    now = WEDNESDAY
    for _ in range(5):
        schedule.due(now, channels_free=10)
        now += timedelta(seconds=1)
    assert schedule.in_progress() == 3
    assert schedule.next_wake(now) is None  # only a call ending brings the next one
    schedule.finished(NUMBERS[0], "answered", now)
    assert schedule.due(now, channels_free=0) == []
    assert [d.number for d in schedule.due(now, channels_free=1)] == [NUMBERS[3]]


def test_closed_window_waits_for_the_opening() -> None:
    """At 18:00 nothing is dialled, and the next wake is the next morning's 09:00."""
    schedule = _schedule()
    evening = datetime(2026, 12, 30, 17, 0, tzinfo=UTC)  # 18:00 in Sarajevo
    assert schedule.due(evening, channels_free=5) == []
    assert schedule.next_wake(evening) == datetime(2026, 12, 31, 8, 0, tzinfo=UTC)


def test_holiday_pinned_skips_to_the_next_working_day() -> None:
    """New Year's Day and the day after are BA holidays: the next call is on Monday 4 January."""
    schedule = _schedule()
    new_year = datetime(2027, 1, 1, 10, 0, tzinfo=UTC)
    assert WINDOW.state(new_year).status == "holiday"
    assert schedule.due(new_year, channels_free=5) == []
    assert schedule.next_wake(new_year) == datetime(2027, 1, 4, 8, 0, tzinfo=UTC)


def test_busy_retried_after_backoff_then_final() -> None:
    """Busy waits delay, then delay*backoff; the third busy is final after three attempts."""
    schedule = _schedule(numbers=NUMBERS[:1])
    now = WEDNESDAY
    waits = []
    for _ in range(2):
        schedule.due(now, channels_free=1)
        assert schedule.finished(NUMBERS[0], "busy", now) is None
        wake = schedule.next_wake(now)
        assert wake is not None
        waits.append((wake - now).total_seconds())
        assert schedule.due(wake - timedelta(seconds=1), channels_free=1) == []
        now = wake
    assert waits == [60, 120]
    assert [d.attempt for d in schedule.due(now, channels_free=1)] == [3]
    final = schedule.finished(NUMBERS[0], "busy", now)
    assert final is not None and (final.result, final.attempts) == ("busy", 3)
    assert schedule.done and schedule.next_wake(now) is None


def test_answered_and_barred_are_never_retried() -> None:
    """An answered or barred number is final at its first attempt, answers kept."""
    schedule = _schedule(numbers=NUMBERS[:2])
    schedule.due(WEDNESDAY, channels_free=2)
    later = WEDNESDAY + timedelta(seconds=1)
    schedule.due(later, channels_free=2)
    answered = schedule.finished(NUMBERS[0], "answered", later, {"q1": "5"})
    barred = schedule.finished(NUMBERS[1], "barred", later)
    assert answered is not None and dict(answered.answers) == {"q1": "5"}
    assert barred is not None and barred.result == "barred"
    assert schedule.progress().results["answered"] == 1


def test_restore_never_calls_an_answered_number_again() -> None:
    """After a restart the answered number stays final; the one in progress is retried."""
    schedule = _schedule(numbers=NUMBERS[:2])
    schedule.due(WEDNESDAY, channels_free=2)
    later = WEDNESDAY + timedelta(seconds=1)
    schedule.due(later, channels_free=2)
    answered = schedule.finished(NUMBERS[0], "answered", later)
    assert answered is not None
    snapshot = schedule.snapshot()
    again = Schedule(NUMBERS[:2], RULES, WINDOW)
    assert again.restore(snapshot, [answered], later) == []
    dials = again.due(later + timedelta(seconds=1), channels_free=2)
    assert [(d.number, d.attempt) for d in dials] == [(NUMBERS[1], 2)]
    assert again.due(later + timedelta(seconds=5), channels_free=2) == []


def test_restore_makes_an_interrupted_last_attempt_final() -> None:
    """A call in progress at the stop with no attempts left ends failed."""
    rules = Rules(calls_per_second=1, max_in_progress=1, max_attempts=1, delay=0)
    schedule = _schedule(rules, NUMBERS[:1])
    schedule.due(WEDNESDAY, channels_free=1)
    again = Schedule(NUMBERS[:1], rules, WINDOW)
    made = again.restore(schedule.snapshot(), [], WEDNESDAY)
    assert [(f.number, f.result, f.attempts) for f in made] == [(NUMBERS[0], "failed", 1)]
    assert again.done


def test_restore_makes_a_call_answered_before_the_stop_answered() -> None:
    """A call in progress that was answered ends answered with its survey so far, though it
    has attempts left; one not answered is dialled again."""
    schedule = _schedule(numbers=NUMBERS[:2])
    schedule.due(WEDNESDAY, channels_free=2)
    later = WEDNESDAY + timedelta(seconds=1)
    schedule.due(later, channels_free=2)
    schedule.answered(NUMBERS[0], later, {})
    schedule.answered(NUMBERS[0], later + timedelta(seconds=9), {"q1": "2"})
    again = Schedule(NUMBERS[:2], RULES, WINDOW)
    stop = later + timedelta(seconds=20)
    made = again.restore(schedule.snapshot(), [], stop)
    assert [(f.number, f.result, f.attempts, dict(f.answers)) for f in made] == [
        (NUMBERS[0], "answered", 1, {"q1": "2"})
    ]
    dials = again.due(stop, channels_free=2)
    assert [(d.number, d.attempt) for d in dials] == [(NUMBERS[1], 2)]


def test_the_window_says_why_it_is_closed_and_when_it_opens() -> None:
    """New Year's Day 2027 (a Friday) is a holiday, and so is the 2nd: the window opens on
    Monday the 4th at 09:00 in Sarajevo; a weekday evening opens the next morning."""
    schedule = _schedule()
    new_year = schedule.window_at(datetime(2027, 1, 1, 9, 0, tzinfo=UTC))
    assert (new_year.status, new_year.holiday) == ("holiday", "New Year's Day")
    assert new_year.opens is not None and new_year.opens.isoformat() == "2027-01-04T09:00:00+01:00"
    evening = schedule.window_at(WEDNESDAY + timedelta(hours=9))
    assert evening.status == "closed" and evening.opens is not None
    assert evening.opens.isoformat() == "2026-12-31T09:00:00+01:00"
    assert schedule.window_at(WEDNESDAY).opens is None


@settings(max_examples=60, deadline=None)
@given(
    rate=st.sampled_from([0.5, 1.0, 2.0, 5.0]),
    limit=st.integers(1, 4),
    attempts=st.integers(1, 3),
    steps=st.lists(
        st.tuples(
            st.floats(0.05, 7200.0),  # seconds to the next step
            st.integers(0, 4),  # channels free
            st.sampled_from(RESULTS),  # how the oldest call in progress ends
            st.booleans(),  # whether a call ends at this step
        ),
        max_size=80,
    ),
)
def test_invariants_hold_for_any_run(
    rate: float, limit: int, attempts: int, steps: list[tuple[float, int, str, bool]]
) -> None:
    """Never above the rate or the limits, never outside the window, never more attempts
    than allowed, every number ends with exactly one result, and the progress counts agree."""
    rules = Rules(calls_per_second=rate, max_in_progress=limit, max_attempts=attempts, delay=30)
    numbers = NUMBERS[:5]
    schedule = Schedule(numbers, rules, WINDOW)
    now = datetime(2026, 12, 31, 15, 30, tzinfo=UTC)  # 16:30: the window closes soon
    dials: list[datetime] = []
    calls: list[str] = []
    tried = dict.fromkeys(numbers, 0)
    finals: dict[str, int] = {}

    def step(channels_free: int, result: str, end: bool) -> None:
        if end and calls:
            final = schedule.finished(calls.pop(0), result, now)  # type: ignore[arg-type]
            if final is not None:
                finals[final.number] = finals.get(final.number, 0) + 1
        for dial in schedule.due(now, channels_free=channels_free):
            assert WINDOW.state(now).status == "open"
            assert len(calls) < limit and channels_free > 0
            calls.append(dial.number)
            dials.append(now)
            tried[dial.number] += 1
            assert dial.attempt == tried[dial.number] <= attempts
        progress = schedule.progress()
        assert (progress.in_progress, progress.dialled) == (len(calls), sum(tried.values()))
        assert sum(progress.results.values()) + progress.waiting + len(calls) == len(numbers)

    for wait, free, result, end in steps:
        now += timedelta(seconds=wait)
        step(free, result, end)
    for _ in range(400):  # run to the end: every call ends, the wake-ups followed
        if schedule.done:
            break
        wake = schedule.next_wake(now)
        now = max(now, wake) if wake is not None else now + timedelta(seconds=1)
        step(limit, "busy", True)
    assert schedule.done
    assert finals == dict.fromkeys(numbers, 1)
    spacing = timedelta(seconds=1 / rate)
    assert all(b - a >= spacing for a, b in itertools.pairwise(dials))
