"""Call pickup end to end: SIPp phones of acme's group, real RTP between caller and picker.

A caller on the ``test`` trunk (SIPp, RTP through an ``RtpParty``) calls 202, whose registered
SIPp phone rings. 203 (202's pickup group, the group's default) dials ``*8`` or ``**202`` with
its own ``RtpParty`` as media: its INVITE is answered, 202's INVITE is cancelled with
``Reason: SIP;cause=200;text="Call completed elsewhere"``, and the caller and 203 hear each
other. 204 (pickup group ``back``) may not pick up with ``*8``: 404. With nothing ringing, 404.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
import yaml

from callserver.sip.auth import password_ha1
from tests.e2e.conftest import (
    HOST,
    SCENARIOS,
    ServerProcess,
    exported_cdrs,
    free_port,
    media_port,
    popen_sipp,
    run_sipp,
    start_server,
    stopped_on_exit,
)
from tests.e2e.rtp_party import RtpParty
from tests.e2e.subscribers import CALLING, REALM, finished, phone, register_phone

PASSWORDS = {"202": "phone-202-secret", "203": "phone-203-secret", "204": "phone-204-secret"}
PICKUP_GROUPS = {"204": "back"}  # the others: the group's own
CALLER_FILL, PICKER_FILL = 0x55, 0x33  # each party's constant PCMU payload


def _server(tmp_path: Path) -> ServerProcess:
    """acme's group with phones 202, 203 and 204 (204 in pickup group ``back``), MD5."""
    subscribers = {
        f"+387 33 100 {ext}": {
            "username": f"38733100{ext}",
            "ha1_md5": password_ha1(f"38733100{ext}", REALM, password, "MD5"),
            **({"pickup_group": PICKUP_GROUPS[ext]} if ext in PICKUP_GROUPS else {}),
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
    return start_server(tmp_path, trunks=CALLING)


def _as_phone(ext: str, code: str, server: ServerProcess) -> tuple[str, ...]:
    """SIPp's arguments to dial ``code`` as phone ``ext``: From, credentials, digest URI."""
    user = f"38733100{ext}"
    credentials = ("-key", "caller", user, "-au", user, "-ap", PASSWORDS[ext])
    return ("-s", code, *credentials, "-auth_uri", f"{code}@{HOST}:{server.port}")


def _uac(
    sipp: str, tmp_path: Path, server: ServerProcess, scenario: str, rtp: RtpParty, *args: str
) -> subprocess.Popen[str]:
    """SIPp running ``scenario`` once against ``server``, its media on ``rtp``'s port."""
    name = f"{scenario}-{rtp.port}"
    return popen_sipp(
        [
            sipp,
            *("-sf", str(SCENARIOS / scenario), "-key", "rtp_port", str(rtp.port)),
            *("-i", HOST, "-p", str(free_port(both=False)), "-mp", str(media_port())),
            *("-m", "1", "-nostdin", "-timeout", "40s", "-timeout_error", "-trace_err"),
            *("-error_file", str(tmp_path / f"{name}.errors")),
            f"{HOST}:{server.port}",
            *args,
        ],
        tmp_path,
    )


def _rtp_port(server: ServerProcess, subscriber: str | None) -> int:
    """The server's RTP port of the answered call of ``subscriber`` (None: the caller's)."""
    for _ in range(2):
        answered = [e for e in server.events("call.answered") if e["subscriber"] == subscriber]
        if answered:
            return int(str(answered[0]["rtp_port"]))
        server.wait_for("call.bridged")
    raise AssertionError("\n".join(server.raw[-40:]))


def _ended(proc: subprocess.Popen[str], server: ServerProcess, tmp_path: Path) -> None:
    out, _ = proc.communicate(timeout=60)
    errors = "".join(p.read_text(errors="replace") for p in tmp_path.glob("*.errors"))
    assert proc.returncode == 0, out[-2000:] + errors + "\n".join(server.raw[-40:])


def _nothing_to_pick(sipp: str, tmp_path: Path, server: ServerProcess, ext: str) -> None:
    """Phone ``ext`` dials *8 and gets 404."""
    result = run_sipp(
        sipp,
        tmp_path,
        server.port,
        *("-sf", str(SCENARIOS / "uac-phone-call-expect-404.xml"), "-m", "1"),
        *_as_phone(ext, "*8", server),
        timeout=20,
    )
    assert result.returncode == 0, result.output[-2000:] + "\n".join(server.raw[-40:])


@pytest.mark.parametrize("code", ["*8", "**202"])
def test_a_phone_of_the_pickup_group_picks_up_a_call_ringing_at_another(
    sipp: str, tmp_path: Path, code: str
) -> None:
    """A calls 202; 204 (another pickup group) gets 404 for *8; 203 dials ``code`` and gets
    the call: 202's INVITE is cancelled as completed elsewhere, A and 203 hear each other,
    and the CDRs say 203 answered, linked to A's call."""
    caller, picker = RtpParty(CALLER_FILL), RtpParty(PICKER_FILL)
    try:
        with stopped_on_exit(_server(tmp_path)) as server:
            port = register_phone(
                sipp, tmp_path, server, user="38733100202", password=PASSWORDS["202"]
            )
            scenario = "uas-rings-expects-cancel-completed-elsewhere.xml"
            with phone(sipp, tmp_path, scenario, port) as rung:
                scenario_a = "uac-bridged-stays-up-then-bye.xml"
                a = _uac(sipp, tmp_path, server, scenario_a, caller, "-s", "38733100202")
                server.wait_for("call.ringing_contacts")
                if code == "*8":
                    _nothing_to_pick(sipp, tmp_path, server, "204")
                scenario_c = "uac-phone-picks-up-then-expects-bye.xml"
                c = _uac(
                    sipp, tmp_path, server, scenario_c, picker, *_as_phone("203", code, server)
                )
                server.wait_for("call.picked_up", timeout=20)
                picker.send_to(_rtp_port(server, "+38733100203"))
                caller.send_to(_rtp_port(server, None))
                finished(rung, server)
                _ended(a, server, tmp_path)
                _ended(c, server, tmp_path)
    finally:
        caller.close()
        picker.close()
    assert sum(p.payload == bytes([PICKER_FILL]) * 160 for p in caller.received) >= 50
    assert sum(p.payload == bytes([CALLER_FILL]) * 160 for p in picker.received) >= 50
    [event] = server.events("call.picked_up")
    assert (event["by"], event["ringing_at"]) == ("+38733100203", "+38733100202"), event
    _cdrs_say_who_answered(server)


def _cdrs_say_who_answered(server: ServerProcess) -> None:
    records = exported_cdrs(server.data_dir)
    caller = next(r for r in records if r["leg"] == "a" and r["called_raw"] == "38733100202")
    leg = next(r for r in records if r["leg"] == "b")
    picker = next(r for r in records if r["subscriber"] == "+38733100203")
    assert (caller["disposition"], caller["answered_by"]) == ("ANSWERED", "+38733100203")
    assert (leg["disposition"], leg["answered_by"]) == ("ANSWERED", "+38733100203"), leg
    assert leg["called_raw"] == "+38733100202" and leg["linked_id"] == caller["call_id"]
    assert picker["disposition"] == "ANSWERED" and picker["linked_id"] == caller["call_id"]
    assert picker["steps"] == ["pickup"], picker


def test_nothing_ringing_gets_404(sipp: str, tmp_path: Path) -> None:
    """203 dials *8 while no call rings in its pickup group: 404, and its CDR says so."""
    with stopped_on_exit(_server(tmp_path)) as server:
        _nothing_to_pick(sipp, tmp_path, server, "203")
    [record] = exported_cdrs(server.data_dir)
    assert (record["sip_code"], record["disposition"]) == (404, "FAILED"), record
    assert record["subscriber"] == "+38733100203" and record["steps"] == ["pickup"], record
