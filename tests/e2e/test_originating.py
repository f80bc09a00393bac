"""Calls from a customer's PBX trunk (Business Trunking): out through a route, or terminating.

The local trunk belongs to customer acme, so its calls are *originating*: a number that is not
the operator's own goes out through the outbound route (a SIPp uas plays the carrier), while
one of the operator's own numbers runs as any inbound call (here the default plan answers).
"""

from __future__ import annotations

from pathlib import Path

from tests.e2e.conftest import (
    HOST,
    exported_cdrs,
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
