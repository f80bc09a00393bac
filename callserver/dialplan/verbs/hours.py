"""``hours``: branch on business hours, public holidays, closed dates and special hours.

    office_hours:
      hours: {mon-fri: "08:00-16:00", sat: "09:00-13:00"}   # the weekly schedule
      holidays: BA                     # public holidays of a country (BA, HR, RS, DE-BY, ...)
      timezone: Europe/Sarajevo        # default: the file's timezone
      closed_dates: [2026-12-31, 2027-07-01..2027-07-15]
      special: {2026-12-24: "08:00-12:00"}
      open: greeting                   # where to go when open (default: next)
      closed: after_hours              # ... when closed (default: next)
      holiday: holiday_message         # ... on a public holiday (default: closed)

The schedule's syntax and the precedence (special > closed dates > holidays > weekly) are
``dialplan.hours``'s; times are local wall-clock times in the time zone, DST included.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from pydantic import Field

from callserver.dialplan.hours import Hours, HoursError, compile_hours
from callserver.dialplan.values import StepName
from callserver.dialplan.verbs.base import (
    CallControl,
    CompileContext,
    Precondition,
    Step,
    StepError,
    StepParams,
    Verb,
)

__all__ = ["VERB", "Params"]

# The hours module's field names -> this step's keys.
_FIELDS = {"open": "hours", "closed": "closed_dates"}


class Params(StepParams):
    """The schedule, its calendar and the three branches."""

    hours: dict[str, Any]
    holidays: str | list[str] | None = None
    timezone: str | None = None
    closed_dates: list[date | str] = Field(default_factory=list)
    special: dict[date | str, Any] = Field(default_factory=dict)
    open: StepName | None = None
    closed: StepName | None = None
    holiday: StepName | None = None

    def targets(self) -> dict[tuple[str | int, ...], str]:
        """The open, closed and holiday steps."""
        named = {"open": self.open, "closed": self.closed, "holiday": self.holiday}
        return {(key,): step for key, step in named.items() if step is not None}


def prepare(params: Params, context: CompileContext) -> Hours:
    """Compile the schedule (time zone, holidays) at load time."""
    data = {
        "open": params.hours,
        "holidays": params.holidays,
        "closed": params.closed_dates,
        "special": params.special,
    }
    if params.timezone is not None:
        data["timezone"] = params.timezone
    try:
        this_year = date.today().year  # holiday tables built at load time, not on a call
        return compile_hours(data, default_zone=context.timezone, years=(this_year, this_year + 1))
    except HoursError as exc:
        path = tuple(exc.field_path)
        if path and path[0] in _FIELDS:
            path = (_FIELDS[str(path[0])], *path[1:])
        raise StepError(path, str(exc)) from exc


async def run(call: CallControl, step: Step) -> str | None:
    """Take the branch of the current state."""
    params = step.params
    assert isinstance(params, Params) and isinstance(step.prepared, Hours)
    state = step.prepared.state(call.now())
    call.note("hours", state.status)
    if state.status == "open":
        return params.open or step.next
    if state.status == "holiday":
        return params.holiday or params.closed or step.next
    return params.closed or step.next


VERB = Verb(name="hours", params=Params, requires=Precondition.NONE, run=run, prepare=prepare)
