"""Call forwarding and call waiting end to end: SIPp phones of acme's group (201 and 202,
tests.e2e.subscribers), a SIPp caller through the trunk ``test``, and SIPp as the carrier of
an outside number. The target of each diversion checks the INVITE's Diversion and
History-Info (scenarios/uas-answers-expects-diversion.xml); the CDRs are read back exported.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from callserver.media import g711
from tests.e2e.conftest import (
    HOST,
    SCENARIOS,
    ServerProcess,
    exported_cdrs,
    plan_dir,
    run_scenario,
    run_sipp,
    start_server,
    start_uas,
    stopped_on_exit,
    uas_leg,
)
from tests.e2e.diversions import OUTSIDE, call_201, expecting
from tests.e2e.subscribers import (
    CALLER,
    CALLING,
    background_call,
    finished,
    phone,
)
from tests.e2e.subscribers import write_group as write_phones
from tests.e2e.transfers import register_ext

A, B = "+38733100201", "+38733100202"


def _server(
    tmp_path: Path,
    services: dict[str, dict[str, object]],
    *,
    carrier_port: int = 9,
    barring: dict[str, list[str]] | None = None,
) -> ServerProcess:
    """acme's phones 201 and 202 with ``services`` by extension, a route for +387 numbers to
    the carrier at ``carrier_port``."""
    write_phones(tmp_path, services=services, phone_barring=barring)
    route = {"carrier": {"host": HOST, "port": carrier_port, "prefixes": ["+387"]}}
    return start_server(tmp_path, trunks={**CALLING, "routes": route}, ring_timeout=20)


def _legs(server: ServerProcess) -> list[dict[str, object]]:
    """The CDRs in the order the legs started: the caller's (leg a) first when two legs
    carry the same millisecond."""
    records = exported_cdrs(server.data_dir)
    return sorted(records, key=lambda r: (str(r["start_stamp"]), r["leg"] != "a"))


def test_cfu_lands_on_the_target_phone_with_diversion_and_history_info(
    sipp: str, tmp_path: Path
) -> None:
    """201 forwards always to extension 202: only 202 rings, its INVITE names 201 in
    Diversion (unconditional) and History-Info (cause 302); 202's leg is inside the group."""
    with stopped_on_exit(_server(tmp_path, {"201": {"forward_always": "202"}})) as server:
        port = register_ext(sipp, tmp_path, server, "202")
        with phone(sipp, tmp_path, expecting(tmp_path, "unconditional"), port) as rung:
            call_201(sipp, tmp_path, server)
            finished(rung, server)
    a, b = _legs(server)
    assert a["leg"] == "a" and a["disposition"] == "ANSWERED", (a, b)
    assert (b["called_raw"], b["diversion_reason"], b["diverted_from"]) == (
        B,
        "unconditional",
        A,
    )
    assert b["linked_id"] == a["call_id"] and b["cost"] in (None, "0", "0.0000"), b


def test_cfb_on_a_busy_phone_goes_out_to_an_outside_number_paid_by_the_subscriber(
    sipp: str, tmp_path: Path
) -> None:
    """201's phone answers 486 and 201 forwards on busy to an outside number: the carrier gets
    the INVITE with Diversion user-busy; the outside leg is paid by 201 (payer called, acme)."""
    carrier = expecting(tmp_path, "user-busy")
    with uas_leg(sipp, tmp_path, "-sf", carrier) as (outside, carrier_port):
        services = {"201": {"forward_busy": "061 200 300"}}
        with stopped_on_exit(_server(tmp_path, services, carrier_port=carrier_port)) as server:
            port = register_ext(sipp, tmp_path, server, "201")
            with phone(sipp, tmp_path, "uas-busy-486.xml", port) as busy:
                call_201(sipp, tmp_path, server)
                finished(busy, server)
            out, _ = outside.communicate(timeout=30)
            assert outside.returncode == 0, out[-2000:] + "\n".join(server.raw[-40:])
    a, phone_leg, out_leg = _legs(server)
    assert a["disposition"] == "ANSWERED" and phone_leg["disposition"] == "BUSY"
    assert out_leg["called_raw"] == OUTSIDE and out_leg["disposition"] == "ANSWERED"
    assert (out_leg["payer"], out_leg["customer"]) == ("called", "acme"), out_leg
    assert (out_leg["diversion_reason"], out_leg["diverted_from"]) == ("user-busy", A)
    assert out_leg["linked_id"] == a["call_id"]


def test_cfnr_diverts_after_its_ring_time(sipp: str, tmp_path: Path) -> None:
    """201 rings for its no_answer_seconds (5 s, not the 20 s ring timeout), is cancelled, and
    202 gets the call with Diversion no-answer and History-Info cause 408."""
    services = {"201": {"forward_no_answer": "202", "no_answer_seconds": 5}}
    with stopped_on_exit(_server(tmp_path, services)) as server:
        port_201 = register_ext(sipp, tmp_path, server, "201")
        port_202 = register_ext(sipp, tmp_path, server, "202")
        with (
            phone(sipp, tmp_path, "uas-rings-until-cancelled.xml", port_201) as unanswered,
            phone(sipp, tmp_path, expecting(tmp_path, "no-answer"), port_202) as rung,
        ):
            call_201(sipp, tmp_path, server)
            finished(unanswered, server)
            finished(rung, server)
        diverted = server.wait_for("call.diverted")
    assert (diverted["reason"], diverted["target"]) == ("no-answer", B)
    reasons = [leg["diversion_reason"] for leg in _legs(server)]
    assert reasons == [None, None, "no-answer"], reasons


def test_call_waiting_off_while_in_a_call_diverts_on_busy(sipp: str, tmp_path: Path) -> None:
    """201 is in an answered call and has call waiting off: a second call to it is not
    offered to its phone but diverted on busy to 202 (Diversion user-busy)."""
    services = {"201": {"call_waiting": False, "forward_busy": "202"}}
    with stopped_on_exit(_server(tmp_path, services)) as server:
        port_201 = register_ext(sipp, tmp_path, server, "201")
        port_202 = register_ext(sipp, tmp_path, server, "202")
        with (
            phone(sipp, tmp_path, "uas-rings-answers-expects-bye.xml", port_201) as first,
            phone(sipp, tmp_path, expecting(tmp_path, "user-busy"), port_202) as second,
        ):
            talking = background_call(sipp, tmp_path, server, hold=8000)
            try:
                server.wait_for("call.bridged", timeout=20)
                call_201(sipp, tmp_path, server)
                finished(second, server)
            finally:
                out, _ = talking.communicate(timeout=40)
            assert talking.returncode == 0, out[-2000:]
            finished(first, server)
    legs = _legs(server)
    assert [leg["diversion_reason"] for leg in legs if leg["leg"] == "b"] == [None, "user-busy"]


def test_call_waiting_on_offers_a_second_call_to_the_phone_in_a_call(
    sipp: str, tmp_path: Path
) -> None:
    """201 is in an answered call with call waiting on (and forwarding on busy set): a
    second call rings its phone, which answers it; nothing is diverted."""
    services = {"201": {"call_waiting": True, "forward_busy": "202"}}
    with stopped_on_exit(_server(tmp_path, services)) as server:
        port_201 = register_ext(sipp, tmp_path, server, "201")
        scenario = str(SCENARIOS / "uas-rings-answers-expects-bye.xml")
        first, _ = start_uas(sipp, tmp_path, "-sf", scenario, "-m", "2", port=port_201)
        try:
            talking = background_call(sipp, tmp_path, server, hold=8000)
            try:
                server.wait_for("call.bridged", timeout=20)
                call_201(sipp, tmp_path, server)
            finally:
                out, _ = talking.communicate(timeout=40)
            assert talking.returncode == 0, out[-2000:]
            finished(first, server)
        finally:
            if first.poll() is None:
                first.kill()
                first.communicate()
    legs = [leg for leg in _legs(server) if leg["leg"] == "b"]
    assert [(leg["disposition"], leg["diversion_reason"]) for leg in legs] == [
        ("ANSWERED", None),
        ("ANSWERED", None),
    ]
    assert not server.events("call.diverted")


def test_not_reachable_diverts_at_once(sipp: str, tmp_path: Path) -> None:
    """201 has no registration and forwards when not reachable: 202 gets the call with
    Diversion unavailable; no leg to 201 is tried."""
    with stopped_on_exit(_server(tmp_path, {"201": {"forward_unreachable": "202"}})) as server:
        port = register_ext(sipp, tmp_path, server, "202")
        with phone(sipp, tmp_path, expecting(tmp_path, "unavailable"), port) as rung:
            call_201(sipp, tmp_path, server)
            finished(rung, server)
    a, b = _legs(server)
    assert (b["called_raw"], b["diversion_reason"]) == (B, "unavailable"), (a, b)


def test_a_forward_out_barred_by_the_forwarders_class_gets_403(sipp: str, tmp_path: Path) -> None:
    """201 is barred from international numbers and forwards always to Germany: the trunk's
    caller (not barred itself) gets 403; the refused leg's CDR says barred, diverted by 201."""
    services = {"201": {"forward_always": "+49 30 123456"}}
    with stopped_on_exit(_server(tmp_path, services, barring={"201": ["international"]})) as server:
        result = run_scenario(sipp, tmp_path, server, "uac-expect-403-barred.xml", *CALLER)
        assert result.returncode == 0, result.output[-2000:] + "\n".join(server.raw[-40:])
    a, b = _legs(server)
    assert a["sip_code"] == 403 and b["end_reason"] == "barred", (a, b)
    assert (b["diverted_from"], b["end_detail"]) == (A, "barred_international"), b


def test_two_subscribers_forwarding_to_each_other_end(sipp: str, tmp_path: Path) -> None:
    """201 and 202 forward always to each other: 202's forward back to 201 is a loop and is
    not made, so 202 is tried as without forwarding; registered nowhere, the caller gets 480."""
    services = {"201": {"forward_always": "202"}, "202": {"forward_always": "201"}}
    with stopped_on_exit(_server(tmp_path, services)) as server:
        result = run_scenario(sipp, tmp_path, server, "uac-expect-480.xml", *CALLER)
        assert result.returncode == 0, result.output[-2000:] + "\n".join(server.raw[-40:])
        stopped = server.wait_for("call.diversion_stopped")
    assert (stopped["subscriber"], stopped["target"], stopped["why"]) == (B, "201", "loop")
    a, b = _legs(server)
    assert a["sip_code"] == 480 and b["called_raw"] == B and b["diverted_from"] == A, (a, b)


def test_forwarding_to_vm_records_the_message_into_the_subscribers_box(
    sipp: str, tmp_path: Path
) -> None:
    """201 is not registered and forwards then to VM: the caller is answered with the
    voicemail greeting and its message lands in the mailbox of 201's digits; the caller's
    CDR names the message and the diversion."""
    seconds = np.arange(8 * 8000) / 8000.0  # the greeting hides its start
    tone = (8000 * np.sin(2 * np.pi * 440.0 * seconds)).astype(np.int16)
    (tmp_path / "voicemail-message.ulaw").write_bytes(g711.encode("PCMU", tone))
    with stopped_on_exit(_server(tmp_path, {"201": {"forward_unreachable": "VM"}})) as server:
        result = run_scenario(
            sipp, tmp_path, server, "uac-leaves-voicemail-then-hangs-up.xml", *CALLER, "-d", "12000"
        )
        assert result.returncode == 0, result.output[-2000:] + "\n".join(server.raw[-40:])
        server.wait_for("call.ended")
    (wav,) = (server.data_dir / "voicemail" / "38733100201").glob("*.wav")
    (record,) = _legs(server)
    assert record["voicemail_path"] == str(wav), record
    assert (record["diversion_reason"], record["diverted_from"]) == ("unavailable", A)


def test_a_dialplan_forward_to_a_subscriber_follows_its_forwarding(
    sipp: str, tmp_path: Path
) -> None:
    """The main number's plan forwards to extension 201, which forwards always to 202: 202
    answers the diverted call (Diversion unconditional by 201)."""
    plans = plan_dir(tmp_path, "38733100200", 'steps:\n  reception:\n    forward: "201"\n')
    write_phones(tmp_path, services={"201": {"forward_always": "202"}})
    server = start_server(tmp_path, trunks=CALLING, dialplans=plans)
    with stopped_on_exit(server):
        port = register_ext(sipp, tmp_path, server, "202")
        with phone(sipp, tmp_path, expecting(tmp_path, "unconditional"), port) as rung:
            result = run_sipp(
                sipp,
                tmp_path,
                server.port,
                *("-sn", "uac", "-d", "1500", "-s", "38733100200", "-m", "1"),
                timeout=30,
            )
            assert result.returncode == 0, result.output[-2000:] + "\n".join(server.raw[-40:])
            finished(rung, server)
    a, b = _legs(server)
    assert a["steps"] == ["reception"] and (b["called_raw"], b["diverted_from"]) == (B, A)
