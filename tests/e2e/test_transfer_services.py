"""A transfer to a subscriber takes the subscriber's services, as a call to it does.

A SIPp caller on the trunk calls phone 201 (a SIPp phone); 201 answers and transfers it with
REFER to extension 202, whose services centrex.yaml sets: forwarding always to an outside
number (the carrier, SIPp, checks Diversion and History-Info) or do-not-disturb. Each
party's media end is an ``RtpParty`` of the test.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

from tests.e2e.conftest import (
    HOST,
    ServerProcess,
    exported_cdrs,
    start_server,
    stopped_on_exit,
    uas_leg,
)
from tests.e2e.diversions import OUTSIDE, expecting
from tests.e2e.rtp_party import RtpParty, tone_party
from tests.e2e.subscribers import CALLING, finished, phone, write_group
from tests.e2e.transfers import (
    CALLER_FILL,
    TRANSFEROR_FILL,
    final_notify,
    finished_all,
    parties_talk,
    reap,
    refused_transfer,
    register_ext,
    staying_caller,
    transferring,
    trunk_caller,
    wait_event,
)

A, B = "+38733100201", "+38733100202"


def _server(tmp_path: Path, services: dict[str, object], carrier_port: int = 9) -> ServerProcess:
    """acme's phones 201 and 202 (202's ``services``), a route for +387 to ``carrier_port``;
    a call rings 60 s at most."""
    write_group(tmp_path, services={"202": services})
    route = {"host": HOST, "port": carrier_port, "prefixes": ["+387"]}
    trunks = {**CALLING, "routes": {"carrier": route}}
    return start_server(tmp_path, trunks=trunks, ring_timeout=60)


def test_a_transfer_to_a_subscriber_forwarding_always_lands_on_its_target(
    sipp: str, tmp_path: Path
) -> None:
    """202 forwards always to an outside number: 201's transfer to 202 reaches the carrier
    with Diversion naming 202 (unconditional), NOTIFY 200, and the outside leg is paid by
    202 (payer called) and linked to 201's leg."""
    caller, transferor = RtpParty(CALLER_FILL), RtpParty(TRANSFEROR_FILL)
    procs: list[subprocess.Popen[str]] = []
    carrier = expecting(tmp_path, "unconditional", B)
    try:
        with uas_leg(sipp, tmp_path, "-sf", carrier) as (outside, carrier_port):
            services = {"forward_always": "061 200 300"}
            with stopped_on_exit(_server(tmp_path, services, carrier_port)) as server:
                procs.append(transferring(sipp, tmp_path, server, transferor))
                procs.append(trunk_caller(sipp, tmp_path, server, caller))
                parties_talk(server, caller, transferor)
                diverted = server.wait_for("call.diverted", timeout=20)
                finished_all(procs, server)
                finished(outside, server)
    finally:
        caller.close()
        transferor.close()
        reap(procs)
    assert (diverted["subscriber"], diverted["target"]) == (B, OUTSIDE), diverted
    assert final_notify(tmp_path) == "SIP/2.0 200 OK"
    records = {r["called_raw"]: r for r in exported_cdrs(server.data_dir)}
    first, out_leg = records[A], records[OUTSIDE]
    assert first["end_reason"] == "transferred", first
    assert out_leg["disposition"] == "ANSWERED" and out_leg["transferred_from"] == first["call_id"]
    assert (out_leg["diversion_reason"], out_leg["diverted_from"]) == ("unconditional", B)
    assert (out_leg["payer"], out_leg["customer"]) == ("called", "acme"), out_leg
    assert B not in records, "202's phones rang although it forwards always"


def test_a_transfer_to_a_do_not_disturb_subscriber_gets_486_and_the_call_goes_on(
    sipp: str, tmp_path: Path
) -> None:
    """202 is on do-not-disturb: the transfer's last NOTIFY says 486, the caller and 201 go on
    talking, and the transfer leg's CDR says why it was not placed."""
    server = _server(tmp_path, {"dnd": True})
    failed, heard_after = refused_transfer(sipp, tmp_path, server)
    assert failed["status"] == 486
    assert final_notify(tmp_path) == "SIP/2.0 486 Busy Here"
    assert heard_after >= 100, "the call did not go on"
    records = {r["called_raw"]: r for r in exported_cdrs(server.data_dir)}
    assert records[A]["end_reason"] == "normal", records
    refused = records[B]
    assert refused["disposition"] == "BUSY" and refused["end_detail"] == "do not disturb"
    assert refused["transferred_from"] == records[A]["call_id"], refused


def test_a_transfer_to_a_subscriber_forwarding_to_vm_leaves_the_message_in_its_box(
    sipp: str, tmp_path: Path
) -> None:
    """202 forwards always to its voicemail box: 201's transfer hands its trunk caller to
    202's box (NOTIFY 200, 201's leg ends ``transferred``), the caller's message lands in
    the box, and the caller's CDR names the message, the diversion and 201's leg."""
    caller, transferor = tone_party(440.0), RtpParty(TRANSFEROR_FILL)
    procs: list[subprocess.Popen[str]] = []
    try:
        with stopped_on_exit(_server(tmp_path, {"forward_always": "VM"})) as server:
            procs.append(transferring(sipp, tmp_path, server, transferor))
            procs.append(staying_caller(sipp, tmp_path, server, caller, 16000))
            parties_talk(server, caller, transferor)
            handed = wait_event(server, "call.transferred")
            finished_all(procs, server)
            server.wait_for("call.ended")
    finally:
        caller.close()
        transferor.close()
        reap(procs)
    assert handed["mailbox"] == B.lstrip("+"), handed
    assert final_notify(tmp_path) == "SIP/2.0 200 OK"
    (wav,) = (server.data_dir / "voicemail" / B.lstrip("+")).glob("*.wav")
    records = exported_cdrs(server.data_dir)
    a = next(r for r in records if r["leg"] == "a")
    first = next(r for r in records if r["called_raw"] == A)
    assert first["end_reason"] == "transferred" and len(records) == 2, records
    assert a["voicemail_path"] == str(wav) and a["transferred_from"] == first["call_id"], a
    assert (a["diversion_reason"], a["diverted_from"]) == ("unconditional", B), a


def test_a_transfer_to_a_subscriber_not_answering_diverts_after_its_ring_time(
    sipp: str, tmp_path: Path
) -> None:
    """202 forwards on no answer after 5 s (calls ring 60 s): its phone rings, is cancelled
    after its ring time, and the carrier gets the transfer with Diversion no-answer (cause
    408) while the caller is still there (16 s); NOTIFY 200, both legs keep transferred_from."""
    caller, transferor = tone_party(350.0), RtpParty(TRANSFEROR_FILL)
    procs: list[subprocess.Popen[str]] = []
    carrier = expecting(tmp_path, "no-answer", B)
    services = {"forward_no_answer": "061 200 300", "no_answer_seconds": 5}
    try:
        with (
            uas_leg(sipp, tmp_path, "-sf", carrier) as (outside, carrier_port),
            stopped_on_exit(_server(tmp_path, services, carrier_port)) as server,
        ):
            port_202 = register_ext(sipp, tmp_path, server, "202")
            with phone(sipp, tmp_path, "uas-rings-until-cancelled.xml", port_202) as rung:
                procs.append(transferring(sipp, tmp_path, server, transferor))
                procs.append(staying_caller(sipp, tmp_path, server, caller, 16000))
                parties_talk(server, caller, transferor)
                finished(rung, server)
            diverted = server.wait_for("call.diverted", timeout=20)
            finished_all(procs, server)
            finished(outside, server)
    finally:
        caller.close()
        transferor.close()
        reap(procs)
    assert (diverted["reason"], diverted["target"]) == ("no-answer", OUTSIDE), diverted
    assert final_notify(tmp_path) == "SIP/2.0 200 OK"
    records = {r["called_raw"]: r for r in exported_cdrs(server.data_dir)}
    first, rang, out_leg = records[A], records[B], records[OUTSIDE]
    assert first["end_reason"] == "transferred", first
    assert rang["disposition"] != "ANSWERED" and rang["transferred_from"] == first["call_id"]
    assert out_leg["disposition"] == "ANSWERED" and out_leg["transferred_from"] == first["call_id"]
    assert (out_leg["diversion_reason"], out_leg["payer"]) == ("no-answer", "called"), out_leg
