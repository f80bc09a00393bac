"""Today's figures kept live from the queue log's records equal the statistics' for the day,
whatever order the seed and the feed come in, and never count a record twice."""

from __future__ import annotations

from datetime import timedelta

from callserver.queues.day_tally import DayTally
from callserver.queues.statistics import queue_statistics
from tests.queues.scripted import at, caller, scripted_day

SINCE = at("00:00:00")


def _statistics_figures() -> dict[tuple[str, str], tuple[int, int, int, float | None]]:
    """The scripted day's offered, answered, abandoned and service level, by the statistics,
    from midnight to the last record."""
    records = scripted_day()
    until = max(r.at for r in records) + timedelta(seconds=1)
    stats = queue_statistics(records, since=SINCE, until=until, service_level=20.0)
    return {
        (q.customer, q.queue): (q.offered, q.answered, q.abandoned, q.service_level)
        for q in stats.queues
        if q.offered or q.answered or q.abandoned or q.service_level is not None
    }


def _tally_figures(tally: DayTally) -> dict[tuple[str, str], tuple[int, int, int, float | None]]:
    return {
        key: (f.offered, f.answered, f.abandoned, f.service_level)
        for key, f in tally.figures(SINCE, 20.0).items()
        if f.offered or f.answered or f.abandoned or f.service_level is not None
    }


def test_fed_record_by_record_the_figures_are_the_statistics() -> None:
    """Every record fed as it is written: the figures since midnight are those of
    ``queue_statistics`` for the same period, the evening before left out."""
    tally = DayTally(started=at("00:00:00", "2026-03-01"))
    for record in sorted(scripted_day(), key=lambda r: r.at):
        tally.add(record)
    assert _tally_figures(tally) == _statistics_figures()


def test_seeded_from_the_log_and_fed_after_the_start_the_figures_are_the_same() -> None:
    """A start at noon: the morning comes from the log's seed (asked after the afternoon was
    fed), the afternoon from the feed; the log's copy of the afternoon is not counted again."""
    records = sorted(scripted_day(), key=lambda r: r.at)
    noon = at("12:00:00")
    tally = DayTally(started=noon)
    assert tally.figures(SINCE, 20.0) == {}
    for record in records:
        if record.at >= noon:
            tally.add(record)
    tally.seed(records)  # the whole log as read later: its afternoon lines are left out
    assert _tally_figures(tally) == _statistics_figures()


def test_counts_follow_new_records_and_a_new_day_or_answer_time_recounts() -> None:
    """Asked once, then fed: the counts move at once; a later midnight or another service
    level answer time recounts from the records kept."""
    tally = DayTally(started=at("07:00:00"))
    tally.add(caller("join", at("08:00:00"), "sales", "c1"))
    tally.add(caller("answer", at("08:00:15"), "sales", "c1", agent="+38733100201", wait=15.0))
    first = tally.figures(SINCE, 20.0)[("acme", "sales")]
    assert (first.offered, first.answered, first.service_level) == (1, 1, 100.0)
    tally.add(caller("join", at("08:01:00"), "sales", "c2"))
    tally.add(caller("abandon", at("08:01:30"), "sales", "c2", wait=30.0))
    now = tally.figures(SINCE, 20.0)[("acme", "sales")]
    assert (now.offered, now.answered, now.abandoned, now.service_level) == (2, 1, 1, 50.0)
    stricter = tally.figures(SINCE, 10.0)[("acme", "sales")]
    assert stricter.service_level == 0.0
    later = tally.figures(at("08:01:00"), 10.0)[("acme", "sales")]
    assert (later.offered, later.answered, later.abandoned) == (1, 0, 1)


def test_a_fed_record_stamped_before_the_start_is_not_seeded_again() -> None:
    """A wall clock stepped back: a fed record older than ``started`` is in the log too; the
    seed leaves its copy out."""
    tally = DayTally(started=at("09:00:00"))
    early = caller("join", at("08:59:59"), "sales", "c1")
    tally.add(early)
    tally.seed([early, caller("join", at("08:00:00"), "sales", "c0")])
    assert tally.figures(SINCE, 20.0)[("acme", "sales")].offered == 2
