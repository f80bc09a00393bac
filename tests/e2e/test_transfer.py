"""Blind transfer end to end: a SIPp phone answers a call and transfers the caller with REFER.

A SIPp caller on the trunk calls phone 201 (registered from a port where another SIPp plays
the phone, ``tests.e2e.subscribers``). 201 answers, then sends REFER to extension 202 or to
an outside number, checks the 202 and the two sipfrag NOTIFYs and writes the final one's
status line to a file. Each party's media end is an ``RtpParty`` of the test, so what the
caller and the target hear after the transfer is read here.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import yaml

from callserver.sip.auth import password_ha1
from tests.e2e.conftest import (
    HOST,
    SCENARIOS,
    ServerProcess,
    exported_cdrs,
    free_port,
    popen_sipp,
    start_server,
    start_uas,
    stopped_on_exit,
    uas_leg,
)
from tests.e2e.rtp_party import RtpParty
from tests.e2e.subscribers import CALLING, PHONES, REALM, write_group
from tests.e2e.transfers import (
    ANSWERS,
    CALLER_FILL,
    NUMBER,
    REFERS,
    TARGET_FILL,
    TRANSFEROR_FILL,
    as_phone,
    calling_phone,
    final_notify,
    finished_all,
    forwarding_ports,
    heard,
    media_to,
    parties_talk,
    reap,
    refer_keys,
    refused_transfer,
    register_ext,
    sipp_phone,
    transfer_server,
    trunk_caller,
    wait_event,
)


def test_blind_transfer_to_an_extension_bridges_the_caller_to_it(sipp: str, tmp_path: Path) -> None:
    """201 transfers the caller to 202: NOTIFY 100 then 200, 201's leg is released, the caller
    and 202 exchange audio, and the CDRs link the new leg to the call and to 201's leg."""
    caller, transferor, target = (RtpParty(f) for f in (CALLER_FILL, TRANSFEROR_FILL, TARGET_FILL))
    procs: list[subprocess.Popen[str]] = []
    try:
        with stopped_on_exit(transfer_server(tmp_path)) as server:
            port_201, port_202 = (register_ext(sipp, tmp_path, server, e) for e in ("201", "202"))
            procs.append(sipp_phone(sipp, tmp_path, ANSWERS, port_202, target))
            keys = refer_keys(server, "202")
            procs.append(sipp_phone(sipp, tmp_path, REFERS, port_201, transferor, *keys))
            procs.append(trunk_caller(sipp, tmp_path, server, caller))
            parties_talk(server, caller, transferor)
            target.send_to(forwarding_ports(server, 2)[1])
            finished_all(procs, server)
            transferred = server.wait_for("call.transferred")
            accepted = server.wait_for("call.transfer_accepted")
    finally:
        for party in (caller, transferor, target):
            party.close()
        reap(procs)
    assert str(accepted["referred_by"]).startswith("<sip:+38733100201@"), accepted
    assert final_notify(tmp_path) == "SIP/2.0 200 OK"
    assert heard(caller.received, TARGET_FILL) >= 100, "the caller did not hear 202"
    assert heard(target.received, CALLER_FILL) >= 100, "202 did not hear the caller"
    records = exported_cdrs(server.data_dir)
    legs = {(r["leg"], r["called_raw"]): r for r in records}
    a = legs["a", NUMBER]
    first, second = legs["b", "+38733100201"], legs["b", "+38733100202"]
    assert len(records) == 3, records
    assert first["end_reason"] == "transferred" and first["disposition"] == "ANSWERED", first
    assert second["call_id"] == transferred["leg_call_id"]
    assert second["linked_id"] == a["call_id"] == first["linked_id"], records
    assert second["transferred_from"] == first["call_id"], second
    assert second["subscriber"] == second["caller_raw"] == "+38733100201", second
    assert second["disposition"] == "ANSWERED" and second["end_reason"] == "normal", second


def test_a_barred_transfer_target_leaves_the_call_as_it_was(sipp: str, tmp_path: Path) -> None:
    """201, barred from international numbers, transfers the caller to Germany: the last
    NOTIFY says 403, the caller and 201 go on talking, the refused leg has its CDR."""
    server = transfer_server(tmp_path, **{"201": ["international"]})
    failed, heard_after = refused_transfer(sipp, tmp_path, server, "004930123456")
    assert failed["status"] == 403
    assert final_notify(tmp_path) == "SIP/2.0 403 Forbidden"
    assert heard_after >= 100, "the call did not go on"
    records = exported_cdrs(server.data_dir)
    by_called = {r["called_raw"]: r for r in records}
    assert by_called["+38733100201"]["end_reason"] == "normal", records
    refused = by_called["+4930123456"]  # dialled as 201 would: in E.164
    assert refused["end_reason"] == "barred" and refused["end_detail"] == "barred_international"
    assert refused["transferred_from"] == by_called["+38733100201"]["call_id"], refused
    assert refused["subscriber"] == "+38733100201", refused


def _consulting_phone(
    sipp: str, tmp_path: Path, server: ServerProcess, port: int, rtp: RtpParty
) -> subprocess.Popen[str]:
    """Phone 201 as one SIPp on its registered ``port``: it answers the call that reaches it
    (the out-of-call scenario), calls 202 as 201 (the consultation), then REFERs the first
    call to 202 with Replaces naming the second."""
    refer = SCENARIOS / "uas-phone-answers-then-refers-replacing.xml"
    return start_uas(
        sipp,
        tmp_path,
        *("-sf", str(SCENARIOS / "uac-phone-consults-then-expects-bye.xml"), "-oocsf", str(refer)),
        *("-s", "202", *as_phone("201", "202", server)),
        *("-key", "rtp_port", str(rtp.port), "-key", "refer_to", "202"),
        *("-key", "refer_host", f"{HOST}:{server.port}", "-cid_str", "consult-%u-%p"),
        "-trace_err",
        f"{HOST}:{server.port}",
        port=port,
    )[0]


def test_attended_transfer_joins_the_caller_with_the_consulted_phone(
    sipp: str, tmp_path: Path
) -> None:
    """201 answers the caller, calls 202, then REFERs the caller to 202 with Replaces naming
    that call: NOTIFY 200, both of 201's calls end, the caller and 202 exchange audio, and the
    CDRs say which legs were transferred and link 202's leg to the leg it replaced."""
    caller, transferor, target = (RtpParty(f) for f in (CALLER_FILL, TRANSFEROR_FILL, TARGET_FILL))
    procs: list[subprocess.Popen[str]] = []
    try:
        with stopped_on_exit(transfer_server(tmp_path)) as server:
            port_201, port_202 = (register_ext(sipp, tmp_path, server, e) for e in ("201", "202"))
            procs.append(sipp_phone(sipp, tmp_path, ANSWERS, port_202, target))
            procs.append(_consulting_phone(sipp, tmp_path, server, port_201, transferor))
            procs.append(trunk_caller(sipp, tmp_path, server, caller))
            media_to(caller, server, "call.answered", call_id="1-")
            media_to(target, server, "call.forwarding", target="+38733100202")
            finished_all(procs, server)
            transferred = server.wait_for("call.transferred")
    finally:
        for party in (caller, transferor, target):
            party.close()
        reap(procs)
    assert transferred["attended"] is True
    assert final_notify(tmp_path) == "SIP/2.0 200 OK"
    assert heard(caller.received, TARGET_FILL) >= 100, "the caller did not hear 202"
    assert heard(target.received, CALLER_FILL) >= 100, "202 did not hear the caller"
    records = exported_cdrs(server.data_dir)
    assert len(records) == 4, records
    by_call = {r["call_id"]: r for r in records}
    first = next(r for r in records if r["leg"] == "b" and r["called_raw"] == "+38733100201")
    consultation = next(r for r in records if r["leg"] == "a" and r["subscriber"] == "+38733100201")
    moved = by_call[str(transferred["leg_call_id"])]
    assert first["end_reason"] == consultation["end_reason"] == "transferred", records
    assert moved["called_raw"] == "+38733100202" and moved["transferred_from"] == first["call_id"]
    assert moved["linked_id"] == consultation["call_id"], moved
    assert moved["disposition"] == "ANSWERED" and moved["end_reason"] == "normal", moved


def test_the_caller_transfers_its_called_phone_out_through_a_route(
    sipp: str, tmp_path: Path
) -> None:
    """Phone 201 calls 202, then REFERs it to 061 200 300 from the calling side: the carrier
    (SIPp) answers, 201 gets NOTIFY 200 and BYE, 202 and the carrier exchange audio, and the
    leg out is 201's call (payer caller, acme, 201's number) linked to 201's call."""
    phone_202, carrier = RtpParty(TARGET_FILL), RtpParty(CALLER_FILL)
    hangs_up = ("-sf", str(SCENARIOS / "uas-bridged-answers-talks-then-hangs-up.xml"))
    procs: list[subprocess.Popen[str]] = []
    try:
        with uas_leg(sipp, tmp_path, *hangs_up, "-key", "rtp_port", str(carrier.port)) as leg:
            procs.append(leg[0])
            with stopped_on_exit(transfer_server(tmp_path, leg[1])) as server:
                port_202 = register_ext(sipp, tmp_path, server, "202")
                procs.append(sipp_phone(sipp, tmp_path, ANSWERS, port_202, phone_202))
                procs.append(calling_phone(sipp, tmp_path, server, RtpParty(TRANSFEROR_FILL).port))
                phone_202.send_to(int(str(wait_event(server, "call.forwarding")["rtp_port"])))
                media_to(carrier, server, "call.forwarding", target="+38761200300")
                finished_all(procs, server)
                transferred = server.wait_for("call.transferred")
    finally:
        phone_202.close()
        carrier.close()
        reap(procs)
    assert final_notify(tmp_path) == "SIP/2.0 200 OK"
    assert heard(phone_202.received, CALLER_FILL) >= 100, "202 did not hear the carrier"
    assert heard(carrier.received, TARGET_FILL) >= 100, "the carrier did not hear 202"
    records = exported_cdrs(server.data_dir)
    calls = {r["call_id"]: r for r in records}
    first = next(r for r in records if r["leg"] == "a")
    moved = calls[str(transferred["leg_call_id"])]
    assert first["end_reason"] == "transferred" and first["subscriber"] == "+38733100201"
    assert moved["transferred_from"] == moved["linked_id"] == first["call_id"], moved
    assert (moved["called_raw"], moved["direction"], moved["customer"]) == (
        "+38761200300",
        "outbound",
        "acme",
    ), moved
    assert [c["payer"] for c in moved["charges"]] == ["caller"], moved
    assert moved["subscriber"] == "+38733100201", moved


def test_a_trunk_caller_may_not_transfer(sipp: str, tmp_path: Path) -> None:
    """A caller on a trunk (not one of the operator's phones) REFERs the phone it called: 403,
    the call goes on and ends normally, nothing is placed."""
    procs: list[subprocess.Popen[str]] = []
    try:
        with stopped_on_exit(transfer_server(tmp_path)) as server:
            port_201 = register_ext(sipp, tmp_path, server, "201")
            procs.append(sipp_phone(sipp, tmp_path, ANSWERS, port_201, RtpParty(TRANSFEROR_FILL)))
            procs.append(
                popen_sipp(
                    [
                        sipp,
                        *("-sf", str(SCENARIOS / "uac-bridged-refer-expects-403-then-bye.xml")),
                        *("-key", "rtp_port", str(free_port(both=False)), "-i", HOST),
                        *("-m", "1", "-nostdin", "-timeout", "30s", "-timeout_error"),
                        *("-s", NUMBER, f"{HOST}:{server.port}"),
                    ],
                    tmp_path,
                )
            )
            finished_all(procs, server)
            refused = server.wait_for("call.transfer_refused")
    finally:
        reap(procs)
    assert (refused["status"], refused["reason"]) == (403, "Transferor Not A Subscriber")
    assert not server.events("call.transfer_accepted")
    records = exported_cdrs(server.data_dir)
    assert sorted(r["end_reason"] for r in records) == ["normal", "normal"], records


def test_a_transferor_that_hangs_up_at_once_does_not_stop_the_transfer(
    sipp: str, tmp_path: Path
) -> None:
    """201 REFERs the caller to 202 and hangs up after the first NOTIFY, while 202 still
    rings: 202 answers a second later and the caller is bridged to it all the same."""
    caller, target = RtpParty(CALLER_FILL), RtpParty(TARGET_FILL)
    procs: list[subprocess.Popen[str]] = []
    try:
        with stopped_on_exit(transfer_server(tmp_path)) as server:
            port_201, port_202 = (register_ext(sipp, tmp_path, server, e) for e in ("201", "202"))
            rings = "uas-rings-answers-expects-bye.xml"  # rings 1 s before it answers
            procs.append(sipp_phone(sipp, tmp_path, rings, port_202, target))
            procs.append(
                sipp_phone(
                    sipp,
                    tmp_path,
                    "uas-phone-refers-then-hangs-up.xml",
                    port_201,
                    RtpParty(TRANSFEROR_FILL),
                    *refer_keys(server, "202"),
                )
            )
            procs.append(trunk_caller(sipp, tmp_path, server, caller))
            caller.send_to(int(str(server.wait_for("call.answered")["rtp_port"])))
            target.send_to(forwarding_ports(server, 2)[1])
            finished_all(procs, server)
            server.wait_for("call.transferred")
    finally:
        caller.close()
        target.close()
        reap(procs)
    assert heard(caller.received, TARGET_FILL) >= 100, "the caller did not reach 202"
    legs = {(r["leg"], r["called_raw"]): r for r in exported_cdrs(server.data_dir)}
    assert legs["b", "+38733100201"]["end_reason"] == "transferred", legs
    assert legs["b", "+38733100202"]["disposition"] == "ANSWERED", legs


def test_a_shutdown_ends_the_pair_a_caller_side_transfer_joined(sipp: str, tmp_path: Path) -> None:
    """201 transfers 202 out to the carrier; the pair belongs to no call any more, and a
    shutdown (SIGTERM) sends BYE to both and writes their CDRs ``shutdown``."""
    stays = ("-sf", str(SCENARIOS / ANSWERS))
    procs: list[subprocess.Popen[str]] = []
    try:
        with uas_leg(sipp, tmp_path, *stays, "-key", "rtp_port", str(free_port(both=False))) as leg:
            procs.append(leg[0])
            server = transfer_server(tmp_path, leg[1])
            with stopped_on_exit(server):
                port_202 = register_ext(sipp, tmp_path, server, "202")
                procs.append(sipp_phone(sipp, tmp_path, ANSWERS, port_202, RtpParty(TARGET_FILL)))
                procs.append(calling_phone(sipp, tmp_path, server, RtpParty(TRANSFEROR_FILL).port))
                server.wait_for("call.transferred", timeout=20)
                server.wait_for("call.ended")  # 201's call
                assert server.stop() == 0
            finished_all(procs, server)
    finally:
        reap(procs)
    records = exported_cdrs(server.data_dir)
    legs = {r["called_raw"]: r for r in records if r["leg"] == "b"}
    assert legs["+38733100202"]["end_reason"] == "shutdown", records
    assert legs["+38761200300"]["end_reason"] == "shutdown", records


def test_an_attended_transfer_naming_no_call_of_ours_gets_481(sipp: str, tmp_path: Path) -> None:
    """A REFER whose Replaces names a dialog the server does not have gets 481 (RFC 3891 §3)
    and no NOTIFY; the call goes on until the caller hangs up."""
    procs: list[subprocess.Popen[str]] = []
    try:
        with stopped_on_exit(transfer_server(tmp_path)) as server:
            port_201 = register_ext(sipp, tmp_path, server, "201")
            keys = refer_keys(server, "202")
            scenario = "uas-phone-refers-replacing-unknown-expects-481.xml"
            procs.append(
                sipp_phone(sipp, tmp_path, scenario, port_201, RtpParty(TRANSFEROR_FILL), *keys)
            )
            procs.append(trunk_caller(sipp, tmp_path, server, RtpParty(CALLER_FILL)))
            finished_all(procs, server)
            refused = server.wait_for("call.transfer_refused")
    finally:
        reap(procs)
    assert (refused["status"], refused["reason"]) == (481, "Replaced Dialog Does Not Exist")
    records = exported_cdrs(server.data_dir)
    assert sorted(r["end_reason"] for r in records) == ["normal", "normal"], records


def test_a_third_phone_picks_up_the_transfer_while_it_rings(sipp: str, tmp_path: Path) -> None:
    """201 transfers the caller to 202, whose phone rings; 203 picks it up with **202: 202's
    ringing is cancelled, 201 gets NOTIFY 200 and is released, the caller and 203 talk."""
    caller, picker = RtpParty(CALLER_FILL), RtpParty(TARGET_FILL)
    passwords = {**PHONES, "203": "phone-203-secret"}
    write_group(tmp_path)
    centrex = yaml.safe_load((tmp_path / "centrex.yaml").read_text())
    centrex["groups"]["acme-office"]["subscribers"]["+387 33 100 203"] = {
        "username": "38733100203",
        "ha1_md5": password_ha1("38733100203", REALM, passwords["203"], "MD5"),
    }
    (tmp_path / "centrex.yaml").write_text(yaml.safe_dump(centrex))
    procs: list[subprocess.Popen[str]] = []
    try:
        with stopped_on_exit(start_server(tmp_path, trunks=CALLING)) as server:
            port_201, port_202 = (register_ext(sipp, tmp_path, server, e) for e in ("201", "202"))
            rings = "uas-rings-expects-cancel-completed-elsewhere.xml"
            procs.append(sipp_phone(sipp, tmp_path, rings, port_202, RtpParty(0)))
            keys = refer_keys(server, "202")
            procs.append(sipp_phone(sipp, tmp_path, REFERS, port_201, RtpParty(0x22), *keys))
            procs.append(trunk_caller(sipp, tmp_path, server, caller))
            caller.send_to(int(str(server.wait_for("call.answered")["rtp_port"])))
            wait_event(server, "call.forwarding", target="+38733100202")
            picks = ("-sf", str(SCENARIOS / "uac-phone-picks-up-then-expects-bye.xml"))
            user = ("-key", "caller", "38733100203", "-au", "38733100203")
            procs.append(
                popen_sipp(
                    [
                        sipp,
                        *picks,
                        *("-key", "rtp_port", str(picker.port), "-s", "**202", *user),
                        *("-ap", passwords["203"], "-auth_uri", f"**202@{HOST}:{server.port}"),
                        *("-i", HOST, "-m", "1", "-nostdin", "-timeout", "40s"),
                        *("-timeout_error", f"{HOST}:{server.port}"),
                    ],
                    tmp_path,
                )
            )
            media_to(picker, server, "call.answered", subscriber="+38733100203")
            finished_all(procs, server)
            server.wait_for("call.transferred")
    finally:
        caller.close()
        picker.close()
        reap(procs)
    assert final_notify(tmp_path) == "SIP/2.0 200 OK"
    assert heard(caller.received, TARGET_FILL) >= 100, "the caller did not hear 203"
    assert heard(picker.received, CALLER_FILL) >= 100, "203 did not hear the caller"
    legs = {(r["leg"], r["called_raw"]): r for r in exported_cdrs(server.data_dir)}
    assert legs["b", "+38733100201"]["end_reason"] == "transferred", legs
    assert legs["b", "+38733100202"]["answered_by"] == "+38733100203", legs
