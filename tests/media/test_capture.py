"""Tests for per-tick in-band DTMF detection and recording (callserver.media.capture).

No sockets: streams are built directly, packets go in through ``MediaStream.receive`` and the
tick is ``AudioCapture.tick(now)`` called by hand, 20 ms of fake time per packet.
"""

from __future__ import annotations

import wave
from pathlib import Path

import numpy as np
import numpy.typing as npt

from callserver.media import g711
from callserver.media.capture import AudioCapture
from callserver.media.events import DtmfReceived, RecordingFinished
from callserver.media.settings import MediaSettings, RecordingSettings
from callserver.media.stream import MediaStream
from callserver.media.tones import dtmf_tone, sine
from tests.media.streams import PEER, PT, config, rtp

SETTINGS = MediaSettings(recording=RecordingSettings(min_seconds=0.5))


class Leg:
    """A stream fed from PEER with audio in its codec, ``samples_per_packet`` at a time."""

    def __init__(self, stream_id: int = 1, codec: str = "PCMA", te: int | None = None) -> None:
        self.stream = MediaStream(stream_id, 20000 + 2 * stream_id, ssrc=stream_id, sequence=0,
                                  timestamp=0)  # fmt: skip
        self.stream.configure(config(codec, te), 0.0)
        self.codec = codec
        self.seq = 0

    def packets(self, samples: npt.NDArray[np.int16], per_packet: int = 160) -> list[bytes]:
        """``samples`` encoded and cut into RTP packets."""
        payload = g711.encode(self.codec, samples)
        out = []
        for at in range(0, len(payload), per_packet):
            self.seq += 1
            chunk = payload[at : at + per_packet]
            out.append(rtp(self.seq, at, pt=PT[self.codec], payload=chunk))
        return out


def run(capture: AudioCapture, legs: list[tuple[Leg, list[bytes]]], start: float = 1.0) -> float:
    """Deliver one packet per leg per tick (relays are not sent) and run the capture tick."""
    now = start
    for step in range(max(len(packets) for _, packets in legs)):
        now += 0.02
        for leg, packets in legs:
            if step < len(packets):
                leg.stream.receive(packets[step], PEER, now)
        capture.tick(now)
    return now


def idle(capture: AudioCapture, ticks: int, start: float) -> float:
    """Run ``ticks`` capture ticks with nothing arriving."""
    for i in range(1, ticks + 1):
        capture.tick(start + 0.02 * i)
    return start + 0.02 * ticks


def digit_then_silence(digit: str, ms: int = 100) -> npt.NDArray[np.int16]:
    """A Q.23 tone followed by 300 ms of silence."""
    return np.concatenate([dtmf_tone(digit, ms), np.zeros(2400, dtype=np.int16)])


def read_wav(path: Path) -> tuple[tuple[int, int, int], npt.NDArray[np.int16]]:
    """(channels, sample width, rate) and the samples of a WAV file."""
    with wave.open(str(path), "rb") as wav:
        params = (wav.getnchannels(), wav.getsampwidth(), wav.getframerate())
        return params, np.frombuffer(wav.readframes(wav.getnframes()), dtype="<i2")


def peak_hz(samples: npt.NDArray[np.int16]) -> float:
    """The frequency of the strongest FFT bin at 8 kHz."""
    spectrum = np.abs(np.fft.rfft(samples.astype(np.float64)))
    return float(np.fft.rfftfreq(len(samples), 1 / 8000)[spectrum.argmax()])


def band_energy(samples: npt.NDArray[np.int16], hz: float) -> float:
    """The share of the spectrum's energy within 20 Hz of ``hz``."""
    power = np.abs(np.fft.rfft(samples.astype(np.float64))) ** 2
    freqs = np.fft.rfftfreq(len(samples), 1 / 8000)
    return float(power[np.abs(freqs - hz) <= 20].sum() / power.sum())


def digits(stream: MediaStream) -> list[tuple[str, str]]:
    """(digit, source) of every DtmfReceived the stream reported."""
    return [(e.digit, e.source) for e in stream.events if isinstance(e, DtmfReceived)]


# -- in-band DTMF ---------------------------------------------------------------------------------


def test_inband_switch_sets_capture() -> None:
    """In-band detection on makes the stream queue its audio; off stops and empties it."""
    capture, leg = AudioCapture(SETTINGS), Leg()
    capture.set_inband(leg.stream, True)
    assert leg.stream.capture_rx and leg.stream.inband
    leg.stream.receive(leg.packets(np.zeros(160, dtype=np.int16))[0], PEER, 1.0)
    assert len(leg.stream.rx_audio) == 1
    capture.set_inband(leg.stream, False)
    assert not leg.stream.capture_rx
    assert not leg.stream.inband
    assert not leg.stream.rx_audio


def test_inband_digit_reported_once() -> None:
    """A DTMF tone in the received audio is reported once, as source 'inband'."""
    capture, leg = AudioCapture(SETTINGS), Leg()
    capture.set_inband(leg.stream, True)
    run(capture, [(leg, leg.packets(digit_then_silence("8")))])
    assert digits(leg.stream) == [("8", "inband")]


def test_inband_digits_in_30ms_packets_on_two_streams() -> None:
    """30 ms packets are re-framed to 20 ms; two streams are detected side by side."""
    capture, one, two = AudioCapture(SETTINGS), Leg(1), Leg(2, codec="PCMU")
    capture.set_inband(one.stream, True)
    capture.set_inband(two.stream, True)
    both = np.concatenate([digit_then_silence("4"), digit_then_silence("*")])
    run(capture, [(one, one.packets(both, per_packet=240)), (two, two.packets(both))])
    assert digits(one.stream) == [("4", "inband"), ("*", "inband")]
    assert digits(two.stream) == [("4", "inband"), ("*", "inband")]


def test_inband_muted_after_a_telephone_event() -> None:
    """Within a second of an RFC 4733 event the in-band detector does not report the tone."""
    capture, leg = AudioCapture(SETTINGS), Leg(te=101)
    capture.set_inband(leg.stream, True)
    leg.stream.receive(rtp(500, 90000, pt=101, payload=b"\x08\x8a\x03\x20"), PEER, 1.0)
    assert digits(leg.stream) == [("8", "rfc4733")]
    run(capture, [(leg, leg.packets(digit_then_silence("8")))], start=1.0)
    assert digits(leg.stream) == [("8", "rfc4733")]


# -- recording ------------------------------------------------------------------------------------


def test_recording_of_received_audio(tmp_path: Path) -> None:
    """Received audio is written to an 8 kHz mono 16-bit WAV; stopping reports the result."""
    capture, leg = AudioCapture(SETTINGS), Leg()
    path = tmp_path / "rec.wav"
    capture.start_recording(leg.stream, path, both=False)
    assert leg.stream.capture_rx and not leg.stream.capture_tx
    now = run(capture, [(leg, leg.packets(sine(1000.0, 1000)))])
    result = capture.stop_recording(leg.stream, now)
    assert result is not None and result.path == path
    params, samples = read_wav(path)
    assert params == (1, 2, 8000)
    assert len(samples) == 8000
    assert abs(peak_hz(samples) - 1000) <= 2
    assert leg.stream.events == [
        RecordingFinished(stream_id=1, path=str(path), duration=1.0, reason="stopped", rtime=now)
    ]
    assert not leg.stream.capture_rx
    assert capture.stop_recording(leg.stream, now) is None


def test_audio_in_each_answered_codec_is_decoded_in_its_own(tmp_path: Path) -> None:
    """Answered PCMA then PCMU, a caller switching codecs mid-recording is recorded sample
    for sample as each packet's own codec decodes it, and its in-band digit is heard."""
    capture, leg = AudioCapture(SETTINGS), Leg()
    leg.stream.configure(config("PCMA", None, also=("PCMU",)), 0.0)
    capture.set_inband(leg.stream, True)
    path = tmp_path / "mixed.wav"
    capture.start_recording(leg.stream, path, both=False)
    audio = np.concatenate([sine(700.0, 400), digit_then_silence("4")])
    half = len(audio) // 2 // 160 * 160
    pcma, pcmu = g711.encode("PCMA", audio[:half]), g711.encode("PCMU", audio[half:])
    packets = [
        rtp(n + 1, n * 160, pt=8 if n * 160 < half else 0, payload=chunk)
        for n, chunk in enumerate(
            [pcma[i : i + 160] for i in range(0, len(pcma), 160)]
            + [pcmu[i : i + 160] for i in range(0, len(pcmu), 160)]
        )
    ]
    now = 1.0
    for packet in packets:
        now += 0.02
        leg.stream.receive(packet, PEER, now)
        capture.tick(now)
    capture.stop_recording(leg.stream, now)
    _, samples = read_wav(path)
    expected = np.concatenate([g711.decode("PCMA", pcma), g711.decode("PCMU", pcmu)])
    assert np.array_equal(samples[: len(expected)], expected)
    assert digits(leg.stream) == [("4", "inband")]
    assert leg.stream.drops == {}


def test_gap_in_arrivals_is_recorded_as_silence(tmp_path: Path) -> None:
    """Ticks with nothing received become silent frames after three idle ticks."""
    capture, leg = AudioCapture(SETTINGS), Leg()
    capture.start_recording(leg.stream, tmp_path / "gap.wav", both=False)
    now = run(capture, [(leg, leg.packets(sine(1000.0, 500)))])
    now = idle(capture, 10, now)
    now = run(capture, [(leg, leg.packets(sine(1000.0, 500)))], start=now)
    result = capture.stop_recording(leg.stream, now)
    assert result is not None
    assert result.samples == 8000 + (10 - 2) * 160  # the first two idle ticks are jitter


def test_recording_both_mixes_what_we_play(tmp_path: Path) -> None:
    """Unbridged, ``both`` mixes the received audio with the playback we send."""
    capture, leg = AudioCapture(SETTINGS), Leg()
    path = tmp_path / "both.wav"
    capture.start_recording(leg.stream, path, both=True)
    assert leg.stream.capture_tx
    leg.stream.play(g711.encode("PCMA", sine(600.0, 1000)), 1.0)
    packets = leg.packets(sine(1500.0, 1000))
    now = 1.0
    for tick, packet in enumerate(packets, start=1):
        now += 0.02
        leg.stream.next_packet(tick, now)
        leg.stream.receive(packet, PEER, now)
        capture.tick(now)
    capture.stop_recording(leg.stream, now)
    _, samples = read_wav(path)
    assert band_energy(samples, 600) > 0.3
    assert band_energy(samples, 1500) > 0.3


def test_recording_both_mixes_the_bridged_peer(tmp_path: Path) -> None:
    """Bridged, ``both`` mixes what each leg received; the peer's capture ends with it."""
    capture, a, b = AudioCapture(SETTINGS), Leg(1), Leg(2, codec="PCMU")
    a.stream.peer, b.stream.peer = b.stream, a.stream
    path = tmp_path / "bridge.wav"
    capture.start_recording(a.stream, path, both=True)
    assert b.stream.capture_rx
    now = run(capture, [(a, a.packets(sine(600.0, 1000))), (b, b.packets(sine(1500.0, 1000)))])
    capture.stop_recording(a.stream, now)
    _, samples = read_wav(path)
    assert band_energy(samples, 600) > 0.3
    assert band_energy(samples, 1500) > 0.3
    assert not a.stream.capture_rx
    assert not b.stream.capture_rx  # nothing needs B's decoded audio any more


def test_recording_ends_itself_at_max_length(tmp_path: Path) -> None:
    """At ``max_seconds`` the recording ends by itself and reports reason 'max_length'."""
    settings = MediaSettings(recording=RecordingSettings(max_seconds=1.0, min_seconds=0.5))
    capture, leg = AudioCapture(settings), Leg()
    capture.start_recording(leg.stream, tmp_path / "max.wav", both=False)
    run(capture, [(leg, leg.packets(sine(1000.0, 1500)))])
    (finished,) = leg.stream.events
    assert isinstance(finished, RecordingFinished)
    assert (finished.reason, finished.duration) == ("max_length", 1.0)
    assert capture.stop_recording(leg.stream, 9.0) is None
    assert not leg.stream.capture_rx


def test_recording_keeps_inband_capture(tmp_path: Path) -> None:
    """Stopping a recording leaves capture on for a stream that still runs in-band detection."""
    capture, leg = AudioCapture(SETTINGS), Leg()
    capture.set_inband(leg.stream, True)
    capture.start_recording(leg.stream, tmp_path / "x.wav", both=False)
    now = run(capture, [(leg, leg.packets(digit_then_silence("1")))])
    capture.stop_recording(leg.stream, now)
    assert leg.stream.capture_rx
    assert digits(leg.stream) == [("1", "inband")]
