"""`callserver check` on campaign files: each named alone, and the started campaigns the
server runs, with the same file:line: field errors as `callserver campaign start`."""

from __future__ import annotations

from pathlib import Path

import pytest

from callserver.campaigns.store import CampaignFolder
from callserver.commands.check import check
from tests.campaigns.test_file import BAD, BAD_DIR
from tests.test_cli import ROOT, callserver

CAMPAIGN = """numbers: spring.csv
customer: acme
caller_id: "+387 33 100 200"
plan: "+387 33 100 500"
window: {timezone: Europe/Sarajevo, open: {mon-fri: "09:00-17:00"}}
pacing: {max_in_progress: 2}
"""


def _settings(tmp_path: Path) -> Path:
    """Settings whose trunks have the customers acme (3 channels, +387 33 100 500) and beta
    (+387 33 100 600), with those numbers' dialplans: the context of the bad campaign
    corpus."""
    (tmp_path / "trunks.yaml").write_text(
        "customers:\n  acme: {channels: 3, numbers: ['+38733100500']}\n"
        "  beta: {numbers: ['+38733100600']}\n"
    )
    plans = tmp_path / "dialplans"
    plans.mkdir()
    for number in ("38733100500", "38733100600", "default"):
        (plans / f"{number}.yaml").write_text("steps:\n  bye:\n    hangup:\n")
    (tmp_path / "centrex.yaml").write_text("groups: {}\n")
    path = tmp_path / "callserver.yaml"
    path.write_text(
        f"media:\n  prompts_dir: {ROOT / 'prompts'}\n"
        f"trunks: {tmp_path / 'trunks.yaml'}\n"
        f"tariffs: {ROOT / 'config' / 'tariffs.yaml'}\n"
        f"centrex: {tmp_path / 'centrex.yaml'}\n"
        f"dialplans: {plans}\n"
        f"blacklist: {tmp_path / 'none.txt'}\n"
        f"data_dir: {tmp_path / 'var'}\n"
    )
    (tmp_path / "none.txt").write_text("")
    return path


def _good(tmp_path: Path) -> Path:
    (tmp_path / "spring.csv").write_text("number,first_name\n+38761000001,Amra\n")
    source = tmp_path / "spring.yaml"
    source.write_text(CAMPAIGN)
    return source


@pytest.mark.parametrize("name", sorted(BAD))
def test_each_bad_campaign_file_named_alone_has_its_errors(tmp_path: Path, name: str) -> None:
    """A bad corpus file is known as a campaign by its keys and gets exactly the errors
    loading it gives, file:line: field each."""
    path = BAD_DIR / f"{name}.yaml"
    [result] = check([path], _settings(tmp_path))[1:]
    lines = [line if line.startswith("@") else f"{path}{line}" for line in BAD[name]]
    assert result.kind == "campaign"
    assert list(result.errors) == [line.replace("@", str(BAD_DIR)) for line in lines]


def test_a_good_campaign_file_is_ok(tmp_path: Path) -> None:
    """A campaign file with a known customer, a plan and good numbers has no error."""
    [result] = check([_good(tmp_path)], _settings(tmp_path))[1:]
    assert (result.kind, result.errors) == ("campaign", ())


def test_the_settings_check_reports_a_started_campaign_the_files_no_longer_fit(
    tmp_path: Path,
) -> None:
    """A started campaign whose plan lost its dialplan since is an error of the settings,
    at its copy's line; a stopped campaign with the same fault is not the server's any more."""
    config = _settings(tmp_path)
    root = tmp_path / "var" / "campaigns"
    for name in ("spring", "autumn"):
        folder = CampaignFolder(root, name)
        folder.start(_good(tmp_path), tmp_path / "spring.csv")
    CampaignFolder(root, "autumn").stop()
    (tmp_path / "dialplans" / "38733100500.yaml").unlink()
    [result] = check([], config)
    copy = root / "spring" / "campaign.yaml"
    assert result.errors == (
        f"{copy}:4: plan: +38733100500 has no dialplan; name a number of the dialplans",
    )


def test_the_command_prints_the_errors_and_exits_1(tmp_path: Path) -> None:
    """`callserver check FILE --config C` prints each error line and fails; a good file is ok."""
    config = _settings(tmp_path)
    bad = BAD_DIR / "unknown-customer.yaml"
    proc = callserver("check", str(bad), "--config", str(config))
    assert proc.returncode == 1
    assert f"{bad}:2: customer: 'nobody' is not a customer of trunks.yaml (acme, beta)" in (
        proc.stderr.splitlines()
    )
    good = _good(tmp_path)
    proc = callserver("check", str(good), "--config", str(config))
    assert proc.returncode == 0, proc.stderr
    assert f"{good}: ok (campaign)" in proc.stdout.splitlines()
