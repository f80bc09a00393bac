"""The server, its queue and the SIPp caller of the softphone's end-to-end tests (the aiortc
client's and Chromium's): acme's phones 201 and 202, a queue ``support`` of agent 201 on
acme's number 38733100250, admin tokens of the operator, acme and globex."""

from __future__ import annotations

import subprocess
from pathlib import Path

from callserver.config.admin import token_digest
from tests.e2e.conftest import HOST, SCENARIOS, ServerProcess, plan_dir, popen_sipp, start_server
from tests.e2e.rtp_party import RtpParty
from tests.e2e.subscribers import CALLING, write_group

QUEUE_NUMBER = "38733100250"
AGENT = "+38733100201"
OPERATOR, ACME, GLOBEX = "noc-softphone-e2e", "acme-softphone-e2e", "globex-softphone-e2e"
PLAN = """language: en
steps:
  support:
    queue: support
    agents: ["201"]
    ring_timeout: 15s
    wrap_up: 1s
    max_wait: 60s
    display: "Support: "
    no_agents: closed
  closed:
    play: closed
"""
ADMIN: dict[str, object] = {
    "tokens": [
        {"name": "noc", "role": "operator", "sha256": token_digest(OPERATOR)},
        {"name": "acme", "role": "customer", "customer": "acme", "sha256": token_digest(ACME)},
        {
            "name": "globex",
            "role": "customer",
            "customer": "globex",
            "sha256": token_digest(GLOBEX),
        },
    ],
    "softphone": {"address": HOST},
}


def softphone_server(tmp_path: Path, *, group: bool = True) -> ServerProcess:
    """The server with acme's phones (unless ``group`` is False: the test wrote its own
    centrex.yaml), the queue plan and the tokens; no agent logged in."""
    if group:
        write_group(tmp_path)
    plans = plan_dir(tmp_path, QUEUE_NUMBER, PLAN)
    trunks = {**CALLING, "customers": {"acme": {"agents": 2}, "globex": {}}}
    # Each test opens softphones of one agent in quick succession: more REGISTERs at once
    # than a phone's default burst (5) allows.
    registrar = {"register_burst": 20}
    return start_server(tmp_path, trunks=trunks, dialplans=plans, admin=ADMIN, registrar=registrar)


def admin_port(server: ServerProcess) -> int:
    """The admin API's port."""
    return int(server.wait_for("admin.listening")["port"])


def queue_caller(
    sipp: str, tmp_path: Path, server: ServerProcess, rtp: RtpParty, stay_ms: int | None = None
) -> subprocess.Popen[str]:
    """SIPp on the trunk calling the queue, its media at ``rtp``, until the server's BYE; with
    ``stay_ms``, hanging up that long after the answer."""
    scenario = "uac-queue-caller-talks-until-agent-hangs-up.xml"
    if stay_ms is not None:
        scenario = "uac-queue-caller-stays-then-bye.xml"
    return popen_sipp(
        [
            sipp,
            *("-sf", str(SCENARIOS / scenario), "-d", str(stay_ms or 0)),
            *("-key", "caller", "+38761000001", "-key", "rtp_port", str(rtp.port)),
            *("-i", HOST, "-m", "1", "-nostdin", "-timeout", "60s", "-timeout_error"),
            *("-s", QUEUE_NUMBER, f"{HOST}:{server.port}"),
        ],
        tmp_path,
    )
