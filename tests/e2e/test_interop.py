"""Interop end to end: what phones, PBXs and SBCs send that a plain SIPp call does not.

Each test runs `callserver run` and SIPp on 127.0.0.1: an offer answered with every codec we
use while the caller keeps sending the one it listed first; a late offer (an INVITE, or a
re-INVITE, without SDP: our offer in the 200, the answer in the ACK), also on a forwarded call;
responses outside a dialog (To tag, one Allow); RFC 4733 key presses whose end packets never
come; a 200 that is never ACKed; the language in the CDR of a number without a dialplan.
"""

from __future__ import annotations

import wave
from pathlib import Path

import numpy as np
import numpy.typing as npt

from callserver.media import g711
from tests.e2e.conftest import (
    HOST,
    PROMPTS,
    SCENARIOS,
    ServerProcess,
    SippResult,
    exported_cdrs,
    run_sipp,
    start_server,
    start_uas,
)
from tests.e2e.test_media_calls import RtpSink

RATE = 8000
FRAME = 160


def _samples(path: Path) -> npt.NDArray[np.int16]:
    with wave.open(str(path), "rb") as wav:
        assert (wav.getframerate(), wav.getnchannels(), wav.getsampwidth()) == (RATE, 1, 2)
        return np.frombuffer(wav.readframes(wav.getnframes()), dtype="<i2")


def _best_snr_db(reference: npt.NDArray[np.int16], received: npt.NDArray[np.int16]) -> float:
    """SNR of ``received`` against ``reference`` at the lag where they line up best."""
    ref, rec = reference.astype(np.float64), received.astype(np.float64)
    size = 1 << (len(ref) + len(rec)).bit_length()
    spectrum = np.fft.rfft(rec, size) * np.conj(np.fft.rfft(ref, size))
    lag = int(np.argmax(np.fft.irfft(spectrum, size)[: len(rec)]))
    segment = rec[lag : lag + len(ref)]
    assert len(segment) == len(ref), f"only {len(segment)} of {len(ref)} samples arrived"
    noise = np.sum((ref - segment) ** 2)
    return float(10 * np.log10(np.sum(ref**2) / max(noise, 1e-9)))


def _check(result: SippResult, server: ServerProcess) -> None:
    assert result.returncode == 0, result.output[-2000:] + "\n".join(server.raw[-40:])


# -- late offer -----------------------------------------------------------------------------


def _late_offer_call(
    sipp: str, tmp_path: Path, scenario: str, hold_ms: int
) -> tuple[RtpSink, ServerProcess]:
    """A late-offer call to a number without a dialplan (built-in behaviour, language de)."""
    server = start_server(tmp_path, media={"default_language": "de", "rtp_timeout": 0})
    sink = RtpSink()
    try:
        result = run_sipp(
            sipp,
            tmp_path,
            server.port,
            *("-sf", str(SCENARIOS / scenario), "-m", "1", "-d", str(hold_ms)),
            *("-set", "rtp_port", str(sink.port)),
            timeout=30,
        )
        server.wait_for("call.ended")
    finally:
        sink.close()
        server.stop()
    _check(result, server)
    return sink, server


def test_late_offer_gets_our_offer_in_the_200_and_media_from_the_ack(
    sipp: str, tmp_path: Path
) -> None:
    """An INVITE without SDP: the 200 offers PCMA, PCMU and telephone-event, the ACK answers
    PCMU, and the caller hears the German greeting in PCMU from then on; the CDR of this
    number without a dialplan says language de."""
    sink, server = _late_offer_call(sipp, tmp_path, "uac-late-offer-answer-in-ack.xml", 3000)
    assert {data[1] & 0x7F for _, data in sink.packets} == {0}
    received = g711.decode("PCMU", sink.audio(0))
    expected = _samples(PROMPTS / "de" / "greeting.wav")
    assert len(received) >= RATE * 2
    assert _best_snr_db(expected[: RATE * 2], received) > 30
    assert server.wait_for("call.media_negotiated")["codec"] == "PCMU"
    (record,) = exported_cdrs(server.data_dir)
    assert record["language"] == "de"
    assert record["disposition"] == "ANSWERED" and record["end_reason"] == "normal"
    assert record["answer_stamp"] is not None


def test_reinvite_without_sdp_gets_our_offer_and_the_ack_answer_applies(
    sipp: str, tmp_path: Path
) -> None:
    """A re-INVITE without SDP: the 200 carries our offer (o= version 2), the ACK answers
    PCMA, and the RTP we send switches from PCMU to PCMA."""
    sink, server = _late_offer_call(
        sipp, tmp_path, "uac-late-offer-then-reinvite-without-sdp.xml", 1500
    )
    kinds = [data[1] & 0x7F for _, data in sink.packets]
    switch = kinds.index(8)
    assert switch > 25 and set(kinds[:switch]) == {0} and set(kinds[switch:]) == {8}
    assert len(kinds) - switch > 25
    negotiated = server.events("call.media_negotiated")
    assert [line["codec"] for line in negotiated] == ["PCMU", "PCMA"]


FORWARDING_NUMBER = "38733100200"
FORWARD_PLAN = """\
steps:
  support:
    forward: "+38761200300"
    ring_timeout: 10s
"""


def test_late_offer_on_a_forwarded_call_bridges_the_callee_audio(sipp: str, tmp_path: Path) -> None:
    """A late-offer caller whose plan forwards: our offer goes in its 200 when the forwarded
    party answers, its answer in the ACK, and the forwarded party's audio reaches it intact."""
    speech = _samples(PROMPTS / "en" / "information.wav")
    payload = g711.encode("PCMU", speech[: len(speech) // FRAME * FRAME])
    (tmp_path / "forwarded-audio.ulaw").write_bytes(payload)
    plans = tmp_path / "dialplans"
    plans.mkdir()
    (plans / f"{FORWARDING_NUMBER}.yaml").write_text(FORWARD_PLAN)
    uas, uas_port = start_uas(
        sipp, tmp_path, "-sf", str(SCENARIOS / "uas-answers-and-streams-audio.xml")
    )
    trunks = {
        "trunks": {"test": {"match": [HOST], "channels": 2}},
        "routes": {"pbx": {"host": HOST, "port": uas_port}},
        "default_route": "pbx",
    }
    server = start_server(tmp_path, dialplans=plans, trunks=trunks)
    sink = RtpSink()
    try:
        result = run_sipp(
            sipp,
            tmp_path,
            server.port,
            *("-sf", str(SCENARIOS / "uac-late-offer-answer-in-ack.xml"), "-m", "1"),
            *("-s", FORWARDING_NUMBER, "-d", "4500", "-set", "rtp_port", str(sink.port)),
            timeout=30,
        )
        uas_out, _ = uas.communicate(timeout=30)
    finally:
        sink.close()
        server.stop()
        if uas.poll() is None:
            uas.kill()
    _check(result, server)
    assert uas.returncode == 0, uas_out[-2000:]
    heard = sink.audio(0)
    middle = payload[RATE : RATE * 3]  # 2 s from 1 s in: the bridge is up by then
    assert middle in heard, f"{len(heard)} bytes heard, without the forwarded party's audio"
    legs = {record["leg"]: record for record in exported_cdrs(server.data_dir)}
    assert legs["a"]["disposition"] == legs["b"]["disposition"] == "ANSWERED"
