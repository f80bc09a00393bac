"""baresip phones in a conference room of `callserver run`: phones 201 and 202 of acme's group
(registered, MD5) and a third baresip coming in on the ``test`` trunk dial the group's meet-me
number; each sends a tone of its own, and what each phone decoded holds the other two tones,
never its own."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import numpy.typing as npt

from tests.e2e.conftest import (
    HOST,
    ServerProcess,
    exported_cdrs,
    plan_dir,
    start_server,
    stopped_on_exit,
)
from tests.e2e.subscribers import CALLING, PHONES, write_group
from tests.phones.audio import tone, write_wav
from tests.phones.baresip import Account, Baresip

ROOM_NUMBER = "38733100290"  # in acme's block, no phone's: its dialplan is the room
TONES = {"201": 350.0, "202": 600.0, "trunk": 2000.0}


def _server(tmp_path: Path) -> ServerProcess:
    write_group(tmp_path)
    plans = plan_dir(tmp_path, ROOM_NUMBER, 'steps:\n  meet:\n    conference: "acme"\n')
    return start_server(
        tmp_path, trunks={**CALLING, "digest": {"algorithms": ["MD5"]}}, dialplans=plans
    )


def _account(server: ServerProcess, who: str) -> Account:
    if who == "trunk":
        return Account(user="guest")  # not registered: a caller on the trunk
    user = f"38733100{who}"
    return Account(user=user, registrar=(HOST, server.port), auth_user=user, password=PHONES[who])


def _magnitude(samples: npt.NDArray[np.int16], frequency: float) -> float:
    spectrum = np.abs(np.fft.rfft(samples * np.hanning(len(samples))))
    return float(spectrum[round(frequency * len(samples) / 8000)])


def test_three_baresip_phones_in_a_room_each_hear_the_other_two(tmp_path: Path) -> None:
    """201, 202 and a trunk caller join the room; each phone's decoded audio carries the other
    two's tones at least 30 times stronger than its own; every leg's CDR names the room."""
    with stopped_on_exit(_server(tmp_path)) as server:
        phones = {
            who: Baresip(
                tmp_path / who,
                write_wav(tmp_path / f"mic-{who}.wav", tone(frequency, 20.0)),
                _account(server, who),
            )
            for who, frequency in TONES.items()
        }
        try:
            for who, phone in phones.items():
                phone.start()
                if who != "trunk":
                    phone.wait_for("registered", timeout=5)
            for count, phone in enumerate(phones.values(), start=1):
                phone.dial(f"sip:{ROOM_NUMBER}@{HOST}:{server.port}")
                phone.wait_for("established", timeout=10)
                _wait_joined(server, count)
            phones["201"].wait_for(r"\[0:00:05\]", timeout=10)
            for phone in phones.values():
                phone.hang_up()
                phone.wait_for("closed")
        finally:
            for phone in phones.values():
                phone.stop()
    for who, phone in phones.items():
        heard = phone.received_audio()[-3 * 8000 :]  # the last seconds: all three in the room
        assert len(heard) == 3 * 8000, f"{who} decoded less than 3 s"
        own = _magnitude(heard, TONES[who])
        others = [_magnitude(heard, f) for w, f in TONES.items() if w != who]
        assert min(others) > 30 * own, (who, own, others)
    legs = [cdr for cdr in exported_cdrs(server.data_dir) if cdr["called_raw"] == ROOM_NUMBER]
    assert len(legs) == 3 and {cdr["conference"] for cdr in legs} == {"acme"}, legs
    assert {cdr["subscriber"] for cdr in legs} == {"+38733100201", "+38733100202", None}


def _wait_joined(server: ServerProcess, count: int) -> None:
    """Until the server has logged ``count`` joins (its log shows why not, after 10 s)."""
    deadline = time.monotonic() + 10
    while len(server.events("conference.joined")) < count:
        assert time.monotonic() < deadline, "\n".join(server.raw[-40:])
        time.sleep(0.02)
