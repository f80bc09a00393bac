"""A running server's campaign on a public holiday: the server runs under libfaketime (the
preload library of the ``libfaketime`` dev dependency) with its wall clock at 10:00 on New
Year's Day 2027 in Sarajevo, its monotonic clock real; the campaign places no call and its
status says why and when its window opens.

Debian's ``faketime`` 0.9.10 is not used: under it Python 3.11's ``time.sleep`` fails with
EINVAL. Only the server is faked; the test itself reads no clock for the dates it checks.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

from tests.e2e.conftest import HOST, ServerProcess, exported_cdrs, free_port, plan_dir, start_server

PLAN = "38733100500"
FAKED = "2027-01-01 09:00:00"  # UTC: 10:00 in Sarajevo on New Year's Day, a Friday
CAMPAIGN = f"""name: holiday
numbers: holiday.csv
customer: acme
caller_id: "+387 33 100 200"
plan: "+{PLAN}"
window: {{timezone: Europe/Sarajevo, holidays: BA, open: {{mon-fri: "09:00-17:00"}}}}
pacing: {{calls_per_second: 10, max_in_progress: 2}}
"""
HANGUP = "steps:\n  bye:\n    hangup:\n"


def _faketime() -> dict[str, str]:
    """The server's environment for a wall clock starting at ``FAKED`` (UTC)."""
    try:
        import libfaketime
    except ImportError as exc:
        raise AssertionError(
            "libfaketime is missing: run 'make install' (a dev dependency)"
        ) from exc
    library = Path(libfaketime.__file__).parent / "vendor/libfaketime/src/libfaketime.so.1"
    assert library.is_file(), f"{library} is missing: reinstall libfaketime ('make install')"
    return {
        "LD_PRELOAD": str(library),
        "FAKETIME": f"@{FAKED}",
        "FAKETIME_DONT_FAKE_MONOTONIC": "1",
        "TZ": "UTC",
    }


def _campaign(command: str, tmp_path: Path) -> str:
    source, config = tmp_path / "holiday.yaml", tmp_path / "callserver.yaml"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "callserver",
            "campaign",
            command,
            str(source),
            "--config",
            str(config),
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def _saved_window(server: ServerProcess) -> dict[str, object]:
    """The window the server wrote in the campaign's state (waits 20 s for it)."""
    path = server.data_dir / "campaigns" / "holiday" / "state.json"
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if path.exists():
            window = json.loads(path.read_text())["progress"].get("window")
            if window is not None:
                return dict(window)
        time.sleep(0.1)
    raise AssertionError("no state written\n" + "\n".join(server.raw[-40:]))


def test_no_call_on_a_public_holiday_and_status_says_when_the_window_opens(
    tmp_path: Path,
) -> None:
    """On New Year's Day the started campaign dials nobody, and `campaign status` names the
    holiday and the next opening, Monday 4 January at 09:00 in Sarajevo."""
    plans = plan_dir(tmp_path, PLAN, HANGUP)
    (tmp_path / "holiday.csv").write_text("number\n+38761000001\n+38761000002\n")
    (tmp_path / "holiday.yaml").write_text(CAMPAIGN)
    route = {"host": HOST, "port": free_port(both=False), "prefixes": ["+38761"]}
    trunks = {"customers": {"acme": {"channels": 2}}, "routes": {"mobile": route}}
    server = start_server(tmp_path, trunks=trunks, dialplans=plans, env=_faketime())
    try:
        assert "2 numbers, started" in _campaign("start", tmp_path)
        window = _saved_window(server)
        server.wait_for("campaign.started")
        time.sleep(1.0)  # long enough for calls at 10 a second to have started, were it open
        dialling = server.events("campaign.dialling")
        status = _campaign("status", tmp_path)
        stamps = [str(line.get("timestamp", "")) for line in server.lines]
    finally:
        server.stop()
    assert any(stamp.startswith("2027-01-01") for stamp in stamps), stamps[:3]
    assert window == {
        "status": "holiday",
        "holiday": "New Year's Day",
        "opens": "2027-01-04T09:00:00+01:00",
        "timezone": "Europe/Sarajevo",
    }
    assert dialling == []
    assert "  dialled:      0" in status.splitlines(), status
    expected = "holiday (New Year's Day): no call until 2027-01-04 09:00 Europe/Sarajevo"
    assert f"  window:       {expected}" in status.splitlines(), status
    assert not (server.data_dir / "campaigns" / "holiday" / "results.csv").exists()
    assert [r for r in exported_cdrs(server.data_dir) if r.get("campaign")] == []
