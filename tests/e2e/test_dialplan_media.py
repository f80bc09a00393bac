"""Dialplan audio end to end: what SIPp callers hear, and the voicemail they leave.

The first plan picks the prompt language from the caller's country and plays the greeting: the
RTP a caller from +385, +49 or +387 receives must be prompts/<hr|de|bs>/greeting.wav (and not
another language's). The second plan records a voicemail: SIPp streams a speech file into the
call (``rtp_stream``, raw G.711), and the message must appear in the mailbox with the duration
that was sent, its JSON metadata beside it, and its path in the call's CDR.

Prompts are compared by signal-to-noise ratio at the lag where the two signals line up best
(cross-correlation), so the packets the server sends before the prompt do not matter. A
voicemail is compared frame by frame: u-law out and u-law in, it holds the very samples sent.
"""

from __future__ import annotations

import json
from contextlib import closing
from pathlib import Path

import numpy as np
import numpy.typing as npt

from callserver.media import g711
from callserver.media.recording import KEPT_SILENCE_SECONDS
from tests.e2e.conftest import (
    PROMPTS,
    ServerProcess,
    exported_cdrs,
    plan_dir,
    run_scenario,
    start_server,
    stopped_on_exit,
)
from tests.e2e.prompt_audio import FRAME, RATE, aligned_snr_db, wav_samples
from tests.e2e.rtp_sink import RtpSink

LANGUAGE_NUMBER = "38733100500"
LANGUAGE_PLAN = """\
language: en
steps:
  pick_language:
    language: caller_country
    default: en
  welcome:
    play: greeting
  bye:
    hangup:
"""
VOICEMAIL_NUMBER = "38733100600"
VOICEMAIL_PLAN = """\
language: en
steps:
  pick_language:
    language: caller_country
    default: en
  leave_message:
    voicemail: box
    greeting: null
    beep: false
    max_length: 20s
    silence_end: 2s
    min_length: 1s
"""
MESSAGE = PROMPTS / "en" / "information.wav"  # 5.65 s of speech, no pause over 0.2 s
CALLERS = {"hr": "+38591234567", "de": "+4930123456", "bs": "+38761234567"}
HANG_UP_AFTER_MS = 6500  # after the 5.65 s message, before 2 s of silence end the recording
SILENCE_DBFS = -45.0  # media.recording.silence_dbfs (the default; the test config keeps it)


def _hear(sipp: str, tmp_path: Path, server: ServerProcess, caller: str) -> npt.NDArray[np.int16]:
    """One call from ``caller`` whose RTP (PCMU) goes to a sink; the decoded audio it got."""
    with closing(RtpSink()) as sink:
        result = run_scenario(
            sipp,
            tmp_path,
            server,
            "uac-caller-hears-prompts-until-server-bye.xml",
            *("-s", LANGUAGE_NUMBER, "-m", "1", "-key", "caller", caller),
            *("-set", "rtp_port", str(sink.port), "-set", "codec", "0"),
            timeout=40,
        )
    assert result.returncode == 0, result.output[-2000:] + "\n".join(server.raw[-40:])
    return g711.decode("PCMU", sink.audio(0))


def test_callers_hear_the_greeting_of_their_country(sipp: str, tmp_path: Path) -> None:
    """+385, +49 and +387 callers hear the hr, de and bs greeting, and no other language's."""
    server = start_server(tmp_path, dialplans=plan_dir(tmp_path, LANGUAGE_NUMBER, LANGUAGE_PLAN))
    with stopped_on_exit(server):
        heard = {lang: _hear(sipp, tmp_path, server, caller) for lang, caller in CALLERS.items()}
    greetings = {lang: wav_samples(PROMPTS / lang / "greeting.wav") for lang in CALLERS}
    for lang, received in heard.items():
        # G.711 keeps speech near 35 dB SNR; a different recording scores near 0 dB or below.
        assert aligned_snr_db(greetings[lang], received) > 30, lang
        for other in set(greetings) - {lang}:
            assert aligned_snr_db(greetings[other], received) < 6, (lang, other)
    records = {str(record["caller_country"]): record for record in exported_cdrs(server.data_dir)}
    assert {country: records[country]["language"] for country in ("HR", "DE", "BA")} == {
        "HR": "hr",
        "DE": "de",
        "BA": "bs",
    }
    for record in records.values():
        assert record["steps"] == ["pick_language", "welcome", "bye"]
        assert record["end_reason"] == "normal"


def _message(tmp_path: Path) -> npt.NDArray[np.int16]:
    """Write the speech SIPp streams (raw u-law, whole 20 ms packets); its samples as sent.

    SIPp 3.6.1's ``rtp_stream`` sends the file's bytes as they are, and fills a last partial
    packet from the start of the file: the message is cut to a whole number of packets.
    """
    samples = wav_samples(MESSAGE)
    samples = samples[: len(samples) // FRAME * FRAME]
    payload = g711.encode("PCMU", samples)
    (tmp_path / "voicemail-message.ulaw").write_bytes(payload)
    return g711.decode("PCMU", payload)


def _speech_end(samples: npt.NDArray[np.int16]) -> float:
    """Seconds from the start to the end of the last 20 ms frame louder than the recorder's
    silence level (``media.recording.silence_dbfs``), i.e. what the recorder counts as speech."""
    frames = samples[: len(samples) // FRAME * FRAME].astype(np.float64).reshape(-1, FRAME)
    power = np.mean(frames**2, axis=1) / 32768.0**2
    loud = np.flatnonzero(10 * np.log10(np.maximum(power, 1e-12)) >= SILENCE_DBFS)
    return float((loud[-1] + 1) * FRAME / RATE)


def _leave_message(sipp: str, tmp_path: Path, scenario: str, *extra: str) -> ServerProcess:
    server = start_server(tmp_path, dialplans=plan_dir(tmp_path, VOICEMAIL_NUMBER, VOICEMAIL_PLAN))
    with stopped_on_exit(server):
        result = run_scenario(
            sipp,
            tmp_path,
            server,
            scenario,
            *("-s", VOICEMAIL_NUMBER, "-m", "1", "-key", "caller", CALLERS["de"], *extra),
            timeout=40,
        )
        server.wait_for("call.ended")
    assert result.returncode == 0, result.output[-2000:] + "\n".join(server.raw[-40:])
    return server


def _stored_message(server: ServerProcess) -> tuple[Path, dict[str, object], dict[str, object]]:
    """The one message in mailbox ``box``, its JSON metadata and the call's CDR."""
    (wav,) = sorted((server.data_dir / "voicemail" / "box").glob("*.wav"))
    metadata = json.loads(wav.with_suffix(".json").read_text(encoding="utf-8"))
    (record,) = exported_cdrs(server.data_dir)
    return wav, metadata, record


def _check_message(
    wav: Path, metadata: dict[str, object], record: dict[str, object], sent: np.ndarray
) -> tuple[float, float, float]:
    """The checks both voicemail tests share; returns, in seconds, the silence before the
    message, the end of its speech in the recording, and the recording's duration.

    The recording holds the very samples SIPp sent (u-law both ways), in 20 ms frames, with
    frames of digital silence wherever no packet came in time (before the first packet, or
    when a loaded machine delayed SIPp's sender): without those, it must begin with every
    sent frame up to the end of the speech.
    """
    recorded = _frames(wav_samples(wav))
    speech = _frames(sent)[: int(_speech_end(sent) * RATE) // FRAME]
    spoken = [frame for frame in speech if frame.any()]
    heard = [index for index, frame in enumerate(recorded) if frame.any()]
    assert len(heard) >= len(spoken), f"{len(heard)} of {len(spoken)} frames recorded"
    assert all(np.array_equal(recorded[i], frame) for i, frame in zip(heard, spoken, strict=False))
    assert metadata["caller"] == CALLERS["de"] and metadata["called"] == VOICEMAIL_NUMBER
    assert metadata["language"] == "de" and metadata["file"] == wav.name
    duration = len(recorded) * FRAME / RATE
    assert abs(float(str(metadata["duration"])) - duration) < 0.002
    assert record["voicemail_path"] == str(wav)
    assert record["language"] == "de" and record["steps"] == ["pick_language", "leave_message"]
    lead = (heard[0] - _first_sound(sent)) * FRAME / RATE
    return lead, (heard[len(spoken) - 1] + 1) * FRAME / RATE, duration


def _first_sound(samples: npt.NDArray[np.int16]) -> int:
    return next(index for index, frame in enumerate(_frames(samples)) if frame.any())


def _frames(samples: npt.NDArray[np.int16]) -> list[npt.NDArray[np.int16]]:
    return list(samples[: len(samples) // FRAME * FRAME].reshape(-1, FRAME))


def test_voicemail_message_is_stored_with_its_duration(sipp: str, tmp_path: Path) -> None:
    """A message followed by silence is stored up to the end of its speech plus 0.5 s.

    The recorder ends a message after ``silence_end`` (2 s) of silence and keeps only the first
    ``KEPT_SILENCE_SECONDS`` (0.5 s) of it: the file ends exactly 0.5 s after the last frame of
    speech. Before it come the silence until SIPp's first packet landed (measured) and the
    message, whose speech lasts as long as the one sent plus the frames of silence the recorder
    inserts when a loaded machine delays SIPp's packets by over 60 ms (0.3 s allowed).
    """
    sent = _message(tmp_path)
    server = _leave_message(sipp, tmp_path, "uac-leaves-voicemail-until-server-bye.xml")
    wav, metadata, record = _stored_message(server)
    lead, speech_end, duration = _check_message(wav, metadata, record, sent)
    assert abs(duration - speech_end - KEPT_SILENCE_SECONDS) < 0.001, (duration, speech_end)
    assert _speech_end(sent) <= speech_end - lead <= _speech_end(sent) + 0.3, (lead, speech_end)
    assert record["end_reason"] == "normal" and record["hangup_by"] == "server"


def test_voicemail_kept_when_the_caller_hangs_up(sipp: str, tmp_path: Path) -> None:
    """A caller who hangs up while being recorded leaves the message, its metadata and CDR path.

    SIPp hangs up ``HANG_UP_AFTER_MS`` after it starts streaming the 5.65 s message, while the
    server still waits for 2 s of silence: the BYE stops the recording, which keeps everything
    so far. It lasts at least to the end of the speech, and at most the message plus two
    silences (before and after it) each shorter than the 2 s that would have ended it.
    """
    sent = _message(tmp_path)
    server = _leave_message(
        sipp, tmp_path, "uac-leaves-voicemail-then-hangs-up.xml", "-d", str(HANG_UP_AFTER_MS)
    )
    wav, metadata, record = _stored_message(server)
    _, speech_end, duration = _check_message(wav, metadata, record, sent)
    assert speech_end <= duration < len(sent) / RATE + 2 * 2.0
    assert record["end_reason"] == "normal" and record["hangup_by"] == "caller"
