"""Tests for the music on hold directory: files played in turn, bad files reported, settings."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from structlog.testing import capture_logs

from callserver.media import g711
from callserver.media.hold_music import check_music, load_music, music_in_force
from callserver.media.music import music_on_hold
from callserver.media.prompts import check_prompts
from callserver.media.settings import MediaSettings
from callserver.media.synth import synth_music
from tests.media.test_prompts import dominant_hz, sine, write_wav

SHIPPED = Path(__file__).resolve().parents[2] / "prompts"


def _two_pieces(directory: Path) -> None:
    """b.wav: 1 s of 440 Hz at 8 kHz; a.wav: 2 s of 600 Hz, 44.1 kHz stereo."""
    write_wav(directory / "b.wav", sine(440, 1.0, 8000, 8000))
    tone = sine(600, 2.0, 44100, 8000)
    write_wav(directory / "a.wav", np.stack([tone, tone], axis=1), rate=44100)


def test_every_file_is_played_in_turn_by_name(tmp_path: Path) -> None:
    """Two files of any rate and layout become one 8 kHz loop: a.wav, then b.wav."""
    _two_pieces(tmp_path)
    music, failed = load_music(tmp_path)
    assert failed == [] and [p.name for p in music.files] == ["a.wav", "b.wav"]
    assert music.duration == 3.0
    assert abs(dominant_hz(music.samples[:16000]) - 600) < 2
    assert abs(dominant_hz(music.samples[16000:]) - 440) < 2
    assert music.encoded("PCMU") == g711.encode("PCMU", music.samples)


def test_a_file_that_is_not_audio_is_skipped_logged_and_reported(tmp_path: Path) -> None:
    """A broken file drops out of the music (logged) and `check_music` names it."""
    _two_pieces(tmp_path)
    (tmp_path / "notes.txt").write_text("not audio")
    (tmp_path / ".hidden.wav").write_bytes(b"")
    with capture_logs() as logs:
        music = music_in_force(tmp_path)
    assert [p.name for p in music.files] == ["a.wav", "b.wav"]
    failed = [e for e in logs if e["event"] == "media.music_failed"]
    assert [e["path"] for e in failed] == [str(tmp_path / "notes.txt")]
    loaded = next(e for e in logs if e["event"] == "media.music_loaded")
    assert loaded["files"] == ["a.wav", "b.wav"] and loaded["seconds"] == 3.0
    [error] = check_music(tmp_path)
    assert error.startswith(f"{tmp_path / 'notes.txt'}: ")


def test_no_music_is_silence_and_a_check_error(tmp_path: Path) -> None:
    """A missing or empty directory plays silence (empty payload) and check says so."""
    music, failed = load_music(tmp_path / "none")
    assert (music.encoded("PCMA"), failed) == (b"", [])
    assert check_music(tmp_path / "none") == [
        f"{tmp_path / 'none'}: no music on hold directory (held parties hear silence)"
    ]
    (tmp_path / "bad.wav").write_bytes(b"RIFF")
    assert check_music(tmp_path)[-1] == (
        f"{tmp_path}: no playable music on hold (held parties hear silence)"
    )


def test_the_settings_name_the_directory() -> None:
    """By default the music is prompts_dir/moh; music_dir names another directory."""
    assert MediaSettings(prompts_dir=Path("/srv/p")).hold_music_dir == Path("/srv/p/moh")
    other = MediaSettings(prompts_dir=Path("/srv/p"), music_dir=Path("/srv/music"))
    assert other.hold_music_dir == Path("/srv/music")


def test_the_music_directory_is_no_language_and_the_shipped_tree_checks_clean() -> None:
    """prompts/moh is not taken for a language missing its prompts; the music checks clean."""
    assert check_prompts(SHIPPED) == []
    assert check_music(SHIPPED / "moh") == []


def test_synth_writes_the_shipped_piece_into_the_music_directory(tmp_path: Path) -> None:
    """`callserver prompts synth` writes prompts/moh/chords.wav: the generated 8 s loop."""
    path, seconds = synth_music(tmp_path)
    assert (path, seconds) == (tmp_path / "moh" / "chords.wav", 8.0)
    music, _ = load_music(tmp_path / "moh")
    assert np.array_equal(music.samples, music_on_hold())
