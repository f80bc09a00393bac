"""Transferring a call answered by pickup, end to end: a trunk caller rings phone 201, phone
202 (SIPp) picks it up with ``**201`` and transfers the caller to the carrier's 061 200 300,
blind or attended (its consultation call to the carrier placed first, by another SIPp run of
202 that writes the dialog to consult-dialog.txt).

The parties and their audio fills are ``tests.e2e.transfers``' and the two calls of an
attended transfer ``tests.e2e.consultations``'; what each party hears is read by an
``RtpParty`` of the test.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.e2e.conftest import (
    SCENARIOS,
    ServerProcess,
    exported_cdrs,
    free_port,
    stopped_on_exit,
    uas_leg,
)
from tests.e2e.consultations import consults_out, transfers
from tests.e2e.rtp_party import RtpParty
from tests.e2e.transfers import (
    ANSWERS,
    CALLER_FILL,
    TARGET_FILL,
    calling_phone,
    final_notify,
    finished_all,
    heard,
    media_to,
    reap,
    register_ext,
    sipp_phone,
    transfer_server,
    trunk_caller,
    wait_event,
)

RINGS = "uas-rings-expects-cancel-completed-elsewhere.xml"
PICKER = "+38733100202"


@contextmanager
def _201_ringing(
    sipp: str, tmp_path: Path, carrier: RtpParty, procs: list[subprocess.Popen[str]]
) -> Iterator[ServerProcess]:
    """The server with the carrier (SIPp answering, its media at ``carrier``) on its route
    out and 201's phone ringing until the call is taken elsewhere; both runs join ``procs``."""
    answers = ("-sf", str(SCENARIOS / ANSWERS), "-key", "rtp_port", str(carrier.port))
    with uas_leg(sipp, tmp_path, *answers) as leg:
        procs.append(leg[0])
        with stopped_on_exit(transfer_server(tmp_path, leg[1])) as server:
            port_201 = register_ext(sipp, tmp_path, server, "201")
            procs.append(sipp_phone(sipp, tmp_path, RINGS, port_201, RtpParty(0)))
            yield server


def _picked_cdrs(server: ServerProcess, leg_call_id: object) -> tuple[dict[str, object], ...]:
    """The caller's record, the picked leg's and the transfer's new leg's."""
    records = exported_cdrs(server.data_dir)
    caller = next(r for r in records if r["leg"] == "a" and r["trunk"] == "test")
    picked = next(r for r in records if r["leg"] == "b" and r["called_raw"] == "+38733100201")
    moved = next(r for r in records if r["call_id"] == leg_call_id)
    return caller, picked, moved


def test_the_picking_phone_transfers_the_caller_blind(sipp: str, tmp_path: Path) -> None:
    """202 picks up 201's ringing call, then REFERs the caller to 061 200 300: NOTIFY 200,
    202 is released, the caller and the carrier exchange audio; the picked leg ends
    ``transferred`` and the new leg is 202's call with ``transferred_from`` the picked leg."""
    caller, carrier = RtpParty(CALLER_FILL), RtpParty(TARGET_FILL)
    procs: list[subprocess.Popen[str]] = []
    try:
        with _201_ringing(sipp, tmp_path, carrier, procs) as server:
            procs.append(trunk_caller(sipp, tmp_path, server, caller))
            wait_event(server, "call.ringing_contacts", trunk="test")
            # 202 picks up 201's call with **201, then REFERs it to 061 200 300
            picks_up = calling_phone(
                sipp, tmp_path, server, free_port(both=False), ext="202", service="**201"
            )
            procs.append(picks_up)
            media_to(caller, server, "call.answered", trunk="test")
            media_to(carrier, server, "call.forwarding", target="+38761200300")
            finished_all(procs, server)
            transferred = server.wait_for("call.transferred")
    finally:
        caller.close()
        carrier.close()
        reap(procs)
    assert final_notify(tmp_path) == "SIP/2.0 200 OK"
    assert heard(caller.received, TARGET_FILL) >= 100, "the caller did not hear the carrier"
    assert heard(carrier.received, CALLER_FILL) >= 100, "the carrier did not hear the caller"
    first, picked, moved = _picked_cdrs(server, transferred["leg_call_id"])
    assert picked["answered_by"] == PICKER and picked["end_reason"] == "transferred", picked
    assert moved["transferred_from"] == picked["call_id"], moved
    assert moved["linked_id"] == first["call_id"], moved
    assert (moved["subscriber"], moved["called_raw"]) == (PICKER, "+38761200300"), moved
    assert [c["payer"] for c in moved["charges"]] == ["caller"], moved


def test_the_picking_phone_transfers_the_caller_to_its_consultation(
    sipp: str, tmp_path: Path
) -> None:
    """202 called 061 200 300 first, then picks up 201's ringing call and REFERs the caller
    with Replaces naming the call to the carrier: NOTIFY 200, both of 202's calls end, the
    caller and the carrier exchange audio, the carrier's leg names the picked leg."""
    caller, carrier = RtpParty(CALLER_FILL), RtpParty(TARGET_FILL)
    procs: list[subprocess.Popen[str]] = []
    try:
        with _201_ringing(sipp, tmp_path, carrier, procs) as server:
            procs.append(consults_out(sipp, tmp_path, server, ext="202"))
            media_to(carrier, server, "call.forwarding", target="+38761200300")
            procs.append(trunk_caller(sipp, tmp_path, server, caller))
            wait_event(server, "call.ringing_contacts", trunk="test")
            procs.append(transfers(sipp, tmp_path, server, "061200300", ext="202", service="**201"))
            media_to(caller, server, "call.answered", trunk="test")
            finished_all(procs, server)
            transferred = server.wait_for("call.transferred")
    finally:
        caller.close()
        carrier.close()
        reap(procs)
    assert transferred["attended"] is True
    assert final_notify(tmp_path) == "SIP/2.0 200 OK"
    assert heard(caller.received, TARGET_FILL) >= 100, "the caller did not hear the carrier"
    assert heard(carrier.received, CALLER_FILL) >= 100, "the carrier did not hear the caller"
    _, picked, moved = _picked_cdrs(server, transferred["leg_call_id"])
    assert picked["answered_by"] == PICKER and picked["end_reason"] == "transferred", picked
    assert moved["transferred_from"] == picked["call_id"], moved
    assert moved["called_raw"] == "+38761200300" and moved["end_reason"] == "normal", moved
    consultation = next(
        r
        for r in exported_cdrs(server.data_dir)
        if r["leg"] == "a" and r["subscriber"] == PICKER and r["called_raw"] == "061200300"
    )
    assert consultation["end_reason"] == "transferred", consultation
