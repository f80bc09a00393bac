"""Phone 201's two calls for an attended transfer from the calling side, as SIPp runs.

One run holds the consultation call (``consults_out`` places it; a phone answering one writes
it too) and writes that dialog's Call-ID and tags to consult-dialog.txt; the other,
``transfers``, started once the file is there, calls 202 and sends the REFER whose Replaces
names it (RFC 3891).
"""

from __future__ import annotations

import subprocess
import time
from pathlib import Path
from urllib.parse import quote

from tests.e2e.conftest import HOST, SCENARIOS, ServerProcess, free_port, popen_sipp
from tests.e2e.transfers import as_phone


def consult_dialog(tmp_path: Path, server: ServerProcess) -> tuple[str, str, str]:
    """The dialog the phone's other SIPp run wrote to consult-dialog.txt: its Call-ID, the
    phone's tag and the server's (waits 20 s)."""
    dialog = tmp_path / "consult-dialog.txt"
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        words = dialog.read_text().split() if dialog.exists() else []
        if len(words) == 3:
            return words[0], words[1], words[2]
        time.sleep(0.05)
    raise AssertionError("no dialog in consult-dialog.txt\n" + "\n".join(server.raw[-60:]))


def transfers(
    sipp: str,
    tmp_path: Path,
    server: ServerProcess,
    refer_to: str,
    *,
    ext: str = "201",
    service: str = "202",
) -> subprocess.Popen[str]:
    """Phone ``ext`` (SIPp) calls ``service``, then REFERs that call with Replaces naming the
    consultation dialog in consult-dialog.txt (``refer_to`` the Refer-To's user part)."""
    call_id, local_tag, remote_tag = consult_dialog(tmp_path, server)
    call_id = quote(call_id, safe="")  # escaped for a URI header, RFC 3261 §19.1.1: @ is %40
    return popen_sipp(
        [
            sipp,
            *("-sf", str(SCENARIOS / "uac-phone-calls-then-refers-replacing.xml")),
            *("-s", service, *as_phone(ext, service, server), "-key", "refer_to", refer_to),
            *("-key", "consult_call_id", call_id, "-key", "consult_local_tag", local_tag),
            *("-key", "consult_remote_tag", remote_tag),
            *("-key", "rtp_port", str(free_port(both=False)), "-i", HOST, "-m", "1"),
            *("-nostdin", "-timeout", "40s", "-timeout_error", "-trace_err"),
            f"{HOST}:{server.port}",
        ],
        tmp_path,
    )


def consults_out(
    sipp: str,
    tmp_path: Path,
    server: ServerProcess,
    *,
    ext: str = "201",
    service: str = "061200300",
) -> subprocess.Popen[str]:
    """Phone ``ext`` (SIPp) calls ``service`` and writes that dialog to consult-dialog.txt."""
    return popen_sipp(
        [
            sipp,
            *("-sf", str(SCENARIOS / "uac-phone-consults-then-expects-bye.xml")),
            *("-s", service, *as_phone(ext, service, server)),
            *("-key", "rtp_port", str(free_port(both=False)), "-i", HOST, "-m", "1"),
            *("-nostdin", "-timeout", "40s", "-timeout_error", "-trace_err"),
            f"{HOST}:{server.port}",
        ],
        tmp_path,
    )
