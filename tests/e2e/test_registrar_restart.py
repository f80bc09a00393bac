"""Bindings survive a restart, end to end (RFC 3261 §10.3): SIPp registers as a centrex.yaml
phone, the server stops on SIGTERM and a new one on the same data dir still holds the binding,
and a call to the phone's number after the restart reaches it."""

from __future__ import annotations

import re
import time
from pathlib import Path

from tests.e2e.conftest import ServerProcess, SippResult, run_scenario, run_sipp, start_server
from tests.e2e.subscribers import (
    CALLING,
    CREDENTIALS,
    TRUNKS,
    USERNAME,
    finished,
    phone,
    register_phone,
    write_centrex,
)

SHORT = 2  # seconds the short binding is registered for
REGISTRAR: dict[str, object] = {"min_expires": 1}  # a binding can expire in a restart


def _register(sipp: str, tmp_path: Path, server: ServerProcess) -> SippResult:
    return run_scenario(
        sipp,
        tmp_path,
        server,
        "uac-register-two-contacts-one-short.xml",
        *("-m", "1", "-key", "short", str(SHORT), *CREDENTIALS),
    )


def _listed(sipp: str, tmp_path: Path, server: ServerProcess) -> dict[str, int]:
    """The bindings a REGISTER without Contact gets listed in its 200: contact user, expires."""
    log = tmp_path / "query-messages.log"
    result = run_scenario(
        sipp,
        tmp_path,
        server,
        "uac-register-query-bindings.xml",
        *("-m", "1", *CREDENTIALS, "-trace_msg", "-message_file", str(log)),
    )
    assert result.returncode == 0, result.output[-2000:] + "\n".join(server.raw[-40:])
    answer = log.read_text().rpartition("SIP/2.0 200")[2].split("\n\n")[0]
    pairs = re.findall(r"<sip:(\w+)@[^>]+>;expires=(\d+)", answer)
    return {user: int(expires) for user, expires in pairs}


def test_a_binding_survives_a_restart_with_its_remaining_expiry(sipp: str, tmp_path: Path) -> None:
    """After SIGTERM and a new start on the same data dir, the hour-long binding is listed with
    less than its hour left, and the one that expired while the server was down is gone."""
    write_centrex(tmp_path)
    first = start_server(tmp_path, trunks=TRUNKS, registrar=REGISTRAR)
    try:
        registered = _register(sipp, tmp_path, first)
        assert registered.returncode == 0, registered.output[-2000:] + "\n".join(first.raw[-40:])
        at = time.monotonic()
    finally:
        code = first.stop()
    assert code == 0 and first.events("server.draining"), "\n".join(first.raw[-40:])
    time.sleep(max(0.0, at + SHORT + 0.5 - time.monotonic()))  # the short one is past due
    second = start_server(tmp_path, trunks=TRUNKS, registrar=REGISTRAR)
    try:
        listed = _listed(sipp, tmp_path, second)
    finally:
        second.stop()
    assert set(listed) == {"long201"}, listed
    assert 3000 < listed["long201"] < 3600


def test_a_phone_registered_before_a_restart_receives_a_call_after_it(
    sipp: str, tmp_path: Path
) -> None:
    """The binding from before the restart is where the call goes: the phone rings, answers
    and is bridged to the caller by the new server."""
    write_centrex(tmp_path)
    first = start_server(tmp_path, trunks=CALLING)
    try:
        port = register_phone(sipp, tmp_path, first)
    finally:
        assert first.stop() == 0, "\n".join(first.raw[-40:])
    second = start_server(tmp_path, trunks=CALLING)
    try:
        with phone(sipp, tmp_path, "uas-rings-answers-expects-bye.xml", port) as rung:
            result = run_sipp(
                sipp,
                tmp_path,
                second.port,
                *("-sn", "uac", "-d", "1000", "-s", USERNAME, "-m", "1"),
                timeout=30,
            )
            assert result.returncode == 0, result.output[-2000:] + "\n".join(second.raw[-40:])
            finished(rung, second)
    finally:
        second.stop()
