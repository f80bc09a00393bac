"""The shipped example dialplans (dialplans/*.yaml) end to end, each through `callserver run`.

The directory is copied into the test's own directory, so the test does not depend on the
working directory, and every file is served as shipped (the cap test changes one line, below):

- 38733100200.yaml, the company number: blacklist, language by country, business hours with
  the public holidays of Bosnia and Herzegovina, a menu, forwards and voicemail. Its branch
  depends on the real clock, so the test computes it with the compiled plan's ``hours`` step
  just before the call (and calls again, once, if the branch changed during the call). Its
  forwards get a route to SIPp as the called party (the trunks file's ``default_route``), so
  every branch ends in a bridged call: digit 2 (support) when open, the duty mobile when
  closed or on a holiday.
- 38780050050.yaml, the free-phone IVR: a language chosen by digit and a survey answer, which
  the CDR's ``survey`` holds.
- 38790291100.yaml, the per-call premium number: its CDR is rated 0.4900 KM a call, and a
  cap ends the call. The cap is shortened in a copy of the plan, not of config/tariffs.yaml:
  a class cap below the plan's ``max_duration: 2m`` would make the server refuse the plan
  (a dialplan may only shorten a cap), so the plan's own cap is what the test shortens.
"""

from __future__ import annotations

import shutil
from datetime import UTC, datetime
from pathlib import Path

from callserver.dialplan.compiler import PlanContext, compile_file
from callserver.dialplan.hours import Hours
from callserver.dialplan.verbs import REGISTRY
from tests.e2e.conftest import (
    HOST,
    SCENARIOS,
    ServerProcess,
    SippResult,
    exported_cdrs,
    run_scenario,
    start_server,
    stopped_on_exit,
    uas_leg,
)

SHIPPED = Path(__file__).parents[2] / "dialplans"
COMPANY = "38733100200"
FREE_PHONE = "38780050050"
PREMIUM = "38790291100"
DISCARD_PORT = 9  # the prompts' RTP goes nowhere: no test binds a port below 1024
CALLER = "+38761234567"  # a BH Telecom mobile: the prompts are in Bosnian
COMPANY_STEPS = {
    "open": ["welcome", "main_menu", "support", "support_desk"],
    "closed": ["after_hours", "duty_mobile"],
    "holiday": ["holiday", "duty_mobile"],
}
FORWARDED_TO = {"open": "+38733100210", "closed": "+38761100200", "holiday": "+38761100200"}


def _copy_plans(directory: Path) -> Path:
    plans = directory / "dialplans"
    shutil.copytree(SHIPPED, plans)
    return plans


def _call(
    sipp: str, directory: Path, server: ServerProcess, number: str, scenario: str, *keys: str
) -> SippResult:
    result = run_scenario(
        sipp,
        directory,
        server,
        scenario,
        *("-s", number, "-m", "1", "-key", "caller", CALLER, *keys),
        timeout=60,
    )
    assert result.returncode == 0, result.output[-2000:] + "\n".join(server.raw[-40:])
    return result


def _company_branch(plans: Path) -> str:
    """What the company plan's ``office_hours`` step decides now: open, closed or holiday."""
    context = PlanContext(
        registry=REGISTRY, default_language="en", prompt_exists=lambda name, language: True
    )
    hours = compile_file(plans / f"{COMPANY}.yaml", context).steps["office_hours"].prepared
    assert isinstance(hours, Hours)
    return hours.state(datetime.now(UTC)).status


def _company_call(sipp: str, directory: Path) -> tuple[str, str, list[dict[str, object]]]:
    """One call to the company number, forwarded to SIPp; the branch before and after the
    call and the CDRs."""
    directory.mkdir()
    plans = _copy_plans(directory)
    answering = ("-sf", str(SCENARIOS / "uas-answers-then-hangs-up.xml"), "-d", "1000")
    with uas_leg(sipp, directory, *answering) as (uas, uas_port):
        trunks = {
            "trunks": {"test": {"match": ["127.0.0.1"]}},
            "routes": {"pbx": {"host": HOST, "port": uas_port}},
            "default_route": "pbx",
        }
        server = start_server(directory, dialplans=plans, trunks=trunks)
        with stopped_on_exit(server):
            before = _company_branch(plans)
            scenario = "uac-dialplan-menu-info-digit.xml"
            _call(sipp, directory, server, COMPANY, scenario, *("-key", "digit", "2"))
            after = _company_branch(plans)
            uas_out, _ = uas.communicate(timeout=30)
    assert uas.returncode == 0, uas_out[-2000:] + "\n".join(server.raw[-40:])
    return before, after, exported_cdrs(server.data_dir)


def test_company_number_takes_the_branch_of_the_clock(sipp: str, tmp_path: Path) -> None:
    """The company plan screens, picks bs for a +387 caller and follows its hours to a forward."""
    before, after, records = _company_call(sipp, tmp_path / "first")
    if before != after:  # the office opened or closed during the call: once more
        before, after, records = _company_call(sipp, tmp_path / "second")
    assert before == after, "the branch changed during both calls"
    legs = {record["leg"]: record for record in records}
    assert sorted(map(str, legs)) == ["a", "b"], records
    a, b = legs["a"], legs["b"]
    assert a["steps"] == ["screen", "pick_language", "office_hours", *COMPANY_STEPS[before]]
    assert a["language"] == "bs" and a["caller_country"] == "BA"
    assert a["digits"] == ("2" if before == "open" else "")
    assert str(a["dialplan"]).endswith(f"{COMPANY}.yaml")
    assert b["called_raw"] == FORWARDED_TO[before] and b["linked_id"] == a["call_id"]
    assert a["disposition"] == b["disposition"] == "ANSWERED"


def test_free_phone_ivr_stores_the_survey_answer(sipp: str, tmp_path: Path) -> None:
    """On the free-phone IVR, 2 picks English and 4 answers the survey; the CDR holds both."""
    plans = _copy_plans(tmp_path)
    with stopped_on_exit(start_server(tmp_path, dialplans=plans)) as server:
        _call(
            sipp,
            tmp_path,
            server,
            FREE_PHONE,
            "uac-two-info-digits-expect-bye.xml",
            *("-key", "digit", "2", "-key", "digit2", "4"),
        )
    (record,) = exported_cdrs(server.data_dir)
    assert record["steps"] == ["choose_language", "welcome", "rate_us", "thanks"]
    assert record["language"] == "en"
    assert record["survey"] == {"satisfaction": "4"}
    assert record["digits"] == "4"
    assert record["end_reason"] == "normal" and record["hangup_by"] == "server"
    assert (record["number_class"], record["payer"], record["cost"]) == (
        "free_phone",
        "called",
        "0.0000",
    )


def _premium_call(sipp: str, directory: Path, plans: Path) -> ServerProcess:
    with stopped_on_exit(start_server(directory, dialplans=plans)) as server:
        _call(
            sipp,
            directory,
            server,
            PREMIUM,
            "uac-caller-hears-prompts-until-server-bye.xml",
            *("-set", "rtp_port", str(DISCARD_PORT), "-set", "codec", "0"),
        )
        server.wait_for("call.ended")
    return server


def test_premium_number_is_rated_per_call(sipp: str, tmp_path: Path) -> None:
    """The premium plan plays to its end; the call costs 0.4900 KM, one unit, whatever it lasts."""
    server = _premium_call(sipp, tmp_path, _copy_plans(tmp_path))
    (record,) = exported_cdrs(server.data_dir)
    assert record["steps"] == ["pick_language", "welcome", "information", "goodbye"]
    assert record["language"] == "bs"
    assert (record["cost"], record["billed_units"]) == ("0.4900", 1)
    assert record["end_reason"] == "normal" and record["hangup_by"] == "server"


def test_premium_call_is_ended_by_its_cap(sipp: str, tmp_path: Path) -> None:
    """With the plan's cap cut to 6 s the server ends the call during the information prompt."""
    plans = _copy_plans(tmp_path)
    path = plans / f"{PREMIUM}.yaml"
    text = path.read_text()
    assert text.count("max_duration: 2m") == 1
    path.write_text(text.replace("max_duration: 2m", "max_duration: 6s"))
    server = _premium_call(sipp, tmp_path, plans)
    assert server.wait_for("call.max_duration")["cap"] == 6
    (record,) = exported_cdrs(server.data_dir)
    # The Bosnian welcome lasts 3.8 s and the information 6.6 s: the cap falls in the latter.
    assert record["steps"] == ["pick_language", "welcome", "information"]
    assert (record["end_reason"], record["hangup_by"]) == ("max_duration", "server")
    assert (record["cost"], record["billed_units"]) == ("0.4900", 1)
