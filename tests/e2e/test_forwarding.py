"""Forwarding end to end: a dialplan forwards a SIPp caller to SIPp as the called party.

The server is a B2BUA here: the caller's leg (a) and the forwarded leg (b) each hold a
channel, the media is bridged, and each leg leaves its own CDR linked by the inbound Call-ID.
"""

from __future__ import annotations

from pathlib import Path

from tests.e2e.conftest import (
    HOST,
    TARIFFS,
    ServerProcess,
    exported_cdrs,
    plan_dir,
    run_scenario,
    run_sipp,
    start_server,
    stopped_on_exit,
    uas_leg,
)

NUMBER = "38733100200"
TARGET = "+38761200300"


def _setup(
    tmp_path: Path,
    uas_port: int,
    *,
    barring: list[str] | None = None,
    max_duration: str | None = None,
    tariffs: Path = TARIFFS,
) -> ServerProcess:
    plans = plan_dir(
        tmp_path,
        NUMBER,
        (f"max_duration: {max_duration}\n" if max_duration else "") + "steps:\n"
        "  support:\n"
        f'    forward: "{TARGET}"\n'
        "    ring_timeout: 10s\n"
        "    busy: busy\n"
        "  busy:\n"
        "    hangup: 486\n",
    )
    trunk: dict[str, object] = {"match": ["127.0.0.1"], "channels": 2}
    if barring:
        trunk["barring"] = barring
    trunks = {
        "trunks": {"test": trunk},
        "routes": {"pbx": {"host": HOST, "port": uas_port}},
        "default_route": "pbx",
    }
    return start_server(tmp_path, dialplans=plans, trunks=trunks, tariffs=tariffs)


def test_forwarded_call_is_bridged_and_leaves_two_linked_cdrs(sipp: str, tmp_path: Path) -> None:
    """The forwarded leg answers, the caller hangs up, both legs have rated, linked CDRs."""
    with (
        uas_leg(sipp, tmp_path, "-sn", "uas") as (uas, uas_port),
        stopped_on_exit(_setup(tmp_path, uas_port)) as server,
    ):
        caller = run_sipp(
            sipp,
            tmp_path,
            server.port,
            "-sn",
            "uac",
            "-s",
            NUMBER,
            "-m",
            "1",
            "-d",
            "2000",
            timeout=30,
        )
        uas_out, _ = uas.communicate(timeout=30)
    log = "\n".join(server.raw[-40:])
    assert caller.returncode == 0, caller.output[-2000:] + log
    assert uas.returncode == 0, uas_out[-2000:] + log
    records = exported_cdrs(server.data_dir)
    legs = {record["leg"]: record for record in records}
    assert sorted(legs) == ["a", "b"], records
    a, b = legs["a"], legs["b"]
    assert a["direction"] == "inbound" and b["direction"] == "outbound"
    assert b["linked_id"] == a["call_id"] == a["linked_id"]
    assert a["disposition"] == b["disposition"] == "ANSWERED"
    assert b["called_raw"] == TARGET and b["trunk"] == "test"
    assert b["cost"] is not None and float(str(b["cost"])) > 0
    assert a["steps"] == ["support"]
    stopped = server.events("server.stopped")
    assert stopped and stopped[0].get("channels_in_use") in (0, {}, None), stopped


def test_barred_forward_gets_403_and_a_barred_cdr(sipp: str, tmp_path: Path) -> None:
    """A trunk barred from mobile numbers cannot forward to one: 403 and a barred b-leg CDR."""
    with stopped_on_exit(_setup(tmp_path, 9, barring=["mobile"])) as server:
        caller = run_scenario(
            sipp,
            tmp_path,
            server,
            "uac-expect-403-barred.xml",
            *("-s", NUMBER, "-m", "1", "-key", "caller", "+38733555666"),
            timeout=20,
        )
    assert caller.returncode == 0, caller.output[-2000:] + "\n".join(server.raw[-40:])
    legs = {record["leg"]: record for record in exported_cdrs(server.data_dir)}
    assert legs["b"]["end_reason"] == "barred" and legs["b"]["disposition"] == "REJECTED"
    assert legs["a"]["end_reason"] == "barred" and legs["a"]["sip_code"] == 403


def test_the_cap_ends_both_legs_of_a_forwarded_call(sipp: str, tmp_path: Path) -> None:
    """A plan's 3 s max_duration: both parties hear the warning, then both get BYE."""
    warning = tmp_path / "tariffs.yaml"
    warning.write_text(TARIFFS.read_text().replace("cap_warning: 30", "cap_warning: 1"))
    with (
        uas_leg(sipp, tmp_path, "-sn", "uas") as (uas, uas_port),
        stopped_on_exit(_setup(tmp_path, uas_port, max_duration="3s", tariffs=warning)) as server,
    ):
        caller = run_scenario(
            sipp, tmp_path, server, "uac-expect-server-bye.xml", "-s", NUMBER, "-m", "1"
        )
        uas_out, _ = uas.communicate(timeout=30)
    log = "\n".join(server.raw[-40:])
    assert caller.returncode == 0, caller.output[-2000:] + log
    assert uas.returncode == 0, uas_out[-2000:] + log  # SIPp's uas got its BYE
    legs = {record["leg"]: record for record in exported_cdrs(server.data_dir)}
    assert legs["a"]["end_reason"] == legs["b"]["end_reason"] == "max_duration"
    assert server.wait_for("call.max_duration")["cap"] == 3
    assert server.wait_for("call.cap_warning")["bridged"] is True
