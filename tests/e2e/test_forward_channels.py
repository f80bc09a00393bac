"""A diverted leg is the forwarding group's call out: it takes a channel from the group's pool.

acme's group has one channel (centrex.yaml ``channels``) and 201 forwards always to an outside
number. A caller on the trunk ``test`` (which has no limit) calls 201: while phone 202 holds
the group's channel in a call of its own (to a conference room's number, run here), the
diverted leg is refused 503 with Q.850 cause 34 and both records say channel limit; with the
channel free the leg goes out to the carrier (SIPp) and is answered.
"""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import yaml

from tests.e2e.conftest import (
    HOST,
    SCENARIOS,
    ServerProcess,
    exported_cdrs,
    popen_sipp,
    run_scenario,
    start_server,
    stopped_on_exit,
    uas_leg,
)
from tests.e2e.diversions import OUTSIDE, call_201, expecting
from tests.e2e.rooms import ROOM, write_plans
from tests.e2e.subscribers import CALLER, CALLING, PHONES, write_group
from tests.e2e.transfers import finished_all, reap

A = "+38733100201"


def _server(tmp_path: Path, carrier_port: int = 9) -> ServerProcess:
    """acme's group with one channel, 201 forwarding always to ``OUTSIDE``, the room's plan,
    and a route for +387 to the carrier at ``carrier_port``."""
    write_group(tmp_path, services={"201": {"forward_always": "061 200 300"}})
    path = tmp_path / "centrex.yaml"
    centrex = yaml.safe_load(path.read_text())
    centrex["groups"]["acme-office"]["channels"] = 1
    path.write_text(yaml.safe_dump(centrex))
    plans = write_plans(tmp_path, ROOM)
    route = {"carrier": {"host": HOST, "port": carrier_port, "prefixes": ["+387"]}}
    return start_server(tmp_path, dialplans=plans, trunks={**CALLING, "routes": route})


def _phone_202_in_the_room(
    sipp: str, tmp_path: Path, server: ServerProcess
) -> subprocess.Popen[str]:
    """Phone 202 calls the room's number and stays 15 s: the group's one channel is in use."""
    user = "38733100202"
    return popen_sipp(
        [
            sipp,
            *("-sf", str(SCENARIOS / "uac-phone-call-holds.xml"), "-d", "15000"),
            *("-key", "caller", user, "-au", user, "-ap", PHONES["202"], "-s", "+" + ROOM),
            *("-auth_uri", f"+{ROOM}@{HOST}:{server.port}", "-i", HOST, "-m", "1"),
            *("-nostdin", "-timeout", "40s", "-timeout_error", f"{HOST}:{server.port}"),
        ],
        tmp_path,
    )


def _joined(server: ServerProcess) -> None:
    """Waits until 202's call is in the room (it holds the channel from its INVITE on)."""
    deadline = time.monotonic() + 20
    while not server.events("conference.joined") and time.monotonic() < deadline:
        time.sleep(0.05)
    assert server.events("conference.joined"), "\n".join(server.raw[-40:])


def test_a_forward_out_is_refused_while_the_groups_channel_is_in_use(
    sipp: str, tmp_path: Path
) -> None:
    """202 holds the group's one channel: the caller's call to 201 (CFU out) gets 503 with
    cause 34; the diverted leg's CDR and the caller's end ``channel_limit``, ``end_detail``
    channel limit; no INVITE goes out."""
    with stopped_on_exit(_server(tmp_path)) as server:
        busy = _phone_202_in_the_room(sipp, tmp_path, server)
        procs = [busy]
        try:
            _joined(server)
            result = run_scenario(sipp, tmp_path, server, "uac-expect-503-cause-34.xml", *CALLER)
            assert result.returncode == 0, result.output[-2000:] + "\n".join(server.raw[-40:])
            finished_all(procs, server)
        finally:
            reap(procs)
    records = exported_cdrs(server.data_dir)
    leg = next(r for r in records if r["called_raw"] == OUTSIDE)
    assert (leg["end_reason"], leg["end_detail"]) == ("channel_limit", "channel limit"), leg
    assert (leg["diversion_reason"], leg["diverted_from"]) == ("unconditional", A), leg
    a = next(r for r in records if r["linked_id"] == leg["linked_id"] and r["leg"] == "a")
    assert (a["end_reason"], a["end_detail"]) == ("channel_limit", "channel limit"), a
    assert not [e for e in server.events("call.forwarding") if e["target"] == OUTSIDE]


def test_with_the_groups_channel_free_the_forward_goes_out(sipp: str, tmp_path: Path) -> None:
    """Nobody of the group is in a call: the diverted leg takes the group's one channel and
    the carrier answers it, with Diversion unconditional."""
    carrier = expecting(tmp_path, "unconditional")
    with (
        uas_leg(sipp, tmp_path, "-sf", carrier) as (outside, carrier_port),
        stopped_on_exit(_server(tmp_path, carrier_port)) as server,
    ):
        call_201(sipp, tmp_path, server)
        out, _ = outside.communicate(timeout=30)
        assert outside.returncode == 0, out[-2000:] + "\n".join(server.raw[-40:])
    leg = next(r for r in exported_cdrs(server.data_dir) if r["called_raw"] == OUTSIDE)
    assert leg["disposition"] == "ANSWERED" and leg["end_reason"] == "normal", leg
    assert (leg["payer"], leg["customer"]) == ("called", "acme"), leg
