"""Tests for in-band DTMF detection (callserver.media.inband) against ITU-T Q.24 limits.

Signals are generated with numpy (seeded) at 8 kHz and fed 20 ms at a time, as the media tick
does. Levels are in dBm0 with a full-scale int16 sine at +3.17 dBm0.
"""

from __future__ import annotations

import wave
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from callserver.media import g711
from callserver.media.inband import FRAME_SAMPLES, InbandDetector
from tests.media.pcap import udp_payloads

RATE = 8000
ROWS = (697, 770, 852, 941)
COLUMNS = (1209, 1336, 1477, 1633)
KEYPAD = "123A456B789C*0#D"
ALL_DIGITS = "0123456789*#ABCD"
PROMPTS = Path(__file__).resolve().parents[2] / "prompts"
SIPP_SPEECH = Path("/usr/share/sip-tester/g711a.pcap")

Signal = npt.NDArray[np.float64]


def amplitude(dbm0: float) -> float:
    """Peak amplitude in int16 units of a sine at ``dbm0``."""
    return float(32768 * 10 ** ((dbm0 - 3.17) / 20))


def sine(freq: float, ms: float, dbm0: float, rng: np.random.Generator) -> Signal:
    """A sine of ``ms`` milliseconds with a random phase."""
    t = np.arange(round(ms * RATE / 1000)) / RATE
    return amplitude(dbm0) * np.sin(2 * np.pi * freq * t + rng.uniform(0, 2 * np.pi))


def dual_tone(
    digit: str,
    ms: float,
    rng: np.random.Generator,
    *,
    level: float = -10.0,
    twist_db: float = 0.0,
    deviation: float = 0.0,
) -> Signal:
    """The DTMF pair for ``digit``; ``twist_db`` > 0 is normal twist (the column tone weaker),
    < 0 reverse twist; ``deviation`` shifts both frequencies by that fraction."""
    index = KEYPAD.index(digit)
    row, column = ROWS[index // 4], COLUMNS[index % 4]
    low = sine(row * (1 + deviation), ms, level, rng)
    return low + sine(column * (1 + deviation), ms, level - twist_db, rng)


def silence(ms: float) -> Signal:
    """``ms`` milliseconds of digital silence."""
    return np.zeros(round(ms * RATE / 1000))


def with_noise(signal: Signal, snr_db: float, rng: np.random.Generator) -> Signal:
    """``signal`` plus white noise ``snr_db`` below the signal's mean power."""
    return signal + rng.normal(0, np.sqrt(np.mean(signal**2) / 10 ** (snr_db / 10)), len(signal))


def frames_of(signal: Signal) -> npt.NDArray[np.int16]:
    """``signal`` as int16 20 ms frames, padded with 100 ms and more of silence."""
    padded = np.pad(signal, (0, (len(signal) // FRAME_SAMPLES + 6) * FRAME_SAMPLES - len(signal)))
    return np.clip(np.round(padded), -32768, 32767).astype(np.int16).reshape(-1, FRAME_SAMPLES)


def detect_many(signals: list[Signal]) -> list[str]:
    """Run every signal as its own stream of one detector, all streams in each process() call;
    return the digits each stream reported, in order."""
    detector = InbandDetector(capacity=2)
    slots = np.array([detector.add_stream() for _ in signals], dtype=np.intp)
    longest = max(len(s) for s in signals)
    frames = np.stack([frames_of(np.pad(s, (0, longest - len(s)))) for s in signals], axis=1)
    found = {int(slot): "" for slot in slots}
    for tick in frames:
        for slot, digit in detector.process(slots, tick):
            found[slot] += digit
    return [found[int(slot)] for slot in slots]


def detect(signal: Signal) -> str:
    """The digits reported for one stream carrying ``signal``."""
    return detect_many([signal])[0]


def pressed(digit: str, rng: np.random.Generator, ms: float = 100, **tone: float) -> Signal:
    """20 ms of silence, the tone, 60 ms of silence."""
    return np.concatenate((silence(20), dual_tone(digit, ms, rng, **tone), silence(60)))


# -- acceptance -----------------------------------------------------------------------------------


@pytest.mark.parametrize("digit", list(ALL_DIGITS))
def test_each_digit_clean(digit: str) -> None:
    """Every one of the 16 digits is reported once."""
    assert detect(pressed(digit, np.random.default_rng(1))) == digit


@pytest.mark.parametrize("digit", list(ALL_DIGITS))
def test_each_digit_in_white_noise_15db(digit: str) -> None:
    """Every digit is reported once with white noise 15 dB below the tones."""
    rng = np.random.default_rng(ALL_DIGITS.index(digit))
    tone = dual_tone(digit, 100, rng)
    signal = np.concatenate((silence(20), with_noise(tone, 15, rng), silence(60)))
    assert detect(signal) == digit


@pytest.mark.parametrize(
    "tone",
    [
        {"deviation": 0.014},  # Q.24: accept within ±1.5 %
        {"deviation": -0.014},
        {"twist_db": 6.0},  # normal twist up to 8 dB
        {"twist_db": -3.0},  # reverse twist up to 4 dB
        {"level": -3.0},
        {"level": -27.0},  # the threshold is -30 dBm0 per tone
    ],
)
def test_accepted_within_limits(tone: dict[str, float]) -> None:
    """Off-nominal frequency, twist and level inside the limits: every digit reported once."""
    rng = np.random.default_rng(2)
    signals = [pressed(d, rng, **tone) for d in ALL_DIGITS]
    assert detect_many(signals) == list(ALL_DIGITS)


@pytest.mark.parametrize("codec", ["ulaw", "alaw"])
def test_through_g711(codec: str) -> None:
    """Every digit survives a G.711 round trip, as it does on the wire."""
    rng = np.random.default_rng(3)
    encode, decode = getattr(g711, f"{codec}_encode"), getattr(g711, f"{codec}_decode")
    frames = [frames_of(pressed(d, rng)).reshape(-1) for d in ALL_DIGITS]
    signals = [decode(encode(f)).astype(np.float64) for f in frames]
    assert detect_many(signals) == list(ALL_DIGITS)


def test_many_streams_in_one_call() -> None:
    """Streams with different digits, start times and some silence, processed together."""
    rng = np.random.default_rng(5)
    signals = [
        np.concatenate((silence(7 * n), dual_tone(digit, 80, rng), silence(40)))
        for n, digit in enumerate(ALL_DIGITS)
    ]
    signals += [silence(300), rng.normal(0, 1000, 2400)]
    assert detect_many(signals) == [*ALL_DIGITS, "", ""]


@pytest.mark.parametrize("start_ms", [0.0, 7.0, 13.5])
def test_sequence_60ms_tone_60ms_pause(start_ms: float) -> None:
    """A dialled sequence at 60 ms on / 60 ms off gives each digit once, repeats included."""
    rng = np.random.default_rng(6)
    number = "123A456B789C*0#D5559"
    parts = [silence(start_ms)]
    for digit in number:
        parts += [dual_tone(digit, 60, rng), silence(60)]
    assert detect(np.concatenate(parts)) == number


def test_sequence_in_noise() -> None:
    """The 60/60 ms sequence also comes through at 15 dB SNR."""
    rng = np.random.default_rng(7)
    parts = []
    for digit in "90210#":
        parts += [dual_tone(digit, 60, rng), silence(60)]
    signal = np.concatenate(parts)
    noise_power = np.mean(dual_tone("0", 60, rng) ** 2) / 10**1.5
    assert detect(signal + rng.normal(0, np.sqrt(noise_power), len(signal))) == "90210#"


@pytest.mark.parametrize("start_ms", np.arange(0, 20, 2.5).tolist())
def test_40ms_tone_at_any_alignment(start_ms: float) -> None:
    """A 40 ms tone (Q.24's minimum) is reported once wherever it falls in the frames."""
    rng = np.random.default_rng(8)
    signal = np.concatenate((silence(20 + start_ms), dual_tone("6", 40, rng), silence(40)))
    assert detect(signal) == "6"


@pytest.mark.parametrize("start_ms", np.arange(0, 20, 2.5).tolist())
def test_40ms_pause_separates_same_digit(start_ms: float) -> None:
    """The same digit after a 40 ms pause is a second key press."""
    rng = np.random.default_rng(9)
    parts = [silence(start_ms), dual_tone("7", 60, rng), silence(40), dual_tone("7", 60, rng)]
    assert detect(np.concatenate(parts)) == "77"


def test_held_key_is_one_digit() -> None:
    """A key held for two seconds is reported once."""
    assert detect(pressed("8", np.random.default_rng(10), ms=2000)) == "8"


# -- rejection ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "tone",
    [
        {"deviation": 0.04},  # Q.24: reject beyond ±3.5 %
        {"deviation": -0.04},
        {"twist_db": 10.0},
        {"twist_db": -6.0},
        {"level": -33.0},
    ],
)
def test_rejected_beyond_limits(tone: dict[str, float]) -> None:
    """Off-nominal frequency, twist and level beyond the limits: no digit at all."""
    rng = np.random.default_rng(11)
    signals = [pressed(d, rng, **tone) for d in ALL_DIGITS]
    assert detect_many(signals) == [""] * 16


@pytest.mark.parametrize(("row_shift", "column_shift"), [(1.04, 1.0), (1.0, 0.96)])
def test_one_tone_off_frequency(row_shift: float, column_shift: float) -> None:
    """A pair with only one of its tones 4 % off is rejected."""
    rng = np.random.default_rng(12)
    signals = [
        sine(ROWS[i // 4] * row_shift, 100, -10, rng)
        + sine(COLUMNS[i % 4] * column_shift, 100, -10, rng)
        for i in range(16)
    ]
    assert detect_many(signals) == [""] * 16


@pytest.mark.parametrize("start_ms", [5.0, 15.0])
def test_30ms_tone_straddling_frames(start_ms: float) -> None:
    """A 30 ms tone straddling frame boundaries (5 or 15 ms into a frame) is not reported."""
    rng = np.random.default_rng(15)
    signals = [
        np.concatenate((silence(20 + start_ms), dual_tone(d, 30, rng), silence(60)))
        for d in ALL_DIGITS
    ]
    assert detect_many(signals) == [""] * 16


@pytest.mark.parametrize("start_ms", np.arange(0, 20, 2.5).tolist())
def test_20ms_tone_never(start_ms: float) -> None:
    """A 20 ms tone is never reported, whatever its alignment."""
    rng = np.random.default_rng(16)
    signals = [
        np.concatenate((silence(start_ms), dual_tone(d, 20, rng), silence(60))) for d in ALL_DIGITS
    ]
    assert detect_many(signals) == [""] * 16


def test_single_tones() -> None:
    """Any one DTMF frequency alone, even loud and long, is not a digit."""
    rng = np.random.default_rng(17)
    signals = [sine(freq, 500, level, rng) for freq in ROWS + COLUMNS for level in (-3, -20)]
    assert detect_many(signals) == [""] * len(signals)


def test_silence_and_white_noise() -> None:
    """Silence and white noise of several levels over three seconds give nothing."""
    rng = np.random.default_rng(18)
    signals = [silence(3000)] + [rng.normal(0, sigma, 3 * RATE) for sigma in (30, 1000, 8000)]
    assert detect_many(signals) == ["", "", "", ""]


# -- talk-off -----------------------------------------------------------------------------------


def resonance(freq: Signal, centre: Signal, bandwidth: float) -> Signal:
    """Gain of a two-pole resonator (a formant) at ``freq``, 1 at its centre frequency."""
    detune = 1 - (freq / centre) ** 2
    return (bandwidth / centre) / np.sqrt(detune**2 + (freq * bandwidth / centre**2) ** 2)


def speech_like(seconds: float, rng: np.random.Generator) -> Signal:
    """Formant-synthesised vowels with fricative-like noise bursts: a stand-in for speech.

    The voice is the harmonics of a gliding pitch with a -6 dB/octave slope, shaped by three
    moving formants (F1 300-800 Hz, F2 900-2300 Hz, F3 2400-3000 Hz) and cut into syllables.
    """
    t = np.arange(round(seconds * RATE)) / RATE
    pitch = rng.uniform(90, 220) * (1 + 0.2 * np.sin(2 * np.pi * rng.uniform(0.3, 1.5) * t))
    phase = 2 * np.pi * np.cumsum(pitch) / RATE
    formants = [
        (low + high) / 2 + (high - low) / 2 * np.sin(2 * np.pi * rng.uniform(0.5, 3) * t + 7 * n)
        for n, (low, high) in enumerate(((300, 800), (900, 2300), (2400, 3000)))
    ]
    voiced = np.zeros_like(t)
    for harmonic in range(1, 40):
        freq = harmonic * pitch
        gain = np.ones_like(t)
        for centre, bandwidth in zip(formants, (80, 100, 150), strict=True):
            gain *= resonance(freq, centre, bandwidth)
        voiced += gain / harmonic * (freq < 3800) * np.sin(harmonic * phase)
    syllables = np.clip(np.sin(2 * np.pi * rng.uniform(2, 5) * t + rng.uniform(0, 6)), 0, None)
    bursts = rng.normal(0, 1, len(t)) * (np.sin(2 * np.pi * rng.uniform(0.5, 2) * t) > 0.85)
    signal: Signal = voiced * syllables / np.max(np.abs(voiced)) + 0.1 * bursts
    peak = float(np.max(np.abs(signal)))
    return signal * (amplitude(rng.uniform(-12, 0)) / peak)


def test_talk_off_speech_like_signals() -> None:
    """Twelve five-second speech-like signals give no digit."""
    rng = np.random.default_rng(19)
    signals = [speech_like(5, rng) for _ in range(12)]
    assert detect_many(signals) == [""] * 12


def test_talk_off_sipp_speech_capture() -> None:
    """The seven seconds of A-law speech in SIPp's g711a.pcap give no digit, at three gains."""
    if not SIPP_SPEECH.is_file():
        pytest.fail(f"{SIPP_SPEECH} is missing: run `apt-get install sip-tester` (as make does)")
    audio = b"".join(payload[12:] for _time, payload in udp_payloads(SIPP_SPEECH))
    speech = g711.alaw_decode(audio).astype(np.float64)
    assert len(speech) > 5 * RATE
    assert detect_many([speech * gain for gain in (0.3, 1.0, 1.9)]) == ["", "", ""]


def test_talk_off_shipped_prompts() -> None:
    """Every shipped prompt (prompts/<lang>/*.wav, 8 kHz mono 16-bit) gives no digit."""
    paths = sorted(PROMPTS.glob("*/*.wav"))
    assert paths, f"no prompts under {PROMPTS}"
    signals = []
    for path in paths:
        with wave.open(str(path)) as wav:
            assert (wav.getframerate(), wav.getnchannels(), wav.getsampwidth()) == (RATE, 1, 2)
            samples = np.frombuffer(wav.readframes(wav.getnframes()), dtype="<i2")
        signals.append(samples.astype(np.float64))
    found = detect_many(signals)
    assert {str(p.relative_to(PROMPTS)): d for p, d in zip(paths, found, strict=True) if d} == {}


# -- property -----------------------------------------------------------------------------------


@settings(max_examples=60, deadline=None)
@given(
    digit=st.sampled_from(ALL_DIGITS),
    ms=st.floats(40, 250),
    start_ms=st.floats(0, 20),
    level=st.floats(-22, -6),
    twist_db=st.floats(-3, 6),
    deviation=st.floats(-0.014, 0.014),
    seed=st.integers(0, 2**32 - 1),
)
def test_any_valid_press_reported_once(
    digit: str,
    ms: float,
    start_ms: float,
    level: float,
    twist_db: float,
    deviation: float,
    seed: int,
) -> None:
    """Any press inside Q.24's accept limits is reported exactly once."""
    rng = np.random.default_rng(seed)
    tone = dual_tone(digit, ms, rng, level=level, twist_db=twist_db, deviation=deviation)
    assert detect(np.concatenate((silence(start_ms), tone, silence(60)))) == digit


# -- slots ----------------------------------------------------------------------------------------


def test_capacity_grows_and_slots_are_reused() -> None:
    """Adding past the capacity works; a freed slot is handed out again."""
    detector = InbandDetector(capacity=2)
    slots = [detector.add_stream() for _ in range(100)]
    assert sorted(slots) == list(range(100))
    detector.remove_stream(42)
    assert detector.add_stream() == 42


def test_reused_slot_starts_fresh() -> None:
    """A stream removed in the middle of a tone leaves nothing behind for the next one."""
    rng = np.random.default_rng(20)
    detector = InbandDetector()
    slot = detector.add_stream()
    frames = frames_of(dual_tone("4", 100, rng))
    detector.process(np.array([slot]), frames[:1])
    detector.remove_stream(slot)
    assert detector.add_stream() == slot
    found = [detector.process(np.array([slot]), f[None]) for f in frames_of(silence(100))]
    assert found == [[]] * len(found)


def test_bad_arguments() -> None:
    """Wrong shapes and unknown slots raise ValueError; no streams is a no-op."""
    detector = InbandDetector()
    slot = detector.add_stream()
    one = np.array([slot], dtype=np.intp)
    with pytest.raises(ValueError, match="shape"):
        detector.process(one, np.zeros((1, 80), dtype=np.int16))
    with pytest.raises(ValueError, match="not an active stream"):
        detector.process(np.array([slot + 1]), np.zeros((1, 160), dtype=np.int16))
    with pytest.raises(ValueError, match="not an active stream"):
        detector.remove_stream(7)
    assert detector.process(np.array([], dtype=np.intp), np.zeros((0, 160), np.int16)) == []
