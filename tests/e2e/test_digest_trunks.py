"""Digest-authenticated trunks end to end: SIPp (MD5) and our own UAC (SHA-256) against the server.

The only trunk has credentials and no ``match``, so 127.0.0.1 is known by its credentials alone.
SIPp 3.6.1 answers MD5 only, and with several challenges it reads the algorithm of the first
one: a 407 offering SHA-256 first makes it give up ("authentication must use MD5"). Its test
server therefore offers MD5 alone. SIPp also computes the digest ``uri`` as
``sip:remote_ip:remote_port`` unless told otherwise; ``-auth_uri`` makes it the Request-URI.
"""

from __future__ import annotations

from pathlib import Path

from tests.e2e.conftest import HOST, SCENARIOS, exported_cdrs, run_sipp, start_server
from tests.e2e.uac_driver import UacDriver


def _trunks(*algorithms: str) -> dict[str, object]:
    return {
        "digest": {"algorithms": list(algorithms)},
        "trunks": {"branch": {"digest": {"username": "branch7", "password": "s3cret"}}},
    }


def test_sipp_md5_call_is_challenged_answered_and_a_wrong_password_gets_403(
    sipp: str, tmp_path: Path
) -> None:
    """SIPp answers the 407 and is answered on trunk branch; a wrong password gets 403."""
    server = start_server(tmp_path, trunks=_trunks("MD5"))
    try:
        auth = ("-au", "branch7", "-auth_uri", f"service@{HOST}:{server.port}")
        good = run_sipp(
            sipp,
            tmp_path,
            server.port,
            *("-sf", str(SCENARIOS / "uac-digest-call.xml"), "-m", "1"),
            *auth,
            *("-ap", "s3cret"),
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
    assert [e["trunk"] for e in server.events("call.answered")] == ["branch"], log
    rejected = server.events("call.rejected")
    assert [(r["status"], r["reason"], r["trunk"]) for r in rejected] == [
        (403, "auth_failed", "branch")
    ], log
    failed = server.events("call.auth_failed")
    assert [(f["username"], f["source"], f["cause"]) for f in failed] == [
        ("branch7", HOST, "wrong_password")
    ]
    cdrs = exported_cdrs(server.data_dir)  # the challenges leave none
    assert sorted((c["disposition"], c["end_reason"], c["sip_code"], c["trunk"]) for c in cdrs) == [
        ("ANSWERED", "normal", 200, "branch"),
        ("REJECTED", "unauthorized", 403, "branch"),
    ], log


async def test_our_uac_answers_a_sha256_challenge(tmp_path: Path) -> None:
    """Our UAC answers a SHA-256-only 407 and the call is answered and recorded on the trunk."""
    server = start_server(tmp_path, trunks=_trunks("SHA-256"))
    driver = await UacDriver.open()
    try:
        await driver.call_and_hang_up(
            f"sip:38733123@{HOST}:{server.port}",
            server.port,
            caller="0611234567",
            credentials=("branch7", "s3cret"),
        )
    finally:
        driver.close()
        server.stop()
    log = "\n".join(server.raw[-40:])
    challenged = server.events("call.challenged")
    assert [(e["status"], e["stale"]) for e in challenged] == [(407, False)], log
    assert not server.events("call.rejected"), log
    cdrs = exported_cdrs(server.data_dir)
    assert [(c["trunk"], c["disposition"], c["called_raw"]) for c in cdrs] == [
        ("branch", "ANSWERED", "38733123")
    ], log
