"""Media end to end: SIPp calls `callserver run` and real RTP flows over loopback."""

from __future__ import annotations

import itertools
from contextlib import closing
from pathlib import Path

import numpy as np
import pytest

from callserver.media import g711
from tests.e2e.conftest import (
    PROMPTS,
    ServerProcess,
    SippResult,
    run_scenario,
    start_server,
    stat_value,
    stopped_on_exit,
)
from tests.e2e.prompt_audio import wav_samples
from tests.e2e.rtp_sink import RTP_HEADER, RtpSink


def _snr_db(reference: np.ndarray, received: np.ndarray) -> float:
    ref = reference.astype(np.float64)
    noise = ref - received.astype(np.float64)
    return float(10 * np.log10(np.sum(ref**2) / max(np.sum(noise**2), 1e-9)))


def _listen(sipp: str, tmp_path: Path, payload_type: int, ms: int) -> tuple[RtpSink, ServerProcess]:
    """One SIPp call offering ``payload_type`` whose RTP goes to a sink for ``ms``, then BYE."""
    server = start_server(tmp_path)
    sink = RtpSink()
    with stopped_on_exit(server), closing(sink):
        result = run_scenario(
            sipp,
            tmp_path,
            server,
            "uac-hears-greeting.xml",
            *("-m", "1", "-d", str(ms)),
            *("-set", "rtp_port", str(sink.port), "-set", "codec", str(payload_type)),
            timeout=60,
        )
    assert result.returncode == 0, result.output[-2000:]
    return sink, server


@pytest.mark.parametrize(("codec", "payload_type"), [("PCMU", 0), ("PCMA", 8)])
def test_caller_hears_the_shipped_greeting(
    sipp: str, tmp_path: Path, codec: str, payload_type: int
) -> None:
    """The RTP a SIPp caller receives decodes to the samples of prompts/en/greeting.wav."""
    sink, server = _listen(sipp, tmp_path, payload_type, 2500)
    received = g711.decode(codec, sink.audio(payload_type))
    expected = wav_samples(PROMPTS / "en" / "greeting.wav")
    n = min(len(received), len(expected))
    assert n >= 8000 * 2, f"only {n} samples of the greeting arrived"
    # G.711 quantisation keeps the SNR of speech near 35 dB; anything else would be far lower.
    assert _snr_db(expected[:n], received[:n]) > 30
    answered = server.events("call.answered")
    assert answered and answered[0]["codec"] == codec


def test_packets_leave_every_20_ms(sipp: str, tmp_path: Path) -> None:
    """One SSRC, sequence numbers +1, timestamps in steps of 160 samples (20 ms packets).

    A step of a multiple of 160 is a tick the clock skipped after a stall (it resyncs rather
    than bursting), which a loaded test machine may cause; sequence numbers never skip.
    """
    sink, _ = _listen(sipp, tmp_path, 0, 1500)
    headers = [RTP_HEADER.unpack_from(data) for _, data in sink.packets]
    assert len(headers) >= 50
    assert len({ssrc for *_, ssrc in headers}) == 1
    assert headers[0][1] & 0x80, "the first packet carries the marker bit"
    steps = {(b[3] - a[3]) & 0xFFFFFFFF for a, b in itertools.pairwise(headers)}
    seqs = {(b[2] - a[2]) & 0xFFFF for a, b in itertools.pairwise(headers)}
    assert seqs == {1}
    assert 160 in steps and all(step % 160 == 0 for step in steps)


def _digits(server: ServerProcess) -> list[tuple[object, object]]:
    return [(line["digit"], line["source"]) for line in server.events("call.dtmf")]


def _one_call(
    sipp: str, tmp_path: Path, scenario: str, media: dict[str, object] | None = None
) -> tuple[SippResult, ServerProcess, dict[str, object]]:
    """One SIPp call of ``scenario``; returns SIPp's result, the server and its call.ended line."""
    server = start_server(tmp_path, media=media)
    with stopped_on_exit(server):
        result = run_scenario(sipp, tmp_path, server, scenario, "-m", "1", timeout=60)
        ended = server.wait_for("call.ended")
    assert result.returncode == 0, result.output[-2000:]
    return result, server, ended


def test_rfc4733_digits_from_sipp_captures(sipp: str, tmp_path: Path) -> None:
    """SIPp replays its dtmf_2833 captures into a call; the server reports 1 5 9 0 * # once each."""
    result, server, _ = _one_call(sipp, tmp_path, "uac-sends-rfc4733-digits.xml")
    assert stat_value(result, "SuccessfulCall(C)") == 1
    assert _digits(server) == [(d, "rfc4733") for d in "1590*#"]


def test_info_digit_and_hold(sipp: str, tmp_path: Path) -> None:
    """A SIP INFO dtmf-relay digit is reported; hold and unhold re-direct the stream."""
    _, server, _ = _one_call(sipp, tmp_path, "uac-hold-unhold-in-dialog-requests.xml")
    assert _digits(server) == [("5", "info")]
    directions = [line["direction"] for line in server.events("call.media_updated")]
    assert "sendonly" in directions or "inactive" in directions
    assert directions[-1] == "sendrecv"


def test_rtp_inactivity_ends_the_call(sipp: str, tmp_path: Path) -> None:
    """A caller that sends no RTP is hung up after media.rtp_timeout with the cause recorded."""
    _, server, ended = _one_call(
        sipp, tmp_path, "uac-expect-server-bye.xml", media={"rtp_timeout": 1}
    )
    assert server.events("call.rtp_timeout")
    assert ended["reason"] == "rtp_timeout"
