"""Diverted calls for the forwarding tests: the outside number acme's phones forward to, the
scenario of the SIPp that answers there checking the INVITE's Diversion and History-Info
(RFC 5806, RFC 7044), and a trunk caller of phone 201.
"""

from __future__ import annotations

from pathlib import Path

from tests.e2e.conftest import SCENARIOS, ServerProcess, run_sipp
from tests.e2e.subscribers import CALLER

OUTSIDE = "+38761200300"  # 061 200 300, the carrier's number the phones forward to
CAUSES = {"unconditional": "302", "user-busy": "486", "no-answer": "408", "unavailable": "503"}


def expecting(tmp_path: Path, reason: str, diverted: str = "+38733100201") -> str:
    """The diverted call's target scenario, written for ``reason`` by ``diverted``."""
    text = (SCENARIOS / "uas-answers-expects-diversion.xml").read_text()
    text = text.replace("DIVERTED", diverted.replace("+", "\\+")).replace("REASON", reason)
    path = tmp_path / f"target-{reason}.xml"
    path.write_text(text.replace("CAUSE", CAUSES[reason]))
    return str(path)


def call_201(sipp: str, tmp_path: Path, server: ServerProcess, hold: int = 1500) -> None:
    """A caller through the trunk calls 201's number and hangs up ``hold`` ms after the
    answer."""
    result = run_sipp(
        sipp, tmp_path, server.port, "-sn", "uac", "-d", str(hold), *CALLER, timeout=40
    )
    assert result.returncode == 0, result.output[-2000:] + "\n".join(server.raw[-60:])
