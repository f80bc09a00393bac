"""Forwarding to host names end to end: NAPTR/SRV/A from a DNS server on 127.0.0.1 (dnslib),
SIPp as the caller and as the called parties, failover to the next SRV target (RFC 3263).
"""

from __future__ import annotations

import socket
from pathlib import Path

from tests.e2e.conftest import (
    HOST,
    SCENARIOS,
    ServerProcess,
    exported_cdrs,
    plan_dir,
    run_scenario,
    run_sipp,
    start_server,
    stopped_on_exit,
    uas_leg,
)
from tests.transport.dns_server import ZoneServer

NUMBER = "38733100200"
TARGET = "+38761200300"


def _zone(*targets: int) -> str:
    """pbx.test: NAPTR to UDP SRV, whose targets (priority 10, 20, ...) are 127.0.0.1:port."""
    lines = [
        'pbx.test. 60 IN NAPTR 10 10 "s" "SIP+D2U" "" _sip._udp.pbx.test.',
        "sip.pbx.test. 60 IN A 127.0.0.1",
    ]
    lines += [
        f"_sip._udp.pbx.test. 60 IN SRV {10 * (i + 1)} 0 {port} sip.pbx.test."
        for i, port in enumerate(targets)
    ]
    return "\n".join(lines) + "\n"


def _server(tmp_path: Path, zone: ZoneServer, forward: str, route: bool) -> ServerProcess:
    """A server whose plan forwards NUMBER to ``forward`` (through route pbx.test if asked),
    486 when the forward fails."""
    plans = plan_dir(
        tmp_path,
        NUMBER,
        "steps:\n"
        "  support:\n"
        f'    forward: "{forward}"\n'
        "    ring_timeout: 20s\n"
        "    failed: busy\n"
        "  busy:\n"
        "    hangup: 486\n",
    )
    trunks: dict[str, object] = {"trunks": {"test": {"match": [HOST], "channels": 2}}}
    if route:
        trunks |= {"routes": {"pbx": {"host": "pbx.test"}}, "default_route": "pbx"}
    return start_server(
        tmp_path,
        dialplans=plans,
        trunks=trunks,
        dns={"nameservers": [f"{HOST}:{zone.port}"], "timeout": 2},
        forward_response_timeout=1,
    )


def _call(sipp: str, tmp_path: Path, server: ServerProcess) -> str:
    """A SIPp caller to NUMBER that hangs up 2 s after the answer; returns the failure text."""
    caller = run_sipp(
        sipp, tmp_path, server.port, "-sn", "uac", "-s", NUMBER, "-m", "1", "-d", "2000", timeout=40
    )
    return "" if caller.returncode == 0 else caller.output[-2000:]


def _answered_legs(server: ServerProcess) -> dict[str, dict[str, object]]:
    legs = {record["leg"]: record for record in exported_cdrs(server.data_dir)}
    assert sorted(legs) == ["a", "b"], legs
    assert legs["a"]["disposition"] == legs["b"]["disposition"] == "ANSWERED", legs
    return {str(leg): record for leg, record in legs.items()}


def test_a_sip_uri_forward_to_a_domain_is_resolved_by_naptr_and_srv(
    sipp: str, tmp_path: Path
) -> None:
    """sip:...@pbx.test: NAPTR → _sip._udp SRV → A; SIPp there gets pbx.test in the URI."""
    scenario = str(SCENARIOS / "uas-expect-domain-uri-then-answer.xml")
    with (
        uas_leg(sipp, tmp_path, "-sf", scenario) as (uas, uas_port),
        ZoneServer(_zone(uas_port)) as zone,
    ):
        server = _server(tmp_path, zone, f"sip:{TARGET}@pbx.test", route=False)
        with stopped_on_exit(server):
            failure = _call(sipp, tmp_path, server)
            uas_out, _ = uas.communicate(timeout=40)
        assert zone.count("pbx.test", "NAPTR") == 1
        assert zone.count("_sip._udp.pbx.test", "SRV") == 1
        assert zone.count("sip.pbx.test", "A") == 1
    log = "\n".join(server.raw[-40:])
    assert not failure, failure + log
    assert uas.returncode == 0, uas_out[-2000:] + log
    targets = server.events("call.forward_target")
    assert [(t["transport"], t["host"], t["port"]) for t in targets] == [("udp", HOST, uas_port)]
    _answered_legs(server)


def test_a_route_by_host_name_fails_over_from_503_to_the_next_srv_target(
    sipp: str, tmp_path: Path
) -> None:
    """The first SRV target answers 503, the second answers: the call is bridged to it."""
    with (
        uas_leg(sipp, tmp_path, "-sf", str(SCENARIOS / "uas-answers-503.xml")) as (busy, busy_port),
        uas_leg(sipp, tmp_path, "-sn", "uas") as (uas, uas_port),
        ZoneServer(_zone(busy_port, uas_port)) as zone,
    ):
        server = _server(tmp_path, zone, TARGET, route=True)
        with stopped_on_exit(server):
            failure = _call(sipp, tmp_path, server)
            uas_out, _ = uas.communicate(timeout=40)
            busy_out, _ = busy.communicate(timeout=10)
    log = "\n".join(server.raw[-40:])
    assert not failure, failure + log
    assert busy.returncode == 0, busy_out[-2000:] + log  # it got the INVITE and our ACK
    assert uas.returncode == 0, uas_out[-2000:] + log
    failover = server.wait_for("call.forward_failover")
    assert failover["status"] == 503
    targets = [(t["host"], t["port"]) for t in server.events("call.forward_target")]
    assert targets == [(HOST, busy_port), (HOST, uas_port)]
    legs = _answered_legs(server)
    assert legs["b"]["called_raw"] == TARGET


def test_a_target_that_never_answers_hands_the_call_to_the_next(sipp: str, tmp_path: Path) -> None:
    """The first SRV target is silent: after forward_response_timeout the second gets it."""
    with (
        uas_leg(sipp, tmp_path, "-sn", "uas") as (uas, uas_port),
        socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as silent,
    ):
        silent.bind((HOST, 0))
        silent_port = silent.getsockname()[1]
        with ZoneServer(_zone(silent_port, uas_port)) as zone:
            server = _server(tmp_path, zone, TARGET, route=True)
            with stopped_on_exit(server):
                failure = _call(sipp, tmp_path, server)
                uas_out, _ = uas.communicate(timeout=40)
        silent.settimeout(0)
        invite = silent.recv(65535)
    log = "\n".join(server.raw[-40:])
    assert not failure, failure + log
    assert uas.returncode == 0, uas_out[-2000:] + log
    assert invite.startswith(f"INVITE sip:{TARGET}@pbx.test SIP/2.0".encode()), invite[:80]
    failover = server.wait_for("call.forward_failover")
    assert (failover["status"], failover["responded"]) == (408, False)
    targets = [(t["host"], t["port"]) for t in server.events("call.forward_target")]
    assert targets == [(HOST, silent_port), (HOST, uas_port)]
    _answered_legs(server)


def test_a_name_that_does_not_resolve_fails_the_forward_with_a_clear_cdr(
    sipp: str, tmp_path: Path
) -> None:
    """No such domain: the caller gets the plan's failed branch (486), the b leg's CDR says why."""
    with ZoneServer(_zone()) as zone:
        server = _server(tmp_path, zone, f"sip:{TARGET}@nowhere.test", route=False)
        with stopped_on_exit(server):
            caller = run_scenario(
                sipp,
                tmp_path,
                server,
                "uac-expect-486-forward-failed.xml",
                *("-s", NUMBER, "-m", "1", "-key", "caller", "+38733555666"),
                timeout=20,
            )
    legs = {record["leg"]: record for record in exported_cdrs(server.data_dir)}
    assert "b" in legs, "\n".join(server.raw)
    b = legs["b"]
    assert b["end_reason"] == "no_route" and b["sip_code"] == 503, legs
    assert "nowhere.test has no A record" in str(b["end_detail"]), b
    assert server.wait_for("call.forward_unresolved")["target"] == f"sip:{TARGET}@nowhere.test"
    assert caller.returncode == 0, caller.output[-2000:] + "\n".join(server.raw[-40:])
