"""A Centrex phone's call end to end: SIPp as a centrex.yaml subscriber against `callserver run`.

The phone's INVITE is challenged with 407 and, answered with the phone's password (MD5: SIPp
3.6.1 answers MD5 only and reads the first challenge's algorithm, so the server offers MD5
alone, as in tests/e2e/test_digest_trunks.py), admitted as the subscriber: no trunk, the
group's customer. It calls a number of its own group's block that no phone has: the operator's
own number, so it does not go out, and the default plan answers it.
"""

from __future__ import annotations

from pathlib import Path

import yaml

from callserver.sip.auth import password_ha1
from tests.e2e.conftest import HOST, SCENARIOS, exported_cdrs, run_sipp, start_server

USERNAME, REALM, PASSWORD = "38733100201", "callserver", "phone-201-secret"
CALLED = "38733100250"  # in the group's block, no phone's


def _write_group(tmp_path: Path) -> None:
    """One group of customer acme with the phone +387 33 100 201 (MD5 and SHA-256 HA1)."""
    phone = {
        "username": USERNAME,
        "ha1_md5": password_ha1(USERNAME, REALM, PASSWORD, "MD5"),
        "ha1_sha256": password_ha1(USERNAME, REALM, PASSWORD, "SHA-256"),
    }
    group = {
        "customer": "acme",
        "numbers": ["+387 33 100 200-299"],
        "channels": 2,
        "realm": REALM,
        "extensions": {"digits": 3},
        "subscribers": {"+387 33 100 201": phone},
    }
    (tmp_path / "centrex.yaml").write_text(yaml.safe_dump({"groups": {"acme-office": group}}))


def test_phone_invite_is_challenged_then_admitted_as_its_subscriber(
    sipp: str, tmp_path: Path
) -> None:
    """SIPp as the phone answers the 407 with MD5 and is admitted as +38733100201 of acme; a
    wrong password gets 403 and counts as a failed authentication."""
    _write_group(tmp_path)
    trunks = {"digest": {"algorithms": ["MD5"]}, "trunks": {}, "customers": {"acme": {}}}
    server = start_server(tmp_path, trunks=trunks)
    try:
        auth = ("-au", USERNAME, "-auth_uri", f"{CALLED}@{HOST}:{server.port}", "-s", CALLED)
        good = run_sipp(
            sipp,
            tmp_path,
            server.port,
            *("-sf", str(SCENARIOS / "uac-digest-call.xml"), "-m", "1"),
            *auth,
            *("-ap", PASSWORD),
            timeout=20,
        )
        bad = run_sipp(
            sipp,
            tmp_path,
            server.port,
            *("-sf", str(SCENARIOS / "uac-digest-expect-403.xml"), "-m", "1"),
            *auth,
            *("-ap", "guess"),
            timeout=20,
        )
    finally:
        server.stop()
    log = "\n".join(server.raw[-40:])
    assert good.returncode == 0, good.output[-2000:] + log
    assert bad.returncode == 0, bad.output[-2000:] + log
    assert [e["status"] for e in server.events("call.challenged")] == [407, 407], log
    answered = server.events("call.answered")
    assert [(e["trunk"], e["subscriber"]) for e in answered] == [(None, "+38733100201")], log
    failed = server.events("call.auth_failed")
    assert [(f["username"], f["source"], f["cause"]) for f in failed] == [
        (USERNAME, HOST, "wrong_password")
    ], log
    cdrs = exported_cdrs(server.data_dir)
    summary = sorted(
        (c["disposition"], c["sip_code"], c["customer"], c["subscriber"], c["trunk"]) for c in cdrs
    )
    assert summary == [
        ("ANSWERED", 200, "acme", "+38733100201", None),
        ("REJECTED", 403, None, None, None),
    ], log
