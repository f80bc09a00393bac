"""A recorded call, end to end: SIPp on both legs, each party sending its own tone over real RTP.

A SIPp caller dials a number whose plan records the call and forwards it to a SIPp callee;
each SIPp names an ``RtpParty`` of the test as its media address, the caller's sending 440 Hz
and the callee's 1000 Hz. After the call the recording must hold the caller's tone in the left
channel and the callee's in the right (stereo), or both in its one channel (mixed, from the
customer's ``recording: {calls: all}``), read by FFT as the conference tests read what each
participant hears; the call's CDR names the file and its length.
"""

from __future__ import annotations

import subprocess
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
from tests.e2e.rooms import louder, read_wav
from tests.e2e.rtp_party import RtpParty, tone_party

NUMBER = "38733100200"
TARGET = "+38761200300"
CALLER_HZ, CALLEE_HZ = 440.0, 1000.0
RECORD = "  recorded:\n    record_call: true\n    mode: stereo\n"
FORWARD = f'  agent:\n    forward: "{TARGET}"\n    ring_timeout: 10s\n'


def _sipp(sipp: str, tmp_path: Path, scenario: str, rtp: RtpParty, *args: str) -> list[str]:
    return [
        sipp,
        *("-sf", str(SCENARIOS / scenario), "-key", "rtp_port", str(rtp.port)),
        *("-i", HOST, "-mp", str(media_port()), "-m", "1", "-nostdin"),
        *("-timeout", "40s", "-timeout_error", "-trace_err"),
        *("-error_file", str(tmp_path / f"{scenario}.errors")),
        *args,
    ]


def _recorded_call(
    sipp: str, tmp_path: Path, steps: str, customers: dict[str, object] | None = None
) -> ServerProcess:
    """One forwarded call, 8 s bridged, each party sending its tone; the stopped server."""
    caller, callee = tone_party(CALLER_HZ), tone_party(CALLEE_HZ)
    uas, uas_port = popen_bound(
        lambda port: _sipp(
            sipp, tmp_path, "uas-bridged-answers-then-expects-bye.xml", callee, "-p", str(port)
        ),
        tmp_path,
    )
    trunks = {
        "trunks": {"test": {"match": [HOST], "channels": 2}},
        "routes": {"pbx": {"host": HOST, "port": uas_port}},
        "default_route": "pbx",
        "customers": customers or {},
    }
    server = start_server(
        tmp_path, dialplans=plan_dir(tmp_path, NUMBER, f"steps:\n{steps}"), trunks=trunks
    )
    uac: subprocess.Popen[str] | None = None
    try:
        scenario = "uac-bridged-stays-up-then-bye.xml"
        uac = subprocess.Popen(
            _sipp(sipp, tmp_path, scenario, caller, f"{HOST}:{server.port}", "-s", NUMBER),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            errors="replace",
            cwd=tmp_path,
        )
        callee.send_to(int(str(server.wait_for("call.forwarding")["rtp_port"])))
        caller.send_to(int(str(server.wait_for("call.answered")["rtp_port"])))
        uac_out, _ = uac.communicate(timeout=60)
        uas_out, _ = uas.communicate(timeout=30)
    finally:
        server.stop()
        for proc in (uas, uac):
            if proc is not None and proc.poll() is None:
                proc.kill()
                proc.communicate()
        caller.close()
        callee.close()
    log = "\n".join(server.raw[-60:])
    assert uac is not None and uac.returncode == 0, uac_out[-3000:] + log
    assert uas.returncode == 0, uas_out[-3000:] + log
    return server


def _recording(server: ServerProcess, customer: str) -> tuple[dict[str, object], Path]:
    """The caller's leg's CDR and the recording it names, under the customer's folder."""
    legs = {r["leg"]: r for r in exported_cdrs(server.data_dir)}
    record = legs["a"]
    relative = str(record["recording_path"])
    assert relative.startswith(f"recordings/{customer}/"), record
    assert relative.endswith(f"/{record['uuid']}.wav"), record
    assert "recording_path" not in legs["b"] or legs["b"]["recording_path"] is None
    return record, server.data_dir / relative


def test_stereo_recording_holds_the_caller_left_and_the_callee_right(
    sipp: str, tmp_path: Path
) -> None:
    """The caller's tone is in the left channel, the callee's in the right; the CDR names it."""
    server = _recorded_call(sipp, tmp_path, RECORD + FORWARD)
    record, path = _recording(server, "unassigned")
    channels, samples = read_wav(path)
    assert channels == 2
    left, right = samples[0::2], samples[1::2]
    bridged = slice(len(left) - 6 * 8000, len(left) - 8000)  # well inside the 8 s bridged
    assert louder(left[bridged], CALLER_HZ, CALLEE_HZ)
    assert louder(right[bridged], CALLEE_HZ, CALLER_HZ)
    seconds = len(left) / 8000
    assert record["recording_seconds"] == int(seconds) and 7 <= seconds <= 12, record


def test_a_customer_that_records_every_call_gets_a_mixed_file_of_both(
    sipp: str, tmp_path: Path
) -> None:
    """With ``recording: {calls: all}`` a call to the customer's number is recorded mixed."""
    customers = {"acme": {"numbers": [f"+{NUMBER}"], "recording": {"calls": "all"}}}
    server = _recorded_call(sipp, tmp_path, FORWARD, customers)
    record, path = _recording(server, "acme")
    channels, samples = read_wav(path)
    assert channels == 1
    bridged = samples[len(samples) - 6 * 8000 : len(samples) - 8000]
    assert louder(bridged, CALLER_HZ, 700.0)
    assert louder(bridged, CALLEE_HZ, 700.0)
    assert record["recording_seconds"] == int(len(samples) / 8000), record


def test_a_disk_error_ends_the_recording_and_the_call_goes_on(sipp: str, tmp_path: Path) -> None:
    """With no recordings folder possible the recording fails, logged; the call and its CDR
    go on as without one."""
    (tmp_path / "var").mkdir()
    (tmp_path / "var" / "recordings").write_text("a file where the folder should be")
    server = _recorded_call(sipp, tmp_path, RECORD + FORWARD)
    assert any("media.call_recording_failed" in line for line in server.raw), server.raw[-40:]
    legs = {r["leg"]: r for r in exported_cdrs(server.data_dir)}
    assert legs["a"]["disposition"] == legs["b"]["disposition"] == "ANSWERED", legs
    assert legs["a"]["recording_path"] is None and legs["a"]["recording_seconds"] is None
    assert "Errno" in str(legs["a"]["recording_error"]), legs["a"]
    assert legs["a"]["end_reason"] == "normal", legs
