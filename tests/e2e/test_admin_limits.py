"""The limits of a real `callserver run`: a SIPp call through a 2-channel trunk holds 1 of its
2 channels while it is up, as /api/limits shows it, and gives it back when it ends."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tests.admin.tokens import ACME, GLOBEX, OPERATOR
from tests.e2e.admin_client import ADMIN, api
from tests.e2e.conftest import (
    HOST,
    SCENARIOS,
    ServerProcess,
    free_port,
    media_port,
    popen_sipp,
    start_server,
    stopped_on_exit,
)

CALLED = "38733100200"
TRUNKS: dict[str, object] = {
    "customers": {"acme": {"channels": 5}, "globex": {}},
    "trunks": {"acme-pbx": {"match": [HOST], "customer": "acme", "channels": 2, "cps": 10}},
    "numbers": {CALLED: {}},  # the operator's: a call to it is not routed out
}


def _limits(server: ServerProcess, token: str) -> dict[str, Any]:
    """GET /api/limits with ``token``."""
    status, body = api(server, "GET", "/api/limits", token)
    assert status == 200, body
    limits: dict[str, Any] = body
    return limits


def _trunk(body: dict[str, Any]) -> dict[str, Any]:
    return next(p for p in body["pools"] if (p["kind"], p["name"]) == ("trunk", "acme-pbx"))


def _until(
    server: ServerProcess, wanted: Callable[[dict[str, Any]], bool], timeout: float = 10.0
) -> dict[str, Any]:
    """The operator's /api/limits once it is as ``wanted``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        body = _limits(server, OPERATOR)
        if wanted(body):
            return body
        time.sleep(0.05)
    raise AssertionError(f"never as wanted: {body}; server output:\n" + "\n".join(server.raw[-30:]))


def test_a_sipp_call_holds_one_of_the_trunks_two_channels_while_it_is_up(
    sipp: str, tmp_path: Path
) -> None:
    """During SIPp's call the trunk shows 1 in use of 2 (acme sees it, globex does not);
    after the server's BYE it shows 0 again."""
    server = start_server(tmp_path, trunks=TRUNKS, admin=ADMIN, hangup_after=3.0)
    with stopped_on_exit(server):
        idle = _limits(server, OPERATOR)
        assert (_trunk(idle)["channels_in_use"], idle["calls_in_progress"]) == (0, 0)
        cmd = [
            sipp,
            f"{HOST}:{server.port}",
            *("-i", HOST, "-p", str(free_port(both=False)), "-mp", str(media_port())),
            *("-sf", str(SCENARIOS / "uac-expect-server-bye.xml"), "-s", CALLED, "-m", "1"),
            *("-nostdin", "-timeout", "30s", "-timeout_error"),
        ]
        caller = popen_sipp(cmd, tmp_path)
        try:
            during = _until(server, lambda body: _trunk(body)["channels_in_use"] == 1)
            assert _trunk(during) == {
                "kind": "trunk",
                "name": "acme-pbx",
                "customer": "acme",
                "channels_in_use": 1,
                "channels": 2,
                "cps": 10.0,
            }
            assert during["calls_in_progress"] == 1
            acme = _limits(server, ACME)
            assert _trunk(acme)["channels_in_use"] == 1 and acme["calls_in_progress"] == 1
            globex = _limits(server, GLOBEX)
            assert (globex["pools"], globex["calls_in_progress"]) == (
                [
                    {
                        "kind": "customer",
                        "name": "globex",
                        "customer": "globex",
                        "channels_in_use": 0,
                        "channels": None,
                        "cps": None,
                    }
                ],
                0,
            )
            assert caller.wait(timeout=20) == 0, caller.communicate()[0]
        finally:
            if caller.poll() is None:
                caller.kill()
                caller.wait()
        after = _until(server, lambda body: _trunk(body)["channels_in_use"] == 0)
        assert after["calls_in_progress"] == 0
        assert set(after["rejections"].values()) == {0}
