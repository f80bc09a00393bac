"""The scripted day's figures, computed by hand below, against the statistics and the command.

Times are local (Europe/Sarajevo, UTC+1); the period is 2026-03-02 00:00 to 2026-03-03 00:00.
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from callserver.cdr.record import CdrRecord
from callserver.cdr.stamps import utc_stamp
from callserver.cli import main
from callserver.commands.stats import queue_report, queue_talks, report_period
from callserver.queues.eventlog import QueueEventLog
from callserver.queues.statistics import queue_statistics
from callserver.queues.talk_check import TalkCheck, TalkDifference
from tests.cdr import append_records
from tests.queues.scripted import at, event, queue_call_cdrs, scripted_cdrs, scripted_day

SINCE, UNTIL = at("00:00:00"), at("00:00:00", "2026-03-03")

# sales (acme): joins c1 c2 c3 c5 c6 c7 = 6 offered; c8 found it full = 1 refused.
# Waits ended: c1 answered 10, c2 answered 25, c3 abandoned 8, c5 abandoned 45, c6 timed out
# 120, c7 left 4: 6 ended. Answered within 20 s: c1 only -> SL = 100 * 1 / 6 = 16.667 %.
# ASA = (10 + 25) / 2 = 17.5. Abandons: average (8 + 45) / 2 = 26.5, max 45; <= 5 s: 0,
# <= 10 s: 1 (c3), <= 30 s: 1. Longest wait 120 (c6).
# Handled: c1 (201, talk 08:05:10-08:09:10 = 240, wrap-up 30) and c2 (202, talk
# 08:06:25-08:16:25 = 600, wrap-up 60): AHT = (240 + 600 + 30 + 60) / 2 = 930 / 2 = 465.
SALES = {
    "customer": "acme",
    "queue": "sales",
    "offered": 6,
    "answered": 2,
    "abandoned": 2,
    "timed_out": 1,
    "left": 1,
    "refused": 1,
    "transferred": 0,
    "answered_within": 1,
    "service_level": 16.667,
    "average_speed_of_answer": 17.5,
    "handled": 2,
    "talk_time": 840.0,
    "wrapup_time": 90.0,
    "average_handle_time": 465.0,
    "abandon_wait_average": 26.5,
    "abandon_wait_max": 45.0,
    "abandoned_within_5": 0,
    "abandoned_within_10": 1,
    "abandoned_within_30": 1,
    "longest_wait": 120.0,
    "callbacks_requested": 0,
    "callbacks_answered": 0,
    "callbacks_dropped": 0,
}
# support (acme): c4 joined 12:59:50 and was answered after 10 s (and transferred); c12 joined
# and was answered the evening before, so it is neither offered nor answered today; c11 found
# no agent (refused). SL = 100 * 1 / 1 = 100, ASA 10, longest 10.
# Handled today: c4 (201: talk 13:00-13:10 = 600, wrap-up 60) and c12, whose call_end at
# 00:01:50 is today (202: talk 23:59:50-00:01:50 cut at midnight = 110, wrap-up 10):
# AHT = (600 + 110 + 60 + 10) / 2 = 780 / 2 = 390.
SUPPORT = {
    **{k: 0 for k in SALES if k not in ("customer", "queue")},
    "customer": "acme",
    "queue": "support",
    "offered": 1,
    "answered": 1,
    "refused": 1,
    "transferred": 1,
    "answered_within": 1,
    "service_level": 100.0,
    "average_speed_of_answer": 10.0,
    "handled": 2,
    "talk_time": 710.0,
    "wrapup_time": 70.0,
    "average_handle_time": 390.0,
    "abandon_wait_average": None,
    "abandon_wait_max": None,
    "longest_wait": 10.0,
}
# info (beta): c9 joined 22:10:00, answered after 3 s; c10 joined 23:55 and abandoned after
# midnight (not today); c13 and c14 asked for a callback after 20 and 5 s (their live waits
# end there): 4 offered, 1 answered, 3 waits ended -> SL 100 * 1 / 3 = 33.333, longest 20.
# Handled: c9 (talk 22:10:03-22:20:03 = 600), the call back to c13 (22:50:00-22:55:10 = 310)
# and the barred one to c14 (22:43:00-22:43:30 = 30), each with 30 s of wrap-up:
# AHT = (940 + 90) / 3 = 343.333. Callbacks: 2 requested, c13's answered, c14's dropped.
INFO = {
    **SUPPORT,
    "customer": "beta",
    "queue": "info",
    "offered": 4,
    "refused": 0,
    "transferred": 0,
    "service_level": 33.333,
    "average_speed_of_answer": 3.0,
    "handled": 3,
    "talk_time": 940.0,
    "wrapup_time": 90.0,
    "average_handle_time": 343.333,
    "longest_wait": 20.0,
    "callbacks_requested": 2,
    "callbacks_answered": 1,
    "callbacks_dropped": 1,
}
# 201: logged in 08:00-16:00 = 28800; talk 240 + 600 = 840; wrap-up 30 + 60 = 90; pauses
# lunch 12:00-12:30 = 1800, one without a reason code ("-") 15:00-15:10 = 600 (2400).
# Occupancy = 100 * (840 + 90) / (28800 - 2400) = 93000 / 26400 = 3.523 %.
# 202: logged in the evening before, counted from midnight to the 10:00 logout = 36000; talk
# 110 (c12 cut) + 600 (c2) = 710; wrap-up 10 + 60 = 70; training 09:00-09:30 = 1800.
# Occupancy = 100 * 780 / (36000 - 1800) = 78000 / 34200 = 2.281 %. Rung 2 times for c2, the
# first rang out: 1 ring no answer.
# 301: logged in 22:00, still at midnight = 7200; talk 600 + 310 + 30 = 940 (c9 and the two
# calls back), wrap-up 90; the meeting pause from 23:30 runs past midnight: 1800 counted.
# Occupancy = 100 * 1030 / (7200 - 1800) = 19.074 %. No ring of 301 is logged: 0 rings.
AGENTS = [
    {
        "customer": "acme",
        "agent": "201",
        "calls": 2,
        "logged_in": 28800.0,
        "talk_time": 840.0,
        "wrapup_time": 90.0,
        "pause_time": 2400.0,
        "pause_by_reason": {"-": 600.0, "lunch": 1800.0},
        "occupancy": 3.523,
        "rings": 2,
        "ring_no_answer": 0,
        "rings_cancelled": 1,
    },
    {
        "customer": "acme",
        "agent": "202",
        "calls": 2,
        "logged_in": 36000.0,
        "talk_time": 710.0,
        "wrapup_time": 70.0,
        "pause_time": 1800.0,
        "pause_by_reason": {"training": 1800.0},
        "occupancy": 2.281,
        "rings": 2,
        "ring_no_answer": 1,
        "rings_cancelled": 0,
    },
    {
        "customer": "beta",
        "agent": "301",
        "calls": 3,
        "logged_in": 7200.0,
        "talk_time": 940.0,
        "wrapup_time": 90.0,
        "pause_time": 1800.0,
        "pause_by_reason": {"meeting": 1800.0},
        "occupancy": 19.074,
        "rings": 0,
        "ring_no_answer": 0,
        "rings_cancelled": 0,
    },
]

TEXT = """\
Queues 2026-03-02 00:00 to 2026-03-03 00:00 (Europe/Sarajevo); service level: answered within 20 s

customer  queue    offered  answered  abandoned  timed out  left  refused   SL %  ASA s  AHT s  longest s
acme      sales          6         2          2          1     1        1   16.7   17.5  465.0      120.0
acme      support        1         1          0          0     0        1  100.0   10.0  390.0       10.0
beta      info           4         1          0          0     0        0   33.3    3.0  343.3       20.0

Abandoned calls: their wait
customer  queue    abandoned  average s  longest s  <= 5 s  <= 10 s  <= 30 s
acme      sales            2       26.5       45.0       0        1        1
acme      support          0          -          -       0        0        0
beta      info             0          -          -       0        0        0

Agents
customer  agent  calls  rung  no answer  logged in     talk  wrap-up   paused  occupancy %  pauses
acme      201        2     2          0    8:00:00  0:14:00  0:01:30  0:40:00          3.5  - 0:10:00, lunch 0:30:00
acme      202        2     2          1   10:00:00  0:11:50  0:01:10  0:30:00          2.3  training 0:30:00
beta      301        3     0          0    2:00:00  0:15:40  0:01:30  0:30:00         19.1  meeting 0:30:00

Talk time: 5 call(s) from their CDRs, 2 from the queue log alone (no CDR)
"""  # noqa: E501 - the table as the operator sees it


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    """A data directory whose queue event log holds the scripted day, written by the log, and
    whose CDR spool the day's answered queue calls, with the log's talk times."""
    with QueueEventLog(tmp_path / "queue-events") as log:
        assert all(f.result(timeout=10) for f in [log.write(r) for r in scripted_day()])
    append_records(tmp_path, *scripted_cdrs(), name="2026-03-02.jsonl")
    return tmp_path


def _stats(data_dir: Path, capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    config = data_dir / "callserver.yaml"
    config.write_text("stats:\n  timezone: Europe/Sarajevo\n")
    argv = ["stats", "queues", "--config", str(config), "--data-dir", str(data_dir), *args]
    code = main(argv)
    out, err = capsys.readouterr()
    return code, out, err


DAY_ARGS = ("--since", "2026-03-02", "--until", "2026-03-03")


def test_json_output_matches_the_hand_computed_figures(
    data_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """--format json gives the period, the zone and every figure computed above."""
    code, out, err = _stats(data_dir, capsys, *DAY_ARGS, "--format", "json")
    assert (code, err) == (0, "")
    assert json.loads(out) == {
        "since": "2026-03-02T00:00:00+01:00",
        "until": "2026-03-03T00:00:00+01:00",
        "timezone": "Europe/Sarajevo",
        "service_level_seconds": 20.0,
        "queues": [SALES, SUPPORT, INFO],
        "agents": AGENTS,
        # the two calls back (c13, c14) have no leg-a CDR naming the queue: their talk is the log's
        "talk_check": {"from_cdrs": 5, "log_only": 2, "differing": [], "cdr_only": []},
    }


def test_csv_output_matches_the_hand_computed_figures(
    data_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """--format csv: the queues' table, an empty line, the agents' table, stable column names."""
    code, out, _ = _stats(data_dir, capsys, *DAY_ARGS, "--format", "csv")
    assert code == 0
    queues_part, agents_part = out.split("\n\n")
    queues = list(csv.DictReader(io.StringIO(queues_part)))
    agents = list(csv.DictReader(io.StringIO(agents_part)))
    assert list(queues[0]) == list(SALES)
    assert list(agents[0]) == list(AGENTS[0])
    assert queues == [_csv_row(q) for q in (SALES, SUPPORT, INFO)]
    assert agents[0]["pause_by_reason"] == "-=600;lunch=1800"
    assert [a["occupancy"] for a in agents] == ["3.523", "2.281", "19.074"]
    assert [a["logged_in"] for a in agents] == ["28800", "36000", "7200"]


def _csv_row(figures: dict[str, object]) -> dict[str, str]:
    def cell(value: object) -> str:
        if value is None:
            return ""
        if isinstance(value, float):
            return f"{value:g}"
        return str(value)

    return {name: cell(value) for name, value in figures.items()}


def test_text_output_is_the_readable_table_of_the_same_figures(
    data_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The text tables show the same figures (times as H:MM:SS, averages to one decimal)."""
    code, out, _ = _stats(data_dir, capsys, *DAY_ARGS)
    assert code == 0
    assert out == TEXT


def test_customer_and_service_level_options(
    data_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """--customer keeps one customer's rows; --service-level 30 counts c2's 25 s answer too."""
    _, out, _ = _stats(
        data_dir,
        capsys,
        *DAY_ARGS,
        "--customer",
        "acme",
        "--service-level",
        "30",
        "--format",
        "json",
    )
    report = json.loads(out)
    assert [q["queue"] for q in report["queues"]] == ["sales", "support"]
    assert [a["agent"] for a in report["agents"]] == ["201", "202"]
    # sales: c1 (10 s) and c2 (25 s) within 30 s, of 6 ended waits: 100 * 2 / 6 = 33.333
    assert report["queues"][0]["service_level"] == 33.333
    assert report["service_level_seconds"] == 30.0


def test_a_bad_line_is_named_on_stderr_and_the_report_goes_on(
    data_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A torn line in a day file is reported FILE:LINE and skipped; the figures stay the same."""
    day_file = data_dir / "queue-events" / "2026-03-02.jsonl"
    lines = day_file.read_text().splitlines()
    day_file.write_text("\n".join([*lines, '{"at":"2026-03-02T2']) + "\n")
    code, out, err = _stats(data_dir, capsys, *DAY_ARGS, "--format", "json")
    assert code == 0
    assert err == f"{day_file}:{len(lines) + 1}: not a JSON line (line skipped)\n"
    assert json.loads(out)["queues"] == [SALES, SUPPORT, INFO]


def test_bad_period_arguments_are_refused_with_a_sentence(
    data_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A --since that is not a date, or an --until before --since, exits 1 with the reason."""
    code, out, err = _stats(data_dir, capsys, "--since", "yesterday")
    assert (code, out) == (1, "")
    assert "--since 'yesterday' is not a date (2026-03-02)" in err
    code, _, err = _stats(data_dir, capsys, "--since", "2026-03-03", "--until", "2026-03-02")
    assert code == 1
    assert "is not after --since" in err


def test_an_empty_period_gives_empty_tables(
    data_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A period with no events and no agent logged in has no rows, in every format."""
    args = ("--since", "2026-02-01", "--until", "2026-02-02")
    _, out, _ = _stats(data_dir, capsys, *args, "--format", "json")
    assert (json.loads(out)["queues"], json.loads(out)["agents"]) == ([], [])
    _, out, _ = _stats(data_dir, capsys, *args, "--format", "csv")
    assert out.count("\n") == 3  # two headers and the empty line between them
    _, out, _ = _stats(data_dir, capsys, *args)
    assert out.count("(none)") == 3


def test_a_period_cuts_the_agents_time_at_both_edges() -> None:
    """From 08:00 to 12:15 local: 202's login before counts from 08:00, 201's lunch to 12:15."""
    stats = queue_statistics(
        sorted(scripted_day(), key=lambda r: r.at),
        since=at("08:00:00"),
        until=at("12:15:00"),
        customer="acme",
    )
    by_agent = {a.agent: a for a in stats.agents}
    # 201: 08:00-12:15 = 15300 logged in, lunch 12:00-12:15 = 900
    assert (by_agent["201"].logged_in, by_agent["201"].pause_time) == (15300.0, 900.0)
    # 202: 08:00-10:00 = 7200 (logged in the evening before), c12 ended before 08:00: 1 call
    assert (by_agent["202"].logged_in, by_agent["202"].calls) == (7200.0, 1)
    assert [q.queue for q in stats.queues] == ["sales"]  # support's first event is 12:59:50


def test_an_open_state_is_inferred_from_an_agents_first_event() -> None:
    """An agent whose first event is unpause was logged in and paused since the period began."""
    records = [event("unpause", at("09:00:00"), agent="205", reason="lunch")]
    stats = queue_statistics(records, since=at("08:00:00"), until=at("10:00:00"))
    (agent,) = stats.agents
    assert (agent.logged_in, agent.pause_by_reason) == (7200.0, (("lunch", 3600.0),))
    # nothing but pauses: occupancy = 100 * 0 / (7200 - 3600) = 0
    assert agent.occupancy == 0.0


def test_a_period_that_is_not_one_is_refused() -> None:
    """until must come after since, both with a zone, and the service level is not negative."""
    with pytest.raises(ValueError, match="the period is empty"):
        queue_statistics([], since=at("10:00:00"), until=at("10:00:00"))
    with pytest.raises(ValueError, match="negative"):
        queue_statistics([], since=at("10:00:00"), until=at("11:00:00"), service_level=-1)


def test_records_out_of_order_give_the_same_figures() -> None:
    """The function puts the records in time order itself: reversed input, same figures."""
    day = scripted_day()
    forward = queue_statistics(day, since=SINCE, until=UNTIL)
    assert queue_statistics(day[::-1], since=SINCE, until=UNTIL) == forward


def test_the_default_period_is_today_from_midnight_to_now_in_the_zone() -> None:
    """Without --since and --until the period is local midnight to now; an offset is kept."""
    zone = ZoneInfo("Europe/Sarajevo")
    now = datetime(2026, 3, 2, 9, 30, tzinfo=UTC)  # 10:30 in Sarajevo
    since, until = report_period(None, None, zone, now)
    assert (since.isoformat(), until) == ("2026-03-02T00:00:00+01:00", now)
    since, until = report_period("2026-03-02 08:00", "2026-03-02T09:00Z", zone, now)
    assert (since, until) == (at("08:00:00"), at("10:00:00"))


def _talks_with_a_longer_c4_no_c9_and_a_c99() -> list[CdrRecord]:
    """The day's CDRs, but c4's agent leg ends 4 s after the log's call_end, c9 has none, and
    c99 (sales, 201, 14:00:00-14:01:00) is in the CDRs alone."""
    records = [r for r in scripted_cdrs() if r.call_id not in ("c9", "c9-agent")]
    records = [
        replace(r, end_stamp=utc_stamp(at("13:10:04"))) if r.uuid in ("c4-a", "c4-b") else r
        for r in records
    ]
    c99 = queue_call_cdrs(
        "c99", "acme", "sales", "201", at("13:59:30"), at("14:00:00"), at("14:01:00")
    )
    return [*records, *c99]


def test_the_cdrs_talk_time_wins_and_the_check_names_what_disagrees() -> None:
    """c4's CDR says 604 s of talk where the log says 600: 201's and support's talk take 604
    and the check names c4; c9 without a CDR keeps the log's 600 s (and the calls back to c13
    and c14 their 340 s); c99, in the CDRs alone, is named and not counted."""
    stats = queue_statistics(
        scripted_day(),
        since=SINCE,
        until=UNTIL,
        talks=queue_talks(_talks_with_a_longer_c4_no_c9_and_a_c99()),
    )
    queues = {q.queue: q for q in stats.queues}
    agents = {a.agent: a for a in stats.agents}
    assert (queues["support"].talk_time, queues["support"].average_handle_time) == (714.0, 392.0)
    assert (agents["201"].talk_time, agents["201"].calls) == (844.0, 2)
    assert (queues["info"].talk_time, agents["301"].talk_time) == (940.0, 940.0)
    assert stats.talk_check == TalkCheck(
        from_cdrs=4,
        log_only=3,
        differing=(
            TalkDifference(
                call_id="c4", customer="acme", queue="support", agent="201", cdr=604.0, log=600.0
            ),
        ),
        cdr_only=("c99",),
    )


def test_the_text_report_ends_with_the_talk_check(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The command reads the CDR spool: the text's last lines say where the talk came from
    and name the calls the CDRs and the log disagree on."""
    with QueueEventLog(tmp_path / "queue-events") as log:
        assert all(f.result(timeout=10) for f in [log.write(r) for r in scripted_day()])
    append_records(tmp_path, *_talks_with_a_longer_c4_no_c9_and_a_c99(), name="2026-03-02.jsonl")
    code, out, _ = _stats(tmp_path, capsys, *DAY_ARGS)
    assert code == 0
    assert out.splitlines()[-3:] == [
        "Talk time: 4 call(s) from their CDRs, 3 from the queue log alone (no CDR)",
        "  call c4 (acme support, agent 201): talk 604.0 s in its CDRs, 600.0 s in the queue log",
        "  call c99: a queue call in the CDRs, not in the queue log",
    ]


def test_without_cdrs_the_talk_comes_from_the_queue_log(tmp_path: Path) -> None:
    """A data dir with a queue log and no CDRs: the same figures, and no talk check."""
    with QueueEventLog(tmp_path / "queue-events") as log:
        assert all(f.result(timeout=10) for f in [log.write(r) for r in scripted_day()])
    stats, problems = queue_report(tmp_path, since=SINCE, until=UNTIL)
    assert (problems, stats.talk_check) == ([], None)
    assert [q.talk_time for q in stats.queues] == [840.0, 710.0, 940.0]
    assert not (tmp_path / "cdr.sqlite").exists()
