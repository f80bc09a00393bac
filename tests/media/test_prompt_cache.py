"""Prompts decoded before calls need them: at start-up, a file per turn of the loop on a
reload to a new prompts directory, and a reload that keeps the directory keeps the store."""

from __future__ import annotations

import asyncio
import wave
from pathlib import Path

import numpy as np
import pytest
from structlog.testing import capture_logs

from callserver.app import Server
from callserver.config.settings import load_settings
from callserver.media import prompts as prompts_module
from callserver.media.prompt_cache import prompt_files, warm_prompts, warm_prompts_in_slices
from callserver.media.prompts import Play, PromptStore, decode_file


def _wav(path: Path, rate: int = 8000, seconds: float = 0.1) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    samples = (np.sin(np.arange(int(rate * seconds)) / 5) * 8000).astype("<i2")
    with wave.open(str(path), "wb") as file:
        file.setnchannels(1)
        file.setsampwidth(2)
        file.setframerate(rate)
        file.writeframes(samples.tobytes())


def _store(root: Path) -> PromptStore:
    """Two languages, three good prompts, one that is not audio, one hidden file."""
    _wav(root / "en" / "greeting.wav", rate=44100)
    _wav(root / "en" / "goodbye.wav")
    _wav(root / "hr" / "greeting.wav")
    (root / "hr" / "broken.wav").write_bytes(b"not audio at all")
    (root / "hr" / ".greeting.wav.swp").write_bytes(b"editor file")
    return PromptStore(root, lambda language: [language, "en"])


@pytest.fixture
def decodes(monkeypatch: pytest.MonkeyPatch) -> list[Path]:
    """Every file the prompt store decodes, in order."""
    seen: list[Path] = []

    def counting(path: Path) -> np.ndarray:
        seen.append(path)
        return decode_file(path)

    monkeypatch.setattr(prompts_module, "decode_file", counting)
    return seen


def test_prompt_files_lists_every_prompt_of_every_language(tmp_path: Path) -> None:
    """(name, language) of each file, hidden files left out, by language then name."""
    store = _store(tmp_path)
    assert prompt_files(store) == [
        ("goodbye", "en"),
        ("greeting", "en"),
        ("broken", "hr"),
        ("greeting", "hr"),
    ]


def test_warmed_prompts_are_not_decoded_again_when_a_call_plays_them(
    tmp_path: Path, decodes: list[Path]
) -> None:
    """After warm_prompts a call's render decodes nothing; the bad file is skipped, and a call
    that plays it still logs media.prompt_failed and falls back."""
    store = _store(tmp_path)
    assert warm_prompts(store) == 3
    assert len(decodes) == 4  # the broken one was tried
    decodes.clear()
    with capture_logs() as logs:
        store.render([Play("greeting"), Play("goodbye")], "hr", "PCMU")
        assert store.render([Play("broken")], "hr", "PCMU") == b""
    assert decodes == [tmp_path / "hr" / "broken.wav"]
    failed = [entry["path"] for entry in logs if entry["event"] == "media.prompt_failed"]
    assert str(tmp_path / "hr" / "broken.wav") in failed


async def test_warming_in_slices_lets_other_tasks_run_between_files(
    tmp_path: Path, decodes: list[Path]
) -> None:
    """Another task runs after every prompt decoded, and all of them end up decoded."""
    store = _store(tmp_path)
    seen: list[int] = []
    done = asyncio.Event()

    async def other_task() -> None:
        while not done.is_set():
            seen.append(len(decodes))
            await asyncio.sleep(0)

    watcher = asyncio.create_task(other_task())
    assert await warm_prompts_in_slices(store) == 3
    done.set()
    await watcher
    assert set(range(1, len(decodes))) <= set(seen)  # after each file
    assert sorted(decodes) == sorted(
        tmp_path / language / f"{name}.wav" for name, language in prompt_files(store)
    )


def _settings_file(path: Path, prompts: Path, fallback: str = "") -> Path:
    media = f"prompts_dir: '{prompts}'" + (f", language_fallback: {fallback}" if fallback else "")
    path.write_text(f"sip: {{listen: ['udp:127.0.0.1:0']}}\nmedia: {{{media}}}\n")
    return path


async def test_a_reload_keeps_the_store_and_its_chain_follows_the_settings(
    tmp_path: Path, decodes: list[Path]
) -> None:
    """SIGHUP with the same prompts directory keeps the server's store, decoding nothing again
    but a file that failed, and the store's language chain is the reloaded one."""
    _store(tmp_path / "prompts")
    _wav(tmp_path / "prompts" / "de" / "welcome.wav")
    path = _settings_file(tmp_path / "callserver.yaml", tmp_path / "prompts")
    server = Server(load_settings(path), path)
    store = server.prompts
    warm_prompts(store)
    with capture_logs():
        assert store.find("welcome", "hr") is None  # hr falls back to bs and en
    decodes.clear()
    _settings_file(path, tmp_path / "prompts", fallback="{hr: [de]}")
    server.reload()
    await asyncio.gather(*server.background.tasks)
    assert server.prompts is store and server.calls.prompts is store
    welcome = store.find("welcome", "hr")  # now through de, the reloaded chain
    assert welcome is not None and welcome.language == "de"
    assert decodes == [tmp_path / "prompts" / "hr" / "broken.wav"]  # only the bad one, again


async def test_a_reload_decodes_replaced_files_and_every_file_of_a_new_directory(
    tmp_path: Path, decodes: list[Path]
) -> None:
    """SIGHUP decodes a replaced file (and tries a bad one again) once the store looks at the
    files again; a new prompts directory gets a new store, decoded the same way."""
    first, second = tmp_path / "first", tmp_path / "second"
    _store(first)
    _wav(second / "en" / "greeting.wav")
    path = _settings_file(tmp_path / "callserver.yaml", first)
    server = Server(load_settings(path), path)
    now = [0.0]
    store = PromptStore(first, lambda language: [language], clock=lambda: now[0])
    server.prompts = server.calls.prompts = server.routing.prompts = store
    warm_prompts(store)
    decodes.clear()
    _wav(first / "en" / "goodbye.wav", seconds=0.2)  # replaced
    now[0] += 2.0  # past the store's recheck interval
    server.reload()
    await asyncio.gather(*server.background.tasks)
    assert server.prompts is store
    assert decodes == [first / "en" / "goodbye.wav", first / "hr" / "broken.wav"]
    _settings_file(path, second)
    server.reload()
    assert server.prompts is not store and server.routing.prompts is server.prompts
    await asyncio.gather(*server.background.tasks)
    assert decodes[-1] == second / "en" / "greeting.wav"
