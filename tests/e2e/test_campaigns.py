"""An outbound campaign against SIPp peers through routes: pacing, the customer's channels,
retries, a result for every number, and a restart in the middle.

Three SIPp uas peers stand for the numbers' networks, one route each: +38761 answers (the
campaign's plan asks a survey question, the peer presses 4 by SIP INFO, the plan hangs up),
+38762 is busy (486), +38763 rings until cancelled; acme's barring refuses the number abroad
before any INVITE. The window is open all week (no holidays), so no date matters; the
window's holidays are pinned in tests/campaigns.
"""

from __future__ import annotations

import contextlib
import csv
import itertools
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

from tests.e2e.conftest import (
    HOST,
    SCENARIOS,
    ServerProcess,
    exported_cdrs,
    media_port,
    plan_dir,
    popen_bound,
    start_server,
)

PLAN = "38733100500"
ANSWERING = [f"+3876110{n:04d}" for n in range(11)]
BARRED = ["+4930123456"]  # acme may not call abroad: refused with no INVITE sent
BUSY = [f"+3876220{n:04d}" for n in range(4)]
SILENT = [f"+3876330{n:04d}" for n in range(4)]
NUMBERS = ANSWERING + BARRED + BUSY + SILENT
ANSWERS = "uas-answers-keys-info-expects-bye.xml"  # presses 4 by SIP INFO
CHANNELS = 3
RATE = 2.0  # calls a second
CAMPAIGN = f"""name: spring
numbers: spring.csv
customer: acme
caller_id: "+387 33 100 200"
plan: "+{PLAN}"
window: {{timezone: Europe/Sarajevo, holidays: no, open: {{mon-sun: "00:00-24:00"}}}}
pacing: {{calls_per_second: {RATE:g}, max_in_progress: {CHANNELS}}}
ring_timeout: 2
retries: {{max_attempts: 2, delay: 1, when: [busy, no_answer]}}
"""
SURVEY = """description: A campaign's survey
steps:
  rate_us:
    survey: satisfaction
    prompt: survey_question
    choices: [1, 2, 3, 4, 5]
    next: goodbye
  goodbye:
    hangup:
"""


@contextlib.contextmanager
def _peer(sipp: str, tmp_path: Path, scenario: str, *keys: str) -> Iterator[int]:
    """A SIPp uas playing ``scenario`` for every call it gets; its port."""

    def command(port: int) -> list[str]:
        return [
            sipp,
            *("-i", HOST, "-p", str(port), "-mp", str(media_port())),
            *("-m", "1000", "-nostdin", "-sf", str(SCENARIOS / scenario), *keys),
        ]

    proc, port = popen_bound(command, tmp_path)
    try:
        yield port
    finally:
        proc.kill()
        proc.communicate()


def _campaign(args: list[str], config: Path) -> str:
    proc = subprocess.run(
        [sys.executable, "-m", "callserver", "campaign", *args, "--config", str(config)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def _results(data_dir: Path) -> dict[str, dict[str, str]]:
    path = data_dir / "campaigns" / "spring" / "results.csv"
    if not path.exists():
        return {}
    with path.open(encoding="utf-8") as handle:
        return {row["number"]: row for row in csv.DictReader(handle)}


def _wait_results(data_dir: Path, count: int, server: ServerProcess) -> None:
    deadline = time.monotonic() + 120
    while len(_results(data_dir)) < count:
        assert server.proc.poll() is None, "\n".join(server.raw[-40:])
        late = f"{len(_results(data_dir))} results of {count}; server output:\n"
        assert time.monotonic() < deadline, late + "\n".join(server.raw[-60:])
        time.sleep(0.2)


def _stamp(text: object) -> float:
    return datetime.fromisoformat(str(text).replace("Z", "+00:00")).timestamp()


def _peak(records: list[dict[str, object]]) -> int:
    """The most calls in progress at once, from the CDRs' start and end times."""
    edges = sorted(
        [(_stamp(r["start_stamp"]), 1) for r in records]
        + [(_stamp(r["end_stamp"]), -1) for r in records],
        key=lambda edge: (edge[0], edge[1]),  # an end before a start at the same instant
    )
    now = peak = 0
    for _, step in edges:
        now += step
        peak = max(peak, now)
    return peak


def test_campaign_paced_capped_retried_restarted_with_every_result(
    sipp: str, tmp_path: Path
) -> None:
    """20 numbers: at most 3 in progress (acme's channels), 2 calls a second, busy and silent
    numbers tried twice, a barred one refused, one result row each; a restart does not call
    an answered one again."""
    plans = plan_dir(tmp_path, PLAN, SURVEY)
    (tmp_path / "spring.csv").write_text(
        "number,first_name\n" + "".join(f"{n},Name{i}\n" for i, n in enumerate(NUMBERS))
    )
    (tmp_path / "spring.yaml").write_text(CAMPAIGN)
    with (
        _peer(sipp, tmp_path, ANSWERS, "-key", "digit", "4") as answering,
        _peer(sipp, tmp_path, "uas-busy-486.xml") as busy,
        _peer(sipp, tmp_path, "uas-rings-until-cancelled.xml") as silent,
    ):
        routes = {
            "answering": {"host": HOST, "port": answering, "prefixes": ["+38761"]},
            "busy": {"host": HOST, "port": busy, "prefixes": ["+38762"]},
            "silent": {"host": HOST, "port": silent, "prefixes": ["+38763"]},
        }
        acme = {"channels": CHANNELS, "barring": ["international"]}
        trunks = {"customers": {"acme": acme}, "routes": routes}
        server = start_server(tmp_path, trunks=trunks, dialplans=plans)
        config = tmp_path / "callserver.yaml"
        try:
            assert "20 numbers, started" in _campaign(
                ["start", str(tmp_path / "spring.yaml")], config
            )
            _wait_results(server.data_dir, 6, server)
        finally:
            server.stop()
        before = _results(server.data_dir)
        server = start_server(tmp_path, trunks=trunks, dialplans=plans)
        try:
            _wait_results(server.data_dir, len(NUMBERS), server)
            status = _campaign(["status", str(tmp_path / "spring.yaml")], config)
        finally:
            server.stop()
    results = _results(server.data_dir)
    assert sorted(results) == sorted(NUMBERS)
    assert "campaign spring: done" in status, status
    for number, row in results.items():
        kinds = {"answered": ANSWERING, "barred": BARRED, "busy": BUSY, "no_answer": SILENT}
        expected = next(kind for kind, numbers in kinds.items() if number in numbers)
        # A call the restart cut short counts as an attempt (failed when it was the last).
        assert row["result"] in (expected, "failed") and int(row["attempts"]) <= 2, row
        assert row["result"] in ("answered", "barred") or int(row["attempts"]) == 2, row
    assert [results[n]["attempts"] for n in BARRED] == ["1"]  # never retried
    answers = {results[n]["answers"] for n in ANSWERING}
    assert answers == {'{"satisfaction": "4"}'}
    records = [r for r in exported_cdrs(server.data_dir) if r.get("campaign") == "spring"]
    assert {r["leg"] for r in records} == {"b"} and {r["direction"] for r in records} == {
        "outbound"
    }
    assert _peak(records) <= CHANNELS
    starts = sorted(_stamp(r["start_stamp"]) for r in records)
    assert min(b - a for a, b in itertools.pairwise(starts)) >= 1 / RATE - 0.05
    for number in BUSY:  # every busy number was tried twice
        assert sum(r["called_e164"] == number.lstrip("+") for r in records) == 2
    for number, row in before.items():  # answered before the restart: never called after it
        if row["result"] == "answered":
            calls = [r for r in records if r["called_e164"] == number.lstrip("+")]
            assert len(calls) == 1 and calls[0]["disposition"] == "ANSWERED", calls
    answered = [r for r in records if r["disposition"] == "ANSWERED"]
    assert all(str(r["dialplan"]).endswith(f"{PLAN}.yaml") for r in answered)
    assert all(r["tariff"] and r["payer"] == "caller" for r in answered)  # rated as a call out
    assert all(r["survey"] == {"satisfaction": "4"} for r in answered if r["billsec"])
    assert {r["customer"] for r in records} == {"acme"}
    barred = [r for r in records if r["called_e164"] == BARRED[0].lstrip("+")]
    assert [(r["end_reason"], r["sip_code"]) for r in barred] == [("barred", 403)]
