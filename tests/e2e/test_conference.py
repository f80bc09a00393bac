"""Conference rooms end to end: SIPp callers dial a meet-me number of a real server, each with
an ``RtpParty`` as its media end sending a tone of its own; what each receives is decoded and
its spectrum read. Three participants each hear the other two and never themselves; the join
and leave tones are heard in their order; a PIN is asked for; a full room is refused."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import numpy as np
import numpy.typing as npt

from callserver.media import g711
from callserver.media.tones import JOIN_FREQUENCIES, sine
from tests.e2e.conftest import (
    HOST,
    SCENARIOS,
    ServerProcess,
    exported_cdrs,
    free_port,
    plan_dir,
    popen_bound,
    run_scenario,
    start_server,
)
from tests.e2e.rtp_party import RtpParty

NUMBER = "38733100600"
PLAN = """steps:
  meet:
    conference: "100"
    max_participants: {limit}
{pin}"""
TONES = (350.0, 600.0, 2000.0)  # each participant's own, apart from the join/leave notes
FRAME = 320  # 40 ms analysis frames: 25 Hz apart


def _plan(tmp_path: Path, *, limit: int = 3, pin: str | None = None) -> Path:
    pin_line = f'    pin: "{pin}"\n' if pin else ""
    return plan_dir(tmp_path, NUMBER, PLAN.format(limit=limit, pin=pin_line))


def _tone_party(frequency: float) -> RtpParty:
    """A party sending a steady ``frequency`` tone (PCMU, -10 dBFS), one second looped."""
    return RtpParty(0xFF, g711.encode("PCMU", sine(frequency, 1000)))


@contextmanager
def _caller(
    sipp: str, tmp_path: Path, server: ServerProcess, party: RtpParty, stay_ms: int
) -> Iterator[subprocess.Popen[str]]:
    """SIPp calling the meet-me number with ``party`` as its media, staying ``stay_ms``."""

    def command(port: int) -> list[str]:
        return [
            sipp,
            *("-sf", str(SCENARIOS / "uac-conference-stays-then-bye.xml")),
            *("-key", "rtp_port", str(party.port), "-d", str(stay_ms), "-s", NUMBER),
            *("-i", HOST, "-p", str(port), "-mp", str(free_port(both=False)), "-m", "1"),
            *("-nostdin", "-timeout", "40s", "-timeout_error", f"{HOST}:{server.port}"),
        ]

    proc, _port = popen_bound(command, tmp_path)
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.communicate()


def _joined(server: ServerProcess, count: int, timeout: float = 15.0) -> dict[str, object]:
    """The ``count``-th ``conference.joined`` line, once it is logged."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        lines = server.events("conference.joined")
        if len(lines) >= count:
            return lines[count - 1]
        time.sleep(0.02)
    raise AssertionError("\n".join(server.raw[-40:]))


def _samples(party: RtpParty, start: int, stop: int | None = None) -> npt.NDArray[np.int16]:
    """What ``party`` received from packet ``start`` on, decoded."""
    payload = b"".join(p.payload for p in party.received[start:stop] if p.payload_type == 0)
    return g711.decode("PCMU", payload)


def _magnitude(samples: npt.NDArray[np.int16], frequency: float) -> float:
    """The Hann-windowed spectrum's magnitude at ``frequency`` (whole-signal FFT)."""
    spectrum = np.abs(np.fft.rfft(samples * np.hanning(len(samples))))
    return float(spectrum[round(frequency * len(samples) / 8000)])


def _first_strong(samples: npt.NDArray[np.int16], frequency: float) -> int:
    """The first 40 ms frame where ``frequency`` is at least half as strong as it gets."""
    frames = samples[: len(samples) // FRAME * FRAME].reshape(-1, FRAME) * np.hanning(FRAME)
    level = np.abs(np.fft.rfft(frames, axis=1))[:, round(frequency * FRAME / 8000)]
    assert level.max() > 20 * np.median(level), f"no {frequency} Hz tone heard"
    return int(np.argmax(level >= level.max() / 2))


def test_three_participants_each_hear_the_other_two_with_join_and_leave_tones(
    sipp: str, tmp_path: Path
) -> None:
    """Each of three hears the other two's tones, never its own; the third's join rises and
    its leave falls in what the first hears; each CDR names the room."""
    server = start_server(tmp_path, dialplans=_plan(tmp_path))
    parties = [_tone_party(f) for f in TONES]
    marks: dict[str, int] = {}
    together: list[int] = []  # each party's packets received by a moment all three were in
    try:
        with ExitStack() as stack:
            for index, (party, stay) in enumerate(zip(parties, (12000, 12000, 6000), strict=True)):
                stack.enter_context(_caller(sipp, tmp_path, server, party, stay))
                party.send_to(int(str(_joined(server, index + 1)["rtp_port"])))
            marks["third_joined"] = len(parties[0].received)
            time.sleep(3.0)
            together += [len(party.received) for party in parties]
            server.wait_for("conference.left", timeout=15)
            marks["third_left"] = len(parties[0].received)
            time.sleep(1.5)
    finally:
        server.stop()
        for party in parties:
            party.close()
    for party, own, end in zip(parties, TONES, together, strict=True):
        heard = _samples(party, end - 100, end)  # two seconds with all three in the room
        others = [f for f in TONES if f != own]
        loud = min(_magnitude(heard, f) for f in others)
        assert _magnitude(heard, own) < loud / 30, (own, [_magnitude(heard, f) for f in TONES])
    rising = _samples(parties[0], marks["third_joined"] - 25, marks["third_joined"] + 25)
    low, high = JOIN_FREQUENCIES
    assert _first_strong(rising, low) < _first_strong(rising, high)
    falling = _samples(parties[0], marks["third_left"] - 25, marks["third_left"] + 40)
    assert _first_strong(falling, high) < _first_strong(falling, low)
    legs = [cdr for cdr in exported_cdrs(server.data_dir) if cdr["called_raw"] == NUMBER]
    assert len(legs) == 3 and {cdr["conference"] for cdr in legs} == {"100"}, legs
    left = server.events("conference.left")
    assert [line["participants"] for line in left] == [2, 1, 0]
    assert len(server.events("conference.removed")) == 1


def test_a_wrong_pin_is_asked_again_and_the_right_one_lets_the_caller_in(
    sipp: str, tmp_path: Path
) -> None:
    """PIN 2468: 13# keeps the caller out (asked again), 2468# puts it in the room."""
    server = start_server(tmp_path, dialplans=_plan(tmp_path, pin="2468"))
    party = _tone_party(TONES[0])
    try:
        with _caller(sipp, tmp_path, server, party, 9000) as proc:
            party.send_to(int(str(server.wait_for("call.answered")["rtp_port"])))
            time.sleep(0.5)
            for digit in "13#":
                party.press(digit)
                time.sleep(0.15)
            time.sleep(2.0)
            assert server.events("conference.joined") == []
            for digit in "2468#":
                party.press(digit)
                time.sleep(0.15)
            joined = server.wait_for("conference.joined")
            proc.wait(timeout=30)
    finally:
        server.stop()
        party.close()
    assert joined["participants"] == 1 and proc.returncode == 0
    legs = [cdr for cdr in exported_cdrs(server.data_dir) if cdr["called_raw"] == NUMBER]
    assert [cdr["conference"] for cdr in legs] == ["100"], legs


def test_a_full_room_refuses_the_next_caller_with_its_prompt_and_a_bye(
    sipp: str, tmp_path: Path
) -> None:
    """A room for two holds two; the third hears the full prompt, gets BYE and a CDR that
    says so, and the two stay."""
    server = start_server(tmp_path, dialplans=_plan(tmp_path, limit=2))
    parties = [_tone_party(f) for f in TONES[:2]]
    try:
        with ExitStack() as stack:
            for index, party in enumerate(parties):
                stack.enter_context(_caller(sipp, tmp_path, server, party, 12000))
                party.send_to(int(str(_joined(server, index + 1)["rtp_port"])))
            third = run_scenario(
                sipp, tmp_path, server, "uac-expect-server-bye.xml", "-s", NUMBER, "-m", "1"
            )
            full = server.events("conference.full")
    finally:
        server.stop()
        for party in parties:
            party.close()
    assert third.returncode == 0, third.output[-2000:]
    assert [line["participants"] for line in full] == [2]
    assert len(server.events("conference.joined")) == 2
    legs = {cdr["call_id"]: cdr for cdr in exported_cdrs(server.data_dir)}
    refused = legs[str(full[0]["call_id"])]
    assert refused["end_detail"] == "conference 100: full" and refused["conference"] == "100"
    assert refused["disposition"] == "ANSWERED"
