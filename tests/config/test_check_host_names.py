"""`callserver check` with host names: routes and forward targets by name compile, bad hosts
are named at their line."""

from __future__ import annotations

from pathlib import Path

import yaml

from tests.default_plan import write_default_plan
from tests.test_cli import ROOT, callserver


def _config(tmp_path: Path, route_host: str) -> Path:
    """A config whose trunks file has route ``pbx`` at ``route_host`` and whose one dialplan
    forwards to a number through it and, on failure, to a SIP URI with a host name (beside the
    default plan, so check has nothing to warn about)."""
    trunks = tmp_path / "trunks.yaml"
    trunks.write_text(f"routes:\n  pbx:\n    host: '{route_host}'\ndefault_route: pbx\n")
    plans = tmp_path / "dialplans"
    plans.mkdir()
    (plans / "38733100200.yaml").write_text(
        "steps:\n"
        "  first:\n"
        '    forward: "+38761200300"\n'
        "    route: pbx\n"
        "    failed: second\n"
        "  second:\n"
        '    forward: "sip:support@pbx.example.com;transport=tcp"\n'
    )
    write_default_plan(plans)
    config = tmp_path / "callserver.yaml"
    settings = {
        "trunks": str(trunks),
        "centrex": str(tmp_path / "centrex.yaml"),
        "tariffs": str(ROOT / "config" / "tariffs.yaml"),
        "dialplans": str(plans),
        "media": {"prompts_dir": str(ROOT / "prompts")},
        "dns": {"nameservers": ["127.0.0.1:5353"]},
    }
    config.write_text(yaml.safe_dump(settings))
    return config


def test_check_accepts_routes_and_targets_by_host_name(tmp_path: Path) -> None:
    """A route to sip.carrier.example and a forward to sip:...@pbx.example.com check ok."""
    config = _config(tmp_path, "sip.carrier.example")
    trunks = tmp_path / "trunks.yaml"
    result = callserver("check", str(config), str(trunks))
    assert (result.returncode, result.stderr) == (0, "")
    assert result.stdout.splitlines() == [
        f"{config}: ok (settings)",
        f"{trunks}: ok (trunks)",
        "ok",
    ]


def test_check_names_a_route_host_that_is_no_host(tmp_path: Path) -> None:
    """A route host with a space is an error at its file and line, not a failure at call time."""
    config = _config(tmp_path, "sip carrier")
    result = callserver("check", str(config))
    assert result.returncode == 1
    assert f"{tmp_path / 'trunks.yaml'}:3: routes.pbx.host: " in result.stderr
    assert "'sip carrier' is no IP address or host name" in result.stderr
