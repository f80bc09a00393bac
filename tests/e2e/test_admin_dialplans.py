"""A dialplan uploaded through the admin API of a real `callserver run` is in force for the
next SIPp call at once: refused with 480 before, answered and ended by the server after."""

from __future__ import annotations

import hashlib
from pathlib import Path

from tests.admin.tokens import OPERATOR
from tests.e2e.admin_client import ADMIN, CALLED, TRUNKS, api
from tests.e2e.conftest import (
    SCENARIOS,
    ServerProcess,
    SippResult,
    exported_cdrs,
    run_sipp,
    start_server,
)

REFUSING = "steps:\n  refuse:\n    hangup: 480\n"
ANSWERING = "steps:\n  welcome:\n    play: greeting\n  goodbye:\n    hangup:\n    after: 0.5s\n"


def _call(sipp: str, tmp_path: Path, server: ServerProcess, scenario: str) -> SippResult:
    result = run_sipp(
        sipp,
        tmp_path,
        server.port,
        *("-sf", str(SCENARIOS / scenario), "-s", CALLED, "-m", "1"),
        *("-key", "caller", "+38761234567"),
        timeout=20,
    )
    assert result.returncode == 0, result.output[-2000:] + "\n".join(server.raw[-30:])
    return result


def test_an_uploaded_dialplan_runs_the_next_call(sipp: str, tmp_path: Path) -> None:
    """480 from the plan on disk; PUT a plan that answers; the next call is answered and ended
    by the server, its CDR naming the uploaded version; the old file is kept."""
    plans = tmp_path / "dialplans"
    plans.mkdir()
    (plans / f"{CALLED}.yaml").write_text(REFUSING)
    server = start_server(tmp_path, trunks=TRUNKS, admin=ADMIN, dialplans=plans)
    try:
        _call(sipp, tmp_path, server, "uac-expect-480.xml")
        status, data = api(server, "PUT", f"/api/dialplans/{CALLED}", OPERATOR, {"text": ANSWERING})
        assert status == 200, data
        version = hashlib.sha256(ANSWERING.encode()).hexdigest()[:12]
        assert data["version"] == version
        assert Path(data["previous"]).read_text() == REFUSING
        _call(sipp, tmp_path, server, "uac-expect-server-bye.xml")
    finally:
        server.stop()
    refused, answered = sorted(exported_cdrs(server.data_dir), key=lambda r: str(r["start_stamp"]))
    old = hashlib.sha256(REFUSING.encode()).hexdigest()[:12]
    assert (refused["dialplan_version"], refused["steps"]) == (old, ["refuse"])
    assert (refused["answer_stamp"], refused["hangup_cause"]) == (None, "NO_ANSWER")
    assert (answered["dialplan_version"], answered["steps"]) == (version, ["welcome", "goodbye"])
    assert (answered["hangup_cause"], answered["hangup_by"]) == ("NORMAL_CLEARING", "server")
