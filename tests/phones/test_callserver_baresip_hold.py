"""Hold with music between two baresip phones of acme's group (RFC 3264 §8.4).

201 (a 2600 Hz microphone) calls 202 (3000 Hz); one of them holds with baresip's ``/hold``
(a re-INVITE ``sendonly``) for longer than the server's RTP timeout, then ``/resume``. The
other phone's received audio (sndfile's dump) is cut into 0.5 s windows and each is named:
the holder's tone, or the shipped music on hold, found by correlating the window with the
music's own decoded samples. The call is not ended by the RTP timeout while held, and
relaying comes back on resume.
"""

from __future__ import annotations

import itertools
import time
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest

from callserver.media.hold_music import load_music
from tests.e2e.conftest import (
    HOST,
    PROMPTS,
    ServerProcess,
    exported_cdrs,
    start_server,
    stopped_on_exit,
)
from tests.e2e.subscribers import CALLING, PHONES, write_group
from tests.phones.audio import dominant_frequency, rms, tone, write_wav
from tests.phones.baresip import Account, Baresip

RTP_TIMEOUT = 2.0
HELD_SECONDS = 2 * RTP_TIMEOUT + 1
WINDOW = 4000  # 0.5 s at 8 kHz
TONES = {"201": 2600.0, "202": 3000.0}  # far from every note of the music


def _server(tmp_path: Path) -> ServerProcess:
    """acme's phones 201 and 202 (MD5), with a short RTP timeout."""
    write_group(tmp_path)
    trunks = {**CALLING, "digest": {"algorithms": ["MD5"]}}
    media = {"rtp_timeout": RTP_TIMEOUT}
    return start_server(tmp_path, trunks=trunks, media=media)


def _microphone(tmp_path: Path, ext: str) -> Path:
    """20 s of the phone's tone: baresip hangs up when its microphone file ends."""
    return write_wav(tmp_path / f"microphone-{ext}.wav", tone(TONES[ext], 20.0))


def _phone(server: ServerProcess, ext: str) -> Account:
    user = f"38733100{ext}"
    return Account(user=user, registrar=(HOST, server.port), auth_user=user, password=PHONES[ext])


def _music_match(window: npt.NDArray[np.int16], music: npt.NDArray[np.float64]) -> float:
    """The best normalised correlation of ``window`` with any stretch of the looped music."""
    x = window.astype(np.float64)
    size = 1 << (len(music) + len(x)).bit_length()
    corr = np.fft.irfft(np.fft.rfft(music, size) * np.conj(np.fft.rfft(x, size)), size)
    corr = corr[: len(music) - len(x) + 1]
    energy = np.convolve(music**2, np.ones(len(x)), "valid")
    norm = np.sqrt(np.maximum(energy, 1e-9) * float(np.dot(x, x)))
    return float(np.max(corr / norm)) if float(np.dot(x, x)) > 0 else 0.0


def _heard(samples: npt.NDArray[np.int16], tone: float) -> list[tuple[str, int]]:
    """The received audio as runs of 0.5 s windows: ``tone`` (the other phone), ``moh``,
    ``quiet`` or ``other`` (a window that straddles two of them)."""
    samples_of_music = load_music(PROMPTS / "moh")[0].samples
    music = np.concatenate([samples_of_music, samples_of_music]).astype(np.float64)
    kinds = []
    for start in range(0, len(samples) - WINDOW + 1, WINDOW):
        window = samples[start : start + WINDOW]
        if rms(window) < 100:
            kinds.append("quiet")
        elif _music_match(window, music) > 0.9:
            kinds.append("moh")
        elif abs(dominant_frequency(window) - tone) < 10:
            kinds.append("tone")
        else:
            kinds.append("other")
    return [(kind, len(list(run))) for kind, run in itertools.groupby(kinds)]


@pytest.mark.parametrize("holder", ["201", "202"])
def test_a_baresip_holds_and_the_other_hears_the_music_then_it_again(
    tmp_path: Path, holder: str
) -> None:
    """A hold longer than the RTP timeout: the held phone hears the music on hold (matched to
    prompts/moh), the call survives it, and after the resume it hears the holder again; both
    legs' CDRs end normally (not by the RTP timeout)."""
    held = "202" if holder == "201" else "201"
    with stopped_on_exit(_server(tmp_path)) as server:
        phones = {
            ext: Baresip(tmp_path / f"p{ext}", _microphone(tmp_path, ext), _phone(server, ext))
            for ext in ("202", "201")
        }
        with phones["202"] as b, phones["201"] as a:
            a.wait_for("registered", timeout=5)
            b.wait_for("registered", timeout=5)
            a.dial(f"sip:202@{HOST}:{server.port}")
            a.wait_for("established", timeout=10)
            b.wait_for("established", timeout=10)
            time.sleep(1.5)
            phones[holder].send("/hold\n")
            server.wait_for("call.held", timeout=10)
            time.sleep(HELD_SECONDS)
            phones[holder].send("/resume\n")
            server.wait_for("call.resumed", timeout=10)
            time.sleep(1.5)
            assert not server.events("call.rtp_timeout"), "\n".join(server.raw[-40:])
            assert "terminated" not in a.output + b.output, "the call ended while held"
            a.hang_up()
            a.wait_for("closed")
            b.wait_for("closed")
    runs = _heard(phones[held].received_audio(), TONES[holder])
    loud = [(kind, count) for kind, count in runs if kind in ("tone", "moh") and count >= 2]
    assert [kind for kind, _ in loud] == ["tone", "moh", "tone"], runs
    assert loud[1][1] * WINDOW / 8000 >= HELD_SECONDS - 1, runs
    [event] = server.events("call.held")
    assert event["by"] == ("a" if holder == "201" else "b"), event
    legs = sorted(exported_cdrs(server.data_dir), key=lambda r: str(r["leg"]))
    assert [(r["leg"], r["disposition"], r["end_reason"]) for r in legs] == [
        ("a", "ANSWERED", "normal"),
        ("b", "ANSWERED", "normal"),
    ], legs
    assert legs[0]["subscriber"] == "+38733100201" and legs[1]["called_raw"] == "+38733100202"
