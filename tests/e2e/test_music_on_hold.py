"""The music on hold directory of a running server: loaded at start, taken again on SIGHUP."""

from __future__ import annotations

import shutil
import signal
import time
from pathlib import Path

from tests.e2e.conftest import PROMPTS, ServerProcess, start_server, stopped_on_exit


def _loaded(server: ServerProcess, count: int, timeout: float = 10.0) -> dict[str, object]:
    """The ``count``-th ``media.music_loaded`` line, once it is logged."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = server.events("media.music_loaded")
        if len(found) >= count:
            return found[count - 1]
        time.sleep(0.05)
    raise AssertionError("\n".join(server.raw[-40:]))


def test_a_file_dropped_in_the_music_directory_is_played_after_a_reload(tmp_path: Path) -> None:
    """media.music_dir with one piece at start; a second piece and a broken file dropped in,
    then SIGHUP: the music is both pieces in turn, the broken file logged and left out."""
    music = tmp_path / "music"
    music.mkdir()
    shutil.copy(PROMPTS / "moh" / "chords.wav", music / "a.wav")
    with stopped_on_exit(start_server(tmp_path, media={"music_dir": str(music)})) as server:
        first = _loaded(server, 1)
        assert (first["files"], first["seconds"]) == (["a.wav"], 8.0), first
        shutil.copy(PROMPTS / "moh" / "chords.wav", music / "b.wav")
        (music / "c.wav").write_bytes(b"not audio")
        server.proc.send_signal(signal.SIGHUP)
        second = _loaded(server, 2)
        assert (second["files"], second["seconds"]) == (["a.wav", "b.wav"], 16.0), second
        [failed] = server.events("media.music_failed")
        assert failed["path"] == str(music / "c.wav"), failed
