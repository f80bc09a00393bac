"""baresip phones busy: in a call (call forwarding on busy, CFB; call waiting on and off),
and by do not disturb.

Phones 201 and 202 of acme's group register with MD5 (tests/phones/centrex.py). A first
SIPp caller on the trunk ``test`` calls 201's number and talks to 201's baresip in the
background; while that call lasts a second caller calls 201 again. 201 sets its services
from the phone with their codes (``*67*202#``, ``*43#``, ``#43#``, ``*26#``) where the test
says so, else they come from centrex.yaml. Busy by the phone itself is baresip refusing a
call over its ``call_max_calls`` (486 Busy Here).
"""

from __future__ import annotations

import re
import subprocess
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

from tests.e2e.conftest import (
    ServerProcess,
    exported_cdrs,
    run_scenario,
    run_sipp,
    stopped_on_exit,
)
from tests.e2e.subscribers import CALLER, background_call
from tests.phones.baresip import STATES, Baresip
from tests.phones.centrex import dial_code, group_phone, group_server, microphone

A, B = "+38733100201", "+38733100202"
TALK_MS = 8000  # the first call: long enough for the second one to end inside it


@contextmanager
def _in_a_call(sipp: str, tmp_path: Path, server: ServerProcess, phone: Baresip) -> Iterator[None]:
    """201's baresip answers a first caller and talks for ``TALK_MS`` in the background; the
    block runs while they talk, and the first call must end well after it."""
    first = background_call(sipp, tmp_path, server, hold=TALK_MS)
    try:
        phone.wait_for("established", timeout=10)
        server.wait_for("call.bridged", timeout=20)
        yield
    finally:
        _ended(first, server)


@contextmanager
def _two_phones(
    tmp_path: Path,
    services: Mapping[str, Mapping[str, object]] | None = None,
    *,
    max_calls: int = 4,
    trace_202: bool = False,
) -> Iterator[tuple[ServerProcess, Baresip, Baresip]]:
    """The group's server (``services`` by extension) with 201's baresip (taking
    ``max_calls`` calls at a time) and 202's, both registered."""
    with (
        stopped_on_exit(group_server(tmp_path, services)) as server,
        Baresip(
            tmp_path / "p201",
            microphone(tmp_path, 440.0, 20.0),
            group_phone(server, "201"),
            max_calls=max_calls,
        ) as a,
        Baresip(
            tmp_path / "p202",
            microphone(tmp_path, 600.0, 20.0),
            group_phone(server, "202"),
            sip_trace=trace_202,
        ) as b,
    ):
        a.wait_for("registered", timeout=5)
        b.wait_for("registered", timeout=5)
        yield server, a, b


def _ended(proc: subprocess.Popen[str], server: ServerProcess) -> None:
    out, _ = proc.communicate(timeout=40)
    assert proc.returncode == 0, out[-2000:] + "\n".join(server.raw[-40:])


def _second_call(sipp: str, tmp_path: Path, server: ServerProcess) -> None:
    """A second caller to 201's number, answered (by whichever phone) and hung up after 1.5 s."""
    result = run_sipp(sipp, tmp_path, server.port, "-sn", "uac", "-d", "1500", *CALLER, timeout=30)
    assert result.returncode == 0, result.output[-2000:] + "\n".join(server.raw[-60:])


def _legs(server: ServerProcess) -> list[dict[str, object]]:
    """The CDRs of the callers' calls and their legs in the order they started (the caller's
    first); a service code's call is left out."""
    records = [r for r in exported_cdrs(server.data_dir) if not _is_code(r)]
    return sorted(records, key=lambda r: (str(r["start_stamp"]), r["leg"] != "a"))


def _is_code(record: dict[str, object]) -> bool:
    return str(record["called_raw"]).startswith(("*", "#"))


def _offered(phone: Baresip) -> int:
    """How many calls the phone was offered (shown or answered at once)."""
    return len(re.findall(STATES["incoming"], phone.output))


def test_cfb_set_by_67_the_phone_busy_in_a_call_sends_the_second_caller_to_202(
    sipp: str, tmp_path: Path
) -> None:
    """201 dials *67*202#; in a call, its phone refuses a second call (486, it takes one call
    at a time): the call lands on 202's baresip with Diversion user-busy, and the CDRs show
    201's leg BUSY and 202's diverted by 201, paid inside the group."""
    with _two_phones(tmp_path, max_calls=1, trace_202=True) as (server, a, b):
        changed = dial_code(a, server, "*67*202#")
        with _in_a_call(sipp, tmp_path, server, a):
            _second_call(sipp, tmp_path, server)
            b.wait_for("established", timeout=5)
            b.wait_for("closed", timeout=10)
            a.wait_for(r"rejected call from [^\n]*\(maximum 1 calls\)", timeout=5)
        (_, invite), *_ = b.traced("INVITE")  # then its retransmissions, if any
    assert (changed["number"], changed["values"]) == (A, {"forward_busy": "202"}), changed
    assert f"Diversion: <sip:{A}@" in invite and ";reason=user-busy;counter=1" in invite, invite
    first_a, first_b, second_a, busy, diverted = _legs(server)
    assert (first_a["leg"], first_b["called_raw"], second_a["leg"]) == ("a", A, "a")
    assert (busy["called_raw"], busy["disposition"], busy["sip_code"]) == (A, "BUSY", 486), busy
    assert (diverted["called_raw"], diverted["disposition"]) == (B, "ANSWERED"), diverted
    assert (diverted["diversion_reason"], diverted["diverted_from"]) == ("user-busy", A)
    assert diverted["linked_id"] == busy["linked_id"] == second_a["call_id"], diverted
    assert second_a["disposition"] == "ANSWERED" and diverted["customer"] == "acme", second_a
    [code] = [r for r in exported_cdrs(server.data_dir) if _is_code(r)]
    assert (code["called_raw"], code["subscriber"], code["disposition"]) == (
        "*67*202#",
        A,
        "ANSWERED",
    ), code


def test_call_waiting_off_by_43_the_second_call_goes_to_cfb_without_ringing_201(
    sipp: str, tmp_path: Path
) -> None:
    """201 forwards on busy to 202 (centrex.yaml) and dials #43#: in a call, its phone is not
    offered the second call at all, which lands on 202's baresip (Diversion user-busy)."""
    services = {"201": {"forward_busy": "202"}}
    with _two_phones(tmp_path, services) as (server, a, b):
        changed = dial_code(a, server, "#43#")
        with _in_a_call(sipp, tmp_path, server, a):
            _second_call(sipp, tmp_path, server)
            b.wait_for("established", timeout=5)
            b.wait_for("closed", timeout=10)
        assert _offered(a) == 1, a.output[-3000:]
    assert (changed["number"], changed["values"]) == (A, {"call_waiting": False}), changed
    b_legs = [leg for leg in _legs(server) if leg["leg"] == "b"]
    assert [(leg["called_raw"], leg["diversion_reason"]) for leg in b_legs] == [
        (A, None),
        (B, "user-busy"),
    ], b_legs
    assert b_legs[1]["diverted_from"] == A and b_legs[1]["disposition"] == "ANSWERED"


def test_call_waiting_off_and_no_cfb_the_second_caller_gets_486(sipp: str, tmp_path: Path) -> None:
    """Call waiting off in centrex.yaml and no forwarding: while 201 talks, a second caller
    gets 486 Busy Here; its CDR says busy, in a call with call waiting off, and 201's phone
    was offered nothing."""
    services = {"201": {"call_waiting": False}}
    with stopped_on_exit(group_server(tmp_path, services)) as server:
        microphone_201 = microphone(tmp_path, 440.0, 20.0)
        with Baresip(tmp_path / "p201", microphone_201, group_phone(server, "201")) as a:
            a.wait_for("registered", timeout=5)
            with _in_a_call(sipp, tmp_path, server, a):
                refused = run_scenario(
                    sipp, tmp_path, server, "uac-expect-486-forward-failed.xml", *CALLER
                )
                assert refused.returncode == 0, refused.output[-2000:]
            assert _offered(a) == 1, a.output[-3000:]
        busy = server.wait_for("call.subscriber_busy")
    assert (busy["subscriber"], busy["dnd"]) == (A, False), busy
    second = [leg for leg in _legs(server) if leg["sip_code"] == 486]
    assert [(leg["leg"], leg["disposition"]) for leg in second] == [("a", "BUSY")], second
    assert second[0]["end_detail"] == "in a call, call waiting off", second


def test_call_waiting_on_by_43_the_second_call_rings_the_phone_in_a_call(
    sipp: str, tmp_path: Path
) -> None:
    """The operator sets call waiting off with CFB to 202 (centrex.yaml); 201 dials *43#:
    in a call, its phone is offered the second call (and answers it), nothing is diverted
    and 202 never rings."""
    services = {"201": {"call_waiting": False, "forward_busy": "202"}}
    with _two_phones(tmp_path, services) as (server, a, b):
        changed = dial_code(a, server, "*43#")
        with _in_a_call(sipp, tmp_path, server, a):
            _second_call(sipp, tmp_path, server)
            assert _offered(a) == 2, a.output[-3000:]
        assert _offered(b) == 0, b.output[-3000:]
    assert (changed["number"], changed["values"]) == (A, {"call_waiting": True}), changed
    assert not server.events("call.diverted")
    b_legs = [leg for leg in _legs(server) if leg["leg"] == "b"]
    assert [(leg["called_raw"], leg["disposition"]) for leg in b_legs] == [
        (A, "ANSWERED"),
        (A, "ANSWERED"),
    ], b_legs
    assert [leg["diversion_reason"] for leg in b_legs] == [None, None], b_legs


def test_dnd_by_26_a_caller_gets_486_and_201s_phone_is_not_offered_the_call(
    sipp: str, tmp_path: Path
) -> None:
    """201 dials *26# (do not disturb) and has no forwarding: a caller gets 486 Busy Here at
    once, 201's idle phone is offered nothing, and the caller's CDR says do not disturb."""
    with (
        stopped_on_exit(group_server(tmp_path)) as server,
        Baresip(
            tmp_path / "p201", microphone(tmp_path, 440.0, 20.0), group_phone(server, "201")
        ) as a,
    ):
        a.wait_for("registered", timeout=5)
        changed = dial_code(a, server, "*26#")
        refused = run_scenario(sipp, tmp_path, server, "uac-expect-486-forward-failed.xml", *CALLER)
        assert refused.returncode == 0, refused.output[-2000:] + "\n".join(server.raw[-40:])
        busy = server.wait_for("call.subscriber_busy")
        assert _offered(a) == 0, a.output[-3000:]
    assert (changed["number"], changed["values"]) == (A, {"dnd": True}), changed
    assert (busy["subscriber"], busy["dnd"]) == (A, True), busy
    [record] = _legs(server)
    assert (record["leg"], record["disposition"], record["sip_code"]) == ("a", "BUSY", 486)
    assert record["end_detail"] == "do not disturb", record
