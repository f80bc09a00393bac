"""Dialplan control flow end to end: menu digits, wrong entries, silence and hot reload.

SIPp callers press SIP INFO digits (typed ahead: a digit that comes while a prompt plays
waits for the step that asks), or press nothing, and each call's CDR must show the steps it
went through and the digits it collected. The last test edits a plan while a call runs on it:
the server reloads the file (watchfiles) and the call finishes on the version it started
with, while the next call runs the new one.

Prompts are the 0.25 s beep so that retries take little time, and waits are bounded: the
tests wait for the server's log lines, never for a fixed time.
"""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from tests.e2e.conftest import (
    SCENARIOS,
    ServerProcess,
    SippResult,
    exported_cdrs,
    run_sipp,
    start_server,
)

DISCARD_PORT = 9  # the prompts' RTP goes nowhere: no test binds a port below 1024
MENU_NUMBER = "38733100700"
SILENT_NUMBER = "38733100701"
RELOAD_NUMBER = "38733100702"
MENU = """\
language: en
steps:
  main_menu:
    menu: beep
    options: {{1: information, 2: sales, 0: operator}}
    invalid: beep
    no_input: beep
    invalid_retries: 3
    no_input_retries: 3
    first_digit_timeout: {timeout}
    fallback: fallback
  information:
    hangup:
  sales:
    hangup:
  operator:
    hangup:
  fallback:
    play: beep
  bye:
    hangup:
"""
VERSION_A = """\
# version A: a caller who presses nothing waits 10 s in the menu, then goes to a_done
language: en
steps:
  a_welcome:
    play: beep
  a_wait:
    menu: beep
    options: {1: a_done}
    first_digit_timeout: 10s
    no_input_retries: 1
    fallback: a_done
  a_done:
    hangup:
"""
VERSION_B = """\
# version B: a short welcome, then the end
language: en
steps:
  b_welcome:
    play: beep
  b_done:
    hangup:
"""


def _version(text: str) -> str:
    """The version a CDR names: the first 12 hex digits of the file's SHA-256."""
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def _plans(tmp_path: Path) -> Path:
    directory = tmp_path / "dialplans"
    directory.mkdir()
    (directory / f"{MENU_NUMBER}.yaml").write_text(MENU.format(timeout="5s"))
    (directory / f"{SILENT_NUMBER}.yaml").write_text(MENU.format(timeout="1s"))
    (directory / f"{RELOAD_NUMBER}.yaml").write_text(VERSION_A)
    return directory


def _call(
    sipp: str, tmp_path: Path, server: ServerProcess, number: str, scenario: str, *keys: str
) -> SippResult:
    """One SIPp call to ``number`` from +38761234567 with ``scenario`` and ``-key`` pairs."""
    return run_sipp(
        sipp,
        tmp_path,
        server.port,
        *("-sf", str(SCENARIOS / scenario), "-s", number, "-m", "1"),
        *("-key", "caller", "+38761234567", *keys),
        timeout=40,
    )


def _ok(result: SippResult, server: ServerProcess) -> None:
    assert result.returncode == 0, result.output[-2000:] + "\n".join(server.raw[-40:])


def _records(server: ServerProcess) -> list[dict[str, object]]:
    return sorted(exported_cdrs(server.data_dir), key=lambda record: str(record["start_stamp"]))


def _one_call(
    sipp: str, tmp_path: Path, number: str, scenario: str, *keys: str
) -> tuple[ServerProcess, dict[str, object]]:
    """A server with the test plans, one call to ``number``; the server and the call's CDR."""
    server = start_server(tmp_path, dialplans=_plans(tmp_path))
    try:
        result = _call(sipp, tmp_path, server, number, scenario, *keys)
    finally:
        server.stop()
    _ok(result, server)
    (record,) = _records(server)
    return server, record


def test_digit_0_reaches_the_operator(sipp: str, tmp_path: Path) -> None:
    """The digit 0 leads from the menu to its step, and the CDR says so."""
    scenario = "uac-dialplan-menu-info-digit.xml"
    _, record = _one_call(sipp, tmp_path, MENU_NUMBER, scenario, "-key", "digit", "0")
    assert record["steps"] == ["main_menu", "operator"]
    assert record["digits"] == "0"
    assert record["end_reason"] == "normal" and record["hangup_by"] == "server"


def test_three_wrong_digits_lead_to_the_fallback(sipp: str, tmp_path: Path) -> None:
    """9, 9 and 9 are three wrong entries (invalid_retries: 3): the plan goes to its fallback."""
    server, record = _one_call(
        sipp,
        tmp_path,
        MENU_NUMBER,
        "uac-three-info-digits-expect-bye.xml",
        *("-key", "digit", "9", "-key", "digit2", "9", "-key", "digit3", "9"),
    )
    assert record["steps"] == ["main_menu", "fallback", "bye"]
    assert record["digits"] == "9,9,9"  # every entry, comma-separated
    assert [line["digit"] for line in server.events("call.dtmf")] == ["9", "9", "9"]


def test_a_wrong_digit_then_a_right_one_is_taken(sipp: str, tmp_path: Path) -> None:
    """After one wrong entry (9) the menu asks again and takes the next digit (2)."""
    _, record = _one_call(
        sipp,
        tmp_path,
        MENU_NUMBER,
        "uac-two-info-digits-expect-bye.xml",
        *("-key", "digit", "9", "-key", "digit2", "2"),
    )
    assert record["steps"] == ["main_menu", "sales"]
    assert record["digits"] == "9,2"


def test_silence_follows_the_no_input_retries_to_the_fallback(sipp: str, tmp_path: Path) -> None:
    """A caller who presses nothing is asked three times (1 s each), then sent to the fallback.

    The CDR's ``digits`` holds every entry, here three empty ones; and the three waits are the
    server's own timeouts, so the answered call cannot have lasted less than 3 s.
    """
    server, record = _one_call(
        sipp,
        tmp_path,
        SILENT_NUMBER,
        "uac-caller-hears-prompts-until-server-bye.xml",
        *("-set", "rtp_port", str(DISCARD_PORT), "-set", "codec", "0"),
    )
    assert record["steps"] == ["main_menu", "fallback", "bye"]
    assert record["digits"] == ",,"  # three empty entries: three no-input timeouts
    assert float(str(record["billsec"])) >= 3.0
    assert not server.events("call.dtmf")


def _wait_until(
    server: ServerProcess, found: Callable[[dict[str, object]], bool], what: str, timeout: float
) -> int:
    """Block until a log line satisfies ``found``; its index in the server's log lines."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for index, line in enumerate(list(server.lines)):
            if found(line):
                return index
        time.sleep(0.05)
    raise AssertionError(f"no {what} within {timeout} s:\n" + "\n".join(server.raw[-40:]))


def _event(name: str) -> Callable[[dict[str, object]], bool]:
    return lambda line: line.get("event") == name


def _loaded(version: str) -> Callable[[dict[str, object]], bool]:
    def found(line: dict[str, object]) -> bool:
        versions = line.get("versions")
        return (
            line.get("event") == "dialplan.loaded"
            and isinstance(versions, dict)
            and versions.get(RELOAD_NUMBER) == version
        )

    return found


def _rewrite(path: Path, text: str, scratch: Path) -> None:
    """Replace ``path`` with ``text`` in one step (written beside, then renamed over it)."""
    new = scratch / f"{path.name}.new"
    new.write_text(text)
    os.replace(new, path)


def test_edit_during_a_call_applies_to_the_next_call(sipp: str, tmp_path: Path) -> None:
    """A plan rewritten during a call: that call ends on version A, the next one runs B."""
    plans = _plans(tmp_path)
    server = start_server(tmp_path, dialplans=plans)
    scenario = "uac-caller-hears-prompts-until-server-bye.xml"
    keys = ("-set", "rtp_port", str(DISCARD_PORT), "-set", "codec", "0")
    try:
        with ThreadPoolExecutor(max_workers=1) as pool:
            first = pool.submit(_call, sipp, tmp_path, server, RELOAD_NUMBER, scenario, *keys)
            _wait_until(server, _event("call.answered"), "answer", timeout=20)
            _rewrite(plans / f"{RELOAD_NUMBER}.yaml", VERSION_B, tmp_path)
            reloaded = _wait_until(server, _loaded(_version(VERSION_B)), "reload", timeout=20)
            first_result = first.result(timeout=60)
        first_ended = _wait_until(server, _event("call.ended"), "end", timeout=20)
        second = _call(sipp, tmp_path, server, RELOAD_NUMBER, scenario, *keys)
    finally:
        server.stop()
    _ok(first_result, server)
    _ok(second, server)
    assert reloaded < first_ended, "the file was reloaded only after the first call ended"
    a, b = _records(server)
    assert (a["dialplan_version"], a["steps"]) == (
        _version(VERSION_A),
        ["a_welcome", "a_wait", "a_done"],
    )
    assert (b["dialplan_version"], b["steps"]) == (_version(VERSION_B), ["b_welcome", "b_done"])
    assert a["end_reason"] == b["end_reason"] == "normal"
