"""Prompts decoded before calls need them, so no call waits for a decode on the event loop.

``PromptStore`` decodes a prompt the first time a call plays it, on the event loop, where the
media clock runs: a shipped prompt (8 kHz already) takes under 2 ms, but a 20 s 44.1 kHz stereo
recording an operator drops in takes about 150 ms of resampling and filtering, which every
call in progress would hear as a gap. ``warm_prompts`` decodes every file of the store at
start-up, before the server takes calls; ``warm_prompts_in_slices`` does the same on a running
server after a reload, one file at a time within a share of the event loop
(``callserver.process.pacing``). The store keeps what it decoded while a file's mtime and size stay
the same, so a reload decodes only new and replaced files (a current one costs at most a
``stat``), or every file of a new prompts directory.

A file that cannot be decoded is skipped here; a call that plays it logs
``media.prompt_failed`` as before and falls back along the language chain.
"""

from __future__ import annotations

from collections.abc import Callable

from callserver.media.prompts import PromptError, PromptStore
from callserver.process.pacing import BACKGROUND_SHARE, paced

__all__ = ["prompt_files", "warm_prompts", "warm_prompts_in_slices"]


def prompt_files(store: PromptStore) -> list[tuple[str, str]]:
    """Every prompt of ``store`` as (name, language), by language then name."""
    found: list[tuple[str, str]] = []
    for language in store.languages():
        folder = store.root / language
        names = {
            path.stem
            for path in folder.iterdir()
            if path.is_file() and not path.name.startswith(".")
        }
        found += [(name, language) for name in sorted(names)]
    return found


def warm_prompts(store: PromptStore) -> int:
    """Decode every prompt of ``store`` now (start-up); how many decoded."""
    return sum(_load(store, name, language) for name, language in prompt_files(store))


async def warm_prompts_in_slices(
    store: PromptStore, share: Callable[[], float] = lambda: BACKGROUND_SHARE
) -> int:
    """The same on a running server: one file at a time, taking ``share()`` of the event
    loop's time (``callserver.process.pacing``)."""
    decoded = 0
    async for name, language in paced(prompt_files(store), share):
        decoded += _load(store, name, language)  # the calls have the loop between two files
    return decoded


def _load(store: PromptStore, name: str, language: str) -> bool:
    try:
        store.load(name, language, look=True)  # a file replaced a moment ago is decoded now
    except PromptError:
        return False
    return True
