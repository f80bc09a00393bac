"""A supervisor follows the agent's leg through a transfer, end to end: phone 201 calls the
agent 202, the supervisor 203 whispers to 202, then 201 blind-transfers 202 out to a carrier
(SIPp) from the calling side, which bridges 202's leg to the carrier's.

Each party's media is an RTP party sending a tone of its own; after the transfer the
supervisor must hear 202 and the carrier, 202 the carrier and the supervisor, the carrier
202 alone, read from each party's spectrum as tests/e2e/test_supervision.py reads them.
"""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import yaml

from callserver.sip.auth import password_ha1
from tests.e2e.conftest import (
    HOST,
    SCENARIOS,
    ServerProcess,
    popen_sipp,
    start_server,
    stopped_on_exit,
    uas_leg,
)
from tests.e2e.rooms import magnitude, received_samples
from tests.e2e.rtp_party import RtpParty, tone_party
from tests.e2e.subscribers import CALLING, REALM, write_group
from tests.e2e.transfers import (
    ANSWERS,
    calling_phone,
    finished_all,
    reap,
    register_ext,
    sipp_phone,
    wait_event,
)

AGENT, CARRIER, SUPERVISOR = 700.0, 440.0, 1000.0
SUPERVISOR_PASSWORD = "phone-203-secret"


def _server(tmp_path: Path, carrier_port: int) -> ServerProcess:
    """acme's phones 201 and 202, 203 a supervisor; a carrier's route for +387."""
    write_group(tmp_path)
    centrex = yaml.safe_load((tmp_path / "centrex.yaml").read_text())
    centrex["groups"]["acme-office"]["subscribers"]["+387 33 100 203"] = {
        "username": "38733100203",
        "ha1_md5": password_ha1("38733100203", REALM, SUPERVISOR_PASSWORD, "MD5"),
        "role": "supervisor",
    }
    (tmp_path / "centrex.yaml").write_text(yaml.safe_dump(centrex))
    route = {"host": HOST, "port": carrier_port, "prefixes": ["+387"]}
    return start_server(tmp_path, trunks={**CALLING, "routes": {"carrier": route}})


def _whisperer(
    sipp: str, tmp_path: Path, server: ServerProcess, rtp: RtpParty
) -> subprocess.Popen[str]:
    """Phone 203 dialling *223202, staying until the server's BYE."""
    code, user = "*223202", "38733100203"
    return popen_sipp(
        [
            sipp,
            *("-sf", str(SCENARIOS / "uac-phone-picks-up-then-expects-bye.xml"), "-s", code),
            *("-key", "caller", user, "-au", user, "-ap", SUPERVISOR_PASSWORD),
            *("-auth_uri", f"{code}@{HOST}:{server.port}", "-key", "rtp_port", str(rtp.port)),
            *("-i", HOST, "-m", "1", "-nostdin", "-timeout", "40s", "-timeout_error"),
            f"{HOST}:{server.port}",
        ],
        tmp_path,
    )


def _levels(party: RtpParty, window: tuple[int, int]) -> dict[float, float]:
    """The magnitude of each tone in what ``party`` received in ``window``."""
    samples = received_samples(party, *window)
    assert len(samples) > 8000, len(samples)
    return {tone: magnitude(samples, tone) for tone in (AGENT, CARRIER, SUPERVISOR)}


def _hears(
    levels: dict[float, float], present: tuple[float, ...], absent: tuple[float, ...]
) -> None:
    """Every tone of ``present`` is loud, each of ``absent`` 30 times below the softest."""
    loud = min(levels[tone] for tone in present)
    assert loud > 1e4, levels
    assert all(levels[tone] < loud / 30 for tone in absent), levels


def test_the_supervisor_follows_the_agent_transferred_to_a_carrier(
    sipp: str, tmp_path: Path
) -> None:
    """201 transfers 202 out while 203 whispers to 202: the supervision goes on with 202 and
    the carrier (call.supervision_followed), whispering to 202 only, and ends with 202's call."""
    agent, carrier, supervisor = (tone_party(t) for t in (AGENT, CARRIER, SUPERVISOR))
    parties = {"agent": agent, "carrier": carrier, "supervisor": supervisor}
    talks = ("-sf", str(SCENARIOS / "uas-bridged-answers-talks-then-hangs-up.xml"))
    procs: list[subprocess.Popen[str]] = []
    try:
        with uas_leg(sipp, tmp_path, *talks, "-key", "rtp_port", str(carrier.port)) as leg:
            procs.append(leg[0])
            with stopped_on_exit(_server(tmp_path, leg[1])) as server:
                port = register_ext(sipp, tmp_path, server, "202")
                procs.append(sipp_phone(sipp, tmp_path, ANSWERS, port, agent))
                phone_201 = RtpParty(0x22)
                procs.append(calling_phone(sipp, tmp_path, server, phone_201.port, talk_ms=6000))
                agent.send_to(int(str(wait_event(server, "call.forwarding")["rtp_port"])))
                wait_event(server, "call.bridged")
                procs.append(_whisperer(sipp, tmp_path, server, supervisor))
                supervisor.send_to(int(str(wait_event(server, "call.supervising")["rtp_port"])))
                out = wait_event(server, "call.forwarding", target="+38761200300")
                carrier.send_to(int(str(out["rtp_port"])))
                followed = wait_event(server, "call.supervision_followed")
                time.sleep(0.8)  # the new parties' play-out buffers fill
                start = {name: len(party.received) for name, party in parties.items()}
                time.sleep(2.0)
                window = {name: (start[name], len(p.received)) for name, p in parties.items()}
                finished_all(procs, server)
                ended = wait_event(server, "call.supervision_ended")
                phone_201.close()
    finally:
        for party in parties.values():
            party.close()
        reap(procs)
    assert followed["mode"] == "whisper", followed
    _hears(_levels(supervisor, window["supervisor"]), (AGENT, CARRIER), (SUPERVISOR,))
    _hears(_levels(agent, window["agent"]), (CARRIER, SUPERVISOR), (AGENT,))
    _hears(_levels(carrier, window["carrier"]), (AGENT,), (SUPERVISOR, CARRIER))
    assert ended["by"] == "monitored call", ended
