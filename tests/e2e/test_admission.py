"""Admission end to end: trunks by source address and channel limits, SIPp against the server."""

from __future__ import annotations

import socket
import subprocess
import time
from pathlib import Path

from tests.e2e.conftest import (
    HOST,
    SCENARIOS,
    ServerProcess,
    exported_cdrs,
    free_port,
    media_port,
    run_scenario,
    run_sipp,
    start_server,
    stat_value,
    stopped_on_exit,
)


def _hold_calls(sipp: str, server: ServerProcess, count: int, ms: int) -> subprocess.Popen[str]:
    """SIPp placing ``count`` calls at once, each held ``ms`` before the caller's BYE."""
    sink = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)  # their RTP goes nowhere useful
    sink.bind((HOST, 0))
    rtp_port = sink.getsockname()[1]
    sink.close()
    cmd = [
        sipp,
        f"{HOST}:{server.port}",
        *("-i", HOST, "-p", str(free_port(both=False)), "-mp", str(media_port())),
        *("-sf", str(SCENARIOS / "uac-hears-greeting.xml"), "-m", str(count), "-r", "50"),
        *("-set", "rtp_port", str(rtp_port), "-set", "codec", "0", "-d", str(ms)),
        *("-nostdin", "-timeout", "30s", "-timeout_error"),
    ]
    return subprocess.Popen(
        cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, errors="replace"
    )


def _wait_answered(server: ServerProcess, count: int, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while len(server.events("call.answered")) < count and time.monotonic() < deadline:
        time.sleep(0.05)
    assert len(server.events("call.answered")) >= count, "\n".join(server.raw[-20:])


def test_fourth_call_on_a_three_channel_trunk_gets_503(sipp: str, tmp_path: Path) -> None:
    """3 calls up on a 3-channel trunk, the 4th gets 503 + Q.850 cause 34, a 5th later succeeds."""
    trunks = {"trunks": {"test": {"match": ["127.0.0.1"], "channels": 3}}}
    with stopped_on_exit(start_server(tmp_path, trunks=trunks)) as server:
        holders = _hold_calls(sipp, server, 3, 4000)
        _wait_answered(server, 3)
        refused = run_scenario(
            sipp, tmp_path, server, "uac-expect-503-channel-limit.xml", "-m", "1", timeout=60
        )
        output, _ = holders.communicate(timeout=40)
        assert holders.returncode == 0, output[-2000:]
        after = run_sipp(sipp, tmp_path, server.port, "-sn", "uac", "-m", "1")
    assert refused.returncode == 0, refused.output[-2000:] + "\n".join(server.raw[-30:])
    assert stat_value(refused, "SuccessfulCall(C)") == 1
    log = "\n".join(server.raw[-30:])
    assert after.returncode == 0, after.output[-2000:] + log
    rejected = server.events("call.rejected")
    assert [(r["status"], r["reason"], r["trunk"]) for r in rejected] == [
        (503, "channel_limit", "test")
    ], log
    stopped = server.wait_for("server.stopped")
    assert stopped["channels_in_use"] == 0
    cdrs = exported_cdrs(server.data_dir)
    dispositions = sorted((c["disposition"], c["end_reason"], c["trunk"]) for c in cdrs)
    assert dispositions == [("ANSWERED", "normal", "test")] * 4 + [
        ("REJECTED", "channel_limit", "test")
    ], log
    assert all(c["hangup_by"] == "caller" for c in cdrs if c["disposition"] == "ANSWERED")


def test_unknown_source_gets_403(sipp: str, tmp_path: Path) -> None:
    """A source no trunk matches is refused with 403 and the refusal is logged."""
    trunks = {"trunks": {"elsewhere": {"match": ["192.0.2.0/24"]}}}
    with stopped_on_exit(start_server(tmp_path, trunks=trunks)) as server:
        result = run_sipp(sipp, tmp_path, server.port, "-sn", "uac", "-m", "1", timeout=10)
    assert result.returncode != 0
    assert "403" in result.output or stat_value(result, "FailedCall(C)") == 1
    rejected = server.events("call.rejected")
    assert [(r["status"], r["reason"]) for r in rejected] == [(403, "unknown_source")]


def test_over_limit_announcement_plays_as_early_media_before_503(sipp: str, tmp_path: Path) -> None:
    """With an announcement set, a call over the limit gets 183 with SDP, then 503 + cause 34."""
    trunks = {
        "trunks": {"test": {"match": ["127.0.0.1"], "channels": 1}},
        "over_limit": {"announcement": "channel_limit"},
    }
    with stopped_on_exit(start_server(tmp_path, trunks=trunks)) as server:
        holders = _hold_calls(sipp, server, 1, 8000)
        _wait_answered(server, 1)
        scenario = "uac-expect-183-announcement-then-503.xml"
        refused = run_scenario(sipp, tmp_path, server, scenario, "-m", "1", timeout=60)
        holders.communicate(timeout=40)
    assert refused.returncode == 0, refused.output[-2000:] + "\n".join(server.raw[-30:])
    announced = server.wait_for("call.refusal_announced")
    assert (announced["reason"], announced["prompt"]) == ("channel_limit", "channel_limit")
    assert server.wait_for("server.stopped")["channels_in_use"] == 0
    records = [c for c in exported_cdrs(server.data_dir) if c["disposition"] == "REJECTED"]
    assert [(c["end_reason"], c["sip_code"], c["q850_cause"]) for c in records] == [
        ("channel_limit", 503, 34)
    ]
