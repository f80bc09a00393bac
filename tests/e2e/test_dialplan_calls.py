"""Dialplans end to end: SIPp callers from several countries against `callserver run`.

The plan below picks the prompt language by the caller's country, plays a greeting, offers a
menu (1 information, 2 sales) answered by a SIP INFO digit, and refuses a blacklisted caller
with 603. Each call's CDR must name the plan, its version, the language, the steps and digits.
"""

from __future__ import annotations

from pathlib import Path

from tests.e2e.conftest import SCENARIOS, exported_cdrs, run_sipp, start_server

NUMBER = "38733100200"
PLAN = """\
language: bs
steps:
  screen:
    blacklist: ["+38761999999 # nuisance calls"]
  pick_language:
    language: caller_country
    default: en
  welcome:
    play: greeting
  main_menu:
    menu: menu
    options: {1: info, 2: sales}
    first_digit_timeout: 5s
    fallback: bye
  info:
    play: goodbye
    next: bye
  sales:
    set: {department: sales}
    next: bye
  bye:
    hangup:
"""


def _call(sipp: str, tmp_path: Path, port: int, scenario: str, caller: str, digit: str = "1"):
    return run_sipp(
        sipp,
        tmp_path,
        port,
        *("-sf", str(SCENARIOS / scenario), "-s", NUMBER, "-m", "1"),
        *("-key", "caller", caller, "-key", "digit", digit),
        timeout=30,
    )


def _plan_dir(tmp_path: Path) -> Path:
    directory = tmp_path / "dialplans"
    directory.mkdir()
    (directory / f"{NUMBER}.yaml").write_text(PLAN)
    return directory


def test_language_by_caller_country_and_menu_digits(sipp: str, tmp_path: Path) -> None:
    """Callers from +385 and +49 get hr and de, and their menu digit leads to its step."""
    server = start_server(tmp_path, dialplans=_plan_dir(tmp_path))
    try:
        scenario = "uac-dialplan-menu-info-digit.xml"
        croatia = _call(sipp, tmp_path, server.port, scenario, "+38591234567", "2")
        germany = _call(sipp, tmp_path, server.port, scenario, "+4930123456", "1")
    finally:
        server.stop()
    log = "\n".join(server.raw[-40:])
    assert croatia.returncode == 0, croatia.output[-2000:] + log
    assert germany.returncode == 0, germany.output[-2000:] + log
    records = {record["caller_country"]: record for record in exported_cdrs(server.data_dir)}
    hr, de = records["HR"], records["DE"]
    assert hr["language"] == "hr" and de["language"] == "de"
    assert hr["digits"] == "2" and de["digits"] == "1"
    assert hr["steps"] == ["screen", "pick_language", "welcome", "main_menu", "sales", "bye"]
    assert de["steps"] == ["screen", "pick_language", "welcome", "main_menu", "info", "bye"]
    assert hr["caller_e164"] == "38591234567"
    for record in (hr, de):
        assert record["disposition"] == "ANSWERED"
        assert record["end_reason"] == "normal"
        assert str(record["dialplan"]).endswith(f"{NUMBER}.yaml")
        assert len(str(record["dialplan_version"])) == 12


def test_blacklisted_caller_gets_603_and_a_cdr(sipp: str, tmp_path: Path) -> None:
    """A caller on the plan's blacklist is declined with 603 and Q.850 cause 21."""
    server = start_server(tmp_path, dialplans=_plan_dir(tmp_path))
    try:
        refused = _call(sipp, tmp_path, server.port, "uac-expect-603-blacklisted.xml", "061999999")
    finally:
        server.stop()
    assert refused.returncode == 0, refused.output[-2000:] + "\n".join(server.raw[-40:])
    (record,) = exported_cdrs(server.data_dir)
    assert record["disposition"] == "REJECTED"
    assert record["end_reason"] == "blacklist"
    assert record["sip_code"] == 603
    assert record["q850_cause"] == 21
    assert record["steps"] == ["screen"]
