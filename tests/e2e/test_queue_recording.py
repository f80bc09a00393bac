"""A recorded queue, end to end: the ``queue`` step's ``record`` option records the caller's
conversation with the agent who answers, from that answer on.

A SIPp caller on the trunk dials acme's queue number; acme's phone 202 (SIPp, logged in as a
restart finds it) answers. Each party's media is an ``RtpParty`` sending its own tone, the
caller 440 Hz and the agent 700 Hz; the recording (stereo) must hold the caller's tone in the
left channel and the agent's in the right, read by FFT as test_call_recording.py reads its
file, under acme's folder, named by the caller's CDR.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

from tests.e2e.conftest import ServerProcess, exported_cdrs, plan_dir, start_server
from tests.e2e.rooms import louder, read_wav
from tests.e2e.rtp_party import tone_party
from tests.e2e.subscribers import write_group
from tests.e2e.test_queue_calls import QUEUE_NUMBER, TRUNKS, logged_in, queue_caller
from tests.e2e.transfers import (
    ANSWERS,
    finished_all,
    forwarding_ports,
    reap,
    register_ext,
    sipp_phone,
    wait_event,
)

CALLER_HZ, AGENT_HZ = 440.0, 700.0
PLAN = """language: en
steps:
  support:
    queue: support
    agents: ["202"]
    wrap_up: 2s
    announce_every: 0s
    record: {mode: stereo, announcement: goodbye}
"""


def _server(tmp_path: Path) -> ServerProcess:
    """acme's phones with 202 logged in, and the recorded queue's plan."""
    write_group(tmp_path)
    logged_in(tmp_path, "202")
    return start_server(tmp_path, trunks=TRUNKS, dialplans=plan_dir(tmp_path, QUEUE_NUMBER, PLAN))


def test_a_recorded_queue_call_holds_the_caller_left_and_the_agent_right(
    sipp: str, tmp_path: Path
) -> None:
    """202 answers the queue caller: the stereo file under acme's folder holds the caller's
    tone left and the agent's right, from the answer on; the caller's CDR names it."""
    server = _server(tmp_path)
    caller, agent = tone_party(CALLER_HZ), tone_party(AGENT_HZ)
    procs: list[subprocess.Popen[str]] = []
    try:
        port = register_ext(sipp, tmp_path, server, "202")
        procs.append(sipp_phone(sipp, tmp_path, ANSWERS, port, agent))
        procs.append(queue_caller(sipp, tmp_path, server, caller, 12000, "+38761000001"))
        caller.send_to(int(str(wait_event(server, "call.answered")["rtp_port"])))
        agent.send_to(forwarding_ports(server, 1)[0])
        wait_event(server, "call.bridged")
        finished_all(procs, server)
    finally:
        reap(procs)
        server.stop()
        caller.close()
        agent.close()
    legs = exported_cdrs(server.data_dir)
    record = next(r for r in legs if r["called_raw"] == QUEUE_NUMBER and r["leg"] == "a")
    relative = str(record["recording_path"])
    assert relative.startswith("recordings/acme/"), record
    assert relative.endswith(f"/{record['uuid']}.wav"), record
    channels, samples = read_wav(server.data_dir / relative)
    assert channels == 2
    left, right = samples[0::2], samples[1::2]
    talked = slice(len(left) - 6 * 8000, len(left) - 8000)  # well inside the bridged call
    assert louder(left[talked], CALLER_HZ, AGENT_HZ)
    assert louder(right[talked], AGENT_HZ, CALLER_HZ)
    seconds = len(left) / 8000
    assert record["recording_seconds"] == int(seconds), record
    assert seconds < 12, record  # from the answer on: not the notice nor the greeting
