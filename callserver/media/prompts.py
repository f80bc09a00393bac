"""Prompts: audio files decoded once to 8 kHz mono, pre-encoded to G.711, played by slicing bytes.

Theory of operation
-------------------
A prompt is ``<root>/<language>/<name>.<ext>`` in any format pydub reads. On first use a file
is converted once to 8 kHz mono int16 (``audio_files.decode_file``: low-pass filtered, then
resampled) and encoded to PCMU and PCMA (RFC 3551 §4.5.14). The result is cached by path while
the file's mtime (ns) and size stay the same. Nothing here runs on the 20 ms media tick: the
engine plays a prompt by slicing its pre-encoded bytes.

Languages fall back along a chain (``MediaSettings.language_chain``: hr -> bs -> en). A missing
or broken file logs ``media.prompt_failed`` and the next language is tried; when none has it the
caller plays silence. A playlist (``Play``, ``Silence``, ``SayDigits``, ``SayNumber``) renders to
one byte string, each item falling back on its own: one bad prompt never ends a call.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import numpy.typing as npt
import structlog

from callserver.media import g711, say
from callserver.media.audio_files import SAMPLE_RATE, PromptError, decode_file

__all__ = [
    "BYTES_PER_MS",
    "REQUIRED_PROMPTS",
    "SAMPLE_RATE",
    "Audio",
    "Play",
    "PlaylistItem",
    "Prompt",
    "PromptError",
    "PromptStore",
    "SayDigits",
    "SayNumber",
    "Silence",
    "check_prompts",
    "decode_file",
    "required_prompts",
]

BYTES_PER_MS = SAMPLE_RATE // 1000  # one G.711 octet per sample
# The prompts every language directory ships; say.number_prompts adds the number words.
REQUIRED_PROMPTS = (
    "greeting",
    "menu",
    "invalid_choice",
    "no_input",
    "closed",
    "voicemail_greeting",
    "beep",
    "goodbye",
    "channel_limit",
    "time_limit",
)
_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_-]*")
_log = structlog.get_logger("callserver.media")


@dataclass(frozen=True, slots=True)
class Prompt:
    """A decoded prompt: 8 kHz mono int16 samples and their PCMU and PCMA encodings."""

    name: str
    language: str
    path: Path
    samples: npt.NDArray[np.int16] = field(repr=False, compare=False)
    pcmu: bytes = field(repr=False)
    pcma: bytes = field(repr=False)

    def encoded(self, codec: str) -> bytes:
        """The payload in ``codec``, one octet per sample (RFC 3551 §4.5.14).

        Raises:
            ValueError: ``codec`` is not "PCMU" or "PCMA".
        """
        return g711.of_law(codec, self.pcmu, self.pcma)

    @property
    def duration(self) -> float:
        """Length in seconds."""
        return len(self.samples) / SAMPLE_RATE


@dataclass(frozen=True, slots=True)
class Play:
    """Playlist item: the prompt ``name`` in the call's language (or a fallback)."""

    name: str


@dataclass(frozen=True, slots=True)
class Silence:
    """Playlist item: ``ms`` milliseconds of silence. Raises ValueError if ``ms`` < 0."""

    ms: int

    def __post_init__(self) -> None:
        if self.ms < 0:
            raise ValueError(f"silence of {self.ms} ms: must not be negative")


@dataclass(frozen=True, slots=True)
class SayDigits:
    """Playlist item: ``text`` read digit by digit; ValueError unless digits, spaces, dashes."""

    text: str

    def __post_init__(self) -> None:
        say.say_digits(self.text)


@dataclass(frozen=True, slots=True)
class SayNumber:
    """Playlist item: ``value`` said as a number; ValueError unless 0 <= value <= 999 999."""

    value: int

    def __post_init__(self) -> None:
        if not 0 <= self.value <= say.MAX_NUMBER:
            raise ValueError(f"cannot say {self.value}: numbers from 0 to {say.MAX_NUMBER} only")


@dataclass(frozen=True, slots=True, eq=False)
class Audio:
    """Playlist item: decoded audio (8 kHz mono samples: a voicemail message, a greeting)."""

    samples: npt.NDArray[np.int16]


PlaylistItem = Play | Silence | SayDigits | SayNumber | Audio


def required_prompts(language: str) -> frozenset[str]:
    """The prompt names a language directory must hold: ``REQUIRED_PROMPTS`` and the number
    words ``say_number``/``say_digits`` use in ``language``."""
    return frozenset(REQUIRED_PROMPTS) | say.number_prompts(language)


class PromptStore:
    """Prompts under ``root``, decoded and encoded once, looked up along a language chain.

    A prompt is looked for on disk again (a stat: a changed file is decoded anew) at most once
    every ``recheck`` seconds; in between, every call gets it from memory without a system
    call, so a replaced file is heard within a second and a busy server does not stat the
    same greeting hundreds of times a second.

    Args:
        root: the prompts directory, holding one subdirectory per language.
        chain: maps a language to the languages to try, in order, starting with itself
            (the server passes ``settings.media.language_chain``).
        clock: monotonic seconds, for ``recheck``.
        recheck: seconds a found prompt is used without looking at its file again.
    """

    def __init__(
        self,
        root: Path,
        chain: Callable[[str], list[str]],
        *,
        clock: Callable[[], float] = time.monotonic,
        recheck: float = 1.0,
    ) -> None:
        self.root = root
        self._chain = chain
        self._clock = clock
        self._recheck = recheck
        self._cache: dict[Path, tuple[tuple[int, int], Prompt]] = {}
        self._fresh: dict[tuple[str, str], tuple[float, Prompt]] = {}

    def languages(self) -> list[str]:
        """The language subdirectories present, sorted."""
        return [folder.name for folder in _language_dirs(self.root)]

    def load(self, name: str, language: str, *, look: bool = False) -> Prompt:
        """The prompt ``name`` in exactly ``language``, decoded on first use or after a change
        (seen within ``recheck`` seconds; at once with ``look``, as a reload's warm-up does).

        Raises:
            PromptError: the file is missing, empty, not audio or undecodable.
        """
        now = self._clock()
        fresh = self._fresh.get((name, language))
        if fresh is not None and now - fresh[0] < self._recheck and not look:
            return fresh[1]
        prompt = self._load(name, language)
        self._fresh[(name, language)] = (now, prompt)
        return prompt

    def _load(self, name: str, language: str) -> Prompt:
        path = self._locate(name, language)
        try:
            stat = path.stat()
        except OSError as exc:
            raise PromptError(path, f"cannot read: {exc.strerror or exc}") from None
        version = (stat.st_mtime_ns, stat.st_size)
        cached = self._cache.get(path)
        if cached is not None and cached[0] == version:
            return cached[1]
        self._cache.pop(path, None)
        samples = decode_file(path)
        samples.flags.writeable = False  # shared by every call that plays it
        pcmu, pcma = g711.encode("PCMU", samples), g711.encode("PCMA", samples)
        prompt = Prompt(name, language, path, samples, pcmu, pcma)
        self._cache[path] = (version, prompt)
        return prompt

    def find(self, name: str, language: str) -> Prompt | None:
        """The prompt ``name`` in the first language of ``language``'s chain that has it.

        Each language whose file is missing or bad logs ``media.prompt_failed`` (with ``path``
        and ``error``) and the next is tried. Returns None when none works: play silence.
        """
        for candidate in self._chain(language):
            try:
                return self.load(name, candidate)
            except PromptError as exc:
                _log.error("media.prompt_failed", path=str(exc.path), error=exc.message)
        return None

    def exists(self, name: str, language: str) -> bool:
        """True when a file for ``name`` is in some language of ``language``'s chain.

        A load-time check (dialplans): the file is found, not decoded.
        """
        for candidate in self._chain(language):
            try:
                self._locate(name, candidate)
            except PromptError:
                continue
            return True
        return False

    def render(self, items: Iterable[PlaylistItem], language: str, codec: str) -> bytes:
        """The playlist as one ``codec`` payload (8 octets a millisecond) to play by slicing.

        Prompts that cannot be found in any language of the chain add nothing (logged by
        ``find``). Silence is the codec's code for linear zero (ITU-T G.711).

        Raises:
            ValueError: ``codec`` is not "PCMU" or "PCMA".
        """
        g711.check_codec(codec)
        silence = bytes([g711.SILENCE_BYTE[codec]])
        parts: list[bytes] = []
        for item in items:
            if isinstance(item, Silence):
                parts.append(silence * (item.ms * BYTES_PER_MS))
                continue
            if isinstance(item, Audio):
                parts.append(g711.encode(codec, item.samples))
                continue
            for name, word_language in self._words(item, language):
                prompt = self.find(name, word_language)
                if prompt is not None:
                    parts.append(prompt.encoded(codec))
        return b"".join(parts)

    def _words(self, item: Play | SayDigits | SayNumber, language: str) -> list[tuple[str, str]]:
        if isinstance(item, Play):
            return [(item.name, language)]
        if isinstance(item, SayDigits):
            return [(name, language) for name in say.say_digits(item.text)]
        # Numbers follow the grammar of the first language in the chain that has one.
        chain = self._chain(language)
        grammar = next((lang for lang in chain if lang in say.NUMBER_LANGUAGES), None)
        if grammar is None:
            _log.error("media.say_failed", value=item.value, language=language)
            return []
        return [(name, grammar) for name in say.say_number(item.value, grammar)]

    def _locate(self, name: str, language: str) -> Path:
        folder = self.root / language
        if not (_NAME.fullmatch(name) and _NAME.fullmatch(language)):
            raise PromptError(folder / name, "not a prompt name (letters, digits, _ and -)")
        wav = folder / f"{name}.wav"
        if wav.is_file():
            return wav
        others = sorted(folder.glob(f"{name}.*")) if folder.is_dir() else []
        found = [path for path in others if path.is_file()]
        if not found:
            raise PromptError(folder / name, f"no such prompt (no {name}.* in {folder})")
        return found[0]


def check_prompts(root: Path) -> list[str]:
    """Every problem in the prompts directory ``root``, as ``path: message`` lines.

    Each file of each language directory is decoded (empty, not audio, undecodable, or needing
    a missing ffmpeg), and each language must hold ``required_prompts(language)``
    (``prompts/de: missing prompt 'goodbye'``).
    """
    if not root.is_dir():
        return [f"{root}: no such prompts directory"]
    errors: list[str] = []
    for folder in _language_dirs(root):
        errors += _check_language(folder)
    return errors


def _check_language(folder: Path) -> list[str]:
    errors: list[str] = []
    files: dict[str, list[str]] = {}
    for path in sorted(folder.iterdir()):
        if path.name.startswith(".") or not path.is_file():
            continue
        files.setdefault(path.stem, []).append(path.name)
        try:
            decode_file(path)
        except PromptError as exc:
            errors.append(str(exc))
    for stem, names in files.items():
        if len(names) > 1:
            errors.append(f"{folder}: prompt {stem!r} has {len(names)} files: {', '.join(names)}")
    missing = sorted(required_prompts(folder.name) - files.keys())
    return errors + [f"{folder}: missing prompt {name!r}" for name in missing]


def _language_dirs(root: Path) -> list[Path]:
    """The language subdirectories: not hidden, and not ``moh`` (the music on hold's)."""
    folders = root.iterdir() if root.is_dir() else iter(())
    return sorted(p for p in folders if p.is_dir() and p.name[:1] != "." and p.name != "moh")
