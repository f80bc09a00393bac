"""baresip phones and call forwarding: a call to a phone whose number forwards always lands
on the other phone.

Phones 201 and 202 of acme's group register with MD5 (baresip 1.0 gives up on SHA-256,
tests/phones/centrex.py); 202 forwards always to extension 201 in centrex.yaml. A SIPp caller
on the trunk ``test`` calls 202's number.
"""

from __future__ import annotations

import re
from pathlib import Path

from tests.e2e.conftest import HOST, exported_cdrs, run_sipp, start_server, stopped_on_exit
from tests.e2e.subscribers import CALLING, PHONES, write_group
from tests.phones.baresip import STATES, Account, Baresip
from tests.phones.centrex import microphone


def _phone(port: int, ext: str) -> Account:
    user = f"38733100{ext}"
    return Account(user=user, registrar=(HOST, port), auth_user=user, password=PHONES[ext])


def test_a_call_to_a_baresip_that_forwards_always_lands_on_the_other(
    sipp: str, tmp_path: Path
) -> None:
    """202 forwards always to 201: the caller's call is answered by 201's baresip, whose
    INVITE names 202 in Diversion; 202's baresip never rings."""
    write_group(tmp_path, services={"202": {"forward_always": "201"}})
    trunks = {**CALLING, "digest": {"algorithms": ["MD5"]}}
    server = start_server(tmp_path, trunks=trunks)
    with (
        stopped_on_exit(server),
        Baresip(
            tmp_path / "p201", microphone(tmp_path), _phone(server.port, "201"), sip_trace=True
        ) as a,
        Baresip(tmp_path / "p202", microphone(tmp_path), _phone(server.port, "202")) as b,
    ):
        a.wait_for("registered", timeout=5)
        b.wait_for("registered", timeout=5)
        result = run_sipp(
            sipp,
            tmp_path,
            server.port,
            *("-sn", "uac", "-d", "2000", "-s", "38733100202", "-m", "1"),
            *("-key", "caller", "38761000000"),
            timeout=30,
        )
        assert result.returncode == 0, result.output[-2000:] + "\n".join(server.raw[-40:])
        a.wait_for("established", timeout=5)
        a.wait_for("closed", timeout=10)
        [(_, invite)] = a.traced("INVITE")
        assert "Diversion: <sip:+38733100202@" in invite, invite
        assert ";reason=unconditional;counter=1" in invite, invite
        assert re.search(STATES["incoming"], b.output) is None, b.output[-2000:]
    legs = sorted(exported_cdrs(server.data_dir), key=lambda r: (r["leg"], str(r["start_stamp"])))
    assert [leg["leg"] for leg in legs] == ["a", "b"], legs
    assert legs[1]["called_raw"] == "+38733100201", legs
    assert (legs[1]["diversion_reason"], legs[1]["diverted_from"]) == (
        "unconditional",
        "+38733100202",
    )
