"""OPTIONS qualify of UDP phones, end to end (RFC 3261 §11): SIPp registers as a centrex.yaml
phone from a port, then a SIPp uas on that same port is the phone answering the OPTIONS (or
nothing is, when the phone is gone).

With T1 at 0.1 s, Timer F (64*T1) gives up on an unanswered OPTIONS after 6.4 s.
"""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

from tests.e2e.conftest import (
    HOST,
    SCENARIOS,
    ServerProcess,
    exported_cdrs,
    media_port,
    run_scenario,
    start_server,
    stopped_on_exit,
)
from tests.e2e.subscribers import AOR, CALLER, CALLING, register_phone, write_centrex

QUALIFY: dict[str, object] = {"qualify": 1}  # an OPTIONS to each UDP binding every second
T1 = 0.1
TIMER_F = 64 * T1


def _answer_options(sipp: str, tmp_path: Path, port: int, count: int, status: int) -> None:
    """The phone on ``port`` answers ``count`` OPTIONS with ``status``, then stops."""
    template = (SCENARIOS / "uas-phone-answers-options.xml").read_text()
    scenario = tmp_path / f"uas-phone-answers-options-{status}.xml"
    scenario.write_text(template.replace("SIP/2.0 STATUS", f"SIP/2.0 {status}"))
    proc = subprocess.run(
        [
            sipp,
            *("-sf", str(scenario)),
            *("-i", HOST, "-p", str(port), "-mp", str(media_port())),
            *("-m", str(count), "-nostdin", "-timeout", "30s", "-timeout_error"),
        ],
        capture_output=True,
        text=True,
        errors="replace",
        timeout=60,
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]


def _server(tmp_path: Path) -> ServerProcess:
    write_centrex(tmp_path)
    return start_server(tmp_path, trunks=CALLING, registrar=QUALIFY, t1=T1)


def test_a_phone_answering_options_stays_usable(sipp: str, tmp_path: Path) -> None:
    """The phone gets an OPTIONS to its contact every second and answers, 200 and then 404 (any
    answer shows it is there): for longer than Timer F it is never marked unreachable."""
    with stopped_on_exit(_server(tmp_path)) as server:
        port = register_phone(sipp, tmp_path, server)
        started = time.monotonic()
        _answer_options(sipp, tmp_path, port, 4, 200)
        _answer_options(sipp, tmp_path, port, 4, 404)
        assert time.monotonic() - started > TIMER_F
        assert server.events("registrar.binding_unreachable") == []


def test_a_phone_that_stops_answering_is_not_rung_until_it_answers_again(
    sipp: str, tmp_path: Path
) -> None:
    """Nobody answers the OPTIONS on the phone's port: after Timer F the binding is logged
    unreachable and a call to the number gets 480 as if it were registered nowhere; once the
    phone answers the next OPTIONS it is logged reachable again."""
    with stopped_on_exit(_server(tmp_path)) as server:
        port = register_phone(sipp, tmp_path, server)
        contact = f"sip:phone@{HOST}:{port}"
        lost = server.wait_for("registrar.binding_unreachable", timeout=TIMER_F + 10)
        assert (lost["aor"], lost["contact"], lost["source"], lost["port"]) == (
            AOR,
            contact,
            HOST,
            port,
        )
        refused = run_scenario(sipp, tmp_path, server, "uac-expect-480.xml", *CALLER)
        assert refused.returncode == 0, refused.output[-2000:] + "\n".join(server.raw[-40:])
        assert server.events("registrar.binding_reachable") == []
        _answer_options(sipp, tmp_path, port, 1, 200)
        back = server.wait_for("registrar.binding_reachable", timeout=10)
        assert (back["aor"], back["contact"]) == (AOR, contact)
    legs = {record["leg"]: record for record in exported_cdrs(server.data_dir)}
    assert legs["a"]["sip_code"] == 480 and legs["b"]["end_detail"] == "not registered", legs
