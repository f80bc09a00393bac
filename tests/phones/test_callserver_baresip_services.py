"""baresip as a Centrex phone dialling a service code: ``*21*202#`` sets forwarding always,
``*39`` marks the last incoming call malicious (MCID).

Phones 201 and 202 of acme's group register with MD5 (baresip 1.0 gives up on SHA-256,
tests/phones/centrex.py). 201 dials the code as a SIP URI's user (``#`` unescaped, as baresip
sends it), is challenged (407) and admitted as 201; the server answers, plays the confirmation
and hangs up. After ``*21*202#`` a SIPp caller on the trunk ``test`` calls 201's number and
202 answers; before ``*39`` a SIPp caller withholding its number talks to 201.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from tests.e2e.conftest import (
    HOST,
    SCENARIOS,
    ServerProcess,
    exported_cdrs,
    run_sipp,
    start_server,
    stopped_on_exit,
)
from tests.e2e.subscribers import CALLING, PHONES, write_group
from tests.phones.audio import rms
from tests.phones.baresip import STATES, Account, Baresip
from tests.phones.centrex import microphone


def _server(tmp_path: Path) -> ServerProcess:
    write_group(tmp_path)
    return start_server(tmp_path, trunks={**CALLING, "digest": {"algorithms": ["MD5"]}})


def _phone(port: int, ext: str) -> Account:
    user = f"38733100{ext}"
    return Account(user=user, registrar=(HOST, port), auth_user=user, password=PHONES[ext])


def test_baresip_dials_21_and_the_next_call_lands_on_the_target(sipp: str, tmp_path: Path) -> None:
    """201 dials *21*202#: the call is answered, the phone hears the confirmation (over half a
    second of sound) and is hung up by the server; CFU to 202 is in force, and a caller's call
    to 201 is then answered by 202's baresip while 201's never rings."""
    with stopped_on_exit(_server(tmp_path)) as server:
        with (
            Baresip(
                tmp_path / "p201", microphone(tmp_path, 440.0), _phone(server.port, "201")
            ) as a,
            Baresip(
                tmp_path / "p202", microphone(tmp_path, 600.0), _phone(server.port, "202")
            ) as b,
        ):
            a.wait_for("registered", timeout=5)
            b.wait_for("registered", timeout=5)
            a.dial(f"sip:*21*202#@{HOST}:{server.port}")
            a.wait_for("established", timeout=10)
            a.wait_for("closed", timeout=20)
            heard = a.received_audio()
            result = run_sipp(
                sipp,
                tmp_path,
                server.port,
                *("-sn", "uac", "-d", "2000", "-s", "38733100201", "-m", "1"),
                *("-key", "caller", "38761000000"),
                timeout=30,
            )
            assert result.returncode == 0, result.output[-2000:] + "\n".join(server.raw[-40:])
            b.wait_for("established", timeout=5)
            b.wait_for("closed", timeout=10)
            assert re.search(STATES["incoming"], a.output) is None, a.output[-2000:]
        changed = server.wait_for("services.changed")
    assert changed["number"] == "+38733100201", changed
    assert changed["values"] == {"forward_always": "202"}, changed
    frames = [heard[i : i + 160] for i in range(0, len(heard) - 159, 160)]
    assert sum(1 for frame in frames if rms(frame) > 300) >= 25, "no confirmation heard"
    diverted = [r for r in exported_cdrs(server.data_dir) if r["leg"] == "b"]
    assert [(r["called_raw"], r["diverted_from"], r["diversion_reason"]) for r in diverted] == [
        ("+38733100202", "+38733100201", "unconditional")
    ], diverted
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


def test_baresip_dials_39_after_a_withheld_call_and_marks_it_malicious(
    sipp: str, tmp_path: Path
) -> None:
    """A caller withholding its number (Privacy: id, number asserted) talks to 201's baresip
    and hangs up; 201 then dials *39 and hears the confirmation: the log's call.malicious
    names the caller as received, and both legs of that call are marked malicious in the
    CDRs while the code's own call is not."""
    with (
        stopped_on_exit(_server(tmp_path)) as server,
        Baresip(tmp_path / "p201", microphone(tmp_path, 440.0), _phone(server.port, "201")) as a,
    ):
        a.wait_for("registered", timeout=5)
        result = run_sipp(
            sipp,
            tmp_path,
            server.port,
            *("-sf", str(SCENARIOS / "uac-withheld-caller-hangs-up-after-answer.xml")),
            *("-s", "+38733100201", "-key", "caller", "+38761000111", "-d", "1000"),
            *("-m", "1"),
            timeout=30,
        )
        assert result.returncode == 0, result.output[-2000:] + "\n".join(server.raw[-40:])
        a.wait_for("established", timeout=5)
        a.wait_for("closed", timeout=10)
        a.dial(f"sip:*39@{HOST}:{server.port}")
        a.wait_for("established", timeout=10)
        a.wait_for("closed", timeout=20)
        heard = a.received_audio()
        event = server.wait_for("call.malicious")
    assert "+38761000111" in str(event["p_asserted_identity"]), event
    assert event["privacy"] == "id" and "anonymous" in str(event["from_header"]), event
    frames = [heard[i : i + 160] for i in range(0, len(heard) - 159, 160)]
    assert sum(1 for frame in frames if rms(frame) > 300) >= 25, "no confirmation heard"
    records = exported_cdrs(server.data_dir)
    marked = [r for r in records if r["malicious"]]
    assert sorted((r["leg"], r["called_raw"]) for r in marked) == [
        ("a", "+38733100201"),
        ("b", "+38733100201"),
    ], records
    assert all(r["malicious"] == event["marked_at"] for r in marked), marked
    [code] = [r for r in records if not r["malicious"]]
    assert (code["called_raw"], code["subscriber"]) == ("*39", "+38733100201"), code
