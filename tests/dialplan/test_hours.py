"""Business hours: weekly ranges, DST days, public holidays, closed and special dates, errors."""

from __future__ import annotations

import operator
import re
from datetime import UTC, datetime, timedelta
from unittest.mock import Mock
from zoneinfo import ZoneInfo

import holidays
import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from callserver.config.positions import line_of, load_yaml_with_lines
from callserver.dialplan.hours import LOOKAHEAD, HoursError, compile_hours

SARAJEVO = ZoneInfo("Europe/Sarajevo")
DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
DAILY = {"mon-sun": "08:00-16:00"}
SCHEDULES: dict[str, dict[str, object]] = yaml.safe_load("""\
office: {open: {mon-fri: "08:00-16:00", sat: "09:00-13:00, 17:00-19:00", sun: closed}}
night: {open: {fri: "22:00-06:00", sat: "09:00-12:00"}}
evening: {open: {mon: "18:00-00:00"}}
always: {open: {mon-sun: "00:00-24:00"}}
sparse: {open: {mon: "08:00-16:00", tue: null, sun: Closed}}
nothing: {}
sun-0230: {open: {sun: "02:30-04:00"}}
sun-0100: {open: {sun: "01:00-05:00"}}
sat-night: {open: {sat: "22:00-06:00"}}
sun-to-0230: {open: {sun: "01:00-02:30"}}
sun-from-0230: {open: {sun: "02:30-05:00"}}
monday: {open: {mon: "08:00-16:00"}}
no-holidays: {holidays: no, open: {mon: "08:00-16:00"}}
mixed:
  holidays: [BA-SRP, HR]
  open: {mon-fri: "08:00-16:00, 22:00-02:00", sat: "09:00-13:00"}
  closed: [2026-12-31, 2027-07-01..2027-07-15]
  special: {2026-03-29: "02:00-02:30", 2026-10-25: "02:00-03:00"}
new-york: {timezone: America/New_York, open: {mon: "09:00-17:00"}}
ba-office: {holidays: BA, open: {mon-fri: "08:00-16:00"}}
closed: {open: {mon-sat: "08:00-16:00"}, closed: [2026-12-31, 2027-07-01..2027-07-15]}
closed-one: {open: {mon-sat: "08:00-16:00"}, closed: 2026-12-31}
closed-july: {open: {mon-fri: "08:00-16:00"}, closed: [2027-07-01..2027-07-31]}
easter-special: {holidays: BA, open: {mon-fri: "08:00-16:00"}, special: {2026-04-06: "08:00-12:00"}}
christmas-week: {special: {2026-12-24..2026-12-26: "09:00-10:00"}}
closed-holiday: {holidays: BA, open: {mon-fri: "08:00-16:00"}, closed: [2026-04-06]}
night-holiday: {holidays: BA, open: {mon-sun: "22:00-06:00"}}
cut-closed: {open: {fri: "22:00-06:00"}, closed: [2026-03-07]}
cut-special: {open: {fri: "22:00-06:00"}, special: {2026-03-07: "10:00-11:00"}}
special:
  open: {mon-sat: "08:00-16:00"}
  closed: [2027-07-01..2027-07-15]
  special: {2027-07-07: "10:00-11:00", "2026-12-26": closed}
documented:  # the example of docs/dialplans.md
  timezone: Europe/Sarajevo
  holidays: BA
  open:
    mon-fri: "08:00-16:00"
    sat: "09:00-13:00, 17:00-19:00"
    sun: closed
  closed:
    - 2026-12-31
    - 2027-07-01..2027-07-15
  special:
    2026-12-24: "08:00-12:00"
    2026-12-26: closed
""")

# schedule (daily:<holidays> is 08:00-16:00 every day), instant (Sarajevo wall clock; Z: UTC;
# ~: the second of a repeated time), status, reason, next change (-: none), holiday name.
SCENARIOS = """\
office     2026-03-02T07:59:59  closed  schedule  2026-03-02T08:00
office     2026-03-02T08:00     open    schedule  2026-03-02T16:00
office     2026-03-02T15:59:59  open    schedule  2026-03-02T16:00
office     2026-03-02T16:00     closed  schedule  2026-03-03T08:00
office     2026-03-07T10:00     open    schedule  2026-03-07T13:00  # several ranges a day
office     2026-03-07T14:00     closed  schedule  2026-03-07T17:00
office     2026-03-07T19:00     closed  schedule  2026-03-09T08:00  # Sunday is closed
night      2026-03-06T21:00     closed  schedule  2026-03-06T22:00
night      2026-03-07T03:00     open    schedule  2026-03-07T06:00  # over midnight
night      2026-03-07T07:00     closed  schedule  2026-03-07T09:00
night      2026-03-06T03:00     closed  schedule  2026-03-06T22:00  # not Thursday's range
evening    2026-03-02T23:59     open    schedule  2026-03-03T00:00  # 18:00-00:00
evening    2026-03-03T00:00     closed  schedule  2026-03-09T18:00
always     2026-03-02T00:00     open    schedule  -
always     2026-03-29T01:30Z    open    schedule  -
always     2026-10-25T02:30~    open    schedule  -
sparse     2026-03-03T10:00     closed  schedule  2026-03-09T08:00  # tue: (empty)
sparse     2026-03-04T10:00     closed  schedule  2026-03-09T08:00  # wed left out
sparse     2026-03-08T10:00     closed  schedule  2026-03-09T08:00  # sun: Closed
nothing    2026-03-02T10:00     closed  schedule  -
sun-0230   2026-03-29T00:59:59Z closed  schedule  2026-03-29T01:00Z  # 02:30 skipped: 03:00 CEST
sun-0230   2026-03-29T01:00Z    open    schedule  2026-03-29T02:00Z
sun-0100   2026-03-28T23:59Z    closed  schedule  2026-03-29T00:00Z
sun-0100   2026-03-29T00:00Z    open    schedule  2026-03-29T03:00Z  # 23-hour day: 3 hours
sat-night  2026-03-28T21:00Z    open    schedule  2026-03-29T04:00Z  # 06:00 CEST: 7 hours
sat-night  2026-03-21T21:00Z    open    schedule  2026-03-22T05:00Z  # a week before: 8 hours
sun-to-0230 2026-10-25T00:15Z   open    schedule  2026-10-25T00:30Z  # ends at the first 02:30
sun-to-0230 2026-10-25T02:15~   closed  schedule  2026-11-01T01:00   # and does not reopen
sun-from-0230 2026-10-25T00:00Z closed  schedule  2026-10-25T00:30Z
sun-from-0230 2026-10-25T02:10~ open    schedule  2026-10-25T04:00Z
monday     2026-03-23T06:59Z    closed  schedule  2026-03-23T07:00Z  # CET
monday     2026-03-30T05:59Z    closed  schedule  2026-03-30T06:00Z  # CEST
monday     2026-04-06T10:00     open    schedule  2026-04-06T16:00  # no holidays: working
no-holidays 2026-04-06T10:00    open    schedule  2026-04-06T16:00  # holidays: no
new-york   2026-03-02T13:59Z    closed  schedule  2026-03-02T14:00Z
daily:BA   2026-04-06T10:00     holiday holiday   2026-04-07T00:00  Catholic Easter Monday
daily:BA   2026-04-10T10:00     holiday holiday   2026-04-11T00:00  Orthodox Good Friday
daily:BA   2026-05-27T10:00     holiday holiday   2026-05-28T00:00  Eid al-Adha (estimated)
daily:BA-SRP 2026-04-12T10:00   holiday holiday   2026-04-14T00:00  Orthodox Easter Sunday
daily:BA-RS 2026-04-13T10:00    holiday holiday   2026-04-14T00:00  Orthodox Easter Monday
daily:ba-fbih 2026-03-01T10:00  holiday holiday   2026-03-02T00:00  Independence Day
daily:HR   2026-04-06T10:00     holiday holiday   2026-04-07T00:00  Easter Monday
daily:RS   2026-04-12T10:00     holiday holiday   2026-04-14T00:00  Easter Sunday
daily:DE-BY 2026-01-06T10:00    holiday holiday   2026-01-07T00:00  Epiphany
daily:de-by 2026-06-04T10:00    holiday holiday   2026-06-05T00:00  Corpus Christi
daily:BA   2026-04-12T10:00     open    schedule  2026-04-12T16:00  # Orthodox Easter: entities
daily:RS   2026-04-06T10:00     open    schedule  2026-04-06T16:00  # not Catholic Easter
daily:DE   2026-01-06T10:00     open    schedule  2026-01-06T16:00  # Epiphany: not all Germany
daily:DE-BE 2026-01-06T10:00    open    schedule  2026-01-06T16:00
daily:BA-BRC 2026-03-01T10:00   open    schedule  2026-03-01T16:00
daily:none 2026-04-06T10:00     open    schedule  2026-04-06T16:00
daily:HR,RS 2026-04-06T10:00    holiday holiday   2026-04-07T00:00  Easter Monday
daily:HR,RS 2026-04-13T10:00    holiday holiday   2026-04-14T00:00  Easter Monday
daily:HR,RS 2026-01-01T10:00    holiday holiday   2026-01-03T00:00  New Year's Day
daily:HR,RS 2026-01-06T10:00    holiday holiday   2026-01-08T00:00  Epiphany
ba-office  2026-04-05T20:00     closed  schedule  2026-04-06T00:00  # a holiday begins...
ba-office  2026-04-06T12:00     holiday holiday   2026-04-07T00:00  Catholic Easter Monday
ba-office  2026-04-07T00:00     closed  schedule  2026-04-07T08:00  # ...and ends at midnight
closed     2026-12-31T10:00     closed  closed_date 2027-01-01T08:00
closed     2027-07-01T10:00     closed  closed_date -                 # reopens after the look-ahead
closed     2026-12-30T10:00     open    schedule  2026-12-30T16:00
closed     2027-07-16T10:00     open    schedule  2027-07-16T16:00
closed-one 2026-12-31T10:00     closed  closed_date 2027-01-01T08:00
closed-july 2027-07-02T10:00    closed  closed_date -                  # beyond the look-ahead
closed-july 2027-07-20T10:00    closed  closed_date 2027-08-02T08:00
easter-special 2026-04-06T10:00 open    special   2026-04-06T12:00  Catholic Easter Monday
easter-special 2026-04-06T13:00 closed  special   2026-04-07T08:00  Catholic Easter Monday
special    2027-07-07T10:30     open    special   2027-07-07T11:00  # over a closed range
special    2027-07-07T09:00     closed  special   2027-07-07T10:00
special    2026-12-26T10:00     closed  special   2026-12-28T08:00  # closed on a Saturday
christmas-week 2026-12-23T09:30 closed  schedule  2026-12-24T09:00
christmas-week 2026-12-25T09:30 open    special   2026-12-25T10:00
christmas-week 2026-12-27T09:30 closed  schedule  -
closed-holiday 2026-04-06T10:00 closed  closed_date 2026-04-07T08:00 Catholic Easter Monday
night-holiday 2026-04-10T03:00  open    schedule  2026-04-10T06:00  Orthodox Good Friday
night-holiday 2026-04-10T07:00  holiday holiday   2026-04-11T00:00  Orthodox Good Friday
cut-closed 2026-03-06T23:00     open    schedule  2026-03-07T00:00  # cut at midnight
cut-closed 2026-03-07T00:30     closed  closed_date 2026-03-13T22:00
cut-special 2026-03-07T00:30    closed  special   2026-03-07T10:00
documented 2026-12-24T11:00     open    special   2026-12-24T12:00
documented 2026-12-24T13:00     closed  special   2026-12-25T00:00
documented 2026-12-25T10:00     holiday holiday   2026-12-26T00:00  Catholic Christmas Day
documented 2027-07-10T10:00     closed  closed_date 2027-07-16T08:00
"""


def local(text: str, *, fold: int = 0) -> datetime:
    """Sarajevo wall-clock time ``text`` (ISO 8601) as an aware datetime."""
    return datetime.fromisoformat(text).replace(tzinfo=SARAJEVO, fold=fold)


def instant(text: str) -> datetime:
    """An instant of the scenario table: wall clock, ``Z`` for UTC, ``~`` for fold=1."""
    if text.endswith("Z"):
        return datetime.fromisoformat(text[:-1]).replace(tzinfo=UTC)
    return local(text.rstrip("~"), fold=int(text.endswith("~")))


def schedule(name: str) -> dict[str, object]:
    """The hours a scenario names: daily:<countries> is 08:00-16:00 with those holidays."""
    countries = name.removeprefix("daily:").split(",")
    daily: dict[str, object] = {
        "holidays": countries if countries[1:] else countries[0],
        "open": DAILY,
    }
    return SCHEDULES.get(name, daily)


@pytest.mark.parametrize("row", SCENARIOS.splitlines())
def test_scenarios(row: str) -> None:
    """The state at an instant has the row's status, reason, next change and holiday."""
    name, when, status, reason, change, *holiday = row.split("#")[0].strip().split(maxsplit=5)
    state = compile_hours(schedule(name)).state(instant(when))
    expected_change = None if change == "-" else instant(change).astimezone(UTC)
    assert (state.status, state.reason, state.next_change) == (status, reason, expected_change)
    assert state.holiday == (holiday[0] if holiday else None)


def test_now_must_be_aware_and_next_change_is_utc() -> None:
    """A naive now is refused; next_change is in UTC, so arithmetic on it counts real time."""
    now = local("2026-03-29T01:00")  # CET; the office opens at 08:00 CEST
    hours = compile_hours({"open": {"sun": "08:00-16:00"}})
    change = hours.state(now).next_change
    assert change is not None and change.tzinfo is UTC
    assert change - now == timedelta(hours=6)
    with pytest.raises(ValueError, match="timezone-aware"):
        hours.state(now.replace(tzinfo=None))


# A key of the open mapping and the days it opens; "+" joins a key given as a sequence.
DAY_KEYS = """\
fri-mon: fri sat sun mon
sun-tue: sun mon tue
Monday-Wednesday: mon tue wed
SAT: sat
mon,wed,fri: mon wed fri
[tue, thu]: tue thu
mon-tue, sat: mon tue sat
sat+sun: sat sun
"""


@pytest.mark.parametrize("row", DAY_KEYS.splitlines())
def test_day_names_ranges_and_lists(row: str) -> None:
    """Wrapping ranges, full names, any case, lists and sequence keys name the right days."""
    text, days = row.split(": ")
    key = tuple(text.split("+")) if "+" in text else text
    hours = compile_hours({"open": {key: "10:00-11:00"}})
    week = [local(f"2026-03-0{n}T10:30") for n in range(2, 9)]  # Monday to Sunday
    opened = {day for day, at in zip(DAYS, week, strict=True) if hours.state(at).status == "open"}
    assert opened == set(days.split())


def test_compile_builds_the_years_it_is_given(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tables for the years given are built at compile time: state() builds none for them."""
    hours = compile_hours({"holidays": "SI", "open": {"mon-fri": "08:00-16:00"}}, years=[2044])
    monkeypatch.setattr(holidays, "country_holidays", Mock(side_effect=AssertionError))
    assert hours.state(local("2044-06-25T10:00")).holiday == "Statehood Day"
    assert hours.state(local("2044-06-27T10:00")).status == "open"


def test_an_unseen_year_is_built_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """The first call in a year builds its table; later calls and other plans reuse it."""
    spy = Mock(wraps=holidays.country_holidays)
    monkeypatch.setattr(holidays, "country_holidays", spy)
    first = compile_hours({"holidays": "ME", "open": {"mon-fri": "08:00-16:00"}})
    second = compile_hours({"holidays": "ME"})
    for hours in (first, second, first):
        hours.state(local("2043-06-10T10:00"))
    assert [call.kwargs["years"] for call in spy.call_args_list if "years" in call.kwargs] == [2043]


# One case a line, the hours as YAML; under it "field.path: message", continued on the lines
# indented further. <countries> stands for every country the holidays package knows.
BAD = """\
{open: {mon: "25:00-26:00"}}
  open.mon: '25:00' is not a time of day (HH:MM, 00:00-24:00)
{open: {mon: "08:60-09:00"}}
  open.mon: '08:60' is not a time of day (HH:MM, 00:00-24:00)
{open: {mon: "08:00"}}
  open.mon: '08:00' is not a range of hours; write it as HH:MM-HH:MM
{special: {2026-12-24: "8 to 12"}}
  special.2026-12-24: '8 to 12' is not a range of hours; write it as HH:MM-HH:MM
{open: {mon: "08:00-08:00"}}
  open.mon: '08:00-08:00' starts and ends at the same time; all day is 00:00-24:00
{open: {mon: "24:00-06:00"}}
  open.mon: '24:00-06:00' starts at 24:00; a range from midnight starts at 00:00
{open: {mon: 8:00}}
  open.mon: 480 is not opening hours; write e.g. "08:00-16:00, 17:00-19:00" or closed
{open: {mnn: "08:00-16:00"}}
  open.mnn: unknown day 'mnn'; write mon, tue, wed, thu, fri, sat or sun (or the full English
    name), a range such as mon-fri or a list such as mon,wed,fri
{open: {mon-fri: 08:00-09:00, wed: 08:00-09:00}}
  open.wed: wed is named twice, in 'mon-fri' and 'wed'; name each day once
{open: {"mon,mon": 08:00-09:00}}
  open.mon,mon: mon is named twice, in 'mon,mon'; name each day once
{open: {mon-mon: 08:00-09:00}}
  open.mon-mon: 'mon-mon' begins and ends on the same day
{open: "mon 08:00-09:00"}
  open: opening hours are days with hours, such as mon-fri: "08:00-16:00"
{timezone: Europe/Sarjevo}
  timezone: unknown time zone 'Europe/Sarjevo'; did you mean 'Europe/Sarajevo'?
{timezone: Mars/Olympus}
  timezone: unknown time zone 'Mars/Olympus'; write an IANA name such as Europe/Sarajevo
{holidays: XX}
  holidays: unknown holiday country 'XX'; write an ISO 3166 country code, or a country and
    subdivision such as BA-SRP or DE-BY; the countries are <countries>
{holidays: [HR, BA-XYZ]}
  holidays.1: unknown subdivision 'XYZ' of BA; BA has BIH (Federacija Bosne i Hercegovine,
    FBiH), BRC (Brčko distrikt, BD), SRP (Republika Srpska, RS)
{holidays: HR-ZG}
  holidays: unknown subdivision 'ZG' of HR; HR has none
{closed: [2026-12-31, 2027-07-15..2027-07-01]}
  closed.1: '2027-07-15..2027-07-01' ends before it begins; write the earlier date first
{closed: ['2026-02-30']}
  closed.0: '2026-02-30' is not a date (YYYY-MM-DD) or dates (YYYY-MM-DD..YYYY-MM-DD)
{closed: [tomorrow]}
  closed.0: 'tomorrow' is not a date (YYYY-MM-DD) or dates (YYYY-MM-DD..YYYY-MM-DD)
{special: {'2026-12-24': closed, 2026-12-24: closed}}
  special.2026-12-24: 2026-12-24 has special hours twice; give each date once
{special: [2026-12-24]}
  special: special hours are dates with hours, such as 2026-12-24: "08:00-12:00"
{opne: {}}
  opne: unknown field 'opne'; hours have timezone, holidays, open, closed and special
[mon-fri]
  : hours are a mapping of timezone, holidays, open, closed and special, not ['mon-fri']
"""


def _cases(table: str) -> list[tuple[str, str, str]]:
    """(YAML, field path, message) of each case in ``table``."""
    countries = ", ".join(sorted(holidays.list_supported_countries(include_aliases=False)))
    blocks = re.split(r"\n(?=\S)", table.strip().replace("<countries>", countries))
    pairs = [block.split("\n", 1) for block in blocks]
    return [(text, *" ".join(rest.split()).split(": ", 1)) for text, rest in pairs]  # type: ignore[misc]


@pytest.mark.parametrize(("text", "path", "message"), _cases(BAD))
def test_compile_errors_name_the_field_and_explain(text: str, path: str, message: str) -> None:
    """Each mistake an operator can make is refused with its field path and a clear sentence."""
    with pytest.raises(HoursError) as caught:
        compile_hours(yaml.safe_load(text))
    assert ".".join(map(str, caught.value.field_path)) == path
    assert caught.value.message == str(caught.value) == message


@pytest.mark.parametrize(
    ("text", "line"),
    [
        ('open:\n  mon-fri: "08:00-16:00"\n  sat: "25:00-26:00"\n', 3),
        ("closed:\n  - 2026-12-31\n  - 2027-07-15..2027-07-01\n", 3),
        ("special:\n  2026-12-24: closed\n  2026-12-26: noon\n", 3),
    ],
)
def test_field_paths_lead_the_loader_to_the_line(text: str, line: int) -> None:
    """The field path of an error finds its line in the YAML file (callserver.config.positions)."""
    data, lines = load_yaml_with_lines(text)
    with pytest.raises(HoursError) as caught:
        compile_hours(data)
    assert line_of(lines, caught.value.field_path) == line


_CHANGES = [instant(t) for t in ("2026-03-29T01:00Z", "2026-10-25T01:00Z", "2027-03-28T01:00Z")]
_QUARTER = st.integers(0, 95).map(lambda q: q * 15)
_END = st.integers(0, 96).map(lambda q: q * 15)
_RANGE = st.tuples(_QUARTER, _END).filter(lambda r: r[0] != r[1])
_WEEK = st.lists(st.lists(_RANGE, max_size=3), min_size=7, max_size=7)
_SHIFT = st.integers(-6 * 3600, 6 * 3600).map(lambda seconds: timedelta(seconds=seconds))
_INSTANTS = st.one_of(
    st.datetimes(datetime(2020, 1, 1), datetime(2035, 12, 31), timezones=st.just(UTC)),
    st.builds(operator.add, st.sampled_from(_CHANGES), _SHIFT),
)


def _reference_open(week: list[list[tuple[int, int]]], instant: datetime) -> bool:
    """Brute force over wall-clock times: is a range of today or yesterday showing?"""
    shown = instant.astimezone(SARAJEVO)
    wall = shown.replace(tzinfo=None)
    if shown.fold:  # the repeated hour: every boundary in it was passed the first time
        wall = wall.replace(minute=59, second=59, microsecond=999_999)
    for day in (wall.date() - timedelta(days=1), wall.date()):
        midnight = datetime.combine(day, datetime.min.time())
        for start, end in week[day.weekday()]:
            stop = end if end > start else end + 1440
            if midnight + timedelta(minutes=start) <= wall < midnight + timedelta(minutes=stop):
                return True
    return False


@settings(deadline=None, max_examples=150)
@given(week=_WEEK, instant=_INSTANTS)
def test_state_agrees_with_a_brute_force_reference(
    week: list[list[tuple[int, int]]], instant: datetime
) -> None:
    """For any weekly schedule and instant, open and next_change match a wall-clock reference."""

    def hhmm(minutes: int) -> str:
        return f"{minutes // 60:02d}:{minutes % 60:02d}"

    ranges = [", ".join(f"{hhmm(s)}-{hhmm(e)}" for s, e in day) or "closed" for day in week]
    state = compile_hours({"open": dict(zip(DAYS, ranges, strict=True))}).state(instant)
    is_open = _reference_open(week, instant)
    assert state.status == ("open" if is_open else "closed")
    end = state.next_change or instant + LOOKAHEAD
    probe = instant + timedelta(minutes=15)
    while probe < end:  # status lasts 15 minutes or more, so no change hides between probes
        assert _reference_open(week, probe) == is_open
        probe += timedelta(minutes=15)
    if state.next_change is not None:
        assert instant < state.next_change <= instant + LOOKAHEAD
        assert _reference_open(week, state.next_change) != is_open
        assert _reference_open(week, state.next_change - timedelta(microseconds=1)) == is_open


@settings(deadline=None, max_examples=60)
@given(instant=_INSTANTS)
def test_state_never_raises_with_holidays_and_special_dates(instant: datetime) -> None:
    """With holidays, closed and special dates, any instant gives a consistent state."""
    hours = compile_hours(SCHEDULES["mixed"])
    state = hours.state(instant)
    assert (state.status == "holiday") == (state.reason == "holiday")
    if state.next_change is not None:
        assert instant < state.next_change <= instant + LOOKAHEAD
        assert hours.state(state.next_change).status != state.status
