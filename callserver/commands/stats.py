"""``callserver stats queues``: the call centre's queue and agent figures for a period.

The period is [--since, --until). Each is a date (``2026-03-02``: that day's midnight) or a
date and time (``2026-03-02T08:30``, ``2026-03-02 08:30:15``), in the operator's time zone
(``stats.timezone`` in the settings) unless it names its own offset (``Z``, ``+01:00``).
Without --since the period starts at today's midnight; without --until it ends now.

``queue_report`` gives the figures (``callserver.queues.statistics``) from the queue event log
of ``<data_dir>/queue-events`` and the log's bad lines, ``FILE:LINE: why``, which are skipped;
the talk times come from the CDRs (``<data_dir>/cdr.sqlite``, the spool ingested first; the
queue calls ``queue_talks`` finds there) and are checked against the log's
(``callserver.queues.talk_check``);
``format_report`` writes them as ``text`` (aligned tables), ``csv`` (the queues' table, an
empty line, the agents' table; each with a header of the column names) or ``json`` (one
object: ``since``, ``until``, ``timezone``, ``service_level_seconds``, ``queues``, ``agents``,
``talk_check``). The text ends with the talk check: how many calls' talk came from their
CDRs and how many from the log alone, and each call the two disagree on; CSV leaves it out.
Column names are the fields of ``QueueFigures`` and ``AgentFigures``; times are seconds to the
millisecond, ``service_level`` and ``occupancy`` percentages, an empty value (null) where
there is nothing to divide by. ``pause_by_reason`` is ``REASON=SECONDS`` joined by ``;`` in
CSV and an object in JSON.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterable
from dataclasses import asdict, fields
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import TextIO
from zoneinfo import ZoneInfo

from callserver.cdr.record import CdrRecord
from callserver.cdr.stamps import parse_stamp
from callserver.cdr.store import CdrStore
from callserver.queues.eventlog import EVENTS_DIR, read_events
from callserver.queues.statistics import (
    AgentFigures,
    QueueFigures,
    QueueStatistics,
    queue_statistics,
)
from callserver.queues.talk_check import QueueTalk, TalkCheck

__all__ = ["format_report", "parse_moment", "queue_report", "queue_talks", "report_period"]

_QUEUE_COLUMNS = tuple(f.name for f in fields(QueueFigures))
_AGENT_COLUMNS = tuple(f.name for f in fields(AgentFigures))


def parse_moment(text: str, zone: ZoneInfo, *, flag: str) -> datetime:
    """A --since/--until value as an aware datetime (a date alone is its midnight in ``zone``).

    Raises:
        ValueError: ``text`` is neither a date nor a date and time (ISO 8601).
    """
    try:
        if len(text.strip()) == 10:
            return datetime.combine(date.fromisoformat(text.strip()), time(), zone)
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        raise ValueError(
            f"{flag} {text!r} is not a date (2026-03-02) or a date and time (2026-03-02T08:30)"
        ) from None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=zone)


def report_period(
    since: str | None, until: str | None, zone: ZoneInfo, now: datetime
) -> tuple[datetime, datetime]:
    """The period of --since and --until (defaults: today's midnight in ``zone``, ``now``).

    Raises:
        ValueError: a value that is not a date or time, or an empty period.
    """
    end = parse_moment(until, zone, flag="--until") if until else now.astimezone(zone)
    if since:
        start = parse_moment(since, zone, flag="--since")
    else:
        start = datetime.combine(now.astimezone(zone).date(), time(), zone)
    if end <= start:
        raise ValueError(f"--until {end.isoformat()} is not after --since {start.isoformat()}")
    return start, end


def queue_report(
    data_dir: Path,
    *,
    since: datetime,
    until: datetime,
    customer: str | None = None,
    service_level: float = 20.0,
) -> tuple[QueueStatistics, list[str]]:
    """The figures of [since, until) from ``<data_dir>/queue-events``, and its bad lines.

    Raises:
        ValueError: an empty period or a negative ``service_level``.
        OSError: a day file of the period cannot be read.
        sqlite3.Error: cdr.sqlite cannot be opened or read.
    """
    lookback = timedelta(days=1)
    records, problems = read_events(data_dir / EVENTS_DIR, since, until, lookback=lookback)
    talks = _cdr_talks(data_dir, since - lookback, until)
    stats = queue_statistics(
        records,
        since=since,
        until=until,
        customer=customer,
        service_level=service_level,
        talks=talks,
    )
    return stats, problems


def _cdr_talks(data_dir: Path, since: datetime, until: datetime) -> list[QueueTalk] | None:
    """The queue calls of the CDRs that started in [since, until), the spool ingested first;
    None when the data dir has no CDRs at all."""
    spool, path = data_dir / "cdr", data_dir / "cdr.sqlite"
    if not spool.is_dir() and not path.exists():
        return None
    with CdrStore(path) as store:
        store.ingest(spool, report=False)
        return queue_talks(store.records(since, until))


def queue_talks(records: Iterable[CdrRecord]) -> list[QueueTalk]:
    """The queue calls of ``records``: a caller's record (leg a) that names its ``queue`` and
    the agent who ``answered_by``, with the agent's leg (leg b linked to it, to that agent's
    number, answered): its answer and end are the talk."""
    legs = list(records)
    callers = {r.call_id: r for r in legs if r.leg == "a" and r.queue and r.answered_by}
    talks = []
    for leg in legs:
        caller = callers.get(leg.linked_id) if leg.leg == "b" else None
        if caller is None or leg.answer_stamp is None or caller.answered_by is None:
            continue
        called = {n.lstrip("+") for n in (leg.called_e164, leg.called_raw) if n}
        if caller.answered_by.lstrip("+") not in called or caller.queue is None:
            continue
        talks.append(
            QueueTalk(
                call_id=caller.call_id,
                customer=caller.customer or "",
                queue=caller.queue,
                agent=caller.answered_by,
                answered=parse_stamp(leg.answer_stamp),
                ended=parse_stamp(leg.end_stamp),
            )
        )
    return talks


def report_dict(stats: QueueStatistics, zone: ZoneInfo) -> dict[str, object]:
    """The JSON object of a report (see the module docstring)."""
    return {
        "since": stats.since.astimezone(zone).isoformat(),
        "until": stats.until.astimezone(zone).isoformat(),
        "timezone": zone.key,
        "service_level_seconds": stats.service_level_seconds,
        "queues": [asdict(q) for q in stats.queues],
        "agents": [{**asdict(a), "pause_by_reason": dict(a.pause_by_reason)} for a in stats.agents],
        "talk_check": None if stats.talk_check is None else asdict(stats.talk_check),
    }


def format_report(stats: QueueStatistics, fmt: str, zone: ZoneInfo, out: TextIO) -> None:
    """Write ``stats`` as ``text``, ``csv`` or ``json`` (see the module docstring)."""
    if fmt == "json":
        out.write(json.dumps(report_dict(stats, zone), indent=2) + "\n")
    elif fmt == "csv":
        _write_csv(stats, out)
    else:
        out.write(_text(stats, zone))


def _write_csv(stats: QueueStatistics, out: TextIO) -> None:
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(_QUEUE_COLUMNS)
    writer.writerows([_cell(getattr(q, c)) for c in _QUEUE_COLUMNS] for q in stats.queues)
    out.write("\n")
    writer.writerow(_AGENT_COLUMNS)
    for a in stats.agents:
        row = [_cell(getattr(a, c)) for c in _AGENT_COLUMNS]
        row[_AGENT_COLUMNS.index("pause_by_reason")] = ";".join(
            f"{reason}={_cell(seconds)}" for reason, seconds in a.pause_by_reason
        )
        writer.writerow(row)


def _cell(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.3f}".rstrip("0").rstrip(".")
    return str(value)


def _text(stats: QueueStatistics, zone: ZoneInfo) -> str:
    since = stats.since.astimezone(zone).strftime("%Y-%m-%d %H:%M")
    until = stats.until.astimezone(zone).strftime("%Y-%m-%d %H:%M")
    sl = _cell(stats.service_level_seconds)
    lines = [f"Queues {since} to {until} ({zone.key}); service level: answered within {sl} s", ""]
    lines += _table(_QUEUE_HEADERS, [_queue_row(q) for q in stats.queues])
    lines += ["", "Abandoned calls: their wait"]
    lines += _table(_ABANDON_HEADERS, [_abandon_row(q) for q in stats.queues])
    lines += ["", "Agents"]
    lines += _table(_AGENT_HEADERS, [_agent_row(a) for a in stats.agents])
    lines += ["", *_checked(stats.talk_check)]
    return "\n".join(lines) + "\n"


def _checked(check: TalkCheck | None) -> list[str]:
    """The talk check's lines of the text report."""
    if check is None:
        return ["Talk time: from the queue log (no CDRs in the data directory)"]
    lines = [
        f"Talk time: {check.from_cdrs} call(s) from their CDRs, {check.log_only} from the queue"
        " log alone (no CDR)"
    ]
    for d in check.differing:
        lines.append(
            f"  call {d.call_id} ({d.customer} {d.queue}, agent {d.agent}): talk {_one(d.cdr)} s"
            f" in its CDRs, {_one(d.log)} s in the queue log"
        )
    lines += [f"  call {c}: a queue call in the CDRs, not in the queue log" for c in check.cdr_only]
    return lines


_QUEUE_HEADERS = (
    *("customer", "queue", "offered", "answered", "abandoned", "timed out", "left"),
    *("refused", "SL %", "ASA s", "AHT s", "longest s"),
)
_ABANDON_HEADERS = (
    *("customer", "queue", "abandoned", "average s", "longest s"),
    *("<= 5 s", "<= 10 s", "<= 30 s"),
)
_AGENT_HEADERS = (
    *("customer", "agent", "calls", "rung", "no answer", "logged in", "talk", "wrap-up"),
    *("paused", "occupancy %", "pauses"),
)


def _queue_row(q: QueueFigures) -> list[object]:
    return [
        *(q.customer, q.queue, q.offered, q.answered, q.abandoned, q.timed_out, q.left),
        *(q.refused, _one(q.service_level), _one(q.average_speed_of_answer)),
        *(_one(q.average_handle_time), _one(q.longest_wait)),
    ]


def _abandon_row(q: QueueFigures) -> list[object]:
    return [
        *(q.customer, q.queue, q.abandoned, _one(q.abandon_wait_average)),
        *(_one(q.abandon_wait_max), q.abandoned_within_5, q.abandoned_within_10),
        q.abandoned_within_30,
    ]


def _agent_row(a: AgentFigures) -> list[object]:
    pauses = ", ".join(f"{reason} {_hms(seconds)}" for reason, seconds in a.pause_by_reason)
    return [
        *(a.customer, a.agent, a.calls, a.rings, a.ring_no_answer),
        *(_hms(a.logged_in), _hms(a.talk_time)),
        *(_hms(a.wrapup_time), _hms(a.pause_time), _one(a.occupancy), pauses or "-"),
    ]


def _table(headers: tuple[str, ...], rows: list[list[object]]) -> list[str]:
    if not rows:
        return ["(none)"]
    cells = [list(headers)] + [[str(c) for c in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    names = {0, 1, len(headers) - 1} if headers[-1] == "pauses" else {0, 1}
    text = []
    for row in cells:  # names left, figures right
        parts = [
            c.ljust(w) if i in names else c.rjust(w)
            for i, (c, w) in enumerate(zip(row, widths, strict=True))
        ]
        text.append("  ".join(parts).rstrip())
    return text


def _hms(seconds: float) -> str:
    """A total of seconds as H:MM:SS (to the nearest second, halves up)."""
    whole = int(seconds + 0.5)
    return f"{whole // 3600}:{whole % 3600 // 60:02d}:{whole % 60:02d}"


def _one(value: float | None) -> str:
    """A percentage or a wait to one decimal (halves up), ``-`` for none."""
    return "-" if value is None else f"{int(value * 10 + 0.5) / 10:.1f}"
