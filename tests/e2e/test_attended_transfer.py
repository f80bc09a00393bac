"""Attended transfer from the calling side, end to end: phone 201 (SIPp) placed a call to 202
and REFERs it with Replaces naming its consultation call, which it placed or answered.

Phone 201 is two SIPp runs: one holds the consultation call (placed to the carrier, or
answered on its registered port) and writes that dialog to consult-dialog.txt; the other,
started once the file is there, calls 202 and sends the REFER naming it
(``tests.e2e.consultations``). The parties and their audio fills are ``tests.e2e.transfers``';
what each party hears is read by an ``RtpParty``.
"""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

from tests.e2e.conftest import (
    HOST,
    SCENARIOS,
    ServerProcess,
    exported_cdrs,
    free_port,
    start_uas,
    stopped_on_exit,
    uas_leg,
)
from tests.e2e.consultations import consults_out, transfers
from tests.e2e.rtp_party import RtpParty
from tests.e2e.transfers import (
    ANSWERS,
    CALLER_FILL,
    TARGET_FILL,
    TRANSFEROR_FILL,
    final_notify,
    finished_all,
    heard,
    media_to,
    prompted_caller,
    reap,
    register_ext,
    sipp_phone,
    transfer_server,
    trunk_caller,
)


def test_the_caller_joins_its_called_phone_with_the_party_of_its_other_call(
    sipp: str, tmp_path: Path
) -> None:
    """201 has two calls it placed, to the carrier's 061 200 300 and to 202, and REFERs 202
    with Replaces naming the first: NOTIFY 200, both of 201's calls end ``transferred``, 202
    and the carrier exchange audio, and the carrier's leg names 201's call to 202 in
    ``transferred_from``."""
    phone_202, carrier = RtpParty(TARGET_FILL), RtpParty(CALLER_FILL)
    talks = ("-sf", str(SCENARIOS / "uas-bridged-answers-talks-8s-then-hangs-up.xml"))
    procs: list[subprocess.Popen[str]] = []
    try:
        with uas_leg(sipp, tmp_path, *talks, "-key", "rtp_port", str(carrier.port)) as leg:
            procs.append(leg[0])
            with stopped_on_exit(transfer_server(tmp_path, leg[1])) as server:
                port_202 = register_ext(sipp, tmp_path, server, "202")
                procs.append(sipp_phone(sipp, tmp_path, ANSWERS, port_202, phone_202))
                procs.append(consults_out(sipp, tmp_path, server))
                media_to(carrier, server, "call.forwarding", target="+38761200300")
                procs.append(transfers(sipp, tmp_path, server, "061200300"))
                media_to(phone_202, server, "call.forwarding", target="+38733100202")
                finished_all(procs, server)
                transferred = server.wait_for("call.transferred")
    finally:
        phone_202.close()
        carrier.close()
        reap(procs)
    assert transferred["attended"] is True
    assert final_notify(tmp_path) == "SIP/2.0 200 OK"
    assert heard(phone_202.received, CALLER_FILL) >= 100, "202 did not hear the carrier"
    assert heard(carrier.received, TARGET_FILL) >= 100, "the carrier did not hear 202"
    records = exported_cdrs(server.data_dir)
    assert len(records) == 4, records
    own = {r["called_raw"]: r for r in records if r["leg"] == "a"}
    assert {r["end_reason"] for r in own.values()} == {"transferred"}, own
    legs = {r["called_raw"]: r for r in records if r["leg"] == "b"}
    moved, to_202 = legs["+38761200300"], legs["+38733100202"]
    first = next(r for r in own.values() if r["call_id"] == to_202["linked_id"])
    assert moved["call_id"] == transferred["leg_call_id"], moved
    assert moved["transferred_from"] == first["call_id"], moved
    assert moved["linked_id"] != first["call_id"], moved  # it stays its own call's
    assert (moved["disposition"], moved["end_reason"]) == ("ANSWERED", "normal"), moved
    assert to_202["end_reason"] == "normal", to_202


def test_the_caller_joins_its_called_phone_with_a_caller_it_answered(
    sipp: str, tmp_path: Path
) -> None:
    """201 answered a call from the trunk and calls 202, then REFERs 202 with Replaces naming
    the answered call: NOTIFY 200, 201's calls end, the trunk caller and 202 exchange audio
    (202's leg moved into the trunk caller's call, ``transferred_from`` 201's leg there)."""
    caller, phone_202 = RtpParty(CALLER_FILL), RtpParty(TARGET_FILL)
    procs: list[subprocess.Popen[str]] = []
    try:
        with stopped_on_exit(transfer_server(tmp_path)) as server:
            port_201, port_202 = (register_ext(sipp, tmp_path, server, e) for e in ("201", "202"))
            procs.append(sipp_phone(sipp, tmp_path, ANSWERS, port_202, phone_202))
            answers = "uas-phone-answers-consultation-expects-bye.xml"
            procs.append(sipp_phone(sipp, tmp_path, answers, port_201, RtpParty(TRANSFEROR_FILL)))
            procs.append(trunk_caller(sipp, tmp_path, server, caller))
            media_to(caller, server, "call.answered", call_id="1-")
            procs.append(transfers(sipp, tmp_path, server, "202"))
            media_to(phone_202, server, "call.forwarding", target="+38733100202")
            finished_all(procs, server)
            transferred = server.wait_for("call.transferred")
    finally:
        caller.close()
        phone_202.close()
        reap(procs)
    assert transferred["attended"] is True
    assert final_notify(tmp_path) == "SIP/2.0 200 OK"
    assert heard(caller.received, TARGET_FILL) >= 100, "the caller did not hear 202"
    assert heard(phone_202.received, CALLER_FILL) >= 100, "202 did not hear the caller"
    records = exported_cdrs(server.data_dir)
    assert len(records) == 4, records
    first = next(r for r in records if r["leg"] == "a" and r["subscriber"] == "+38733100201")
    trunk = next(r for r in records if r["leg"] == "a" and r is not first)
    legs = {r["called_raw"]: r for r in records if r["leg"] == "b"}
    answered_by_201, moved = legs["+38733100201"], legs["+38733100202"]
    assert first["end_reason"] == answered_by_201["end_reason"] == "transferred", records
    assert moved["call_id"] == transferred["leg_call_id"], moved
    assert moved["transferred_from"] == answered_by_201["call_id"], moved
    assert moved["linked_id"] == first["call_id"], moved
    assert moved["disposition"] == "ANSWERED" and moved["end_reason"] == "normal", moved
    assert trunk["end_reason"] == "normal", trunk


def test_the_called_phone_joins_two_callers_it_answered(sipp: str, tmp_path: Path) -> None:
    """201 answered a trunk caller, then a second one, and REFERs the first with Replaces
    naming the second call: NOTIFY 200, both of 201's legs end ``transferred``, the two
    callers exchange audio, and the second caller's record names 201's first leg."""
    first, second = RtpParty(CALLER_FILL), RtpParty(TARGET_FILL)
    procs: list[subprocess.Popen[str]] = []
    try:
        with stopped_on_exit(transfer_server(tmp_path)) as server:
            port_201 = register_ext(sipp, tmp_path, server, "201")
            procs.append(_answers_twice(sipp, tmp_path, server, port_201))
            procs.append(trunk_caller(sipp, tmp_path, server, first))
            first.send_to(_answered_callers(server, 1)[0])
            procs.append(prompted_caller(sipp, tmp_path, server, second, "38761000001"))
            second.send_to(_answered_callers(server, 2)[1])
            finished_all(procs, server)
            transferred = server.wait_for("call.transferred")
    finally:
        first.close()
        second.close()
        reap(procs)
    assert transferred["attended"] is True
    assert final_notify(tmp_path) == "SIP/2.0 200 OK"
    assert heard(first.received, TARGET_FILL) >= 100, "the first caller did not hear the second"
    assert heard(second.received, CALLER_FILL) >= 100, "the second caller did not hear the first"
    records = exported_cdrs(server.data_dir)
    assert len(records) == 4, records
    legs = sorted((r for r in records if r["leg"] == "b"), key=lambda r: str(r["start_stamp"]))
    callers = {r["linked_id"]: r for r in records if r["leg"] == "a"}
    assert [r["end_reason"] for r in legs] == ["transferred", "transferred"], legs
    later_caller = callers[legs[1]["linked_id"]]
    assert later_caller["transferred_from"] == legs[0]["call_id"], later_caller
    assert later_caller["disposition"] == "ANSWERED", later_caller


def _answers_twice(
    sipp: str, tmp_path: Path, server: ServerProcess, port: int
) -> subprocess.Popen[str]:
    """Phone 201 as one SIPp on its registered ``port`` (two calls): it answers the first
    call and the second, then REFERs the first replacing the second."""
    return start_uas(
        sipp,
        tmp_path,
        *("-sf", str(SCENARIOS / "uas-phone-answers-then-refers-inbound-replacing.xml")),
        *("-m", "2", "-key", "rtp_port", str(free_port(both=False))),
        *("-key", "refer_to", "201", "-key", "refer_host", f"{HOST}:{server.port}"),
        "-trace_err",
        port=port,
    )[0]


def _answered_callers(server: ServerProcess, count: int) -> list[int]:
    """The RTP ports of the first ``count`` trunk calls the server answered (waits 20 s)."""
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        ports = [int(str(e["rtp_port"])) for e in server.events("call.answered") if e["trunk"]]
        if len(ports) >= count:
            return ports
        time.sleep(0.05)
    raise AssertionError(f"not {count} calls answered\n" + "\n".join(server.raw[-60:]))
