"""Call-centre agents log in, pause and log out from real phones (SIPp) and the command line.

acme (2 agent licences) has phones 201, 202 and 203 (prompts in English). Each phone dials
its code as SIPp answering the 407 with its password; what it hears is read from an
``RtpParty`` socket and matched, packet by packet, with the prompt's PCMU encoding. Its
state is then read where the statistics and a restart read it: agents.sqlite and the queue
event log.
"""

from __future__ import annotations

import json
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

import yaml

from callserver.media.rtp import RtpPacket
from callserver.sip.auth import password_ha1
from tests.e2e.conftest import (
    HOST,
    SCENARIOS,
    ServerProcess,
    run_sipp,
    start_server,
    stopped_on_exit,
)
from tests.e2e.rtp_party import RtpParty
from tests.e2e.subscribers import CALLING, REALM
from tests.e2e.test_service_codes import _frames, _heard

PASSWORDS = {ext: f"phone-{ext}-secret" for ext in ("201", "202", "203")}


def _number(ext: str) -> str:
    return f"+38733100{ext}"


def _server(tmp_path: Path, trunks: dict[str, object] | None = None) -> ServerProcess:
    """acme's group of three English phones, 2 agent licences (or ``trunks``'), a trunk to
    call from."""
    subscribers = {
        f"+387 33 100 {ext}": {
            "username": f"38733100{ext}",
            "ha1_md5": password_ha1(f"38733100{ext}", REALM, password, "MD5"),
            "language": "en",
        }
        for ext, password in PASSWORDS.items()
    }
    group = {
        "customer": "acme",
        "numbers": ["+387 33 100 200-299"],
        "realm": REALM,
        "extensions": {"digits": 3},
        "subscribers": subscribers,
    }
    (tmp_path / "centrex.yaml").write_text(yaml.safe_dump({"groups": {"acme-office": group}}))
    licensed = {**CALLING, "customers": {"acme": {"agents": 2}}}
    return start_server(tmp_path, trunks=trunks or licensed)


def _dial(sipp: str, tmp_path: Path, server: ServerProcess, ext: str, code: str) -> list[RtpPacket]:
    """Phone ``ext`` dials ``code`` (``#`` as ``%23``) and hears the answer until the BYE."""
    dialled, user = code.replace("#", "%23"), f"38733100{ext}"
    party = RtpParty(0xFF)
    try:
        result = run_sipp(
            sipp,
            tmp_path,
            server.port,
            *("-sf", str(SCENARIOS / "uac-phone-dials-code-hears-confirmation.xml")),
            *("-set", "rtp_port", str(party.port), "-s", dialled, "-m", "1"),
            *("-key", "caller", user, "-au", user, "-ap", PASSWORDS[ext]),
            *("-auth_uri", f"{dialled}@{HOST}:{server.port}"),
            timeout=60,
        )
    finally:
        party.close()
    assert result.returncode == 0, result.output[-2000:] + "\n".join(server.raw[-40:])
    return party.received


def _hears(packets: list[RtpPacket], prompt: str) -> bool:
    """Most of ``prompt`` (English) is in ``packets``."""
    return _heard(packets, prompt, "en") >= _frames(prompt, "en") * 0.8


def _stored(data_dir: Path) -> dict[str, tuple[str, str | None]]:
    """agents.sqlite's state and pause reason of each agent."""
    with sqlite3.connect(data_dir / "agents.sqlite") as db:
        return {n: (s, r) for n, s, r in db.execute("SELECT number, state, reason FROM agent")}


def _logged(data_dir: Path) -> list[tuple[str, str, str | None]]:
    """The queue event log's (kind, agent, reason) lines, in order."""
    lines = [
        json.loads(line)
        for path in sorted((data_dir / "queue-events").glob("*.jsonl"))
        for line in path.read_text().splitlines()
    ]
    return [(line["kind"], line["agent"], line["reason"]) for line in lines]


def _cli(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """`callserver agents ARGS` on the test's settings."""
    return subprocess.run(
        [sys.executable, "-m", "callserver", "agents", *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        cwd=tmp_path,
    )


def _config(tmp_path: Path) -> tuple[str, str]:
    return "--config", str(tmp_path / "callserver.yaml")


def test_phones_log_in_within_the_licences_pause_and_stay_so_over_a_restart(
    sipp: str, tmp_path: Path
) -> None:
    """*45 logs 201 and 202 in; 203, the third of two licences, hears 'no licence' and stays
    logged out; *47*3# pauses 202 with reason 3; agents.sqlite and the queue event log say
    so, and after a restart 201 is available and 202 paused with reason 3."""
    with stopped_on_exit(_server(tmp_path)) as server:
        assert _hears(_dial(sipp, tmp_path, server, "201", "*45"), "agent_logged_in")
        assert _hears(_dial(sipp, tmp_path, server, "202", "*45#"), "agent_logged_in")
        assert _hears(_dial(sipp, tmp_path, server, "203", "*45"), "agent_no_licence")
        assert _hears(_dial(sipp, tmp_path, server, "202", "*47*3#"), "agent_paused")
    data = server.data_dir
    assert _stored(data) == {
        _number("201"): ("available", None),
        _number("202"): ("paused", "3"),
    }
    assert _logged(data) == [
        ("login", _number("201"), None),
        ("login", _number("202"), None),
        ("pause", _number("202"), "3"),
    ]
    with stopped_on_exit(_server(tmp_path)) as server:
        listed = _cli(tmp_path, "list", "--format", "json", *_config(tmp_path))
        assert _hears(_dial(sipp, tmp_path, server, "202", "#47#"), "agent_available")
    rows = {row["number"]: (row["state"], row["reason"]) for row in json.loads(listed.stdout)}
    assert rows == {_number("201"): ("available", None), _number("202"): ("paused", "3")}
    assert _stored(data)[_number("202")] == ("available", None)
    assert _logged(data)[-1] == ("unpause", _number("202"), None)


def test_the_command_line_changes_a_running_server_and_the_data_dir_without_one(
    sipp: str, tmp_path: Path
) -> None:
    """With the server running, `agents login` takes licences as a phone does (the third is
    refused, exit 1), `pause` and `logout` change its agents and the phone sees it; with
    none running, `agents unpause` changes agents.sqlite and says so."""
    with stopped_on_exit(_server(tmp_path)) as server:
        first = _cli(tmp_path, "login", "+387 33 100 201", *_config(tmp_path))
        second = _cli(tmp_path, "login", "033 100 202", *_config(tmp_path))
        third = _cli(tmp_path, "login", _number("203"), *_config(tmp_path))
        paused = _cli(tmp_path, "pause", _number("202"), "7", *_config(tmp_path))
        out = _cli(tmp_path, "logout", _number("201"), *_config(tmp_path))
        assert _hears(_dial(sipp, tmp_path, server, "203", "*45"), "agent_logged_in")
        unknown = _cli(tmp_path, "login", "+387 33 100 250", *_config(tmp_path))
    assert first.returncode == 0 and "logged_in" in first.stdout, first.stdout + first.stderr
    assert second.returncode == 0 and "no running server" not in second.stdout, second.stdout
    assert third.returncode == 1 and "no_licence" in third.stdout, third.stdout + third.stderr
    assert paused.returncode == 0 and "paused" in paused.stdout, paused.stdout + paused.stderr
    assert out.returncode == 0 and "logged_out" in out.stdout, out.stdout + out.stderr
    assert unknown.returncode == 1 and "not a Centrex subscriber" in unknown.stderr, unknown
    offline = _cli(tmp_path, "unpause", _number("202"), *_config(tmp_path))
    assert offline.returncode == 0, offline.stdout + offline.stderr
    assert "no running server: agents.sqlite changed directly" in offline.stdout, offline.stdout
    assert _stored(server.data_dir) == {
        _number("201"): ("logged_out", None),
        _number("202"): ("available", None),
        _number("203"): ("available", None),
    }
    assert _logged(server.data_dir)[-1] == ("unpause", _number("202"), None)


def test_a_sighup_logs_out_removed_phones_and_agents_beyond_lowered_licences(
    tmp_path: Path,
) -> None:
    """201, 202 and 203 logged in on 3 licences; centrex.yaml loses 201, trunks.yaml lowers
    acme to 1 licence, SIGHUP: 201 is logged out as removed, 203 (the latest login) for the
    licence, 202 stays; each logout is a queue log line that says why."""
    trunks = {**CALLING, "customers": {"acme": {"agents": 3}}}
    with stopped_on_exit(_server(tmp_path, trunks)) as server:
        for ext in ("201", "202", "203"):
            done = _cli(tmp_path, "login", _number(ext), *_config(tmp_path))
            assert done.returncode == 0, done.stdout + done.stderr
        centrex = yaml.safe_load((tmp_path / "centrex.yaml").read_text())
        del centrex["groups"]["acme-office"]["subscribers"]["+387 33 100 201"]
        (tmp_path / "centrex.yaml").write_text(yaml.safe_dump(centrex))
        lowered = {**CALLING, "customers": {"acme": {"agents": 1}}}
        (tmp_path / "trunks.yaml").write_text(yaml.safe_dump(lowered))
        server.proc.send_signal(signal.SIGHUP)
        server.wait_for("config.reloaded")
        server.wait_for("queues.agent_logged_out")
        listed = _cli(tmp_path, "list", "--format", "json", *_config(tmp_path))
    logged_out = [(e["agent"], e["reason"]) for e in server.events("queues.agent_logged_out")]
    assert logged_out == [(_number("201"), "removed"), (_number("203"), "licence")]
    rows = {row["number"]: row["state"] for row in json.loads(listed.stdout)}
    assert rows[_number("202")] == "available", listed.stdout
    assert _stored(server.data_dir) == {
        _number("201"): ("logged_out", None),
        _number("202"): ("available", None),
        _number("203"): ("logged_out", None),
    }
    assert _logged(server.data_dir)[-2:] == [
        ("logout", _number("201"), "removed"),
        ("logout", _number("203"), "licence"),
    ]


def test_a_pause_without_a_reason_code(sipp: str, tmp_path: Path) -> None:
    """*47# pauses 201 with no reason code: it hears 'you are paused', `agents list` shows its
    reason as '-', agents.sqlite and the queue log's pause line hold none; *47*3# then gives
    it one."""
    with stopped_on_exit(_server(tmp_path)) as server:
        assert _hears(_dial(sipp, tmp_path, server, "201", "*45"), "agent_logged_in")
        assert _hears(_dial(sipp, tmp_path, server, "201", "*47#"), "agent_paused")
        listed = _cli(tmp_path, "list", *_config(tmp_path))
        stored = _stored(server.data_dir)
        assert _hears(_dial(sipp, tmp_path, server, "201", "*47*3#"), "agent_paused")
    (row,) = [line.split() for line in listed.stdout.splitlines() if "+38733100201" in line]
    assert row[3:5] == ["paused", "-"], listed.stdout
    assert stored == {_number("201"): ("paused", None)}
    assert _logged(server.data_dir) == [
        ("login", _number("201"), None),
        ("pause", _number("201"), None),
        ("unpause", _number("201"), None),
        ("pause", _number("201"), "3"),
    ]
