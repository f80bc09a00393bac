"""Call pickup with three baresip phones of acme's group (one pickup group, the default).

201 calls 202, whose phone rings (``answermode=manual``); 203 dials ``*8`` (its pickup group)
or ``**202`` (that extension) and is connected to 201: 202's ringing ends (its INVITE
cancelled), and 201 and 203 hear each other's tones.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import yaml

from callserver.sip.auth import password_ha1
from tests.e2e.conftest import HOST, ServerProcess, exported_cdrs, start_server, stopped_on_exit
from tests.e2e.subscribers import CALLING, REALM
from tests.phones.audio import dominant_frequency, rms, tone, write_wav
from tests.phones.baresip import Account, Baresip

TONES = {"201": 2600.0, "202": 2000.0, "203": 3000.0}


def _server(tmp_path: Path) -> ServerProcess:
    """acme's group with phones 201, 202 and 203 (MD5, passwords ``pw-EXT``)."""
    subscribers = {
        f"+387 33 100 {ext}": {
            "username": f"38733100{ext}",
            "ha1_md5": password_ha1(f"38733100{ext}", REALM, f"pw-{ext}", "MD5"),
        }
        for ext in TONES
    }
    group = {
        "customer": "acme",
        "numbers": ["+387 33 100 200-299"],
        "realm": REALM,
        "extensions": {"digits": 3},
        "subscribers": subscribers,
    }
    (tmp_path / "centrex.yaml").write_text(yaml.safe_dump({"groups": {"acme-office": group}}))
    return start_server(tmp_path, trunks={**CALLING, "digest": {"algorithms": ["MD5"]}})


def _phone(tmp_path: Path, server: ServerProcess, ext: str, answermode: str) -> Baresip:
    user = f"38733100{ext}"
    account = Account(
        user=user,
        registrar=(HOST, server.port),
        auth_user=user,
        password=f"pw-{ext}",
        answermode=answermode,
    )
    microphone = write_wav(tmp_path / f"microphone-{ext}.wav", tone(TONES[ext], 20.0))
    return Baresip(tmp_path / f"p{ext}", microphone, account)


@pytest.mark.parametrize("code", ["*8", "**202"])
def test_a_baresip_picks_up_a_call_ringing_at_another(tmp_path: Path, code: str) -> None:
    """203's *8 or **202 takes 201's call to 202: 202 stops ringing, 201 and 203 hear each
    other, and the leg's CDR says 203 answered it."""
    server = _server(tmp_path)
    with (
        stopped_on_exit(server),
        _phone(tmp_path, server, "202", "manual") as b,
        _phone(tmp_path, server, "203", "auto") as c,
        _phone(tmp_path, server, "201", "auto") as a,
    ):
        for phone in (a, b, c):
            phone.wait_for("registered", timeout=5)
        a.dial(f"sip:202@{HOST}:{server.port}")
        b.wait_for("incoming", timeout=10)
        c.dial(f"sip:{code}@{HOST}:{server.port}")
        c.wait_for("established", timeout=10)
        a.wait_for("established", timeout=10)
        b.wait_for("session_closed", timeout=10)
        time.sleep(2.0)
        a.hang_up()
        a.wait_for("closed")
        c.wait_for("closed", timeout=10)
    for hearer, talker in ((a, "203"), (c, "201")):
        heard = hearer.received_audio()
        assert len(heard) >= 8000, "less than a second of audio received"
        assert dominant_frequency(heard) == pytest.approx(TONES[talker], abs=10.0)
        assert rms(heard) > 2000
    [event] = server.events("call.picked_up")
    assert (event["by"], event["ringing_at"]) == ("+38733100203", "+38733100202"), event
    legs = [r for r in exported_cdrs(server.data_dir) if r["leg"] == "b"]
    assert [leg["answered_by"] for leg in legs] == ["+38733100203"], legs
