"""INVITE with Replaces (RFC 3891) from a phone, end to end: another phone of subscriber 201
(a SIPp run with 201's credentials) takes over a dialog the server holds with 201's phone.

201's phone (SIPp) answers a trunk caller, or calls 202, and writes that dialog to
consult-dialog.txt; the replacing phone then sends an INVITE whose Replaces names it, talks
for 4 s and hangs up. What the parties hear is read by an ``RtpParty`` of the test.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.e2e.conftest import (
    HOST,
    SCENARIOS,
    ServerProcess,
    exported_cdrs,
    popen_sipp,
    stopped_on_exit,
)
from tests.e2e.consultations import consult_dialog, consults_out
from tests.e2e.rtp_party import RtpParty
from tests.e2e.transfers import (
    CALLER_FILL,
    TARGET_FILL,
    TRANSFEROR_FILL,
    as_phone,
    finished_all,
    heard,
    media_to,
    prompted_caller,
    reap,
    register_ext,
    sipp_phone,
    transfer_server,
)


def _replaces(tmp_path: Path, server: ServerProcess) -> str:
    """The Replaces value naming the dialog in consult-dialog.txt as the server holds it:
    to-tag the server's, from-tag the phone's (RFC 3891 §3)."""
    call_id, phone_tag, server_tag = consult_dialog(tmp_path, server)
    return f"{call_id};to-tag={server_tag};from-tag={phone_tag}"


def _replacing(
    sipp: str,
    tmp_path: Path,
    server: ServerProcess,
    rtp: RtpParty,
    *,
    ext: str = "201",
    scenario: str = "uac-phone-replaces-talks-then-hangs-up.xml",
    replaces: str | None = None,
) -> subprocess.Popen[str]:
    """Phone ``ext`` (SIPp) sends an INVITE with Replaces naming the dialog to replace
    (``replaces``, else the one in consult-dialog.txt)."""
    replaces = replaces or _replaces(tmp_path, server)
    return popen_sipp(
        [
            sipp,
            *("-sf", str(SCENARIOS / scenario), "-s", ext),
            *as_phone(ext, ext, server),
            *("-key", "replaces", replaces, "-key", "rtp_port", str(rtp.port)),
            *("-i", HOST, "-m", "1", "-nostdin", "-timeout", "40s", "-timeout_error"),
            *("-trace_err", f"{HOST}:{server.port}"),
        ],
        tmp_path,
    )


def test_another_phone_of_the_subscriber_takes_over_its_answered_call(
    sipp: str, tmp_path: Path
) -> None:
    """201's phone answered a trunk caller; 201's other phone sends an INVITE with Replaces
    naming that dialog: it is answered, 201's first phone gets BYE, the caller and the new
    phone exchange audio, and the new phone's CDR names the replaced leg."""
    caller, phone = RtpParty(CALLER_FILL), RtpParty(TARGET_FILL)
    procs: list[subprocess.Popen[str]] = []
    try:
        with stopped_on_exit(transfer_server(tmp_path)) as server:
            port_201 = register_ext(sipp, tmp_path, server, "201")
            answers = "uas-phone-answers-consultation-expects-bye.xml"
            procs.append(sipp_phone(sipp, tmp_path, answers, port_201, RtpParty(TRANSFEROR_FILL)))
            procs.append(prompted_caller(sipp, tmp_path, server, caller))
            media_to(caller, server, "call.answered", trunk="test")
            procs.append(_replacing(sipp, tmp_path, server, phone))
            media_to(phone, server, "call.answered", subscriber="+38733100201")
            finished_all(procs, server)
            replaced = server.wait_for("call.replaced")
    finally:
        caller.close()
        phone.close()
        reap(procs)
    assert heard(caller.received, TARGET_FILL) >= 100, "the caller did not hear the new phone"
    assert heard(phone.received, CALLER_FILL) >= 100, "the new phone did not hear the caller"
    records = exported_cdrs(server.data_dir)
    leg = next(r for r in records if r["leg"] == "b")
    new = next(r for r in records if r["leg"] == "a" and r["subscriber"] == "+38733100201")
    assert replaced["replaced"] == leg["call_id"], replaced
    assert new["transferred_from"] == leg["call_id"], new
    assert new["disposition"] == "ANSWERED", new
    assert leg["disposition"] == "ANSWERED", leg


def test_another_phone_of_the_subscriber_takes_over_a_call_it_placed(
    sipp: str, tmp_path: Path
) -> None:
    """201's phone called 202; 201's other phone sends an INVITE with Replaces naming that
    call: the first phone's call ends ``transferred`` (BYE), 202 and the new phone exchange
    audio, and the new phone's CDR names the replaced call."""
    phone_202, phone = RtpParty(CALLER_FILL), RtpParty(TARGET_FILL)
    procs: list[subprocess.Popen[str]] = []
    try:
        with stopped_on_exit(transfer_server(tmp_path)) as server:
            port_202 = register_ext(sipp, tmp_path, server, "202")
            answers = "uas-bridged-answers-then-expects-bye.xml"
            procs.append(sipp_phone(sipp, tmp_path, answers, port_202, phone_202))
            procs.append(consults_out(sipp, tmp_path, server, service="202"))
            media_to(phone_202, server, "call.forwarding", target="+38733100202")
            procs.append(_replacing(sipp, tmp_path, server, phone))
            replaced = server.wait_for("call.replaced")
            media_to(phone, server, "call.answered", call_id=str(replaced["call_id"]))
            finished_all(procs, server)
    finally:
        phone_202.close()
        phone.close()
        reap(procs)
    assert heard(phone_202.received, TARGET_FILL) >= 100, "202 did not hear the new phone"
    assert heard(phone.received, CALLER_FILL) >= 100, "the new phone did not hear 202"
    calls = {r["call_id"]: r for r in exported_cdrs(server.data_dir)}
    new = calls[str(replaced["call_id"])]
    first = calls[str(replaced["replaced"])]
    assert first["end_reason"] == "transferred" and first["called_raw"] == "202", first
    assert new["transferred_from"] == first["call_id"], new
    leg = next(r for r in calls.values() if r["leg"] == "b")
    assert leg["linked_id"] == first["call_id"] and leg["end_reason"] == "normal", leg


@pytest.mark.parametrize(
    ("ext", "flag", "status", "detail"),
    [
        ("202", "", 403, "replaced dialog is not the caller's"),
        ("201", ";early-only", 486, "replaced dialog is confirmed (early-only)"),
    ],
)
def test_a_call_is_not_replaced_by_another_subscriber_or_when_early_only(
    sipp: str, tmp_path: Path, ext: str, flag: str, status: int, detail: str
) -> None:
    """An INVITE naming 201's answered call from 202 (not its subscriber's) gets 403, from
    201's other phone with ``early-only`` 486; the call goes on until the server's end."""
    rtp = RtpParty(TARGET_FILL)
    procs: list[subprocess.Popen[str]] = []
    try:
        with stopped_on_exit(transfer_server(tmp_path)) as server:
            port_201 = register_ext(sipp, tmp_path, server, "201")
            answers = "uas-phone-answers-consultation-expects-bye.xml"
            procs.append(sipp_phone(sipp, tmp_path, answers, port_201, RtpParty(TRANSFEROR_FILL)))
            procs.append(prompted_caller(sipp, tmp_path, server, RtpParty(CALLER_FILL)))
            replaces = _replaces(tmp_path, server) + flag
            scenario = "uac-phone-replaces-expects-refusal.xml"
            refused = _replacing(
                sipp, tmp_path, server, rtp, ext=ext, scenario=scenario, replaces=replaces
            )
            procs.append(refused)
            assert procs[-1].wait(timeout=30) == 0, "\n".join(server.raw[-60:])
            refusal = server.wait_for("call.replace_refused")
            assert server.stop() == 0
            finished_all(procs, server)
    finally:
        rtp.close()
        reap(procs)
    assert (refusal["status"], refusal["detail"]) == (status, detail)
    assert not server.events("call.replaced")
    refused_call = next(r for r in exported_cdrs(server.data_dir) if r["sip_code"] == status)
    assert refused_call["end_detail"] == detail, refused_call


def test_a_replaces_naming_no_dialog_of_ours_gets_481(sipp: str, tmp_path: Path) -> None:
    """201's phone sends an INVITE whose Replaces names a dialog the server does not have:
    481 (RFC 3891 §3), with the reason in its CDR."""
    rtp = RtpParty(TARGET_FILL)
    try:
        with stopped_on_exit(transfer_server(tmp_path)) as server:
            refused = "uac-phone-replaces-expects-refusal.xml"
            unknown = "no-such-call@127.0.0.1;to-tag=ours;from-tag=theirs"
            proc = _replacing(sipp, tmp_path, server, rtp, scenario=refused, replaces=unknown)
            finished_all([proc], server)
            refusal = server.wait_for("call.replace_refused")
    finally:
        rtp.close()
    assert (refusal["status"], refusal["detail"]) == (481, "replaced dialog does not exist")
    (record,) = exported_cdrs(server.data_dir)
    assert (record["sip_code"], record["end_detail"]) == (481, "replaced dialog does not exist")


def test_another_phone_of_the_subscriber_answers_its_ringing_call(
    sipp: str, tmp_path: Path
) -> None:
    """A trunk caller rings 201's phone; 201's other phone sends an INVITE with Replaces
    naming that early dialog: the ringing phone gets CANCEL (call completed elsewhere), the
    caller and the new phone exchange audio, the picked leg says who answered."""
    caller, phone = RtpParty(CALLER_FILL), RtpParty(TARGET_FILL)
    procs: list[subprocess.Popen[str]] = []
    try:
        with stopped_on_exit(transfer_server(tmp_path)) as server:
            port_201 = register_ext(sipp, tmp_path, server, "201")
            rings = "uas-rings-writes-dialog-expects-cancel.xml"
            procs.append(sipp_phone(sipp, tmp_path, rings, port_201, RtpParty(TRANSFEROR_FILL)))
            procs.append(prompted_caller(sipp, tmp_path, server, caller))
            procs.append(_replacing(sipp, tmp_path, server, phone))
            media_to(phone, server, "call.answered", subscriber="+38733100201")
            media_to(caller, server, "call.answered", trunk="test")
            finished_all(procs, server)
            replaced = server.wait_for("call.replaced")
    finally:
        caller.close()
        phone.close()
        reap(procs)
    assert replaced["early"] is True
    assert heard(caller.received, TARGET_FILL) >= 100, "the caller did not hear the new phone"
    assert heard(phone.received, CALLER_FILL) >= 100, "the new phone did not hear the caller"
    records = exported_cdrs(server.data_dir)
    leg = next(r for r in records if r["leg"] == "b")
    new = next(r for r in records if r["leg"] == "a" and r["subscriber"] == "+38733100201")
    assert leg["answered_by"] == "+38733100201" and leg["disposition"] == "ANSWERED", leg
    assert new["transferred_from"] == leg["call_id"] == replaced["replaced"], new
