"""Forwarding to a number this server runs a dialplan for: an IVR, a conference room.

A SIPp caller on the trunk calls phone 201 (``tests.e2e.subscribers``), whose forwarding
names the IVR's or the room's number. The caller is handed to that number's plan here: no leg
is placed through the routes (the carrier's route goes nowhere). Each party's media end is an
``RtpParty``, so what the caller hears and what the room's other participant hears is read
here.
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
from tests.e2e.rooms import (
    CALLER_TONE,
    IVR,
    PARTICIPANT_TONE,
    ROOM,
    magnitude,
    received_samples,
    room_caller,
    wait_joined,
    write_plans,
)
from tests.e2e.rtp_party import RtpParty, tone_party
from tests.e2e.subscribers import CALLING, phone, write_group
from tests.e2e.transfers import (
    answered_port,
    final_notify,
    finished_all,
    forwarding_ports,
    reap,
    register_ext,
    staying_caller,
    transferring,
    trunk_caller,
    wait_event,
)

A, B = "+38733100201", "+38733100202"


def _server(tmp_path: Path, services: dict[str, object], ext: str = "201") -> ServerProcess:
    """acme's phones 201 and 202 (``ext``'s with ``services``), the room's and the IVR's
    plans, and a route for +387 to a port nobody answers (a leg sent out through it would
    fail)."""
    plans = write_plans(tmp_path)
    write_group(tmp_path, services={ext: services})
    route = {"carrier": {"host": HOST, "port": 9, "prefixes": ["+387"]}}
    return start_server(tmp_path, dialplans=plans, trunks={**CALLING, "routes": route})


def _caller_until_bye(
    sipp: str, tmp_path: Path, server: ServerProcess, rtp: RtpParty
) -> subprocess.Popen[str]:
    """SIPp on the trunk calling 201, its media at ``rtp`` (keys by RFC 4733); it stays
    until the server's BYE."""
    return popen_sipp(
        [
            sipp,
            *("-sf", str(SCENARIOS / "uac-caller-presses-keys-until-server-bye.xml")),
            *("-set", "rtp_port", str(rtp.port), "-key", "caller", "38761000001"),
            *("-i", HOST, "-m", "1", "-nostdin", "-timeout", "40s", "-timeout_error"),
            *("-s", A.lstrip("+"), f"{HOST}:{server.port}"),
        ],
        tmp_path,
    )


def test_cfu_to_an_ivr_number_runs_the_ivr_for_the_caller(sipp: str, tmp_path: Path) -> None:
    """201 forwards always to the IVR's number: the caller hears the menu's prompt, presses 1
    and the plan's ``information`` branch runs; its one CDR names the IVR's plan and its
    steps and carries the diversion; no leg goes out."""
    caller = RtpParty(0x55)
    procs: list[subprocess.Popen[str]] = []
    try:
        with stopped_on_exit(_server(tmp_path, {"forward_always": "+" + IVR})) as server:
            procs.append(_caller_until_bye(sipp, tmp_path, server, caller))
            caller.send_to(int(str(server.wait_for("call.answered")["rtp_port"])))
            handed = wait_event(server, "call.plan_diverted")
            start = len(caller.received)
            time.sleep(1.5)
            prompt = received_samples(caller, start, len(caller.received))
            caller.press("1")
            finished_all(procs, server)
    finally:
        caller.close()
        reap(procs)
    assert np.abs(prompt.astype(np.int32)).mean() > 300, "the menu's prompt was not heard"
    assert handed["target"] == "+" + IVR and not server.events("call.forwarding")
    records = exported_cdrs(server.data_dir)
    assert len(records) == 1, records
    a = records[0]
    assert IVR in str(a["dialplan"]) and a["digits"] == "1", a
    assert list(a["steps"]) == ["main", "information"], a
    assert (a["diversion_reason"], a["diverted_from"]) == ("unconditional", A), a
    assert a["transferred_from"] is None and a["disposition"] == "ANSWERED", a


def test_cfnr_to_a_room_number_lands_the_caller_in_the_room(sipp: str, tmp_path: Path) -> None:
    """201 rings unanswered for its 5 s and forwards on no answer to the room's number: the
    caller joins the room, where the participant already in it hears the caller's tone; the
    caller's CDR names the room and the diversion, 201's leg is unanswered."""
    caller, participant = tone_party(CALLER_TONE), tone_party(PARTICIPANT_TONE)
    services = {"forward_no_answer": "+" + ROOM, "no_answer_seconds": 5}
    procs: list[subprocess.Popen[str]] = []
    try:
        with stopped_on_exit(_server(tmp_path, services)) as server:
            port_201 = register_ext(sipp, tmp_path, server, "201")
            with (
                phone(sipp, tmp_path, "uas-rings-until-cancelled.xml", port_201) as unanswered,
                room_caller(sipp, tmp_path, server, participant, 20000),
            ):
                participant.send_to(int(str(wait_joined(server, 1)["rtp_port"])))
                procs.append(trunk_caller(sipp, tmp_path, server, caller))
                caller.send_to(answered_port(server, 2))
                joined = wait_joined(server, 2)
                start = len(participant.received)
                time.sleep(2.0)
                heard = received_samples(participant, start, len(participant.received))
                finished_all([*procs, unanswered], server)
    finally:
        for party in (caller, participant):
            party.close()
        reap(procs)
    assert joined["participants"] == 2
    assert magnitude(heard, CALLER_TONE) > 10 * magnitude(heard, 1000.0), "caller not heard"
    records = exported_cdrs(server.data_dir)
    a = next(r for r in records if r["call_id"] == joined["call_id"])
    assert a["conference"] == "100" and ROOM in str(a["dialplan"]), a
    assert (a["diversion_reason"], a["diverted_from"]) == ("no-answer", A), a
    rung = [r for r in records if r["leg"] == "b"]
    assert [r["disposition"] for r in rung] == ["NO_ANSWER"], records
    assert not [e for e in server.events("call.forwarding") if e["target"] == "+" + ROOM]


def test_a_transfer_to_a_subscriber_forwarding_to_a_room_lands_the_caller_in_it(
    sipp: str, tmp_path: Path
) -> None:
    """202 forwards always to the room's number: 201's transfer of its trunk caller to 202
    hands the caller to the room (NOTIFY 200, 201's leg ends ``transferred``), where the
    participant hears it; the caller's CDR names the room, the diversion and 201's leg."""
    caller, transferor, participant = (
        tone_party(CALLER_TONE),
        RtpParty(0x22),
        tone_party(PARTICIPANT_TONE),
    )
    procs: list[subprocess.Popen[str]] = []
    try:
        services = {"forward_always": "+" + ROOM}
        with (
            stopped_on_exit(_server(tmp_path, services, "202")) as server,
            room_caller(sipp, tmp_path, server, participant, 20000),
        ):
            participant.send_to(int(str(wait_joined(server, 1)["rtp_port"])))
            procs.append(transferring(sipp, tmp_path, server, transferor))
            procs.append(staying_caller(sipp, tmp_path, server, caller, 12000))
            caller.send_to(answered_port(server, 2))
            transferor.send_to(forwarding_ports(server, 1)[0])
            joined = wait_joined(server, 2)
            start = len(participant.received)
            time.sleep(2.0)
            heard = received_samples(participant, start, len(participant.received))
            finished_all(procs, server)
    finally:
        for party in (caller, transferor, participant):
            party.close()
        reap(procs)
    assert final_notify(tmp_path) == "SIP/2.0 200 OK"
    assert magnitude(heard, CALLER_TONE) > 10 * magnitude(heard, 1000.0), "caller not heard"
    records = exported_cdrs(server.data_dir)
    a = next(r for r in records if r["call_id"] == joined["call_id"])
    first = next(r for r in records if r["called_raw"] == A)
    assert first["end_reason"] == "transferred", first
    assert a["conference"] == "100" and ROOM in str(a["dialplan"]), a
    assert a["transferred_from"] == first["call_id"], a
    assert (a["diversion_reason"], a["diverted_from"]) == ("unconditional", B), a
