"""Overload control end to end: a burst above capacity, SIPp against `callserver run`."""

from __future__ import annotations

import time
from pathlib import Path

from tests.e2e.conftest import (
    LOCAL_TRUNK,
    exported_cdrs,
    run_scenario,
    start_server,
    stat_value,
    stopped_on_exit,
)

BURST = 24
SETUP_LIMIT = 4


def test_a_burst_above_capacity_leaves_admitted_calls_clean_and_refuses_the_rest(
    sipp: str, tmp_path: Path
) -> None:
    """24 INVITEs at once against room for 4 in setup: 4 served whole, 20 get 503 + Retry-After.

    The served calls ring 3 s before the answer, so every INVITE of the burst arrives while
    the first four are still in setup: overload control refuses the rest at once, without a
    transaction, each with a CDR (end_reason overload, Q.850 42), in one logged episode.
    """
    overload = {"max_calls_in_setup": SETUP_LIMIT, "retry_after": 7, "calm": 0.5}
    server = start_server(tmp_path, trunks=LOCAL_TRUNK, overload=overload, ring=3.0)
    with stopped_on_exit(server):
        scenario = "uac-answered-or-503-overload.xml"
        burst = run_scenario(
            sipp, tmp_path, server, scenario, "-m", str(BURST), "-r", "200", "-l", str(BURST)
        )
        deadline = time.monotonic() + 10
        while not server.events("overload.ended") and time.monotonic() < deadline:
            time.sleep(0.05)
    log = "\n".join(server.raw[-40:])
    assert burst.returncode == 0, burst.output[-2000:] + log
    assert stat_value(burst, "SuccessfulCall(C)") == BURST
    assert stat_value(burst, "FailedCall(C)") == 0
    refused = BURST - SETUP_LIMIT
    (started,) = server.events("overload.started")
    assert (started["reason"], started["invites_in_setup"]) == ("calls_in_setup", SETUP_LIMIT)
    (ended,) = server.events("overload.ended")
    assert (ended["refused"], ended["admitted"]) == (refused, 0), log
    stopped = server.wait_for("server.stopped")
    assert (stopped["overload_refused"], stopped["overload_episodes"]) == (refused, 1)
    cdrs = exported_cdrs(server.data_dir)
    answered = [c for c in cdrs if c["disposition"] == "ANSWERED"]
    assert [(c["end_reason"], c["hangup_by"]) for c in answered] == [("normal", "caller")] * 4
    rejected = [c for c in cdrs if c["disposition"] == "REJECTED"]
    assert {(c["end_reason"], c["sip_code"], c["q850_cause"]) for c in rejected} == {
        ("overload", 503, 42)
    }
    assert len(rejected) == refused
    assert len({c["call_id"] for c in cdrs}) == BURST  # one record per call, none twice
