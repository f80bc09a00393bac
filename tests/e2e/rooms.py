"""Numbers this server runs a plan for in the end-to-end tests (a conference room, an IVR),
a SIPp participant in the room, and reading what a party heard there.

Each participant's media end is an ``RtpParty`` sending a tone of its own
(``tests.e2e.rtp_party.tone_party``); what a party receives is decoded (``received_samples``)
and its spectrum read at a tone's frequency (``magnitude``).
"""

from __future__ import annotations

import subprocess
import time
import wave
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import numpy.typing as npt

from callserver.media import g711
from tests.e2e.conftest import HOST, SCENARIOS, ServerProcess, media_port, popen_bound
from tests.e2e.rtp_party import RtpParty

ROOM, IVR = "38733100600", "38733100700"
PLANS = {
    ROOM: 'steps:\n  meet:\n    conference: "100"\n    max_participants: 5\n',
    IVR: (
        "steps:\n  main:\n    menu: main_menu\n    options: {1: information}\n"
        "    first_digit_timeout: 6s\n  information:\n    play: information\n"
    ),
}
CALLER_TONE, PARTICIPANT_TONE = 350.0, 600.0


def write_plans(tmp_path: Path, *numbers: str) -> Path:
    """A dialplans folder in ``tmp_path`` with the plans of ``numbers`` (all of ``PLANS``
    when none are given)."""
    plans = tmp_path / "dialplans"
    plans.mkdir()
    for number in numbers or tuple(PLANS):
        (plans / f"{number}.yaml").write_text(PLANS[number])
    return plans


@contextmanager
def room_caller(
    sipp: str, tmp_path: Path, server: ServerProcess, party: RtpParty, stay_ms: int
) -> Iterator[subprocess.Popen[str]]:
    """SIPp calling the room's number with ``party`` as its media, staying ``stay_ms``."""

    def command(port: int) -> list[str]:
        return [
            sipp,
            *("-sf", str(SCENARIOS / "uac-conference-stays-then-bye.xml")),
            *("-key", "rtp_port", str(party.port), "-d", str(stay_ms), "-s", ROOM),
            *("-i", HOST, "-p", str(port), "-mp", str(media_port()), "-m", "1"),
            *("-nostdin", "-timeout", "40s", "-timeout_error", f"{HOST}:{server.port}"),
        ]

    proc, _port = popen_bound(command, tmp_path)
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.communicate()


def wait_joined(server: ServerProcess, count: int, timeout: float = 15.0) -> dict[str, object]:
    """The ``count``-th ``conference.joined`` line, once it is logged."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        lines = server.events("conference.joined")
        if len(lines) >= count:
            return lines[count - 1]
        time.sleep(0.02)
    raise AssertionError("\n".join(server.raw[-40:]))


def received_samples(party: RtpParty, start: int, stop: int | None = None) -> npt.NDArray[np.int16]:
    """What ``party`` received from packet ``start`` on, decoded."""
    payload = b"".join(p.payload for p in party.received[start:stop] if p.payload_type == 0)
    return g711.decode("PCMU", payload)


def magnitude(samples: npt.NDArray[np.int16], frequency: float) -> float:
    """The Hann-windowed spectrum's magnitude at ``frequency`` (whole-signal FFT)."""
    spectrum = np.abs(np.fft.rfft(samples * np.hanning(len(samples))))
    return float(spectrum[round(frequency * len(samples) / 8000)])


def louder(samples: npt.NDArray[np.int16], tone: float, other: float) -> bool:
    """``tone`` stands at least 20 dB above ``other`` in ``samples``."""
    return magnitude(samples, tone) > 10 * magnitude(samples, other)


def read_wav(path: Path) -> tuple[int, npt.NDArray[np.int16]]:
    """A recording's channel count and its 16-bit samples (interleaved), checked to be 8 kHz."""
    with wave.open(str(path), "rb") as wav:
        assert (wav.getsampwidth(), wav.getframerate()) == (2, 8000)
        return wav.getnchannels(), np.frombuffer(wav.readframes(wav.getnframes()), "<i2")
