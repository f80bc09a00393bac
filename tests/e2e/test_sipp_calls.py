"""SIPp as the caller against `callserver run`: built-in uac, CANCEL, server BYE, loss, drain."""

from __future__ import annotations

import signal
import time
from pathlib import Path

import pytest

from tests.e2e.conftest import (
    SCENARIOS,
    ServerProcess,
    exported_cdrs,
    run_sipp,
    start_server,
    stat_value,
)


@pytest.mark.parametrize("transport", ["u1", "t1"])
def test_builtin_uac_calls_all_succeed(
    sipp: str, server: ServerProcess, tmp_path: Path, transport: str
) -> None:
    """SIPp's built-in uac scenario completes 50 calls over UDP and over TCP with none failed."""
    result = run_sipp(
        sipp,
        tmp_path,
        server.port,
        "-sn",
        "uac",
        "-m",
        "50",
        "-r",
        "25",
        "-l",
        "20",
        transport=transport,
    )
    assert result.returncode == 0, result.output[-3000:]
    assert stat_value(result, "SuccessfulCall(C)") == 50
    assert stat_value(result, "FailedCall(C)") == 0
    answered = server.wait_for("call.answered") and server.events("call.answered")
    assert len(answered) == 50 and all(line.get("call_id") for line in answered)


def test_cancel_before_answer_gets_487(sipp: str, tmp_path: Path) -> None:
    """A CANCEL while the server rings gets 200, and the INVITE is answered 487."""
    server = start_server(tmp_path, ring=5)
    try:
        result = run_sipp(
            sipp,
            tmp_path,
            server.port,
            "-sf",
            str(SCENARIOS / "uac-cancel-expect-487.xml"),
            "-m",
            "5",
            "-r",
            "5",
        )
        assert result.returncode == 0, result.output[-3000:]
        assert stat_value(result, "SuccessfulCall(C)") == 5
    finally:
        server.stop()


def test_server_hangs_up_with_bye(sipp: str, tmp_path: Path) -> None:
    """The default plan's hangup 1 s after the answer is a BYE; the answer kept PCMU and
    telephone-event."""
    server = start_server(tmp_path, hangup_after=1)
    try:
        result = run_sipp(
            sipp,
            tmp_path,
            server.port,
            "-sf",
            str(SCENARIOS / "uac-expect-server-bye.xml"),
            "-m",
            "5",
            "-r",
            "5",
        )
        assert result.returncode == 0, result.output[-3000:]
        assert stat_value(result, "SuccessfulCall(C)") == 5
    finally:
        server.stop()


def test_lossy_network_still_completes_calls(
    sipp: str, server: ServerProcess, tmp_path: Path
) -> None:
    """With SIPp dropping 10 % of messages, retransmissions on both sides complete every call."""
    result = run_sipp(
        sipp,
        tmp_path,
        server.port,
        "-sn",
        "uac",
        "-m",
        "40",
        "-r",
        "20",
        "-lost",
        "10",
        "-max_retrans",
        "8",
    )
    assert result.returncode == 0, result.output[-3000:]
    assert stat_value(result, "SuccessfulCall(C)") == 40
    assert stat_value(result, "Retransmissions(C)") > 0


def test_sigterm_drains_and_hangs_up_active_calls(sipp: str, tmp_path: Path) -> None:
    """On SIGTERM active calls receive BYE after the drain timeout and the server exits 0."""
    server = start_server(tmp_path, hangup_after=60, drain_timeout=1)
    try:
        import subprocess

        from tests.e2e.conftest import HOST, free_port, media_port

        local = free_port(both=False)
        proc = subprocess.Popen(
            [
                sipp,
                f"{HOST}:{server.port}",
                "-i",
                HOST,
                "-p",
                str(local),
                "-mp",
                str(media_port()),
                "-sf",
                str(SCENARIOS / "uac-expect-server-bye.xml"),
                "-m",
                "3",
                "-r",
                "10",
                "-nostdin",
                "-timeout",
                "30s",
                "-timeout_error",
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            errors="replace",
            cwd=tmp_path,
        )
        deadline = time.monotonic() + 10
        while len(server.events("call.answered")) < 3 and time.monotonic() < deadline:
            time.sleep(0.05)
        server.proc.send_signal(signal.SIGTERM)
        output, _ = proc.communicate(timeout=40)
        assert proc.returncode == 0, output[-3000:]
        assert server.proc.wait(timeout=20) == 0
        assert server.events("server.stopped")
    finally:
        if server.proc.poll() is None:
            server.stop()


def test_hold_unhold_and_in_dialog_requests(
    sipp: str, server: ServerProcess, tmp_path: Path
) -> None:
    """Re-INVITEs with sendonly/inactive/sendrecv get recvonly/inactive/sendrecv; INFO, OPTIONS
    and UPDATE inside the dialog get 200, an UPDATE with an offer gets 200 with the answer."""
    scenario = str(SCENARIOS / "uac-hold-unhold-in-dialog-requests.xml")
    for transport in ("u1", "t1"):
        result = run_sipp(
            sipp, tmp_path, server.port, "-sf", scenario, "-m", "2", "-r", "2", transport=transport
        )
        assert result.returncode == 0, result.output[-3000:]
        assert stat_value(result, "SuccessfulCall(C)") == 2


def test_a_number_without_any_dialplan_gets_404_and_a_cdr(sipp: str, tmp_path: Path) -> None:
    """No plan of its own and no default.yaml: the server warns at start, the caller gets 404
    with Q.850 cause 3 and the CDR says no_route and why."""
    no_plans = tmp_path / "no-plans"
    no_plans.mkdir()
    server = start_server(tmp_path, dialplans=no_plans)
    try:
        warning = server.wait_for("dialplan.warning")["warning"]
        assert warning == (
            f"{no_plans}/default.yaml: no default plan: a called number without a dialplan "
            "of its own is refused with 404 (CDR end_reason no_route)"
        )
        scenario = str(SCENARIOS / "uac-expect-404-no-dialplan.xml")
        args = ("-sf", scenario, "-m", "1", "-key", "caller", "+38761123456")
        result = run_sipp(sipp, tmp_path, server.port, *args, timeout=20)
        assert result.returncode == 0, result.output[-3000:]
        server.wait_for("call.no_dialplan")
    finally:
        server.stop()
    (record,) = exported_cdrs(server.data_dir)
    assert (record["end_reason"], record["sip_code"]) == ("no_route", 404), record
    assert (record["q850_cause"], record["disposition"]) == (3, "FAILED"), record
    assert record["end_detail"] == "no dialplan of its own and no default.yaml", record
    assert record["answer_stamp"] is None and record["dialplan"] is None
    assert record["language"] == "en"
