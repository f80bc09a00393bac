"""Tests for prompt loading, conversion to 8 kHz, the cache, language fallback and playlists."""

from __future__ import annotations

import os
import tempfile
import wave
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from structlog.testing import capture_logs

from callserver.media import g711, prompts
from callserver.media.prompts import (
    Play,
    PlaylistItem,
    PromptError,
    PromptStore,
    SayDigits,
    SayNumber,
    Silence,
    check_prompts,
    decode_file,
)
from callserver.media.settings import MediaSettings
from callserver.media.synth import SynthError, parse_texts, speak, synth_language

SHIPPED = Path(__file__).resolve().parents[2] / "prompts"
CHAIN = MediaSettings().language_chain  # hr -> bs -> en


def sine(hz: float, seconds: float, rate: int, amplitude: float) -> npt.NDArray[np.int16]:
    """A sine tone as int16 samples."""
    t = np.arange(round(seconds * rate)) / rate
    return np.round(amplitude * np.sin(2 * np.pi * hz * t)).astype(np.int16)


def write_wav(path: Path, samples: npt.NDArray[np.int16], rate: int = 8000) -> Path:
    """Write int16 samples (frames x channels, or mono) as a PCM WAV file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    channels = 1 if samples.ndim == 1 else samples.shape[1]
    with wave.open(str(path), "wb") as out:
        out.setnchannels(channels)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes(samples.astype("<i2").tobytes())
    return path


def dominant_hz(samples: npt.NDArray[np.int16], rate: int = 8000) -> float:
    """The frequency of the strongest FFT bin."""
    spectrum = np.abs(np.fft.rfft(samples.astype(np.float64)))
    return float(np.argmax(spectrum) * rate / len(samples))


def rms(samples: npt.NDArray[np.int16]) -> float:
    """Root mean square of the samples."""
    return float(np.sqrt(np.mean(samples.astype(np.float64) ** 2)))


@pytest.fixture
def no_ffmpeg(monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory) -> None:
    """PATH holds no ffmpeg (nor anything else), whatever the machine has installed."""
    monkeypatch.setenv("PATH", str(tmp_path_factory.mktemp("empty-bin")))


# -- conversion ------------------------------------------------------------------------------


def test_stereo_44k1_becomes_8k_mono_at_the_same_pitch(tmp_path: Path) -> None:
    """A 1 s 1 kHz stereo tone at 44.1 kHz becomes 8000 mono samples of the channels' mean."""
    left, right = sine(1000, 1.0, 44100, 10000), sine(1000, 1.0, 44100, 6000)
    path = write_wav(tmp_path / "tone.wav", np.stack([left, right], axis=1), rate=44100)
    samples = decode_file(path)
    assert samples.dtype == np.int16
    assert abs(len(samples) - 8000) <= 1
    assert dominant_hz(samples) == pytest.approx(1000, abs=1)
    assert rms(samples) == pytest.approx(8000 / np.sqrt(2), rel=0.03)


def test_16k_mono_becomes_8k_with_the_same_duration_and_pitch(tmp_path: Path) -> None:
    """A 500 ms 440 Hz tone at 16 kHz becomes 4000 samples at 440 Hz and the same level."""
    path = write_wav(tmp_path / "a.wav", sine(440, 0.5, 16000, 12000), rate=16000)
    samples = decode_file(path)
    assert abs(len(samples) - 4000) <= 1
    assert dominant_hz(samples) == pytest.approx(440, abs=2)
    assert rms(samples) == pytest.approx(12000 / np.sqrt(2), rel=0.03)


def test_content_above_4k_is_filtered_not_folded_into_the_band(tmp_path: Path) -> None:
    """A 5 kHz tone cannot be carried at 8 kHz: it is removed instead of aliasing to 3 kHz."""
    path = write_wav(tmp_path / "high.wav", sine(5000, 1.0, 44100, 16000), rate=44100)
    assert rms(decode_file(path)) < 0.01 * rms(sine(5000, 1.0, 44100, 16000))


def test_prompt_is_pre_encoded_in_both_laws(tmp_path: Path) -> None:
    """A loaded prompt carries read-only samples and their PCMU and PCMA encodings."""
    write_wav(tmp_path / "en" / "hello.wav", sine(800, 0.25, 8000, 9000))
    prompt = PromptStore(tmp_path, CHAIN).load("hello", "en")
    assert (prompt.name, prompt.language, prompt.duration) == ("hello", "en", 0.25)
    assert prompt.encoded("PCMU") == g711.encode("PCMU", prompt.samples) == prompt.pcmu
    assert prompt.encoded("PCMA") == g711.encode("PCMA", prompt.samples) == prompt.pcma
    assert not prompt.samples.flags.writeable
    with pytest.raises(ValueError, match=r"not G\.711"):
        prompt.encoded("G729")


# -- cache -----------------------------------------------------------------------------------


def test_cache_reuses_a_load_and_reloads_after_a_change(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A second load is served from the cache; a new mtime or size decodes the file again,
    seen at the first load after the recheck interval."""
    decoded: list[Path] = []

    def counting_decode(path: Path) -> npt.NDArray[np.int16]:
        decoded.append(path)
        return decode_file(path)

    monkeypatch.setattr(prompts, "decode_file", counting_decode)
    path = write_wav(tmp_path / "en" / "menu.wav", sine(500, 0.1, 8000, 5000))
    now = [100.0]
    store = PromptStore(tmp_path, CHAIN, clock=lambda: now[0], recheck=1.0)
    first = store.load("menu", "en")
    assert store.load("menu", "en") is first
    assert len(decoded) == 1
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 2_000_000_000))  # same size
    now[0] += 0.9
    assert store.load("menu", "en") is first  # within the recheck interval: not looked at
    second = store.load("menu", "en", look=True)  # a reload's warm-up looks at once
    assert second is not first
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 4_000_000_000))
    now[0] += 1.0
    assert store.load("menu", "en") is not second  # the recheck interval has passed
    write_wav(path, sine(500, 0.2, 8000, 5000))
    now[0] += 1.0
    assert store.load("menu", "en").duration == 0.2
    assert len(decoded) == 4


# -- fallback --------------------------------------------------------------------------------


def test_missing_prompt_falls_back_along_the_chain(tmp_path: Path) -> None:
    """hr without the file falls back to bs, logging one media.prompt_failed for hr."""
    write_wav(tmp_path / "bs" / "greeting.wav", sine(600, 0.1, 8000, 5000))
    (tmp_path / "hr").mkdir()
    with capture_logs() as logs:
        prompt = PromptStore(tmp_path, CHAIN).find("greeting", "hr")
    assert prompt is not None and prompt.language == "bs"
    (entry,) = logs
    assert (entry["event"], entry["log_level"]) == ("media.prompt_failed", "error")
    assert entry["path"] == str(tmp_path / "hr" / "greeting")
    assert "no such prompt" in entry["error"]


def test_corrupt_prompt_falls_back_and_logs_it(tmp_path: Path, no_ffmpeg: None) -> None:
    """A corrupt hr file and a missing bs file each log an error; en is played."""
    (tmp_path / "hr").mkdir()
    (tmp_path / "hr" / "greeting.wav").write_bytes(b"RIFF\x24\x00\x00\x00WAVEjunk" + bytes(40))
    write_wav(tmp_path / "en" / "greeting.wav", sine(600, 0.1, 8000, 5000))
    with capture_logs() as logs:
        prompt = PromptStore(tmp_path, CHAIN).find("greeting", "hr")
    assert prompt is not None and prompt.language == "en"
    assert [entry["path"] for entry in logs] == [
        str(tmp_path / "hr" / "greeting.wav"),
        str(tmp_path / "bs" / "greeting"),
    ]
    assert logs[0]["error"].startswith("not a valid WAV file")


def test_prompt_in_no_language_is_none(tmp_path: Path) -> None:
    """When no language of the chain has the prompt, find returns None after logging each."""
    with capture_logs() as logs:
        assert PromptStore(tmp_path, CHAIN).find("nothing", "hr") is None
    assert [entry["event"] for entry in logs] == ["media.prompt_failed"] * 3


# -- bad files -------------------------------------------------------------------------------


def test_empty_file_is_a_prompt_error(tmp_path: Path) -> None:
    """An empty file raises PromptError naming the file."""
    (tmp_path / "en").mkdir()
    (tmp_path / "en" / "menu.wav").write_bytes(b"")
    with pytest.raises(PromptError) as caught:
        PromptStore(tmp_path, CHAIN).load("menu", "en")
    assert str(caught.value) == f"{tmp_path / 'en' / 'menu.wav'}: empty file"


def test_text_renamed_wav_is_a_prompt_error(tmp_path: Path, no_ffmpeg: None) -> None:
    """A text file named .wav raises PromptError naming the file, as not audio."""
    path = tmp_path / "menu.wav"
    path.write_text("this is not audio\n")
    with pytest.raises(PromptError, match="not audio") as caught:
        decode_file(path)
    assert str(caught.value).startswith(f"{path}: ")


def test_mp3_without_ffmpeg_says_so(tmp_path: Path, no_ffmpeg: None) -> None:
    """An MP3 when ffmpeg is missing raises PromptError saying ffmpeg is needed to decode it."""
    path = tmp_path / "greeting.mp3"
    path.write_bytes(b"ID3\x04\x00\x00\x00\x00\x00\x00" + bytes(100))
    with pytest.raises(PromptError) as caught:
        decode_file(path)
    assert str(caught.value) == f"{path}: needs ffmpeg to decode .mp3 (apt-get install ffmpeg)"


def test_non_pcm_wav_without_ffmpeg_says_so(tmp_path: Path, no_ffmpeg: None) -> None:
    """A float WAV (format 3), which only ffmpeg decodes, names the file and ffmpeg."""
    path = write_wav(tmp_path / "float.wav", sine(500, 0.1, 8000, 5000))
    data = bytearray(path.read_bytes())
    data[20:22] = (3).to_bytes(2, "little")  # fmt chunk: audio format 3, IEEE float
    path.write_bytes(bytes(data))
    with pytest.raises(
        PromptError, match=r"needs ffmpeg to decode it: .*\(apt-get install ffmpeg\)"
    ):
        decode_file(path)


def test_wav_without_samples_is_a_prompt_error(tmp_path: Path) -> None:
    """A WAV header with no audio frames is refused: it would play nothing."""
    path = write_wav(tmp_path / "silent.wav", np.zeros(0, dtype=np.int16))
    with pytest.raises(PromptError, match="holds no audio"):
        decode_file(path)


def test_absurd_sample_rate_is_refused(tmp_path: Path) -> None:
    """A header claiming 2 GHz sampling is refused rather than filtered at that rate."""
    path = write_wav(tmp_path / "fast.wav", sine(500, 0.01, 8000, 5000), rate=2_000_000_000)
    with pytest.raises(PromptError, match="sample rate of 2000000000 Hz is out of range"):
        decode_file(path)


@pytest.mark.parametrize("name", ["../secret", "a/b", ".hidden", ""])
def test_prompt_names_cannot_leave_the_directory(tmp_path: Path, name: str) -> None:
    """A name with a slash, a leading dot or nothing at all is refused before any file access."""
    with pytest.raises(PromptError, match="not a prompt name"):
        PromptStore(tmp_path, CHAIN).load(name, "en")


@settings(suppress_health_check=[HealthCheck.function_scoped_fixture], max_examples=60)
@given(st.binary(max_size=200))
def test_arbitrary_wav_bytes_never_escape_as_other_errors(no_ffmpeg: None, body: bytes) -> None:
    """Any bytes after a RIFF/WAVE header decode to int16 samples or raise PromptError."""
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "fuzz.wav"
        path.write_bytes(b"RIFF" + len(body).to_bytes(4, "little") + b"WAVE" + body)
        try:
            assert decode_file(path).dtype == np.int16
        except PromptError as exc:
            assert str(exc).startswith(str(path))


# -- playlists -------------------------------------------------------------------------------


@pytest.fixture
def store(tmp_path: Path) -> PromptStore:
    """A store with en prompts "a" (100 ms) and "b" (50 ms) and the digits n0..n9 in en."""
    write_wav(tmp_path / "en" / "a.wav", sine(400, 0.1, 8000, 8000))
    write_wav(tmp_path / "en" / "b.wav", sine(900, 0.05, 8000, 8000))
    for word, hz in {"n1": 300, "n2": 350, "n20": 500, "hundred": 700, "and": 800}.items():
        write_wav(tmp_path / "en" / f"{word}.wav", sine(hz, 0.03, 8000, 7000))
    return PromptStore(tmp_path, CHAIN)


@pytest.mark.parametrize(("codec", "silence"), [("PCMU", b"\xff"), ("PCMA", b"\xd5")])
def test_render_concatenates_payloads_and_silence(
    store: PromptStore, codec: str, silence: bytes
) -> None:
    """Prompts and silence render back to back, 8 octets a millisecond, missing ones as nothing."""
    a, b = store.load("a", "en").encoded(codec), store.load("b", "en").encoded(codec)
    playlist: list[PlaylistItem] = [Play("a"), Silence(20), Play("b"), Play("gone"), Silence(0)]
    with capture_logs() as logs:
        payload = store.render(playlist, "hr", codec)
    assert payload == a + silence * 160 + b
    assert len(payload) == (100 + 20 + 50) * 8
    assert {entry["event"] for entry in logs} == {"media.prompt_failed"}


def test_render_says_numbers_and_digits(store: PromptStore) -> None:
    """SayNumber and SayDigits render the word prompts of the chain's first grammar."""
    word = {name: store.load(name, "en").pcmu for name in ("n1", "n2", "n20", "hundred", "and")}
    with capture_logs():
        number = store.render([SayNumber(121)], "sl", "PCMU")
        digits = store.render([SayDigits("1-2")], "en", "PCMU")
    assert number == word["n1"] + word["hundred"] + word["and"] + word["n20"] + word["n1"]
    assert digits == word["n1"] + word["n2"]


def test_render_refuses_other_codecs(store: PromptStore) -> None:
    """Only the G.711 laws can be rendered."""
    with pytest.raises(ValueError, match=r"not G\.711"):
        store.render([Play("a")], "en", "opus")


def test_playlist_items_check_their_values() -> None:
    """Negative silence, non-digits and numbers out of range are refused when built."""
    with pytest.raises(ValueError, match="negative"):
        Silence(-1)
    with pytest.raises(ValueError, match="only digits"):
        SayDigits("12a")
    with pytest.raises(ValueError, match="0 to 999999"):
        SayNumber(1_000_000)


# -- check_prompts ---------------------------------------------------------------------------


def test_languages_are_the_subdirectories(tmp_path: Path) -> None:
    """languages() lists language directories only: no files, no hidden directories."""
    for folder in ("hr", "de", ".cache"):
        (tmp_path / folder).mkdir()
    (tmp_path / "hr.txt").write_text("greeting: Dobro došli.\n")
    assert PromptStore(tmp_path, CHAIN).languages() == ["de", "hr"]
    assert PromptStore(tmp_path / "nowhere", CHAIN).languages() == []


def test_shipped_prompts_are_complete_and_valid() -> None:
    """The prompts shipped in prompts/ decode and hold every required name in each language."""
    assert check_prompts(SHIPPED) == []
    assert PromptStore(SHIPPED, CHAIN).languages() == ["bs", "de", "en", "hr"]


def test_shipped_beep_is_a_1khz_tone_of_250ms() -> None:
    """The beep is a 1 kHz tone of 250 ms, the same in every language."""
    for language in ("bs", "de", "en", "hr"):
        beep = PromptStore(SHIPPED, CHAIN).load("beep", language)
        assert beep.duration == 0.25
        assert dominant_hz(beep.samples) == pytest.approx(1000, abs=4)


def test_check_lists_every_problem(tmp_path: Path, no_ffmpeg: None) -> None:
    """Empty, non-audio and ffmpeg-only files, duplicates and missing names are each listed."""
    de = tmp_path / "de"
    write_wav(de / "greeting.wav", sine(500, 0.1, 8000, 5000))
    (de / "greeting.ogg").write_bytes(b"OggS" + bytes(60))
    (de / "menu.wav").write_bytes(b"")
    (de / "closed.wav").write_text("closed\n")
    (tmp_path / ".git").mkdir()
    errors = check_prompts(tmp_path)
    assert f"{de / 'greeting.ogg'}: needs ffmpeg to decode .ogg (apt-get install ffmpeg)" in errors
    assert f"{de / 'menu.wav'}: empty file" in errors
    assert f"{de / 'closed.wav'}: not audio: no RIFF/WAVE header" in errors
    assert f"{de}: prompt 'greeting' has 2 files: greeting.ogg, greeting.wav" in errors
    assert f"{de}: missing prompt 'goodbye'" in errors
    assert f"{de}: missing prompt 'n1c'" in errors
    assert not any("missing prompt 'greeting'" in e or "'menu'" in e for e in errors)
    nowhere = tmp_path / "nowhere"
    assert check_prompts(nowhere) == [f"{nowhere}: no such prompts directory"]


# -- synthesis (the espeak-ng run itself is tested through the CLI in tests/test_cli.py) -----


def test_text_file_errors_name_file_and_line(tmp_path: Path) -> None:
    """A malformed, repeated, tone or music line in a text file is refused with file:line."""
    path = tmp_path / "en.txt"
    path.write_text("# comment\n\ngreeting: Hello.\nmenu Press one.\n")
    with pytest.raises(SynthError, match=f"^{path}:4: expected 'name: text'"):
        parse_texts(path)
    path.write_text("greeting: Hello.\ngreeting: Hi.\n")
    with pytest.raises(SynthError, match=f"^{path}:2: prompt 'greeting' appears twice"):
        parse_texts(path)
    for name in ("beep", "moh"):
        path.write_text(f"{name}: {name}\n")
        with pytest.raises(SynthError, match=f"prompt '{name}' is generated, not spoken"):
            parse_texts(path)


def test_synth_without_espeak_says_how_to_install_it(tmp_path: Path, no_ffmpeg: None) -> None:
    """With espeak-ng missing, speech fails with the apt-get command; tone and music need none."""
    with pytest.raises(SynthError, match="apt-get install espeak-ng"):
        speak("Hello.", "en-gb")
    (tmp_path / "en.txt").write_text("greeting: Hello.\n")
    with pytest.raises(SynthError, match="no prompt named menu"):
        synth_language(tmp_path, "en", ["menu"])
    assert synth_language(tmp_path, "en", ["beep"]) == [(tmp_path / "en" / "beep.wav", 0.25)]
    with pytest.raises(SynthError, match="no prompt named moh"):  # music: synth_music
        synth_language(tmp_path, "en", ["moh"])
