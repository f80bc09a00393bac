"""Blind transfer into a number this server runs a dialplan for: a conference room, an IVR.

A SIPp caller on the trunk calls phone 201 (a SIPp phone, ``tests.e2e.subscribers``); 201
answers and transfers it with REFER to the room's or the IVR's number. The caller is handed
to that number's plan here (no leg is placed through the routes: the carrier's route goes
nowhere). Each party's media end is an ``RtpParty`` sending a tone of its own, so what the
room's other participant hears, and what the caller hears, is read here.
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
    start_server,
    stopped_on_exit,
    uas_leg,
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
from tests.e2e.subscribers import CALLING, write_group
from tests.e2e.transfers import (
    answered_port,
    calling_phone,
    final_notify,
    finished_all,
    media_to,
    reap,
    register_ext,
    sipp_phone,
    transferring,
    trunk_caller,
    wait_event,
)


def _server(tmp_path: Path, carrier_port: int = 9) -> ServerProcess:
    """acme's phones 201 and 202, the room's and the IVR's plans, and a route for +387 to
    ``carrier_port`` (by default one nobody answers: a leg sent out through it would fail)."""
    write_group(tmp_path)
    plans = write_plans(tmp_path)
    route = {"host": HOST, "port": carrier_port, "prefixes": ["+387"]}
    return start_server(tmp_path, dialplans=plans, trunks={**CALLING, "routes": {"carrier": route}})


def _leg_port(server: ServerProcess) -> int:
    return int(str(server.wait_for("call.forwarding")["rtp_port"]))


def test_a_caller_transferred_to_a_room_number_lands_in_the_room(sipp: str, tmp_path: Path) -> None:
    """201 transfers its trunk caller to the room's number: NOTIFY 200, 201's leg ends
    ``transferred``, the participant already in the room hears the caller's tone, and the
    caller's CDR names the room, the room's plan and 201's leg."""
    caller, phone, participant = (
        tone_party(CALLER_TONE),
        RtpParty(0x22),
        tone_party(PARTICIPANT_TONE),
    )
    procs: list[subprocess.Popen[str]] = []
    try:
        with stopped_on_exit(_server(tmp_path)) as server:
            with room_caller(sipp, tmp_path, server, participant, 16000):
                participant.send_to(int(str(wait_joined(server, 1)["rtp_port"])))
                procs.append(transferring(sipp, tmp_path, server, phone, ROOM))
                procs.append(trunk_caller(sipp, tmp_path, server, caller))
                caller.send_to(answered_port(server, 2))
                phone.send_to(_leg_port(server))
                joined = wait_joined(server, 2)
                start = len(participant.received)
                time.sleep(2.0)
                heard = received_samples(participant, start, len(participant.received))
                finished_all(procs, server)
            handed = wait_event(server, "call.plan_transferred")
    finally:
        for party in (caller, phone, participant):
            party.close()
        reap(procs)
    assert final_notify(tmp_path) == "SIP/2.0 200 OK"
    assert joined["participants"] == 2
    assert magnitude(heard, CALLER_TONE) > 10 * magnitude(heard, 1000.0), "caller not heard"
    assert len(server.events("call.forwarding")) == 1, "a leg was placed for the transfer"
    records = exported_cdrs(server.data_dir)
    a = next(r for r in records if r["call_id"] == joined["call_id"])
    first = next(r for r in records if r["called_raw"] == "+38733100201")
    assert first["end_reason"] == "transferred", first
    assert a["conference"] == "100" and ROOM in str(a["dialplan"]), a
    assert a["transferred_from"] == first["call_id"] and handed["target"] == "+" + ROOM, a
    assert a["disposition"] == "ANSWERED", a


def test_a_caller_transferred_to_an_ivr_number_hears_its_menu_and_its_branch_runs(
    sipp: str, tmp_path: Path
) -> None:
    """201 transfers its trunk caller to the IVR's number: the caller hears the menu's
    prompt, presses 1 and the plan's ``information`` branch plays; its CDR has the steps."""
    caller, phone = RtpParty(0x55), RtpParty(0x22)
    procs: list[subprocess.Popen[str]] = []
    try:
        with stopped_on_exit(_server(tmp_path)) as server:
            procs.append(transferring(sipp, tmp_path, server, phone, IVR))
            procs.append(trunk_caller(sipp, tmp_path, server, caller))
            caller.send_to(int(str(server.wait_for("call.answered")["rtp_port"])))
            phone.send_to(_leg_port(server))
            wait_event(server, "call.plan_transferred")
            start = len(caller.received)
            time.sleep(1.5)
            prompt = received_samples(caller, start, len(caller.received))
            caller.press("1")
            finished_all(procs, server)
    finally:
        for party in (caller, phone):
            party.close()
        reap(procs)
    assert final_notify(tmp_path) == "SIP/2.0 200 OK"
    assert np.abs(prompt.astype(np.int32)).mean() > 300, "the menu's prompt was not heard"
    records = exported_cdrs(server.data_dir)
    a = next(r for r in records if r["leg"] == "a")
    assert IVR in str(a["dialplan"]) and a["digits"] == "1", a
    assert list(a["steps"]) == ["main", "information"], a
    assert a["transferred_from"] and len(records) == 2, records


def test_the_calling_phone_transferring_its_called_party_to_a_room_sends_it_out(
    sipp: str, tmp_path: Path
) -> None:
    """201 calls 202 and transfers 202 to the room from the calling side: 202's call is one
    the server placed and cannot run a plan, so the transfer goes out through the +387
    route (the carrier answers, NOTIFY 200) and the log says why."""
    phone_202, carrier = RtpParty(0x33), RtpParty(0x55)
    hangs_up = ("-sf", str(SCENARIOS / "uas-bridged-answers-talks-then-hangs-up.xml"))
    procs: list[subprocess.Popen[str]] = []
    try:
        with uas_leg(sipp, tmp_path, *hangs_up, "-key", "rtp_port", str(carrier.port)) as leg:
            procs.append(leg[0])
            with stopped_on_exit(_server(tmp_path, leg[1])) as server:
                port_202 = register_ext(sipp, tmp_path, server, "202")
                answers = "uas-bridged-answers-then-expects-bye.xml"
                procs.append(sipp_phone(sipp, tmp_path, answers, port_202, phone_202))
                procs.append(calling_phone(sipp, tmp_path, server, RtpParty(0x22).port, ROOM))
                phone_202.send_to(_leg_port(server))
                media_to(carrier, server, "call.forwarding", target="+" + ROOM)
                finished_all(procs, server)
                routed = server.wait_for("call.transfer_to_plan_routed")
    finally:
        phone_202.close()
        carrier.close()
        reap(procs)
    assert (routed["target"], routed["why"]) == ("+" + ROOM, "transferee_placed"), routed
    assert final_notify(tmp_path) == "SIP/2.0 200 OK"
    assert not server.events("call.plan_transferred") and not server.events("conference.joined")
