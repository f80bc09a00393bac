"""A hand-written day of queue events (``scripted_day``) for the queues tests.

The day is Monday 2026-03-02 in Europe/Sarajevo (UTC+1), times below are local. Customer acme
has queues sales and support and agents 201 and 202; customer beta has queue info and agent
301. Agent 202 logged in the evening before (in the 2026-03-01 file) and handled a support
call across midnight; 301's pause and a beta caller run past the end of the day.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from itertools import count

from callserver.cdr.record import CdrRecord
from callserver.cdr.stamps import utc_stamp
from callserver.queues.records import QueueEventKind, QueueLogRecord
from tests.cdr import make_record

CET = timezone(timedelta(hours=1))  # Europe/Sarajevo in March, pinned
DAY = "2026-03-02"


def at(local: str, day: str = DAY) -> datetime:
    """The instant of ``HH:MM:SS`` local time on ``day`` (default the scripted day)."""
    return datetime.fromisoformat(f"{day}T{local}").replace(tzinfo=CET)


_serial = count()


def event(kind: str, when: datetime, customer: str = "acme", **fields: object) -> QueueLogRecord:
    """One record; its uuid is a serial number."""
    return QueueLogRecord(
        at=when,
        kind=QueueEventKind(kind),
        customer=customer,
        uuid=f"e{next(_serial)}",
        **fields,  # type: ignore[arg-type]
    )


def caller(kind: str, when: datetime, queue: str, call_id: str, **fields: object) -> QueueLogRecord:
    """A caller event of acme (or of ``customer=``)."""
    return event(kind, when, queue=queue, call_id=call_id, **fields)


def scripted_day() -> list[QueueLogRecord]:
    """The day's events in the order they are logged: time order but for c6's timeout."""
    before = "2026-03-01"
    after = "2026-03-03"
    return [
        # 202 logs in the evening before; support caller c12 answered before midnight
        event("login", at("20:00:00", before), agent="202"),
        caller("join", at("23:59:40", before), "support", "c12", caller="061000012"),
        caller("answer", at("23:59:50", before), "support", "c12", agent="202", wait=10),
        caller("call_start", at("23:59:50", before), "support", "c12", agent="202"),
        caller("call_end", at("00:01:50"), "support", "c12", agent="202"),
        caller("wrapup_start", at("00:01:50"), "support", "c12", agent="202"),
        caller("wrapup_end", at("00:02:00"), "support", "c12", agent="202"),
        event("login", at("08:00:00"), agent="201"),
        # sales: c1 answered by 201 after 10 s, c2 by 202 after 25 s, c3 abandons after 8 s
        caller("join", at("08:05:00"), "sales", "c1", caller="061000001", position=1),
        caller("ring", at("08:05:02"), "sales", "c1", agent="201"),
        caller("answer", at("08:05:10"), "sales", "c1", agent="201", wait=10),
        caller("call_start", at("08:05:10"), "sales", "c1", agent="201"),
        caller("join", at("08:06:00"), "sales", "c2", position=1),
        caller("ring", at("08:06:02"), "sales", "c2", agent="202"),
        caller("ring_noanswer", at("08:06:17"), "sales", "c2", agent="202"),
        caller("ring", at("08:06:18"), "sales", "c2", agent="202"),
        caller("answer", at("08:06:25"), "sales", "c2", agent="202", wait=25),
        caller("call_start", at("08:06:25"), "sales", "c2", agent="202"),
        caller("join", at("08:07:00"), "sales", "c3", position=1),
        caller("abandon", at("08:07:08"), "sales", "c3", position=1, wait=8),
        caller("call_end", at("08:09:10"), "sales", "c1", agent="201"),
        caller("wrapup_start", at("08:09:10"), "sales", "c1", agent="201"),
        caller("wrapup_end", at("08:09:40"), "sales", "c1", agent="201"),
        caller("call_end", at("08:16:25"), "sales", "c2", agent="202"),
        caller("wrapup_start", at("08:16:25"), "sales", "c2", agent="202"),
        caller("wrapup_end", at("08:17:25"), "sales", "c2", agent="202"),
        event("pause", at("09:00:00"), agent="202", reason="training"),
        event("unpause", at("09:30:00"), agent="202"),
        event("logout", at("10:00:00"), agent="202"),
        # sales: c5 abandons after 45 s (201's ring for it cancelled), c6 times out after
        # 120 s, c7 leaves, c8 finds it full
        caller("join", at("11:00:00"), "sales", "c5", position=1),
        caller("ring", at("11:00:02"), "sales", "c5", agent="201"),
        caller("ring_cancelled", at("11:00:45"), "sales", "c5", agent="201", reason="abandon"),
        caller("abandon", at("11:00:45"), "sales", "c5", wait=45),
        caller("join", at("11:01:00"), "sales", "c6", position=1),
        caller("join", at("11:05:00"), "sales", "c7", position=2),
        caller("leave", at("11:05:04"), "sales", "c7", wait=4),
        caller("full", at("11:06:00"), "sales", "c8"),
        caller("timeout", at("11:03:00"), "sales", "c6", wait=120),
        event("pause", at("12:00:00"), agent="201", reason="lunch"),
        event("unpause", at("12:30:00"), agent="201", reason="lunch"),
        # support: c4 answered by 201 after 10 s and transferred; c11 finds no agent
        caller("join", at("12:59:50"), "support", "c4"),
        caller("answer", at("13:00:00"), "support", "c4", agent="201", wait=10),
        caller("call_start", at("13:00:00"), "support", "c4", agent="201"),
        caller("transfer", at("13:05:00"), "support", "c4", agent="201"),
        caller("call_end", at("13:10:00"), "support", "c4", agent="201"),
        caller("wrapup_start", at("13:10:00"), "support", "c4", agent="201"),
        caller("wrapup_end", at("13:11:00"), "support", "c4", agent="201"),
        event("pause", at("15:00:00"), agent="201"),  # *47#: no reason code
        event("unpause", at("15:10:00"), agent="201"),
        event("logout", at("16:00:00"), agent="201"),
        caller("no_agents", at("17:00:00"), "support", "c11"),
        # beta: 301 from 22:00, c9 answered after 3 s, a pause and a caller past midnight
        event("login", at("22:00:00"), "beta", agent="301"),
        event("join", at("22:10:00"), "beta", queue="info", call_id="c9"),
        event("answer", at("22:10:03"), "beta", queue="info", call_id="c9", agent="301", wait=3),
        event("call_start", at("22:10:03"), "beta", queue="info", call_id="c9", agent="301"),
        event("call_end", at("22:20:03"), "beta", queue="info", call_id="c9", agent="301"),
        event("wrapup_start", at("22:20:03"), "beta", queue="info", call_id="c9", agent="301"),
        event("wrapup_end", at("22:20:33"), "beta", queue="info", call_id="c9", agent="301"),
        # beta: c13 asks to be called back after 20 s; 301 calls it back at the first try
        event("join", at("22:40:00"), "beta", queue="info", call_id="c13", caller="061000013"),
        *_callback("c13", "22:40:20", 20, "22:50:00", "+38761000013"),
        event("callback_answered", at("22:50:10"), "beta", **_c13, wait=610),
        *_agent_call("c13", "22:50:00", "22:55:10"),
        # c14 asks after 5 s; the call to its number is barred: the request is dropped
        event("join", at("22:42:00"), "beta", queue="info", call_id="c14"),
        *_callback("c14", "22:42:05", 5, "22:43:00", "+38761000014"),
        event("callback_failed", at("22:43:30"), "beta", **_c14, reason="barred"),
        event("callback_dropped", at("22:43:30"), "beta", **_c14_request, reason="barred"),
        *_agent_call("c14", "22:43:00", "22:43:30"),
        event("pause", at("23:30:00"), "beta", agent="301", reason="meeting"),
        event("join", at("23:55:00"), "beta", queue="info", call_id="c10"),
        event("abandon", at("00:00:20", after), "beta", queue="info", call_id="c10", wait=80),
        event("unpause", at("00:10:00", after), "beta", agent="301"),
    ]


# The answered queue calls of the day (and c12 of the evening before) as the CDRs have them:
# (call, customer, queue, agent, join, answer, end, day of the join).
ANSWERED = [
    ("c12", "acme", "support", "202", "23:59:40", "23:59:50", "00:01:50", "2026-03-01"),
    ("c1", "acme", "sales", "201", "08:05:00", "08:05:10", "08:09:10", DAY),
    ("c2", "acme", "sales", "202", "08:06:00", "08:06:25", "08:16:25", DAY),
    ("c4", "acme", "support", "201", "12:59:50", "13:00:00", "13:10:00", DAY),
    ("c9", "beta", "info", "301", "22:10:00", "22:10:03", "22:20:03", DAY),
]


def queue_call_cdrs(
    call: str,
    customer: str,
    queue: str,
    agent: str,
    join: datetime,
    answer: datetime,
    end: datetime,
) -> list[CdrRecord]:
    """The caller's CDR (leg a: the IVR answered 5 s before it joined the queue, which names
    the queue, its wait and the agent) and the agent's leg (leg b: rung 2 s, answered at
    ``answer``, ended at ``end``)."""
    second = timedelta(seconds=1)
    caller = make_record(
        uuid=f"{call}-a",
        call_id=call,
        customer=customer,
        start_stamp=utc_stamp(join - 5 * second),
        answer_stamp=utc_stamp(join - 4 * second),
        end_stamp=utc_stamp(end),
        queue=queue,
        queue_wait=round((answer - join).total_seconds() * 1000),
        answered_by=agent,
    )
    agent_leg = make_record(
        uuid=f"{call}-b",
        call_id=f"{call}-agent",
        leg="b",
        linked_id=call,
        direction="outbound",
        customer=customer,
        called_raw=agent,
        called_e164=None,
        start_stamp=utc_stamp(answer - 2 * second),
        answer_stamp=utc_stamp(answer),
        end_stamp=utc_stamp(end),
        hangup_by="callee",
    )
    return [caller, agent_leg]


def scripted_cdrs() -> list[CdrRecord]:
    """The CDRs of the day's answered queue calls: their talk is the queue log's, to the ms."""
    out = []
    for call, customer, queue, agent, join, answer, end, day in ANSWERED:
        end_day = DAY if end < join else day
        out += queue_call_cdrs(
            call, customer, queue, agent, at(join, day), at(answer, day), at(end, end_day)
        )
    return out


_c13 = {"queue": "info", "call_id": "c13", "caller": "+38761000013", "agent": "301"}
_c14 = {"queue": "info", "call_id": "c14", "caller": "+38761000014", "agent": "301"}
_c14_request = {"queue": "info", "call_id": "c14", "caller": "+38761000014"}


def _callback(
    call_id: str, asked: str, wait: float, dialled: str, number: str
) -> list[QueueLogRecord]:
    """beta's caller ``call_id`` asks for a callback; 301 takes it at ``dialled``."""
    named = {"queue": "info", "call_id": call_id, "caller": number}
    return [
        event("callback_requested", at(asked), "beta", **named, wait=wait, position=1),
        event("callback_dialled", at(dialled), "beta", **named, agent="301"),
    ]


def _agent_call(call_id: str, start: str, end: str) -> list[QueueLogRecord]:
    """301's call for ``call_id`` from ``start`` to ``end``, then 30 s of wrap-up."""
    named = {"queue": "info", "call_id": call_id, "agent": "301"}
    wrapped = (datetime.fromisoformat(f"{DAY}T{end}") + timedelta(seconds=30)).time()
    return [
        event("call_start", at(start), "beta", **named),
        event("call_end", at(end), "beta", **named),
        event("wrapup_start", at(end), "beta", **named),
        event("wrapup_end", at(wrapped.isoformat()), "beta", **named),
    ]
