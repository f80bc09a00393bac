"""Interop end to end: what phones, PBXs and SBCs send that a plain SIPp call does not.

Each test runs `callserver run` and SIPp on 127.0.0.1: an offer answered with every codec we
use while the caller keeps sending the one it listed first; a late offer (an INVITE, or a
re-INVITE, without SDP: our offer in the 200, the answer in the ACK), also on a forwarded call;
responses outside a dialog (To tag, one Allow); RFC 4733 key presses whose end packets never
come; a 200 that is never ACKed; the language in the CDR of a number without a dialplan.
"""

from __future__ import annotations

import struct
import wave
from contextlib import closing
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
    plan_dir,
    run_scenario,
    start_server,
    stat_value,
    stopped_on_exit,
    uas_leg,
)
from tests.e2e.rtp_sink import RtpSink
from tests.media.pcap import write_udp_pcap

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


# -- codecs ---------------------------------------------------------------------------------

VOICEMAIL_NUMBER = "38733100600"
VOICEMAIL_PLAN = """\
steps:
  leave_message:
    voicemail: box
    greeting: null
    beep: false
    max_length: 20s
    silence_end: 3s
    min_length: 1s
"""


def _speech_file(path: Path) -> bytes:
    """prompts/en/information.wav as whole 20 ms PCMU packets, written to ``path`` for SIPp's
    ``rtp_stream``; the payload written."""
    speech = _samples(PROMPTS / "en" / "information.wav")
    payload = g711.encode("PCMU", speech[: len(speech) // FRAME * FRAME])
    path.write_bytes(payload)
    return payload


def _frames(samples: npt.NDArray[np.int16]) -> list[npt.NDArray[np.int16]]:
    return list(samples[: len(samples) // FRAME * FRAME].reshape(-1, FRAME))


def test_pcmu_from_a_caller_answered_pcma_first_keeps_the_call_and_is_recorded(
    sipp: str, tmp_path: Path
) -> None:
    """Offer 0 8 101 is answered 8 0 101; the caller sends PCMU for 3.5 s with a 1 s
    rtp_timeout: the call lasts until its BYE, and its voicemail holds the very samples sent
    (u-law decoded as u-law, not dropped and not read as A-law)."""
    payload = _speech_file(tmp_path / "caller-audio.ulaw")
    plans = plan_dir(tmp_path, VOICEMAIL_NUMBER, VOICEMAIL_PLAN)
    server = start_server(tmp_path, dialplans=plans, media={"rtp_timeout": 1})
    with stopped_on_exit(server):
        result = run_scenario(
            sipp,
            tmp_path,
            server,
            "uac-offers-pcmu-pcma-sends-pcmu.xml",
            *("-m", "1", "-s", VOICEMAIL_NUMBER, "-d", "3500"),
        )
        server.wait_for("call.ended")
    _check(result, server)
    assert server.wait_for("call.answered")["codec"] == "PCMA"  # what we send: ours first
    assert not server.events("call.rtp_timeout")
    (record,) = exported_cdrs(server.data_dir)
    assert (record["end_reason"], record["hangup_by"]) == ("normal", "caller")
    (wav,) = (server.data_dir / "voicemail" / "box").glob("*.wav")
    heard = [frame for frame in _frames(_samples(wav)) if frame.any()]
    sent = [frame for frame in _frames(g711.decode("PCMU", payload)) if frame.any()]
    first = next(i for i, frame in enumerate(sent) if np.array_equal(frame, heard[0]))
    assert first < 10 and len(heard) > 100  # from the first packets, for 2 s at least
    assert all(np.array_equal(h, s) for h, s in zip(heard, sent[first:], strict=False))


# -- a looped prompt -------------------------------------------------------------------------


def test_a_looped_greeting_starts_again_at_its_end(sipp: str, tmp_path: Path) -> None:
    """The default plan with ``loop: true``: a caller who stays 6 s hears the 2.25 s greeting
    a second time, sample for sample, right after the first."""
    server = start_server(tmp_path, loop=True)
    sink = RtpSink()
    with stopped_on_exit(server), closing(sink):
        result = run_scenario(
            sipp,
            tmp_path,
            server,
            "uac-hears-greeting.xml",
            *("-m", "1", "-d", "6000", "-set", "rtp_port", str(sink.port), "-set", "codec", "0"),
        )
    _check(result, server)
    received = g711.decode("PCMU", sink.audio(0))
    expected = _samples(PROMPTS / "en" / "greeting.wav")
    assert len(received) >= 2 * len(expected) + RATE
    assert _best_snr_db(expected, received[: len(expected) + RATE // 2]) > 30
    second = received[len(expected) - RATE // 2 : 2 * len(expected) + RATE // 2]
    assert _best_snr_db(expected, second) > 30


# -- late offer -----------------------------------------------------------------------------


def _late_offer_call(
    sipp: str, tmp_path: Path, scenario: str, hold_ms: int
) -> tuple[RtpSink, ServerProcess]:
    """A late-offer call to a number without a dialplan (built-in behaviour, language de)."""
    server = start_server(tmp_path, media={"default_language": "de", "rtp_timeout": 0})
    sink = RtpSink()
    with stopped_on_exit(server), closing(sink):
        result = run_scenario(
            sipp,
            tmp_path,
            server,
            scenario,
            *("-m", "1", "-d", str(hold_ms), "-set", "rtp_port", str(sink.port)),
        )
        server.wait_for("call.ended")
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
    payload = _speech_file(tmp_path / "forwarded-audio.ulaw")
    plans = plan_dir(tmp_path, FORWARDING_NUMBER, FORWARD_PLAN)
    streaming = ("-sf", str(SCENARIOS / "uas-answers-and-streams-audio.xml"))
    with uas_leg(sipp, tmp_path, *streaming) as (uas, uas_port):
        trunks = {
            "trunks": {"test": {"match": [HOST], "channels": 2}},
            "routes": {"pbx": {"host": HOST, "port": uas_port}},
            "default_route": "pbx",
        }
        server = start_server(tmp_path, dialplans=plans, trunks=trunks)
        sink = RtpSink()
        with stopped_on_exit(server), closing(sink):
            result = run_scenario(
                sipp,
                tmp_path,
                server,
                "uac-late-offer-answer-in-ack.xml",
                *("-m", "1", "-s", FORWARDING_NUMBER, "-d", "4500"),
                *("-set", "rtp_port", str(sink.port)),
            )
            uas_out, _ = uas.communicate(timeout=30)
    _check(result, server)
    assert uas.returncode == 0, uas_out[-2000:]
    heard = sink.audio(0)
    middle = payload[RATE : RATE * 3]  # 2 s from 1 s in: the bridge is up by then
    assert middle in heard, f"{len(heard)} bytes heard, without the forwarded party's audio"
    legs = {record["leg"]: record for record in exported_cdrs(server.data_dir)}
    assert legs["a"]["disposition"] == legs["b"]["disposition"] == "ANSWERED"


# -- requests outside a dialog ----------------------------------------------------------------


def test_options_and_405_carry_a_to_tag_and_one_allow(sipp: str, tmp_path: Path) -> None:
    """OPTIONS gets 200, PUBLISH and MESSAGE get 405, a SUBSCRIBE without credentials 401,
    each with a To tag and the Allow header field at most once (SIPp checks every response)."""
    with stopped_on_exit(start_server(tmp_path)) as server:
        result = run_scenario(
            sipp, tmp_path, server, "uac-options-and-405-carry-a-to-tag.xml", "-m", "1", timeout=20
        )
    _check(result, server)
    assert stat_value(result, "SuccessfulCall(C)") == 1


# -- RFC 4733 events without an end ---------------------------------------------------------

TE = 101
SSRC = 0x2B3C4D5E


def _events_pcap(path: Path) -> None:
    """Telephone-events 20 ms apart on PT 101 (RFC 4733 §2.5.1), none with an end packet but
    one: 8 for 100 ms (its end burst lost), 1 cut short by 2 (which ends), then 7 held for 4 s
    and never released (its updates go on until the caller hangs up)."""
    presses = [("8", 5, False, 0.5), ("1", 5, False, 0.0), ("2", 5, True, 0.5)]
    presses.append(("7", 200, False, 0.0))
    packets: list[tuple[float, bytes]] = []
    now, seq, ts = 1.0, 1000, 80000
    for digit, updates, ends, gap in presses:
        code = "0123456789*#".index(digit)
        durations = [(160 * (i + 1), False) for i in range(updates)]
        durations += [(160 * updates, True)] * (3 if ends else 0)
        for i, (duration, end) in enumerate(durations):
            header = struct.pack("!BBHII", 0x80, (0x80 if i == 0 else 0) | TE, seq, ts, SSRC)
            body = struct.pack("!BBH", code, (0x80 if end else 0) | 10, duration)
            packets.append((now, header + body))
            now, seq = now + 0.02, seq + 1
        now += gap
        ts += 160 * (updates + 1) + int(gap * RATE)
    write_udp_pcap(path, packets)


def test_digits_without_end_packets_are_reported_once_each(sipp: str, tmp_path: Path) -> None:
    """A key whose end burst was lost, one cut short by the next, and one held with no
    release while the caller hangs up 2.5 s into it: each is reported once, the held one
    after 2 s (media.dtmf_max_event), while its updates still arrive."""
    _events_pcap(tmp_path / "digits-without-end.pcap")
    with stopped_on_exit(start_server(tmp_path)) as server:
        result = run_scenario(
            sipp,
            tmp_path,
            server,
            "uac-sends-digits-without-end-packets.xml",
            "-m",
            "1",
            "-d",
            "4500",
        )
        server.wait_for("call.ended")
    _check(result, server)
    digits = [(line["digit"], line["source"]) for line in server.events("call.dtmf")]
    assert digits == [(d, "rfc4733") for d in "8127"]


# -- a 200 never ACKed ----------------------------------------------------------------------


def test_a_200_never_acked_ends_with_ack_timeout(sipp: str, tmp_path: Path) -> None:
    """No ACK for 64*T1 (T1 0.1 s): the server sends BYE and the CDR says ack_timeout, the
    call unanswered; language en (the default) for a number without a dialplan."""
    with stopped_on_exit(start_server(tmp_path, sip={"t1": 0.1})) as server:
        result = run_scenario(sipp, tmp_path, server, "uac-never-acks-expect-bye.xml", "-m", "1")
        server.wait_for("call.ended")
    _check(result, server)
    assert server.wait_for("call.ended")["reason"] == "ack_timeout"
    (record,) = exported_cdrs(server.data_dir)
    assert record["end_reason"] == "ack_timeout"
    assert (record["disposition"], record["hangup_cause"], record["q850_cause"]) == (
        "FAILED",
        "RECOVERY_ON_TIMER_EXPIRE",
        102,
    )
    assert (record["answer_stamp"], record["billsec"], record["sip_code"]) == (None, 0, 200)
    assert record["language"] == "en"
