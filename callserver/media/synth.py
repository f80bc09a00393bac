"""Prompt synthesis: ``prompts/<lang>.txt`` to ``prompts/<lang>/<name>.wav`` with espeak-ng.

A development tool behind ``callserver prompts synth``: the shipped prompts are generated once
and committed, so nothing at run time needs espeak-ng. Each text file holds one ``name: text``
a line (``#`` starts a comment). Every text is spoken by espeak-ng into a temporary WAV, which
is read back through the prompt decoder (pydub, 8 kHz mono 16-bit, ITU-T G.711 §1 sampling),
trimmed of leading and trailing silence so that number words play back to back without gaps,
normalised to -3 dBFS peak and written atomically (a temporary file, then ``os.replace``).

Tones and music are not speech: ``beep`` (1 kHz, 250 ms, -10 dBFS) is generated for every
language; the music on hold (``music.music_on_hold``) once, into ``prompts/moh/`` (``synth_music``),
where operators add or replace pieces. Neither ``beep`` nor ``moh`` may appear in a text file.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import subprocess
import tempfile
import wave
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import numpy.typing as npt

from callserver.media.audio_files import SAMPLE_RATE, PromptError, decode_file
from callserver.media.hold_music import MUSIC_DIR, MUSIC_FILE
from callserver.media.music import music_on_hold
from callserver.media.tones import sine

__all__ = [
    "MUSIC",
    "PEAK_DBFS",
    "SPEED_WPM",
    "TONES",
    "VOICES",
    "SynthError",
    "parse_texts",
    "speak",
    "synth_language",
    "synth_music",
    "text_languages",
    "write_wav",
]

# espeak-ng voices (``espeak-ng --voices``); another language uses its own code as the voice.
VOICES: dict[str, str] = {"bs": "bs", "hr": "hr", "de": "de", "en": "en-gb"}
SPEED_WPM = 150  # a little slower than espeak-ng's 175: clearer over a phone line
PEAK_DBFS = -3.0
# name: (Hz, ms, dBFS peak). A tone is far louder than speech at the same peak: -10 dBFS is
# about -7 dBm0 on a G.711 line (ITU-T G.711 §4: a full-scale sine is +3.14 dBm0).
TONES: dict[str, tuple[float, int, float]] = {"beep": (1000.0, 250, -10.0)}
MUSIC = ("moh",)  # the music on hold's name: generated into prompts/moh/, never spoken
_SILENCE_DBFS = -40.0  # leading and trailing samples below this are trimmed
_PAD_MS = 20  # silence kept at each end of a spoken prompt
_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_-]*")  # as the prompt store accepts
_INSTALL = "install it with 'apt-get install espeak-ng' (needed only to regenerate prompts)"


class SynthError(Exception):
    """A text file that cannot be read or parsed, or espeak-ng missing or failing."""


def parse_texts(path: Path) -> dict[str, str]:
    """The ``name: text`` lines of ``path`` in file order; blank lines and ``#`` comments skipped.

    Raises:
        SynthError: the file cannot be read, or a line is malformed, repeated or names a tone;
            the message starts with ``path:line``.
    """
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise SynthError(f"{path}: cannot read: {exc}") from None
    texts: dict[str, str] = {}
    for number, line in enumerate(lines, start=1):
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        name, colon, text = stripped.partition(":")
        name, text = name.strip(), text.strip()
        if not colon or not _NAME.fullmatch(name) or not text:
            raise SynthError(f"{path}:{number}: expected 'name: text', got {stripped!r}")
        if name in texts or name in TONES or name in MUSIC:
            what = "appears twice" if name in texts else "is generated, not spoken"
            raise SynthError(f"{path}:{number}: prompt {name!r} {what}")
        texts[name] = text
    return texts


def text_languages(prompts_dir: Path) -> list[str]:
    """The languages with a text file ``prompts_dir/<lang>.txt``, sorted."""
    return sorted(path.stem for path in prompts_dir.glob("*.txt") if path.is_file())


def synth_language(
    prompts_dir: Path, language: str, only: Iterable[str] = ()
) -> list[tuple[Path, float]]:
    """Speak every text of ``prompts_dir/<language>.txt`` and generate the tones and music.

    Args:
        prompts_dir: holds ``<language>.txt``; the WAVs go to ``<language>/`` under it.
        language: the language code, which picks the espeak-ng voice (``VOICES``).
        only: if not empty, just these prompt names.

    Returns:
        Each file written, with its duration in seconds.

    Raises:
        SynthError: a bad text file, an unknown name in ``only``, or espeak-ng missing or failing.
    """
    texts = parse_texts(prompts_dir / f"{language}.txt")
    generated = list(TONES)
    wanted = list(only) or [*texts, *generated]
    unknown = [name for name in wanted if name not in texts and name not in generated]
    if unknown:
        raise SynthError(f"{prompts_dir / language}.txt: no prompt named {', '.join(unknown)}")
    folder = prompts_dir / language
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    voice = VOICES.get(language, language)
    for name in wanted:
        samples = speak(texts[name], voice) if name in texts else _tone(*TONES[name])
        path = folder / f"{name}.wav"
        write_wav(path, samples)
        written.append((path, len(samples) / SAMPLE_RATE))
    return written


def synth_music(prompts_dir: Path) -> tuple[Path, float]:
    """Write the shipped music on hold (``music.music_on_hold``) into ``prompts_dir/moh/``.

    Returns:
        The file written and its duration in seconds.
    """
    folder = prompts_dir / MUSIC_DIR
    folder.mkdir(parents=True, exist_ok=True)
    samples = music_on_hold(SAMPLE_RATE)
    path = folder / MUSIC_FILE
    write_wav(path, samples)
    return path, len(samples) / SAMPLE_RATE


def speak(text: str, voice: str, speed: int = SPEED_WPM) -> npt.NDArray[np.int16]:
    """``text`` spoken by espeak-ng, as 8 kHz mono int16 trimmed and at ``PEAK_DBFS`` peak.

    Raises:
        SynthError: espeak-ng is not installed, fails, or writes no audio.
    """
    program = shutil.which("espeak-ng")
    if program is None:
        raise SynthError(f"espeak-ng not found: {_INSTALL}")
    with tempfile.TemporaryDirectory(prefix="callserver-synth-") as tmp:
        out = Path(tmp) / "speech.wav"
        command = [program, "-v", voice, "-s", str(speed), "-b", "1", "-w", str(out), "--stdin"]
        result = subprocess.run(command, input=text.encode(), capture_output=True, check=False)
        if result.returncode != 0:
            detail = result.stderr.decode(errors="replace").strip()
            raise SynthError(f"espeak-ng -v {voice} failed on {text!r}: {detail}")
        try:
            samples = decode_file(out)
        except PromptError as exc:
            raise SynthError(f"espeak-ng -v {voice} on {text!r}: {exc.message}") from None
    return _at_peak(_trim(samples).astype(np.float64), PEAK_DBFS)


def _trim(samples: npt.NDArray[np.int16]) -> npt.NDArray[np.int16]:
    threshold = 32768 * 10 ** (_SILENCE_DBFS / 20)
    loud = np.flatnonzero(np.abs(samples.astype(np.int32)) > threshold)
    if loud.size == 0:
        return samples
    pad = _PAD_MS * SAMPLE_RATE // 1000
    return samples[max(loud[0] - pad, 0) : loud[-1] + 1 + pad]


def _at_peak(signal: npt.NDArray[np.float64], dbfs: float) -> npt.NDArray[np.int16]:
    peak = float(np.max(np.abs(signal))) if signal.size else 0.0
    scale = 32767 * 10 ** (dbfs / 20) / peak if peak else 0.0
    return np.rint(signal * scale).astype(np.int16)


def write_wav(path: Path, samples: npt.NDArray[np.int16]) -> None:
    """Write an 8 kHz mono 16-bit WAV atomically: a temporary file beside it, then os.replace."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as file, wave.open(file, "wb") as out:
            out.setnchannels(1)
            out.setsampwidth(2)
            out.setframerate(SAMPLE_RATE)
            out.writeframes(samples.astype("<i2").tobytes())
        os.chmod(tmp, 0o644)  # mkstemp makes it private; the server may run as another user
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def _tone(frequency: float, ms: int, dbfs: float) -> npt.NDArray[np.int16]:
    return sine(frequency, ms, dbfs=dbfs, rate=SAMPLE_RATE)
