"""baresip as a Centrex phone dialling a service code: ``*21*202#`` sets forwarding always.

Phone 201 of acme's group registers with MD5 (baresip 1.0 gives up on SHA-256,
tests/phones/centrex.py), dials the code as a SIP URI's user, is challenged (407) and admitted
as 201; the server answers, plays the confirmation and hangs up, and the setting is in force.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.e2e.conftest import HOST, ServerProcess, start_server, stopped_on_exit
from tests.e2e.subscribers import CALLING, PHONES, write_group
from tests.phones.audio import rms
from tests.phones.baresip import Account, Baresip
from tests.phones.centrex import microphone


def _server(tmp_path: Path) -> ServerProcess:
    write_group(tmp_path)
    return start_server(tmp_path, trunks={**CALLING, "digest": {"algorithms": ["MD5"]}})


def test_baresip_dials_21_and_forwarding_always_is_set(tmp_path: Path) -> None:
    """201 dials *21*202#: the call is answered, the phone hears the confirmation (over half a
    second of sound) and is hung up by the server; CFU to 202 is logged and in force."""
    with stopped_on_exit(_server(tmp_path)) as server:
        account = Account(
            user="38733100201",
            registrar=(HOST, server.port),
            auth_user="38733100201",
            password=PHONES["201"],
        )
        with Baresip(tmp_path / "p201", microphone(tmp_path, 440.0), account) as phone:
            phone.wait_for("registered", timeout=5)
            phone.dial(f"sip:*21*202#@{HOST}:{server.port}")
            phone.wait_for("established", timeout=10)
            phone.wait_for("closed", timeout=20)
        changed = server.wait_for("services.changed")
    assert changed["number"] == "+38733100201", changed
    assert changed["values"] == {"forward_always": "202"}, changed
    heard = phone.received_audio()
    loud = [heard[i : i + 160] for i in range(0, len(heard) - 159, 160)]
    assert sum(1 for frame in loud if rms(frame) > 300) >= 25, "no confirmation heard"
    shown = subprocess.run(
        [
            *(sys.executable, "-m", "callserver", "subscribers", "show", "+38733100201"),
            *("--config", str(tmp_path / "callserver.yaml")),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout
    assert any(
        line.split() == ["forward_always", "202", "off", "202"] for line in shown.splitlines()
    )
