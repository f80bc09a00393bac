"""Business hours: a weekly schedule, public holidays, closed dates and special opening hours.

Theory of operation
-------------------
An ``hours`` step holds what an operator writes (docs/dialplans.md)::

    timezone: Europe/Sarajevo    # optional: the server's default zone
    holidays: BA-SRP             # ISO 3166 country or country-subdivision, a list, or none
    open: {mon-thu: "08:00-16:00", fri: "08:00-16:00, 22:00-06:00", sat: "09:00-13:00"}
    closed: [2026-12-31, 2027-07-01..2027-07-15]
    special: {2026-12-24: "08:00-12:00", 2026-12-26: closed}

``compile_hours`` checks it at load time (``HoursError`` names the ``field_path`` of a
mistake); a call only asks ``Hours.state(now)``. The hours of a date, by precedence:

1. ``special`` hours for that date (``closed`` included);
2. a ``closed`` date: closed all day;
3. a public holiday of a ``holidays`` country (fixed dates, the Catholic and Orthodox Easter
   cycles, Islamic ones such as Kurban Bajram): status ``holiday``;
4. the weekly schedule of its weekday.

A range belongs to the day it starts on: Friday's "22:00-06:00" is open until Saturday 06:00
whatever Saturday's hours. That tail stays open into a public holiday (a holiday closes the
ranges that would start on it) but is cut at midnight before a ``special`` or ``closed`` date.

Times are wall-clock times in an IANA zone (``zoneinfo``), made instants date by date, so a
DST day is 23 or 25 hours long. A time the spring-forward change skips (02:30 on 2026-03-29 in
Europe/Sarajevo) is the instant of the change, 03:00; a time the fall-back change repeats is
its first occurrence (PEP 495 ``fold=0``), so a range ending at 02:30 on 2026-10-25 does not
reopen when the hour repeats.

Holiday tables, one per (country, subdivision, year), are built once and shared by all plans
(``compile_hours`` builds the years it is given, ``state`` an unseen year once); a plan keeps
each date's instants, so a call costs look-ups and a scan of ``LOOKAHEAD`` for ``next_change``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import difflib
import functools
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from types import MappingProxyType
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

import holidays as pyholidays

__all__ = [
    "DEFAULT_TIMEZONE",
    "LOOKAHEAD",
    "Hours",
    "HoursError",
    "HoursState",
    "Reason",
    "Status",
    "compile_hours",
]

DEFAULT_TIMEZONE = "Europe/Sarajevo"
LOOKAHEAD = timedelta(days=14)  # how far ``state`` looks for ``next_change``
Status = Literal["open", "closed", "holiday"]
Reason = Literal["special", "closed_date", "holiday", "schedule"]
FieldPath = tuple[str | int, ...]

_DAY = 1440  # minutes
_DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_FULL_DAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
_DAY_INDEX = {name: n for names in (_DAYS, _FULL_DAYS) for n, name in enumerate(names)}
_FIELDS = ("timezone", "holidays", "open", "closed", "special")
_FIELD_LIST = "timezone, holidays, open, closed and special"
_TIME = re.compile(r"(\d{1,2}):(\d{2})")
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_EXPLICIT = ("special", "closed_date")  # reasons whose date cuts the tail of the day before
_MEMO_DAYS = 512  # dates a plan remembers; a call needs 17
_Ranges = tuple[tuple[int, int], ...]  # (start, end) minutes after midnight; end > 1440: next day


class HoursError(ValueError):
    """Wrong hours: ``message`` for the operator, at ``field_path`` (``("open", "mon-fri")``)."""

    def __init__(self, field_path: FieldPath, message: str) -> None:
        super().__init__(message)
        self.field_path = field_path
        self.message = message


@dataclass(frozen=True, slots=True, kw_only=True)
class HoursState:
    """Whether the business is open at an instant, why, and when that next changes.

    ``holiday`` names the public holiday of the local date, whatever the status; ``reason`` is
    what decided the status; ``next_change`` is the next instant the status differs, in UTC so
    that arithmetic on it is real time (``.astimezone(hours.zone)`` shows it to an operator),
    None when it stays the same for ``LOOKAHEAD``.
    """

    status: Status
    holiday: str | None
    reason: Reason
    next_change: datetime | None = None


@dataclass(frozen=True, slots=True)
class _Day:
    reason: Reason
    holiday: str | None
    open: tuple[tuple[datetime, datetime], ...]  # half-open UTC intervals
    midnight: datetime  # the UTC instant the date begins


@dataclass(frozen=True, slots=True, eq=False)
class Hours:
    """Compiled business hours (made by ``compile_hours``), shared by every call."""

    zone: ZoneInfo
    _weekly: tuple[_Ranges, ...]
    _closed: tuple[tuple[date, date], ...]
    _special: Mapping[date, _Ranges]
    _countries: tuple[tuple[str, str | None], ...]
    _days: dict[date, _Day] = dataclasses.field(default_factory=dict, repr=False)

    def holiday_on(self, day: date) -> str | None:
        """The name of the public holiday on ``day`` (several joined by "; "), or None."""
        names = (_holiday_table(*country, day.year).get(day) for country in self._countries)
        return "; ".join(dict.fromkeys(name for name in names if name)) or None

    def state(self, now: datetime) -> HoursState:
        """The state at ``now`` by the precedence of the module docstring.

        Args:
            now: an aware datetime in any zone, taken as an instant. Wall-clock times follow
                the IANA tz database (``zoneinfo``, PEP 615), repeated times PEP 495.

        Raises:
            ValueError: ``now`` is naive.
        """
        if now.utcoffset() is None:
            raise ValueError(f"now must be a timezone-aware datetime, not {now.isoformat()}")
        now = now.astimezone(UTC)
        today = now.astimezone(self.zone).date()
        # From the day before (its range may run past midnight) to past the horizon.
        dates = (today + timedelta(days=n) for n in range(-1, LOOKAHEAD.days + 2))
        days = {day: self._day(day) for day in dates}
        current = _state_at(days, now, self.zone)
        points = {day.midnight for day in days.values()}
        points.update(bound for day in days.values() for span in day.open for bound in span)
        for point in sorted(p for p in points if now < p <= now + LOOKAHEAD):
            if _state_at(days, point, self.zone).status != current.status:
                return dataclasses.replace(current, next_change=point)
        return current

    def _plan(self, day: date) -> tuple[Reason, str | None, _Ranges]:
        name = self.holiday_on(day)
        if day in self._special:
            return "special", name, self._special[day]
        if any(first <= day <= last for first, last in self._closed):
            return "closed_date", name, ()
        if name is not None:
            return "holiday", name, ()
        return "schedule", None, self._weekly[day.weekday()]

    def _day(self, day: date) -> _Day:
        known = self._days.get(day)
        if known is None:
            if len(self._days) >= _MEMO_DAYS:
                self._days.clear()
            reason, name, ranges = self._plan(day)
            if self._plan(day + timedelta(days=1))[0] in _EXPLICIT:  # cut the tail at midnight
                ranges = tuple((start, min(end, _DAY)) for start, end in ranges)
            spans = tuple(
                (_instant(day, s, self.zone), _instant(day, e, self.zone)) for s, e in ranges
            )
            known = self._days[day] = _Day(reason, name, spans, _instant(day, 0, self.zone))
        return known


def _state_at(days: Mapping[date, _Day], instant: datetime, zone: ZoneInfo) -> HoursState:
    today = instant.astimezone(zone).date()
    plan = days[today]
    for owner in (days.get(today - timedelta(days=1)), plan):
        if owner is not None and any(start <= instant < end for start, end in owner.open):
            return HoursState(status="open", holiday=plan.holiday, reason=owner.reason)
    status: Status = "holiday" if plan.reason == "holiday" else "closed"
    return HoursState(status=status, holiday=plan.holiday, reason=plan.reason)


def _instant(day: date, minutes: int, zone: ZoneInfo) -> datetime:
    """The UTC instant the clock in ``zone`` shows ``minutes`` past the midnight of ``day``."""
    wall = datetime.combine(day, time()) + timedelta(minutes=minutes)
    first = wall.replace(tzinfo=zone).astimezone(UTC)  # fold=0: the first of a repeated time
    if first.astimezone(zone).replace(tzinfo=None) == wall:
        return first
    # Skipped: fold=1 reads it with the offset after the change (an instant before it), fold=0
    # with the one before (an instant after it); bisect the whole seconds in between.
    low, high = sorted(int(wall.replace(tzinfo=zone, fold=f).timestamp()) for f in (0, 1))
    while high - low > 1:
        middle = (low + high) // 2
        shown = datetime.fromtimestamp(middle, zone).replace(tzinfo=None)
        low, high = (low, middle) if shown >= wall else (middle, high)
    return datetime.fromtimestamp(high, UTC)


@functools.cache  # one table per (country, subdivision, year), shared by every plan
def _holiday_table(country: str, subdivision: str | None, year: int) -> Mapping[date, str]:
    calendar = pyholidays.country_holidays(country, subdiv=subdivision, years=year)
    return MappingProxyType(dict(calendar.items()))


def compile_hours(
    data: Mapping[str, object], *, default_zone: str = DEFAULT_TIMEZONE, years: Iterable[int] = ()
) -> Hours:
    """Check and compile the hours of a dialplan step (at load time, never in a call).

    Args:
        data: the step's values as ``yaml.safe_load`` read them (dates or ISO 8601 strings).
        default_zone: the zone when ``timezone`` is absent (the server's default).
        years: build these years' holiday tables now rather than on the first call in each.

    Raises:
        HoursError: the first mistake, with its field path and a sentence for the operator.
    """
    if not isinstance(data, Mapping):
        raise HoursError((), f"hours are a mapping of {_FIELD_LIST}, not {data!r}")
    for field in data:
        if field not in _FIELDS:
            raise HoursError((str(field),), f"unknown field {field!r}; hours have {_FIELD_LIST}")
    hours = Hours(
        _parse_zone(data.get("timezone") or default_zone),
        _parse_weekly(data.get("open")),
        _parse_closed(data.get("closed")),
        MappingProxyType(_parse_special(data.get("special"))),
        _parse_countries(data.get("holidays")),
    )
    for year in years:
        hours.holiday_on(date(year, 1, 1))
    return hours


def _parse_zone(value: object) -> ZoneInfo:
    name = str(value).strip()
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        close = difflib.get_close_matches(name, sorted(available_timezones()), n=1)
    hint = f"did you mean {close[0]!r}?" if close else "write an IANA name such as Europe/Sarajevo"
    raise HoursError(("timezone",), f"unknown time zone {name!r}; {hint}")


def _parse_weekly(value: object) -> tuple[_Ranges, ...]:
    if value is None:
        return ((),) * 7
    if not isinstance(value, Mapping):
        message = 'opening hours are days with hours, such as mon-fri: "08:00-16:00"'
        raise HoursError(("open",), message)
    week: list[_Ranges] = [()] * 7
    named_in: dict[int, str] = {}
    for key, text in value.items():
        label = ",".join(map(str, key)) if isinstance(key, list | tuple) else str(key)
        ranges = _parse_hours(text, ("open", label))
        for day in _parse_days(label, ("open", label)):
            if day in named_in:
                where = f"{named_in[day]!r}" + ("" if named_in[day] == label else f" and {label!r}")
                message = f"{_DAYS[day]} is named twice, in {where}; name each day once"
                raise HoursError(("open", label), message)
            named_in[day], week[day] = label, ranges
    return tuple(week)


def _parse_days(label: str, path: FieldPath) -> list[int]:
    days: list[int] = []
    for item in label.strip().strip("[]").split(","):
        first, dash, last = item.partition("-")
        start = _day_index(first, path)
        end = _day_index(last, path) if dash else start
        if dash and start == end:
            raise HoursError(path, f"{item.strip()!r} begins and ends on the same day")
        days.extend((start + n) % 7 for n in range((end - start) % 7 + 1))
    return days


def _day_index(name: str, path: FieldPath) -> int:
    if (index := _DAY_INDEX.get(name.strip().lower())) is not None:
        return index
    message = (
        f"unknown day {name.strip()!r}; write mon, tue, wed, thu, fri, sat or sun (or the full "
        "English name), a range such as mon-fri or a list such as mon,wed,fri"
    )
    raise HoursError(path, message)


def _parse_hours(value: object, path: FieldPath) -> _Ranges:
    """Ranges from ``"08:00-12:00, 13:00-16:00"``; none from closed (None, False: YAML's off)."""
    if value is None or value is False or str(value).strip().lower() == "closed":
        return ()
    if not isinstance(value, str):
        message = f'{value!r} is not opening hours; write e.g. "08:00-16:00, 17:00-19:00" or closed'
        raise HoursError(path, message)
    return tuple(_parse_range(part.strip(), path) for part in value.split(","))


def _parse_range(text: str, path: FieldPath) -> tuple[int, int]:
    first, dash, last = text.replace("\u2013", "-").partition("-")
    if not dash:
        raise HoursError(path, f"{text!r} is not a range of hours; write it as HH:MM-HH:MM")
    start, end = _parse_time(first.strip(), path), _parse_time(last.strip(), path)
    if start == _DAY:
        raise HoursError(path, f"{text!r} starts at 24:00; a range from midnight starts at 00:00")
    if start == end:
        raise HoursError(path, f"{text!r} starts and ends at the same time; all day is 00:00-24:00")
    return start, end if end > start else end + _DAY  # "22:00-06:00": to 06:00 the next day


def _parse_time(text: str, path: FieldPath) -> int:
    match = _TIME.fullmatch(text)
    minutes = int(match[1]) * 60 + int(match[2]) if match and int(match[2]) < 60 else -1
    if not 0 <= minutes <= _DAY:
        raise HoursError(path, f"{text!r} is not a time of day (HH:MM, 00:00-24:00)")
    return minutes


def _parse_closed(value: object) -> tuple[tuple[date, date], ...]:
    if value is None or isinstance(value, list | tuple):
        return tuple(_parse_period(item, ("closed", n)) for n, item in enumerate(value or ()))
    return (_parse_period(value, ("closed",)),)


def _parse_special(value: object) -> dict[date, _Ranges]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        message = 'special hours are dates with hours, such as 2026-12-24: "08:00-12:00"'
        raise HoursError(("special",), message)
    special: dict[date, _Ranges] = {}
    for key, text in value.items():
        path: FieldPath = ("special", str(key))
        first, last = _parse_period(key, path)
        ranges = _parse_hours(text, path)
        for day in (first + timedelta(days=n) for n in range((last - first).days + 1)):
            if day in special:
                raise HoursError(path, f"{day} has special hours twice; give each date once")
            special[day] = ranges
    return special


def _parse_period(value: object, path: FieldPath) -> tuple[date, date]:
    """A date, or the dates from one to another: ``2027-07-01..2027-07-15``."""
    parts = value.split("..", 1) if isinstance(value, str) else [value]
    first, last = _parse_date(parts[0], path), _parse_date(parts[-1], path)
    if last < first:
        raise HoursError(path, f"{value!r} ends before it begins; write the earlier date first")
    return first, last


def _parse_date(value: object, path: FieldPath) -> date:
    text = value.strip() if isinstance(value, str) else value
    if isinstance(text, str) and _DATE.fullmatch(text):
        with contextlib.suppress(ValueError):
            return date.fromisoformat(text)
    elif isinstance(text, date) and not isinstance(text, datetime):
        return text
    message = f"{str(text)!r} is not a date (YYYY-MM-DD) or dates (YYYY-MM-DD..YYYY-MM-DD)"
    raise HoursError(path, message)


def _parse_countries(value: object) -> tuple[tuple[str, str | None], ...]:
    # YAML reads an unquoted ``no`` as False: none here (Norway has to be quoted, "NO").
    if value is None or value is False or str(value).strip().lower() in ("", "none"):
        return ()
    if isinstance(value, list | tuple):
        return tuple(_parse_country(item, ("holidays", n)) for n, item in enumerate(value))
    return (_parse_country(value, ("holidays",)),)


def _parse_country(value: object, path: FieldPath) -> tuple[str, str | None]:
    country, _, subdivision = str(value).strip().partition("-")
    country, subdivision = country.strip().upper(), subdivision.strip()
    try:
        calendar = type(pyholidays.country_holidays(country))
    except NotImplementedError:
        known = ", ".join(sorted(pyholidays.list_supported_countries(include_aliases=False)))
        message = (
            f"unknown holiday country {country!r}; write an ISO 3166 country code, or a country "
            f"and subdivision such as BA-SRP or DE-BY; the countries are {known}"
        )
        raise HoursError(path, message) from None
    if not subdivision:
        return country, None
    aliases = calendar.subdivisions_aliases
    for alias, code in [(code, code) for code in calendar.subdivisions] + list(aliases.items()):
        if alias.casefold() == subdivision.casefold():
            return country, code
    names = {code: [a for a, of in aliases.items() if of == code] for code in calendar.subdivisions}
    known = ", ".join(f"{c} ({', '.join(n)})" if n else c for c, n in names.items()) or "none"
    message = f"unknown subdivision {subdivision!r} of {country}; {country} has {known}"
    raise HoursError(path, message)
