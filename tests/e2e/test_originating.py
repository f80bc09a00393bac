"""Calls from a customer's PBX trunk (Business Trunking): out through a route, or terminating.

The local trunk belongs to customer acme, so its calls are *originating*: a number that is not
the operator's own goes out through the outbound route (a SIPp uas plays the carrier), while
one of the operator's own numbers runs as any inbound call (here the default plan answers).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.e2e.conftest import (
    HOST,
    SCENARIOS,
    ServerProcess,
    SippResult,
    exported_cdrs,
    run_scenario,
    run_sipp,
    start_server,
    stopped_on_exit,
    uas_leg,
)

OUTSIDE = "+38761200300"  # a mobile number of another operator
OWN = "38733100250"  # one of acme's own numbers


def _trunks(carrier_port: int) -> dict[str, object]:
    return {
        "customers": {"acme": {"numbers": ["+387 33 100 250"]}},
        "trunks": {"pbx": {"match": [HOST], "customer": "acme", "channels": 4}},
        "routes": {"carrier": {"host": HOST, "port": carrier_port}},
        "default_route": "carrier",
    }


def test_a_pbx_call_to_an_outside_number_goes_out_through_the_route(
    sipp: str, tmp_path: Path
) -> None:
    """The carrier (SIPp uas) gets the call and answers; the two legs are bridged and each has
    its CDR: the PBX's leg inbound, the carrier's outbound, linked, trunk and customer kept."""
    with (
        uas_leg(sipp, tmp_path, "-sn", "uas") as (carrier, carrier_port),
        stopped_on_exit(start_server(tmp_path, trunks=_trunks(carrier_port))) as server,
    ):
        result = run_sipp(
            sipp,
            tmp_path,
            server.port,
            *("-sn", "uac", "-s", OUTSIDE, "-m", "1", "-d", "1000"),
            timeout=30,
        )
        out, _ = carrier.communicate(timeout=30)
    log = "\n".join(server.raw[-40:])
    assert result.returncode == 0, result.output[-2000:] + log
    assert carrier.returncode == 0, out[-2000:] + log
    legs = {record["leg"]: record for record in exported_cdrs(server.data_dir)}
    assert sorted(legs) == ["a", "b"], legs
    a, b = legs["a"], legs["b"]
    assert a["disposition"] == b["disposition"] == "ANSWERED"
    assert (b["direction"], b["linked_id"], b["called_raw"]) == ("outbound", a["call_id"], OUTSIDE)
    assert (b["trunk"], b["customer"]) == ("pbx", "acme")
    assert a["dialplan"] is None  # no plan ran: the call went out


def test_a_pbx_call_to_an_own_number_terminates_as_an_inbound_call(
    sipp: str, tmp_path: Path
) -> None:
    """A number of the operator's own is not sent out: the default plan answers it."""
    with stopped_on_exit(start_server(tmp_path, trunks=_trunks(9))) as server:
        result = run_sipp(
            sipp, tmp_path, server.port, *("-sn", "uac", "-s", OWN, "-m", "1"), timeout=30
        )
    assert result.returncode == 0, result.output[-2000:] + "\n".join(server.raw[-40:])
    (record,) = exported_cdrs(server.data_dir)
    assert record["dialplan"] is not None and record["dialplan"].endswith("default.yaml"), record


def _carrier(tmp_path: Path, identity: str) -> Path:
    """The carrier scenario checking that the caller is presented as ``identity``."""
    template = (SCENARIOS / "uas-carrier-answers-expects-identity.xml").read_text()
    scenario = tmp_path / f"carrier-{identity.lstrip('+')}.xml"
    scenario.write_text(template.replace("IDENTITY", identity.replace("+", "\\+")))
    return scenario


def _screening_trunks(routes: dict[str, object], **more: object) -> dict[str, object]:
    """acme's PBX with its main number and two numbers of its own, and ``routes``."""
    return {
        "customers": {"acme": {"numbers": ["+387 33 100 250", "+387 33 100 255"]}},
        "trunks": {"pbx": {"match": [HOST], "customer": "acme", "number": "+38733100250", **more}},
        "routes": routes,
    }


def _pbx_call(
    sipp: str, tmp_path: Path, server: ServerProcess, called: str, presented: str
) -> SippResult:
    return run_scenario(
        sipp,
        tmp_path,
        server,
        "uac-caller-hangs-up-after-answer.xml",
        *("-s", called, "-m", "1", "-key", "caller", presented, "-d", "500"),
    )


@pytest.mark.parametrize(
    ("presented", "identity"),
    [("033100255", "+38733100255"), ("+38761999999", "+38733100250")],
    ids=["owned-number", "foreign-number-replaced"],
)
def test_a_pbx_call_out_presents_the_screened_number(
    sipp: str, tmp_path: Path, presented: str, identity: str
) -> None:
    """CLI screening: a number acme owns goes out as presented (in E.164), any other becomes
    the trunk's main number; in From and P-Asserted-Identity, checked by the carrier."""
    scenario = str(_carrier(tmp_path, identity))
    with uas_leg(sipp, tmp_path, "-sf", scenario) as (carrier, port):
        routes = {"carrier": {"host": HOST, "port": port, "prefixes": ["+387"]}}
        with stopped_on_exit(start_server(tmp_path, trunks=_screening_trunks(routes))) as server:
            result = _pbx_call(sipp, tmp_path, server, OUTSIDE, presented)
            out, _ = carrier.communicate(timeout=30)
    log = "\n".join(server.raw[-40:])
    assert result.returncode == 0, result.output[-2000:] + log
    assert carrier.returncode == 0, out[-2000:] + log


def test_a_call_out_fails_over_to_the_next_route_of_its_prefix(sipp: str, tmp_path: Path) -> None:
    """Two routes carry +387 6: the first answers 503, so the second takes the call."""
    with (
        uas_leg(sipp, tmp_path, "-sf", str(SCENARIOS / "uas-answers-503.xml")) as (down, first),
        uas_leg(sipp, tmp_path, "-sn", "uas") as (up, second),
    ):
        routes = {  # in this order in the file (start_server's YAML sorts the names)
            "a-primary": {"host": HOST, "port": first, "prefixes": ["+387 6"]},
            "b-backup": {"host": HOST, "port": second, "prefixes": ["+387 6"]},
        }
        with stopped_on_exit(start_server(tmp_path, trunks=_screening_trunks(routes))) as server:
            result = _pbx_call(sipp, tmp_path, server, OUTSIDE, "033100255")
            down_out, _ = down.communicate(timeout=30)
            up_out, _ = up.communicate(timeout=30)
    log = "\n".join(server.raw[-40:])
    assert result.returncode == 0, result.output[-2000:] + log
    assert down.returncode == 0, down_out[-2000:] + log
    assert up.returncode == 0, up_out[-2000:] + log
    assert server.events("call.forward_next_route"), log


def test_an_emergency_call_is_never_barred_and_takes_the_emergency_route(
    sipp: str, tmp_path: Path
) -> None:
    """A PBX barred from short numbers still reaches 112, through the emergency route."""
    with uas_leg(sipp, tmp_path, "-sn", "uas") as (psap, port):
        routes = {
            "world": {"host": HOST, "port": 9, "prefixes": ["+"]},
            "sos": {"host": HOST, "port": port},
        }
        trunks = {**_screening_trunks(routes, barring=["short"]), "emergency": {"route": "sos"}}
        with stopped_on_exit(start_server(tmp_path, trunks=trunks)) as server:
            result = _pbx_call(sipp, tmp_path, server, "112", "033100255")
            out, _ = psap.communicate(timeout=30)
    log = "\n".join(server.raw[-40:])
    assert result.returncode == 0, result.output[-2000:] + log
    assert psap.returncode == 0, out[-2000:] + log
