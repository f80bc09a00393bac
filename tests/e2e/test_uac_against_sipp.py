"""Our UAC (the future forwarding leg) against SIPp as the called party."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.e2e.conftest import HOST, SCENARIOS, start_uas
from tests.e2e.uac_driver import UacDriver


@pytest.mark.parametrize("scenario", ["builtin-uas", "digest"])
async def test_our_uac_calls_sipp(sipp: str, tmp_path: Path, scenario: str) -> None:
    """INVITE, 200, ACK, BYE against SIPp's uas; with digest, the 401 is answered (MD5)."""
    if scenario == "digest":
        proc, port = start_uas(sipp, tmp_path, "-sf", str(SCENARIOS / "uas-expect-digest-auth.xml"))
        credentials: tuple[str, str] | None = ("alice", "secret")
    else:
        proc, port = start_uas(sipp, tmp_path, "-sn", "uas")
        credentials = None
    driver = await UacDriver.open()
    try:
        await driver.call_and_hang_up(f"sip:service@{HOST}:{port}", port, credentials=credentials)
        output, _ = proc.communicate(timeout=30)
        assert proc.returncode == 0, output[-3000:]
    finally:
        driver.close()
        if proc.poll() is None:
            proc.kill()
            proc.wait()
