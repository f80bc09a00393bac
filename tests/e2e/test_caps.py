"""Duration caps end to end: the server hangs up a per-call premium call at its class's cap."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from callserver.tariffs import load_tariffs
from tests.e2e.conftest import SCENARIOS, TARIFFS, exported_cdrs, run_sipp, start_server

PREMIUM_PER_CALL = "092291123"  # 092 291 xxx: 0.49 KM a call, at most 3 minutes


def _stamp(line: dict[str, object]) -> datetime:
    return datetime.fromisoformat(str(line["timestamp"]).replace("Z", "+00:00"))


def test_shipped_cap_of_per_call_premium_numbers_is_180_s() -> None:
    """config/tariffs.yaml caps 090 291 1xx, 092 291 xxx and 094 291 xxx at 180 s."""
    tariffs = load_tariffs(TARIFFS)
    for number in ("090291123", "092291123", "094291999", "+38792291123"):
        assert tariffs.duration_cap(tariffs.classify(number)) == 180


def test_server_sends_bye_at_the_cap(sipp: str, tmp_path: Path) -> None:
    """With the cap set to 3 s, the server's BYE comes 3 s (±1 s) after the answer."""
    text = TARIFFS.read_text()
    assert text.count("max_duration: 180") >= 1 and "cap_warning: 30" in text
    short = tmp_path / "tariffs.yaml"
    short.write_text(
        text.replace("max_duration: 180", "max_duration: 3").replace(
            "cap_warning: 30", "cap_warning: 1"
        )
    )
    server = start_server(tmp_path, tariffs=short)
    try:
        result = run_sipp(
            sipp,
            tmp_path,
            server.port,
            *("-sf", str(SCENARIOS / "uac-expect-server-bye.xml"), "-m", "1"),
            *("-s", PREMIUM_PER_CALL),
        )
        ended = server.wait_for("call.ended")
    finally:
        server.stop()
    assert result.returncode == 0, result.output[-2000:]
    capped = server.wait_for("call.max_duration")
    assert capped["cap"] == 3 and capped["number_class"]
    warned = server.wait_for("call.cap_warning")
    assert warned["bridged"] is False
    assert 0.5 <= (_stamp(capped) - _stamp(warned)).total_seconds() <= 2.0  # 1 s before
    waited = (_stamp(capped) - _stamp(server.wait_for("call.answered"))).total_seconds()
    assert 2.0 <= waited <= 4.0
    assert ended["reason"] == "max_duration"
    [cdr] = exported_cdrs(server.data_dir)
    assert (cdr["end_reason"], cdr["hangup_by"], cdr["disposition"]) == (
        "max_duration",
        "server",
        "ANSWERED",
    )
    assert (cdr["called_raw"], cdr["cost"], cdr["billed_units"]) == (PREMIUM_PER_CALL, "0.4900", 1)
