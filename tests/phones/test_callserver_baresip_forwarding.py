"""baresip phones and call forwarding: a call to a phone whose number forwards always lands
on the other phone; one whose phone is not answered in its no-answer ring time (CFNR, set by
``*61*202*5#`` from the phone, kept over a restart) lands there after it.

Phones 201 and 202 of acme's group register with MD5 (baresip 1.0 gives up on SHA-256,
tests/phones/centrex.py); 202 forwards always to extension 201 in centrex.yaml. A SIPp caller
on the trunk ``test`` calls the phone's number. (Busy forwarding and call waiting:
test_callserver_baresip_waiting.py.)
"""

from __future__ import annotations

import re
from datetime import datetime
from pathlib import Path

from tests.e2e.conftest import exported_cdrs, launch, run_sipp, stopped_on_exit
from tests.phones.baresip import STATES, Baresip
from tests.phones.centrex import (
    dial_code,
    group_phone,
    group_server,
    microphone,
    stored_bindings,
)

RING_SECONDS = 5  # CFNR's shortest ring time


def test_a_call_to_a_baresip_that_forwards_always_lands_on_the_other(
    sipp: str, tmp_path: Path
) -> None:
    """202 forwards always to 201: the caller's call is answered by 201's baresip, whose
    INVITE names 202 in Diversion; 202's baresip never rings."""
    server = group_server(tmp_path, {"202": {"forward_always": "201"}})
    with (
        stopped_on_exit(server),
        Baresip(
            tmp_path / "p201", microphone(tmp_path), group_phone(server, "201"), sip_trace=True
        ) as a,
        Baresip(tmp_path / "p202", microphone(tmp_path), group_phone(server, "202")) as b,
    ):
        a.wait_for("registered", timeout=5)
        b.wait_for("registered", timeout=5)
        result = run_sipp(
            sipp,
            tmp_path,
            server.port,
            *("-sn", "uac", "-d", "2000", "-s", "38733100202", "-m", "1"),
            *("-key", "caller", "38761000000"),
            timeout=30,
        )
        assert result.returncode == 0, result.output[-2000:] + "\n".join(server.raw[-40:])
        a.wait_for("established", timeout=5)
        a.wait_for("closed", timeout=10)
        [(_, invite)] = a.traced("INVITE")
        assert "Diversion: <sip:+38733100202@" in invite, invite
        assert ";reason=unconditional;counter=1" in invite, invite
        assert re.search(STATES["incoming"], b.output) is None, b.output[-2000:]
    legs = sorted(exported_cdrs(server.data_dir), key=lambda r: (r["leg"], str(r["start_stamp"])))
    assert [leg["leg"] for leg in legs] == ["a", "b"], legs
    assert legs[1]["called_raw"] == "+38733100201", legs
    assert (legs[1]["diversion_reason"], legs[1]["diverted_from"]) == (
        "unconditional",
        "+38733100202",
    )


def test_cfnr_set_by_61_from_baresip_and_kept_over_a_restart_rings_it_then_lands_on_202(
    sipp: str, tmp_path: Path
) -> None:
    """201 dials *61*202*5#; the server restarts; a caller's call then rings 201's baresip
    (left unanswered) for the 5 s ring time, is cancelled there, then answered by 202's
    baresip with Diversion no-answer; 201's leg is NO_ANSWER after at least the ring time,
    202's diverted by 201."""
    first = group_server(tmp_path, ring_timeout=20)
    with (
        stopped_on_exit(first),
        Baresip(
            tmp_path / "p201",
            microphone(tmp_path, 440.0, 20.0),
            group_phone(first, "201", answermode="manual"),
        ) as a,
        Baresip(
            tmp_path / "p202",
            microphone(tmp_path, 600.0, 20.0),
            group_phone(first, "202"),
            sip_trace=True,
        ) as b,
    ):
        a.wait_for("registered", timeout=5)
        b.wait_for("registered", timeout=5)
        changed = dial_code(a, first, f"*61*202*{RING_SECONDS}#")
        stored_bindings(first, 2)
        assert first.stop() == 0
        config = str(tmp_path / "callserver.yaml")
        with stopped_on_exit(
            launch(["run", "--config", config], first.port, first.data_dir)
        ) as server:
            result = run_sipp(
                sipp,
                tmp_path,
                server.port,
                *("-sn", "uac", "-d", "1500", "-s", "38733100201", "-m", "1"),
                *("-key", "caller", "38761000000"),
                timeout=40,
            )
            assert result.returncode == 0, result.output[-2000:] + "\n".join(server.raw[-40:])
            a.wait_for("incoming", timeout=5)
            a.wait_for("session_closed", timeout=5)
            b.wait_for("established", timeout=5)
            b.wait_for("closed", timeout=10)
            (_, invite), *_ = b.traced("INVITE")  # then its retransmissions, if any
            diverted = server.wait_for("call.diverted")
    assert changed["values"] == {"forward_no_answer": "202", "no_answer_seconds": RING_SECONDS}
    assert ";reason=no-answer;counter=1" in invite and "cause=408" in invite, invite
    assert (diverted["reason"], diverted["target"]) == ("no-answer", "+38733100202"), diverted
    records = [r for r in exported_cdrs(server.data_dir) if r["leg"] == "b"]
    unanswered, answered = sorted(records, key=lambda r: str(r["start_stamp"]))
    assert (unanswered["called_raw"], unanswered["disposition"]) == ("+38733100201", "NO_ANSWER")
    rang = _seconds(unanswered["end_stamp"]) - _seconds(unanswered["start_stamp"])
    later = _seconds(answered["start_stamp"]) - _seconds(unanswered["start_stamp"])
    assert min(rang, later) >= RING_SECONDS - 0.5, (unanswered, answered)  # 202 only after
    assert (answered["called_raw"], answered["disposition"]) == ("+38733100202", "ANSWERED")
    assert (answered["diversion_reason"], answered["diverted_from"]) == (
        "no-answer",
        "+38733100201",
    )
    assert answered["linked_id"] == unanswered["linked_id"], (unanswered, answered)


def _seconds(stamp: object) -> float:
    """A CDR's ISO 8601 UTC stamp as seconds since the epoch."""
    return datetime.fromisoformat(str(stamp).replace("Z", "+00:00")).timestamp()
