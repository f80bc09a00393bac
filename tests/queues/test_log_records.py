"""The centre's events as queue log lines: a scripted morning through the centre, its log
replayed by the statistics, gives the figures worked out by hand."""

from __future__ import annotations

from datetime import timedelta
from itertools import count

from callserver.queues.centre import CallCentre
from callserver.queues.log_records import log_records
from callserver.queues.queue import Strategy
from callserver.queues.records import QueueLogRecord
from callserver.queues.statistics import queue_statistics

from .support import QUEUE, START, agent, at, logged_in, make_centre, queue


class Log:
    """What the centre's events became, line by line, each with a serial id."""

    def __init__(self, centre: CallCentre) -> None:
        self.centre = centre
        self.lines: list[QueueLogRecord] = []
        self._serial = count()

    def take(self) -> None:
        """Turn the centre's pending events into log lines."""
        for event in self.centre.drain_events():
            self.lines += log_records(event, lambda: f"e{next(self._serial)}")

    def kinds(self) -> list[str]:
        """The lines' kinds, in order."""
        return [line.kind.value for line in self.lines]


def _tick(log: Log, now: float) -> None:
    centre = log.centre
    centre.handle_timer(now, at(now))
    centre.offers(now, at(now))
    log.take()


def scripted_morning() -> Log:
    """Agents 1 and 2 of acme's sales; c1 answered after 5 s, c2 after 90 s (agent 2 let it
    ring out, agent 1 was talking and wrapping up), c3 rung and abandoned after 8 s; agent 2
    pauses for lunch from 60 to 180 s; both log out."""
    centre = make_centre(queue(2, wrap_up=30.0, ring_timeout=15.0))
    log = Log(centre)
    for n in (1, 2):
        centre.login(agent(n), 0.0, at(0))
    log.take()
    steps: list[tuple[float, str, str]] = [
        (10, "join", "c1"),
        (15, "answer", "c1"),
        (20, "join", "c2"),
        (35, "tick", ""),
        (40, "join", "c3"),
        (48, "abandon", "c3"),
        (60, "pause", ""),
        (75, "end", ""),
        (105, "tick", ""),
        (110, "answer", "c2"),
        (170, "end", ""),
        (180, "unpause", ""),
        (200, "tick", ""),
        (220, "logout2", ""),
        (230, "logout1", ""),
    ]
    for now, what, caller in steps:
        when = at(now)
        if what == "join":
            centre.join(QUEUE, caller, now, when, number=f"06100000{caller[1]}")
        elif what == "answer":
            assert centre.answered(caller, agent(1), now, when)
        elif what == "abandon":
            assert centre.abandon(caller, now, when)
        elif what == "pause":
            centre.pause(agent(2), "lunch", now, when)
        elif what == "unpause":
            centre.unpause(agent(2), now, when)
        elif what == "end":
            assert centre.call_ended(agent(1), now, when)
        elif what.startswith("logout"):
            centre.logout(agent(int(what[-1])), now, when)
        _tick(log, now)
    return log


def test_the_morning_writes_each_line_in_order() -> None:
    """Each centre event gives its log lines: answers start calls, ends start wrap-ups."""
    assert scripted_morning().kinds() == [
        "login", "login",
        "join", "ring",  # c1 to agent 1 at 10
        "answer", "call_start",  # at 15
        "join", "ring",  # c2 to agent 2 at 20
        "ring_noanswer",  # at 35
        "join", "ring",  # c3 to agent 2 at 40
        "ring_cancelled", "abandon",  # at 48, agent 2's ring cancelled
        "pause",  # agent 2 at 60
        "call_end", "wrapup_start",  # agent 1 at 75
        "wrapup_end", "ring",  # at 105, c2 to agent 1
        "answer", "call_start",  # at 110
        "call_end", "wrapup_start",  # at 170
        "unpause",  # agent 2 at 180
        "wrapup_end",  # agent 1 at 200
        "logout", "logout",
    ]  # fmt: skip


def test_the_lines_carry_queue_call_agent_wait_and_number() -> None:
    """join names the caller's number and position; answer its wait; a ring-out its reason."""
    lines = scripted_morning().lines
    join = next(line for line in lines if line.kind.value == "join")
    assert (join.queue, join.call_id, join.caller, join.position) == ("sales", "c1", "061000001", 1)
    answers = [(a.call_id, a.agent, a.wait) for a in lines if a.kind.value == "answer"]
    assert answers == [("c1", agent(1), 5.0), ("c2", agent(1), 90.0)]
    noanswer = next(line for line in lines if line.kind.value == "ring_noanswer")
    assert (noanswer.agent, noanswer.reason) == (agent(2), "timeout")
    cancelled = next(line for line in lines if line.kind.value == "ring_cancelled")
    assert (cancelled.agent, cancelled.call_id, cancelled.reason) == (agent(2), "c3", "abandon")
    wrap_end = [line for line in lines if line.kind.value == "wrapup_end"]
    assert [(w.queue, w.call_id, w.at) for w in wrap_end] == [
        ("sales", "c1", at(105)),
        ("sales", "c2", at(200)),
    ]
    assert len({line.uuid for line in lines}) == len(lines)


def test_statistics_of_the_morning_match_the_hand_worked_figures() -> None:
    """Offered 3, answered 2 (waits 5 and 90 s), 1 abandoned after 8 s; agent 1 talked 120 s
    and wrapped up 60 s in 230 s logged in; agent 2 paused 120 s for lunch."""
    stats = queue_statistics(
        scripted_morning().lines, since=START, until=START + timedelta(hours=1), service_level=20
    )
    (sales,) = stats.queues
    assert (sales.offered, sales.answered, sales.abandoned, sales.answered_within) == (3, 2, 1, 1)
    assert sales.average_speed_of_answer == 47.5
    assert (sales.handled, sales.talk_time, sales.wrapup_time) == (2, 120.0, 60.0)
    assert (sales.abandon_wait_max, sales.longest_wait) == (8.0, 90.0)
    first, second = stats.agents
    assert (first.agent, first.calls, first.logged_in) == (agent(1), 2, 230.0)
    assert (first.talk_time, first.wrapup_time, first.pause_time) == (120.0, 60.0, 0.0)
    assert first.occupancy == round(100 * 180 / 230, 3)
    assert (second.agent, second.calls, second.logged_in) == (agent(2), 0, 220.0)
    assert (second.pause_time, second.pause_by_reason) == (120.0, (("lunch", 120.0),))
    assert (first.rings, first.ring_no_answer, first.rings_cancelled) == (2, 0, 0)
    assert (second.rings, second.ring_no_answer, second.rings_cancelled) == (2, 1, 1)


def test_a_new_pause_reason_and_a_pause_in_wrap_up_close_what_was_open() -> None:
    """Pausing again with another reason is unpause + pause; pausing in wrap-up ends it."""
    centre = make_centre(queue(1, wrap_up=30.0))
    log = Log(centre)
    logged_in(centre, agent(1))
    centre.join(QUEUE, "c1", 1.0, at(1))
    centre.offers(1.0, at(1))
    centre.answered("c1", agent(1), 2.0, at(2))
    centre.call_ended(agent(1), 10.0, at(10))
    log.take()
    centre.pause(agent(1), "notes", 12.0, at(12))
    centre.pause(agent(1), "lunch", 20.0, at(20))
    log.take()
    tail = [(line.kind.value, line.reason, line.queue) for line in log.lines[-4:]]
    assert tail == [
        ("wrapup_end", None, "sales"),
        ("pause", "notes", None),
        ("unpause", None, None),
        ("pause", "lunch", None),
    ]


def test_ring_all_logs_the_rings_another_agent_answered_and_a_refused_ring() -> None:
    """ring_all: agent 3's phone refuses, agent 1 answers; agent 2's ring is logged cancelled as
    answered elsewhere, agent 3's as ring_noanswer with the phone's reason."""
    centre = make_centre(queue(3, Strategy.RING_ALL, ring_timeout=15.0))
    log = Log(centre)
    for n in (1, 2, 3):
        centre.login(agent(n), 0.0, at(0))
    centre.join(QUEUE, "c1", 1.0, at(1))
    (offer,) = centre.offers(1.0, at(1))
    assert set(offer.agents) == {agent(1), agent(2), agent(3)}
    log.take()
    assert centre.ring_failed("c1", agent(3), "busy", 2.0, at(2))
    assert centre.answered("c1", agent(1), 4.0, at(4))
    log.take()
    rings = [
        (line.kind.value, line.agent, line.reason)
        for line in log.lines
        if line.kind.value.startswith("ring_")
    ]
    assert rings == [
        ("ring_noanswer", agent(3), "busy"),
        ("ring_cancelled", agent(2), "answered_elsewhere"),
    ]
    stats = queue_statistics(log.lines, since=START, until=START + timedelta(hours=1))
    by_agent = {a.agent: (a.rings, a.ring_no_answer, a.rings_cancelled) for a in stats.agents}
    assert by_agent == {agent(1): (1, 0, 0), agent(2): (1, 0, 1), agent(3): (1, 1, 0)}
