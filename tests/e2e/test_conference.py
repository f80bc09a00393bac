"""Conference rooms end to end: SIPp callers dial a meet-me number of a real server, each with
an ``RtpParty`` as its media end sending a tone of its own; what each receives is decoded and
its spectrum read. Three participants each hear the other two and never themselves; the join
and leave tones are heard in their order; a PIN is asked for; a full room is refused."""

from __future__ import annotations

import time
from contextlib import ExitStack
from pathlib import Path

import numpy as np
import numpy.typing as npt

from callserver.media.tones import JOIN_FREQUENCIES
from tests.e2e.conftest import (
    exported_cdrs,
    plan_dir,
    run_scenario,
    start_server,
)
from tests.e2e.rooms import ROOM, magnitude, received_samples, room_caller, wait_joined
from tests.e2e.rtp_party import tone_party

NUMBER = ROOM  # the meet-me number
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
    parties = [tone_party(f) for f in TONES]
    marks: dict[str, int] = {}
    together: list[int] = []  # each party's packets received by a moment all three were in
    try:
        with ExitStack() as stack:
            for index, (party, stay) in enumerate(zip(parties, (12000, 12000, 6000), strict=True)):
                stack.enter_context(room_caller(sipp, tmp_path, server, party, stay))
                party.send_to(int(str(wait_joined(server, index + 1)["rtp_port"])))
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
        heard = received_samples(party, end - 100, end)  # two seconds with all three in the room
        others = [f for f in TONES if f != own]
        loud = min(magnitude(heard, f) for f in others)
        assert magnitude(heard, own) < loud / 30, (own, [magnitude(heard, f) for f in TONES])
    rising = received_samples(parties[0], marks["third_joined"] - 25, marks["third_joined"] + 25)
    low, high = JOIN_FREQUENCIES
    assert _first_strong(rising, low) < _first_strong(rising, high)
    falling = received_samples(parties[0], marks["third_left"] - 25, marks["third_left"] + 40)
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
    party = tone_party(TONES[0])
    try:
        with room_caller(sipp, tmp_path, server, party, 9000) as proc:
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
    parties = [tone_party(f) for f in TONES[:2]]
    try:
        with ExitStack() as stack:
            for index, party in enumerate(parties):
                stack.enter_context(room_caller(sipp, tmp_path, server, party, 12000))
                party.send_to(int(str(wait_joined(server, index + 1)["rtp_port"])))
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
