"""baresip transfers its caller into a conference room: ``/transfer`` to the room's number.

A SIPp participant (600 Hz) is in the room of 38733100600 already. A SIPp caller on the
trunk (350 Hz) calls phone 201 (baresip, 440 Hz microphone); 201 answers and transfers it to
the room's number. The server hands the caller to the room's plan: the participant hears
the caller's tone, then neither 201 nor anything else.
"""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import numpy as np

from tests.e2e.conftest import (
    HOST,
    SCENARIOS,
    ServerProcess,
    exported_cdrs,
    popen_sipp,
    start_server,
    stopped_on_exit,
)
from tests.e2e.rooms import ROOM, magnitude, received_samples, room_caller, wait_joined, write_plans
from tests.e2e.rtp_party import tone_party
from tests.e2e.subscribers import CALLING, write_group
from tests.e2e.transfers import answered_port
from tests.phones.audio import tone, write_wav
from tests.phones.baresip import Baresip
from tests.phones.centrex import group_phone

NUMBER = "38733100201"


def _server(tmp_path: Path) -> ServerProcess:
    """acme's phones (MD5 only, baresip 1.0) and the room's plan."""
    write_group(tmp_path)
    plans = write_plans(tmp_path, ROOM)
    trunks = {**CALLING, "digest": {"algorithms": ["MD5"]}}
    return start_server(tmp_path, trunks=trunks, dialplans=plans)


def test_baresip_transfers_its_caller_into_a_conference_room(sipp: str, tmp_path: Path) -> None:
    """201 answers, then ``/transfer``s the caller to the room's number: the participant in
    the room hears the caller's 350 Hz and not 201's 440 Hz, 201's leg ends transferred and
    the caller's CDR names the room."""
    caller, participant = tone_party(350.0), tone_party(600.0)
    uac: subprocess.Popen[str] | None = None
    server = _server(tmp_path)
    microphone = write_wav(tmp_path / "long-440.wav", tone(440.0, 20.0))
    try:
        with (
            stopped_on_exit(server),
            room_caller(sipp, tmp_path, server, participant, 16000),
            Baresip(tmp_path / "p201", microphone, group_phone(server, "201")) as phone,
        ):
            participant.send_to(int(str(wait_joined(server, 1)["rtp_port"])))
            phone.wait_for("registered", timeout=5)
            uac = popen_sipp(
                [
                    sipp,
                    *("-sf", str(SCENARIOS / "uac-bridged-stays-up-then-bye.xml")),
                    *("-key", "rtp_port", str(caller.port), "-i", HOST, "-m", "1"),
                    *("-nostdin", "-timeout", "40s", "-timeout_error", "-s", NUMBER),
                    f"{HOST}:{server.port}",
                ],
                tmp_path,
            )
            phone.wait_for("established", timeout=10)
            caller.send_to(answered_port(server, 2))  # the participant's is the first
            phone.wait_for(r"\[0:00:02\]", timeout=6)
            phone.send(f"/transfer sip:{ROOM}@{HOST}:{server.port}\n")
            joined = wait_joined(server, 2)
            phone.wait_for("closed", timeout=10)
            start = len(participant.received)
            time.sleep(2.0)
            heard = received_samples(participant, start, len(participant.received))
            out, _ = uac.communicate(timeout=30)
            assert uac.returncode == 0, out[-3000:] + "\n".join(server.raw[-60:])
    finally:
        caller.close()
        participant.close()
        if uac is not None and uac.poll() is None:
            uac.kill()
            uac.communicate()
    assert joined["participants"] == 2
    assert magnitude(heard, 350.0) > 10 * magnitude(heard, 440.0), "the caller not heard"
    assert np.abs(heard.astype(np.int32)).mean() > 300
    records = exported_cdrs(server.data_dir)
    first = next(r for r in records if r["called_raw"] == "+" + NUMBER)
    a = next(r for r in records if r["call_id"] == joined["call_id"])
    assert first["end_reason"] == "transferred", first
    assert a["conference"] == "100" and a["transferred_from"] == first["call_id"], a
