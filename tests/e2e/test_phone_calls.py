"""Calls to Centrex phones end to end: SIPp phones register, a SIPp caller calls their number.

Each phone is two SIPp runs on one UDP port (``tests.e2e.subscribers``): one registers the
port as a contact of the subscriber, the other plays the phone the call reaches there.
"""

from __future__ import annotations

from pathlib import Path

from tests.e2e.conftest import (
    ServerProcess,
    exported_cdrs,
    free_port,
    plan_dir,
    run_scenario,
    run_sipp,
    start_server,
    stopped_on_exit,
)
from tests.e2e.subscribers import (
    CALLER,
    CALLING,
    USERNAME,
    finished,
    phone,
    register_phone,
    write_centrex,
)

NUMBER = USERNAME  # the subscriber's number is its username here


def _server(tmp_path: Path, dialplans: Path | None = None, **calls: object) -> ServerProcess:
    """The server with one group of acme and its phone 201 (``calls``: settings)."""
    write_centrex(tmp_path)
    return start_server(tmp_path, trunks=CALLING, dialplans=dialplans, **calls)


def _call(sipp: str, tmp_path: Path, server: ServerProcess, *args: str) -> None:
    result = run_sipp(sipp, tmp_path, server.port, *args, "-s", NUMBER, "-m", "1", timeout=30)
    assert result.returncode == 0, result.output[-2000:] + "\n".join(server.raw[-40:])


def test_both_contacts_ring_the_second_answers_the_first_is_cancelled(
    sipp: str, tmp_path: Path
) -> None:
    """Two contacts of one AOR ring at once; the one that answers is bridged to the caller and
    the other gets CANCEL with Reason "Call completed elsewhere"; the phone's leg has its CDR."""
    first, second = free_port(both=False), free_port(both=False)
    with stopped_on_exit(_server(tmp_path)) as server:
        register_phone(sipp, tmp_path, server, first)
        register_phone(sipp, tmp_path, server, second)
        with (
            phone(sipp, tmp_path, "uas-rings-expects-cancel-completed-elsewhere.xml", first) as a,
            phone(sipp, tmp_path, "uas-rings-answers-expects-bye.xml", second) as b,
        ):
            _call(sipp, tmp_path, server, "-sn", "uac", "-d", "1500")
            finished(a, server)
            finished(b, server)
        assert server.wait_for("call.ringing_contacts")["contacts"] == 2
    legs = {record["leg"]: record for record in exported_cdrs(server.data_dir)}
    assert sorted(legs) == ["a", "b"], legs
    assert legs["a"]["disposition"] == legs["b"]["disposition"] == "ANSWERED"
    assert legs["b"]["linked_id"] == legs["a"]["call_id"]
    assert legs["b"]["called_raw"] == f"+{NUMBER}"


def test_a_phone_registered_nowhere_gets_480(sipp: str, tmp_path: Path) -> None:
    """A call to a subscriber with no binding is refused with 480 and its CDR says so."""
    with stopped_on_exit(_server(tmp_path)) as server:
        result = run_scenario(sipp, tmp_path, server, "uac-expect-480.xml", *CALLER)
        assert result.returncode == 0, result.output[-2000:] + "\n".join(server.raw[-40:])
    legs = {record["leg"]: record for record in exported_cdrs(server.data_dir)}
    assert legs["a"]["sip_code"] == 480, legs
    assert legs["b"]["end_detail"] == "not registered", legs


def test_a_busy_phone_gets_the_caller_486(sipp: str, tmp_path: Path) -> None:
    """The only contact answers 486 Busy Here: the caller gets 486 too."""
    port = free_port(both=False)
    with stopped_on_exit(_server(tmp_path)) as server:
        register_phone(sipp, tmp_path, server, port)
        with phone(sipp, tmp_path, "uas-busy-486.xml", port) as rung:
            result = run_scenario(
                sipp, tmp_path, server, "uac-expect-486-forward-failed.xml", *CALLER
            )
            assert result.returncode == 0, result.output[-2000:] + "\n".join(server.raw[-40:])
            finished(rung, server)


def test_an_unanswered_phone_is_cancelled_after_the_ring_timeout_and_the_caller_gets_480(
    sipp: str, tmp_path: Path
) -> None:
    """calls.ring_timeout 2 s: the ringing phone gets a CANCEL without a Reason, the caller 480."""
    port = free_port(both=False)
    with stopped_on_exit(_server(tmp_path, ring_timeout=2)) as server:
        register_phone(sipp, tmp_path, server, port)
        with phone(sipp, tmp_path, "uas-rings-until-cancelled.xml", port) as rung:
            result = run_scenario(sipp, tmp_path, server, "uac-expect-480.xml", *CALLER)
            assert result.returncode == 0, result.output[-2000:] + "\n".join(server.raw[-40:])
            finished(rung, server)


def test_a_dialplan_forward_to_an_extension_of_its_group_reaches_the_phone(
    sipp: str, tmp_path: Path
) -> None:
    """The group's main number 200 has a plan that forwards to "201": no route is needed, the
    registered phone rings and answers, the call is bridged."""
    port = free_port(both=False)
    plans = plan_dir(tmp_path, "38733100200", 'steps:\n  reception:\n    forward: "201"\n')
    with stopped_on_exit(_server(tmp_path, dialplans=plans)) as server:
        register_phone(sipp, tmp_path, server, port)
        with phone(sipp, tmp_path, "uas-rings-answers-expects-bye.xml", port) as rung:
            result = run_sipp(
                sipp,
                tmp_path,
                server.port,
                *("-sn", "uac", "-d", "1500", "-s", "38733100200", "-m", "1"),
                timeout=30,
            )
            assert result.returncode == 0, result.output[-2000:] + "\n".join(server.raw[-40:])
            finished(rung, server)
    legs = {record["leg"]: record for record in exported_cdrs(server.data_dir)}
    assert legs["a"]["steps"] == ["reception"] and legs["b"]["called_raw"] == f"+{NUMBER}"
