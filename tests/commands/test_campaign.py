"""``callserver campaign start|status|stop FILE`` with no server running: the folder it makes,
the refusals, the progress it prints."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from callserver.cli import main

CAMPAIGN = """numbers: spring.csv
customer: acme
caller_id: "+387 33 100 200"
plan: "+387 33 100 500"
window: {open: {mon-fri: "09:00-17:00"}}
pacing: {max_in_progress: 2}
"""


def _config(tmp_path: Path) -> Path:
    (tmp_path / "trunks.yaml").write_text("customers: {acme: {channels: 2}}\n")
    (tmp_path / "dialplans").mkdir()
    (tmp_path / "dialplans" / "38733100500.yaml").write_text("steps:\n  bye:\n    hangup:\n")
    (tmp_path / "spring.csv").write_text("number,first_name\n+38761000001,Amra\n")
    (tmp_path / "spring.yaml").write_text(CAMPAIGN)
    config = {
        "trunks": str(tmp_path / "trunks.yaml"),
        "dialplans": str(tmp_path / "dialplans"),
        "data_dir": str(tmp_path / "var"),
    }
    path = tmp_path / "callserver.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def _run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(["campaign", *args])
    out, err = capsys.readouterr()
    return code, out, err


def test_start_status_stop(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """start copies the campaign into the data dir, refuses a second start, status prints its
    progress, stop marks it stopped and a start after it resumes it."""
    config, source = str(_config(tmp_path)), str(tmp_path / "spring.yaml")
    code, out, _ = _run(capsys, "start", source, "--config", config)
    assert code == 0
    assert out.splitlines() == [
        "campaign spring: 1 numbers, started",
        "no server running: it starts the campaign when it starts",
    ]
    folder = tmp_path / "var" / "campaigns" / "spring"
    assert (folder / "campaign.yaml").read_text() == CAMPAIGN
    assert (folder / "numbers.csv").read_text() == "number,first_name\n+38761000001,Amra\n"
    code, _, err = _run(capsys, "start", source, "--config", config)
    assert (code, err) == (1, "callserver campaign: campaign spring is running; stop it first\n")
    code, out, _ = _run(capsys, "status", source, "--config", config)
    assert code == 0 and out.splitlines()[:2] == [
        "campaign spring: waiting for the server",
        "  numbers:      0",
    ]
    code, out, _ = _run(capsys, "stop", source, "--config", config)
    assert code == 0 and out.startswith("campaign spring: stopped\n")
    assert (folder / "stopped").exists()
    code, out, _ = _run(capsys, "status", source, "--config", config)
    assert out.startswith("campaign spring: stopped\n")
    assert _run(capsys, "start", source, "--config", config)[0] == 0
    assert not (folder / "stopped").exists()


def test_bad_campaign_is_not_started(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """An invalid file prints its file:line errors and leaves no folder behind."""
    config = str(_config(tmp_path))
    (tmp_path / "spring.csv").write_text("number\n+38761 ABC\n")
    code, _, err = _run(capsys, "start", str(tmp_path / "spring.yaml"), "--config", config)
    assert code == 1
    assert err == (
        f"{tmp_path / 'spring.csv'}:2: number: '+38761 ABC' is not a telephone number: use "
        "digits after an optional +\n"
    )
    assert not (tmp_path / "var" / "campaigns").exists()


def test_stop_of_a_campaign_never_started(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """stop and status name a campaign that was never started."""
    config, source = str(_config(tmp_path)), str(tmp_path / "spring.yaml")
    for command in ("stop", "status"):
        code, _, err = _run(capsys, command, source, "--config", config)
        assert (code, err) == (1, "callserver campaign: campaign spring was never started\n")
