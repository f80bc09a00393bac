"""Duration caps end to end: the server warns, then hangs up a per-call premium call at its cap."""

from __future__ import annotations

from contextlib import closing
from datetime import datetime
from pathlib import Path

from callserver.config.tariffs import load_tariffs
from callserver.media import g711
from tests.e2e.conftest import (
    PROMPTS,
    TARIFFS,
    exported_cdrs,
    run_scenario,
    start_server,
    stopped_on_exit,
)
from tests.e2e.prompt_audio import FRAME, aligned_snr_db, lag, wav_samples
from tests.e2e.rtp_sink import RTP_HEADER, RtpSink

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
    with stopped_on_exit(server):
        result = run_scenario(
            sipp,
            tmp_path,
            server,
            "uac-expect-server-bye.xml",
            *("-m", "1", "-s", PREMIUM_PER_CALL),
            timeout=60,
        )
        ended = server.wait_for("call.ended")
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


def test_a_classes_own_warning_plays_warn_before_seconds_before_the_bye(
    sipp: str, tmp_path: Path
) -> None:
    """warn_before 5 on a 10 s cap: the warning's RTP starts 5 s (±1 s) before the BYE.

    The global cap_warning is set to 2 s: the class's own value must win over it.
    """
    text = TARIFFS.read_text()
    assert CLASS_CAP in text and "cap_warning: 30" in text
    tariffs = tmp_path / "tariffs.yaml"
    tariffs.write_text(
        text.replace(CLASS_CAP, "    max_duration: 10\n    warn_before: 5\n").replace(
            "cap_warning: 30", "cap_warning: 2"
        )
    )
    server = start_server(tmp_path, tariffs=tariffs, media={"default_language": "en"})
    sink = RtpSink()
    with stopped_on_exit(server), closing(sink):
        result = run_scenario(
            sipp,
            tmp_path,
            server,
            "uac-caller-hears-prompts-until-server-bye.xml",
            *("-s", PREMIUM_PER_CALL, "-m", "1", "-key", "caller", "+38733123456"),
            *("-set", "rtp_port", str(sink.port), "-set", "codec", "0"),
            timeout=40,
        )
        server.wait_for("call.ended", timeout=20)
    assert result.returncode == 0, result.output[-2000:] + "\n".join(server.raw[-40:])
    warned = server.wait_for("call.cap_warning")
    assert (warned["cap"], warned["warn_before"], warned["bridged"]) == (10, 5, False)
    assert server.wait_for("call.max_duration")["cap"] == 10
    starts, last = _warning_start(sink, "en")
    assert 4.0 <= last - starts <= 6.0, (starts, last)
    [cdr] = exported_cdrs(server.data_dir)
    assert (cdr["end_reason"], cdr["billsec"], cdr["cost"]) == ("max_duration", 10, "0.4900")


CLASS_CAP = (
    "    max_duration: 180\n"
    "    # warn_before: 30           # play the warning prompt 30 s before the cap\n"
)


def _warning_start(sink: RtpSink, language: str) -> tuple[float, float]:
    """When the warning prompt's first packet arrived, and when the last packet did (the BYE:
    the stream sends until the call ends), on the sink's clock.

    The prompt is found where it lines up best in the received audio (it scores > 30 dB SNR
    there, so it is the warning and not other sound); its first packet is the one holding that
    sample.
    """
    first = RTP_HEADER.unpack_from(sink.packets[0][1])[2]
    in_order = sorted(
        sink.packets, key=lambda row: (RTP_HEADER.unpack_from(row[1])[2] - first) & 0xFFFF
    )
    received = g711.decode("PCMU", sink.audio(0))
    prompt = wav_samples(PROMPTS / language / "time_warning.wav")
    offset = lag(prompt, received)
    assert aligned_snr_db(prompt, received) > 30
    arrivals = [arrival for arrival, _ in in_order]
    return arrivals[offset // FRAME], max(arrivals)
