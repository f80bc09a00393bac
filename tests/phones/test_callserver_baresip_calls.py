"""baresip as a Centrex phone that calls: an extension of its group (another baresip answers),
an outside number out through the operator's route (SIPp plays the carrier), and a number its
barring classes forbid (403).

Phones 201 and 202 of acme's group (202 barred from international numbers) register with MD5
(baresip 1.0 gives up on SHA-256, tests/phones/centrex.py); the carrier's route carries +387.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.e2e.conftest import (
    HOST,
    SCENARIOS,
    ServerProcess,
    exported_cdrs,
    start_server,
    stopped_on_exit,
    uas_leg,
)
from tests.e2e.subscribers import CALLING, PHONES, write_group
from tests.phones.audio import dominant_frequency, rms
from tests.phones.baresip import Account, Baresip
from tests.phones.centrex import microphone

OUTSIDE = "+38761200300"


def _server(tmp_path: Path, carrier_port: int = 9) -> ServerProcess:
    """acme's group with phones 201 and 202 (202 barred abroad), MD5, a route for +387."""
    write_group(tmp_path, phone_barring={"202": ["international"]})
    trunks = {
        **CALLING,
        "digest": {"algorithms": ["MD5"]},
        "routes": {"carrier": {"host": HOST, "port": carrier_port, "prefixes": ["+387"]}},
    }
    return start_server(tmp_path, trunks=trunks)


def _phone(server: ServerProcess, ext: str) -> Account:
    user = f"38733100{ext}"
    return Account(
        user=user,
        registrar=(HOST, server.port),
        auth_user=user,
        password=PHONES[ext],
    )


def test_baresip_dials_an_extension_and_the_other_phone_answers(tmp_path: Path) -> None:
    """201 dials 202: challenged (407) and admitted as 201, the other baresip rings and
    auto-answers, and it hears 201's 440 Hz tone through the bridge."""
    with stopped_on_exit(_server(tmp_path)) as server:
        with (
            Baresip(tmp_path / "p202", microphone(tmp_path, 600.0), _phone(server, "202")) as b,
            Baresip(tmp_path / "p201", microphone(tmp_path, 440.0), _phone(server, "201")) as a,
        ):
            a.wait_for("registered", timeout=5)
            b.wait_for("registered", timeout=5)
            a.dial(f"sip:202@{HOST}:{server.port}")
            a.wait_for("established", timeout=10)
            b.wait_for("established", timeout=10)
            b.wait_for(r"\[0:00:02\]", timeout=6)
            a.hang_up()
            a.wait_for("closed")
            b.wait_for("closed")
        challenged = server.events("call.challenged")
        assert challenged and challenged[0]["status"] == 407, "\n".join(server.raw[-40:])
    heard = b.received_audio()
    assert len(heard) >= 8000, "less than a second of audio received"
    assert dominant_frequency(heard) == pytest.approx(440.0, abs=10.0)
    assert rms(heard) > 2000
    legs = {record["leg"]: record for record in exported_cdrs(server.data_dir)}
    assert legs["a"]["subscriber"] == "+38733100201" and legs["b"]["called_raw"] == "+38733100202"


def test_baresip_calls_an_outside_number_out_through_the_route(sipp: str, tmp_path: Path) -> None:
    """201 dials 061 200 300: the carrier (SIPp) gets the INVITE with 201's number in From and
    P-Asserted-Identity and answers; the outbound leg's CDR is the caller's, by destination."""
    template = (SCENARIOS / "uas-carrier-answers-expects-identity.xml").read_text()
    carrier_scenario = tmp_path / "carrier.xml"
    carrier_scenario.write_text(template.replace("IDENTITY", "\\+38733100201"))
    with uas_leg(sipp, tmp_path, "-sf", str(carrier_scenario)) as (carrier, port):
        server = _server(tmp_path, port)
        with (
            stopped_on_exit(server),
            Baresip(tmp_path / "p201", microphone(tmp_path), _phone(server, "201")) as a,
        ):
            a.wait_for("registered", timeout=5)
            a.dial(f"sip:061200300@{HOST}:{server.port}")
            a.wait_for("established", timeout=10)
            a.wait_for(r"\[0:00:01\]", timeout=5)
            a.hang_up()
            a.wait_for("closed")
            out, _ = carrier.communicate(timeout=30)
    assert carrier.returncode == 0, out[-2000:] + "\n".join(server.raw[-40:])
    legs = {record["leg"]: record for record in exported_cdrs(server.data_dir)}
    b = legs["b"]
    assert (b["direction"], b["called_raw"], b["customer"]) == ("outbound", OUTSIDE, "acme")
    assert [charge["payer"] for charge in b["charges"]] == ["caller"], b


def test_baresip_barred_from_international_numbers_gets_403(tmp_path: Path) -> None:
    """202 is barred from international numbers: dialling Germany ends in 403 on the phone,
    and the call's CDR says barred."""
    server = _server(tmp_path)
    with (
        stopped_on_exit(server),
        Baresip(tmp_path / "p202", microphone(tmp_path), _phone(server, "202")) as b,
    ):
        b.wait_for("registered", timeout=5)
        b.dial(f"sip:004930123456@{HOST}:{server.port}")
        b.wait_for(r"403 Forbidden", timeout=10)
    legs = {record["leg"]: record for record in exported_cdrs(server.data_dir)}
    assert (legs["a"]["end_reason"], legs["a"]["sip_code"]) == ("barred", 403), legs
    assert legs["b"]["end_reason"] == "barred", legs  # the leg never placed
