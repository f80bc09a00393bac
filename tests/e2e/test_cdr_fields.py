"""CDR fields and rated costs end to end: a normal, a blacklisted, a limited and a forwarded call.

Every call goes through `callserver run` with SIPp on 127.0.0.1, and its records are read back
with `callserver cdr export`. Costs are recomputed here, apart from callserver's own rating, from
the record's billsec and the tariff's price, increment and VAT rate as config/tariffs.yaml writes
them: the file is read with every float kept as the decimal it spells, so no amount ever passes
through a binary float. A forwarded call holds one channel for each leg, so on a one-channel
trunk the forward cannot be placed and the plan's ``failed`` branch runs instead.
"""

from __future__ import annotations

import subprocess
from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path

import pytest
import yaml

from callserver.cdr.record import CdrRecord, parse_stamp
from tests.default_plan import write_default_plan
from tests.e2e.conftest import (
    HOST,
    PROMPTS,
    SCENARIOS,
    TARIFFS,
    ServerProcess,
    SippResult,
    free_port,
    launch,
    media_port,
    run_sipp,
    start_server,
    start_uas,
    write_trunks,
)
from tests.e2e.rated_cdrs import (
    HOLD_MS,
    QUANTUM,
    Record,
    acme_trunks,
    expected_amounts,
    log_tail,
    stopped_cdrs,
    wait_stopped,
)

CALLER = "061234567"  # a BiH mobile number in national format, as the trunk presents it
CALLER_E164 = "38761234567"
PLAN_NUMBER = "38733100200"  # the number whose dialplan forwards
TARGET = "+38763200300"  # HT Eronet mobile: the forwarded leg's tariff


def _assert_rated(record: Record, number_class: str, tariff: str) -> None:
    """The record is rated under ``tariff``, and its amounts are what the file's prices say."""
    billsec = record["billsec"]
    assert isinstance(billsec, int) and billsec >= 1, record
    units, seconds, cost, vat = expected_amounts(tariff, billsec)
    assert (record["number_class"], record["tariff"]) == (number_class, tariff), record
    assert (record["billed_units"], record["billed_seconds"]) == (units, seconds), record
    assert Decimal(str(record["cost"])) == cost and isinstance(record["cost"], str), record
    assert Decimal(str(record["vat"])) == vat and isinstance(record["vat"], str), record
    assert vat == (cost * Decimal("0.17")).quantize(QUANTUM, rounding=ROUND_HALF_UP)


def _assert_stamps(record: Record, before: datetime, after: datetime) -> None:
    """UTC stamps with milliseconds, in order, inside the test's run; the derived fields agree."""
    moments = {}
    for name in ("start_stamp", "answer_stamp", "end_stamp"):
        text = record[name]
        if text is None and name == "answer_stamp":
            continue
        assert isinstance(text, str) and len(text) == 24 and text.endswith("Z"), record
        moments[name] = parse_stamp(text)
    start, end = moments["start_stamp"], moments["end_stamp"]
    answer = moments.get("answer_stamp", start)
    slack = timedelta(seconds=1)  # the stamps' clock is the server's, read apart from ours
    assert before - slack <= start <= answer <= end <= after + slack, record
    assert record["duration"] == (end - start) // timedelta(seconds=1), record
    billmsec = (end - answer) // timedelta(milliseconds=1) if "answer_stamp" in moments else 0
    assert (record["billmsec"], record["billsec"]) == (billmsec, billmsec // 1000), record
    CdrRecord.from_dict(record)  # the record as a whole is valid and its derived fields agree


def _assert_rejected(record: Record, end_reason: str, sip_code: int, q850: int) -> None:
    """A call refused by policy: REJECTED by the server, never answered, never rated."""
    assert record["disposition"] == "REJECTED", record
    assert (record["end_reason"], record["sip_code"], record["q850_cause"]) == (
        end_reason,
        sip_code,
        q850,
    ), record
    assert (record["hangup_cause"], record["hangup_by"]) == ("CALL_REJECTED", "server"), record
    assert record["answer_stamp"] is None and record["billsec"] == record["billmsec"] == 0
    for name in ("number_class", "tariff", "billed_units", "cost", "vat"):
        assert record[name] is None, (name, record)


def _forwarding_plan(tmp_path: Path) -> Path:
    """A plan directory whose number forwards to TARGET, answering 486 when that fails."""
    plans = tmp_path / "dialplans"
    plans.mkdir()
    (plans / f"{PLAN_NUMBER}.yaml").write_text(
        "steps:\n"
        "  support:\n"
        f'    forward: "{TARGET}"\n'
        "    ring_timeout: 10s\n"
        "    failed: busy\n"
        "  busy:\n"
        "    hangup: 486\n"
    )
    return plans


def _call(sipp: str, tmp_path: Path, port: int, scenario: str, called: str) -> SippResult:
    """One SIPp call from CALLER to ``called`` with ``scenario``, held HOLD_MS if answered."""
    return run_sipp(
        sipp,
        tmp_path,
        port,
        *("-sf", str(SCENARIOS / scenario), "-s", called, "-m", "1"),
        *("-key", "caller", CALLER, "-d", str(HOLD_MS)),
        timeout=30,
    )


def _hold(sipp: str, port: int, cwd: Path) -> subprocess.Popen[str]:
    """SIPp holding one answered call until the server sends BYE (at shutdown here)."""
    scenario = SCENARIOS / "uac-expect-server-bye.xml"
    cmd = [
        sipp,
        f"{HOST}:{port}",
        *("-i", HOST, "-p", str(free_port(both=False)), "-mp", str(media_port())),
        *("-sf", str(scenario), "-m", "1", "-nostdin", "-timeout", "40s", "-timeout_error"),
    ]
    return subprocess.Popen(
        cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, errors="replace", cwd=cwd
    )


def _start_with_blacklist(
    tmp_path: Path, entries: str, channels: int | None = None
) -> ServerProcess:
    """`callserver run` with the default plan only and ``entries`` as its global blacklist."""
    blacklist = tmp_path / "blacklist.txt"
    blacklist.write_text(entries)
    port = free_port()
    config = {
        "trunks": write_trunks(tmp_path, acme_trunks(channels)),
        "centrex": str(tmp_path / "centrex.yaml"),
        "tariffs": str(TARIFFS),
        "blacklist": str(blacklist),
        "dialplans": str(write_default_plan(tmp_path / "dialplans").parent),
        "sip": {"listen": [f"udp:{HOST}:{port}"], "t1": 0.5},
        "media": {"prompts_dir": str(PROMPTS)},
        "calls": {"drain_timeout": 2},
        "data_dir": str(tmp_path / "var"),
        "log_format": "json",
        "log_level": "info",
    }
    path = tmp_path / "callserver.yaml"
    path.write_text(yaml.safe_dump(config))
    return launch(["run", "--config", str(path)], port, tmp_path / "var")


def _records_by(server: ServerProcess, field: str, count: int = 2) -> dict[str, Record]:
    """The server's ``count`` CDRs keyed by ``field``, which no two of them share."""
    records = stopped_cdrs(server, count)
    keyed = {str(record[field]): record for record in records}
    assert len(keyed) == len(records), records
    return keyed


@pytest.mark.parametrize(
    ("called", "e164", "number_class", "tariff"),
    [
        ("033100200", "38733100200", "bih_geographic", "bih_fixed"),
        ("090291100", "38790291100", "premium_call_049", "premium_call_049"),
    ],
    ids=["bih-fixed-per-minute", "premium-per-call"],
)
def test_answered_call_has_every_field_and_its_tariff_cost(
    sipp: str, tmp_path: Path, called: str, e164: str, number_class: str, tariff: str
) -> None:
    """An answered call the caller ends has every CDR field and the cost its tariff gives."""
    before = datetime.now(UTC)
    server = start_server(tmp_path, trunks=acme_trunks())
    try:
        result = _call(sipp, tmp_path, server.port, "uac-caller-hangs-up-after-answer.xml", called)
    finally:
        server.stop()
    after = datetime.now(UTC)
    assert result.returncode == 0, result.output[-2000:] + log_tail(server)
    (record,) = stopped_cdrs(server, 1)
    assert record["call_id"] == server.wait_for("call.answered")["call_id"], record
    assert record["leg"] == "a" and record["linked_id"] == record["call_id"], record
    assert (record["trunk"], record["customer"], record["direction"]) == (
        "test",
        "acme",
        "inbound",
    ), record
    assert (record["caller_raw"], record["caller_e164"], record["caller_country"]) == (
        CALLER,
        CALLER_E164,
        "BA",
    ), record
    assert (record["called_raw"], record["called_e164"]) == (called, e164), record
    _assert_stamps(record, before, after)
    assert record["disposition"] == "ANSWERED" and record["hangup_cause"] == "NORMAL_CLEARING"
    assert (record["sip_code"], record["q850_cause"]) == (200, 16), record
    assert (record["hangup_by"], record["end_reason"]) == ("caller", "normal"), record
    _assert_rated(record, number_class, tariff)
    assert record["payer"] == "caller", record


def test_blacklisted_caller_gets_603_and_an_unrated_rejected_cdr(sipp: str, tmp_path: Path) -> None:
    """A caller on config/blacklist.txt is declined with 603 and cause 21, and never rated."""
    before = datetime.now(UTC)
    server = _start_with_blacklist(tmp_path, f"# nuisance calls\n+{CALLER_E164}  # ticket 4711\n")
    try:
        result = _call(sipp, tmp_path, server.port, "uac-expect-603-blacklisted.xml", "033100200")
    finally:
        server.stop()
    after = datetime.now(UTC)
    assert result.returncode == 0, result.output[-2000:] + log_tail(server)
    (record,) = stopped_cdrs(server, 1)
    _assert_rejected(record, "blacklist", 603, 21)
    _assert_stamps(record, before, after)
    assert (record["caller_raw"], record["caller_e164"]) == (CALLER, CALLER_E164), record
    assert (record["trunk"], record["customer"], record["leg"]) == ("test", "acme", "a"), record
    assert wait_stopped(server)["channels_in_use"] == 0


def test_blacklisted_caller_is_declined_before_it_takes_a_channel(
    sipp: str, tmp_path: Path
) -> None:
    """On a one-channel trunk whose channel a call holds, a blacklisted caller still gets 603."""
    server = _start_with_blacklist(tmp_path, f"+{CALLER_E164}\n", channels=1)
    holder = _hold(sipp, server.port, tmp_path)
    try:
        server.wait_for("call.answered")
        result = _call(sipp, tmp_path, server.port, "uac-expect-603-blacklisted.xml", "033100200")
    finally:
        server.stop()  # the drain ends the held call with BYE
        held, _ = holder.communicate(timeout=40)
    assert result.returncode == 0, result.output[-2000:] + log_tail(server)
    assert holder.returncode == 0, held[-2000:] + log_tail(server)
    records = _records_by(server, "disposition")
    assert sorted(records) == ["ANSWERED", "REJECTED"], records
    declined = records["REJECTED"]
    _assert_rejected(declined, "blacklist", 603, 21)
    assert (declined["trunk"], declined["customer"]) == ("test", "acme"), declined
    assert not server.events("call.rejected"), log_tail(server)  # no channel_limit refusal
    assert wait_stopped(server)["channels_in_use"] == 0


def test_call_over_the_channel_limit_gets_503_and_an_unrated_rejected_cdr(
    sipp: str, tmp_path: Path
) -> None:
    """With the trunk's one channel in use, a second call gets 503 cause 34 and is not rated."""
    before = datetime.now(UTC)
    server = start_server(tmp_path, trunks=acme_trunks(channels=1))
    holder = _hold(sipp, server.port, tmp_path)
    try:
        server.wait_for("call.answered")
        scenario = "uac-expect-503-channel-limit.xml"
        refused = run_sipp(
            sipp, tmp_path, server.port, *("-sf", str(SCENARIOS / scenario), "-m", "1")
        )
    finally:
        server.stop()  # the drain ends the held call with BYE
        held, _ = holder.communicate(timeout=40)
    after = datetime.now(UTC)
    assert refused.returncode == 0, refused.output[-2000:] + log_tail(server)
    assert holder.returncode == 0, held[-2000:] + log_tail(server)
    records = _records_by(server, "disposition")
    assert sorted(records) == ["ANSWERED", "REJECTED"], records
    rejected = records["REJECTED"]
    _assert_rejected(rejected, "channel_limit", 503, 34)
    _assert_stamps(rejected, before, after)
    assert rejected["call_id"] != records["ANSWERED"]["call_id"]
    assert wait_stopped(server)["channels_in_use"] == 0
    assert records["ANSWERED"]["customer"] == "acme", records
    # The trunk is identified before its channels are counted, so its customer is known.
    assert (rejected["trunk"], rejected["customer"]) == ("test", "acme"), rejected


def test_forwarded_call_leaves_two_linked_cdrs_the_b_leg_rated_by_its_target(
    sipp: str, tmp_path: Path
) -> None:
    """A forwarded call leaves an inbound and an outbound record, linked, each rightly ended."""
    before = datetime.now(UTC)
    uas, uas_port = start_uas(sipp, tmp_path, "-sn", "uas")
    plans = _forwarding_plan(tmp_path)
    server = start_server(tmp_path, dialplans=plans, trunks=acme_trunks(2, uas_port))
    try:
        scenario = "uac-caller-hangs-up-after-answer.xml"
        caller = _call(sipp, tmp_path, server.port, scenario, PLAN_NUMBER)
        uas_out, _ = uas.communicate(timeout=30)
    finally:
        server.stop()
        if uas.poll() is None:
            uas.kill()
            uas.communicate()
    after = datetime.now(UTC)
    assert caller.returncode == 0, caller.output[-2000:] + log_tail(server)
    assert uas.returncode == 0, uas_out[-2000:] + log_tail(server)
    legs = _records_by(server, "leg")
    assert sorted(legs) == ["a", "b"], legs
    a, b = legs["a"], legs["b"]
    assert (a["direction"], b["direction"]) == ("inbound", "outbound")
    assert a["linked_id"] == b["linked_id"] == a["call_id"] != b["call_id"], legs
    for record in (a, b):
        _assert_stamps(record, before, after)
        assert (record["disposition"], record["sip_code"], record["q850_cause"]) == (
            "ANSWERED",
            200,
            16,
        ), record
        assert (record["trunk"], record["customer"]) == ("test", "acme"), record
        assert (record["caller_raw"], record["end_reason"]) == (CALLER, "normal"), record
        assert (record["caller_e164"], record["caller_country"]) == (CALLER_E164, "BA"), record
    assert (a["called_raw"], a["called_e164"]) == (PLAN_NUMBER, PLAN_NUMBER)
    assert (b["called_raw"], b["called_e164"]) == (TARGET, TARGET.lstrip("+"))
    assert (a["hangup_by"], b["hangup_by"]) == ("caller", "server"), legs
    _assert_rated(b, "bih_mobile_ht_eronet", "bih_mobile_ht_eronet")
    _assert_rated(a, "bih_geographic", "bih_fixed")  # the inbound call, as any answered one
    assert wait_stopped(server)["channels_in_use"] == 0


def test_forward_without_a_second_channel_takes_the_failed_branch(
    sipp: str, tmp_path: Path
) -> None:
    """On a one-channel trunk the forward gets no channel: 486 to the caller, b-leg REJECTED."""
    before = datetime.now(UTC)
    plans = _forwarding_plan(tmp_path)
    server = start_server(tmp_path, dialplans=plans, trunks=acme_trunks(1, free_port(both=False)))
    try:
        scenario = "uac-expect-486-forward-failed.xml"
        caller = _call(sipp, tmp_path, server.port, scenario, PLAN_NUMBER)
    finally:
        server.stop()
    after = datetime.now(UTC)
    assert caller.returncode == 0, caller.output[-2000:] + log_tail(server)
    assert wait_stopped(server)["channels_in_use"] == 0
    legs = _records_by(server, "leg")
    assert sorted(legs) == ["a", "b"], legs
    a, b = legs["a"], legs["b"]
    _assert_rejected(b, "channel_limit", 503, 34)
    _assert_stamps(b, before, after)
    assert (b["direction"], b["linked_id"], b["called_raw"]) == ("outbound", a["call_id"], TARGET)
    assert (a["sip_code"], a["answer_stamp"], a["cost"]) == (486, None, None), a
    assert a["steps"] == ["support", "busy"], a
