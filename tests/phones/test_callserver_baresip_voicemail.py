"""baresip and the voicemail box's message waiting indication (RFC 3842).

Phone 201 of acme's group forwards always to its box (``VM``, centrex.yaml); its baresip
loads the ``mwi`` module, which subscribes to the account's ``message-summary`` once
registered and prints each NOTIFY's body under ``----- MWI for <aor> -----``. Phone 202's
baresip calls 201 and leaves a message (its 600 Hz microphone) after the greeting and beep;
then 201's baresip dials ``*97`` and goes through its box by key presses (RFC 4733 events
from baresip's console): ``1`` plays the new message, ``9`` saves it.
"""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest

from tests.e2e.conftest import ServerProcess, exported_cdrs, stopped_on_exit
from tests.phones.audio import dominant_frequency, read_wav, rms
from tests.phones.baresip import Baresip
from tests.phones.centrex import group_phone, group_server, microphone

A, B = "+38733100201", "+38733100202"
BOX = A.removeprefix("+")
SUMMARY = re.compile(r"----- MWI for (\S+) -----\r*\n(.*?)\r*\n\r*\n", re.DOTALL)
SPOKEN = 3.0  # seconds 202 talks after its recording starts (a message keeps 2 s or more)
LISTENED = 10.0  # seconds from "1" to "9": the message's date and time, then the message
WINDOW = 4000  # 0.5 s at 8 kHz


def _summaries(phone: Baresip) -> list[tuple[str, dict[str, str]]]:
    """The message summaries the phone printed, in order: (its AOR, the body's fields)."""
    found = []
    for aor, body in SUMMARY.findall(phone.output):
        fields = (line.split(":", 1) for line in body.splitlines() if ":" in line)
        found.append((aor, {name.strip(): value.strip() for name, value in fields}))
    return found


def _wait_summary(phone: Baresip, waiting: str, timeout: float = 10.0) -> None:
    """Wait until the phone printed a whole message summary saying ``Messages-Waiting:
    waiting`` (its body ends with an empty line)."""
    phone.wait_for(rf"Messages-Waiting: {waiting}(?:\r*\n[^\r\n]+)*\r*\n\r*\n", timeout)


def _recording_started(server: ServerProcess, timeout: float = 15.0) -> None:
    """Wait until the box records (its message is written to a ``.part`` file meanwhile)."""
    box = server.data_dir / "voicemail" / BOX
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if box.is_dir() and any(box.glob(".*.part")):
            return
        time.sleep(0.05)
    raise AssertionError("the box never recorded:\n" + "\n".join(server.raw[-40:]))


def _leave_message(server: ServerProcess, phone: Baresip) -> None:
    """``phone`` calls 201 (forwarded to its box), talks ``SPOKEN`` s after the beep and
    hangs up."""
    phone.dial(f"sip:201@127.0.0.1:{server.port}")
    phone.wait_for("established", timeout=10)
    _recording_started(server)
    time.sleep(SPOKEN)
    phone.hang_up()
    phone.wait_for("closed", timeout=5)


def _listen_and_save(server: ServerProcess, phone: Baresip) -> None:
    """``phone`` dials *97, plays its new message (1), saves it (9) and hangs up once its
    MWI says nothing new is waiting."""
    phone.dial(f"sip:*97@127.0.0.1:{server.port}")
    phone.wait_for("established", timeout=10)
    time.sleep(1.0)
    phone.send_digits("1")
    time.sleep(LISTENED)
    phone.send_digits("9")
    _wait_summary(phone, "no")
    phone.hang_up()
    phone.wait_for("closed", timeout=5)


def _heard_tone(samples: npt.NDArray[np.int16], frequency: float) -> int:
    """How many 0.5 s windows of ``samples`` are loud and at ``frequency`` Hz."""
    windows = (samples[i : i + WINDOW] for i in range(0, len(samples) - WINDOW + 1, WINDOW))
    return sum(1 for w in windows if rms(w) > 300 and abs(dominant_frequency(w) - frequency) < 10)


def test_a_message_left_brings_an_mwi_notify_and_saving_it_from_the_box_another(
    tmp_path: Path,
) -> None:
    """201's baresip subscribes and is told 0/0; 202's baresip leaves a message in 201's box:
    201's is NOTIFYed 'Messages-Waiting: yes' with 1 new message (202's tone, its CDR names
    it and 201's forwarding to VM); 201 dials *97, hears the message after key 1, saves it
    with 9 and is NOTIFYed 'Messages-Waiting: no', 0 new 1 saved; its CDR has the keys."""
    services = {"201": {"forward_always": "VM"}}
    with (
        stopped_on_exit(group_server(tmp_path, services)) as server,
        Baresip(
            tmp_path / "p201",
            microphone(tmp_path, 440.0, 20.0),
            group_phone(server, "201", mwi=True),
        ) as a,
        Baresip(
            tmp_path / "p202", microphone(tmp_path, 600.0, 20.0), group_phone(server, "202")
        ) as b,
    ):
        a.wait_for("registered", timeout=5)
        b.wait_for("registered", timeout=5)
        _wait_summary(a, "no")
        _leave_message(server, b)
        _wait_summary(a, "yes")
        told = _summaries(a)
        [wav] = (server.data_dir / "voicemail" / BOX).glob("*.wav")
        message = read_wav(wav)
        _listen_and_save(server, a)
        subscribed = server.wait_for("mwi.subscribed")
    assert (subscribed["aor"], subscribed["expires"]) == (A, 600), subscribed
    waiting = [(fields["Messages-Waiting"], fields["Voice-Message"]) for _, fields in told]
    assert set(waiting[:-1]) == {("no", "0/0")} and waiting[-1] == ("yes", "1/0"), told
    aor, last = told[-1]
    assert aor.startswith(f"sip:{BOX}@") and last["Message-Account"].startswith(f"sip:{A}@")
    assert dominant_frequency(message) == pytest.approx(600.0, abs=10.0)
    _, after = _summaries(a)[-1]
    assert (after["Messages-Waiting"], after["Voice-Message"]) == ("no", "0/1"), after
    assert _heard_tone(a.received_audio(), 600.0) >= 2, "201 did not hear the message"
    records = exported_cdrs(server.data_dir)
    [left] = [r for r in records if r["subscriber"] == B]
    assert (left["voicemail_path"], left["disposition"]) == (str(wav), "ANSWERED"), left
    assert (left["diversion_reason"], left["diverted_from"]) == ("unconditional", A), left
    [box] = [r for r in records if r["subscriber"] == A]
    keys = [key for key in str(box["digits"]).split(",") if key]
    assert (box["called_raw"], keys) == ("*97", ["1", "9"]), box
    assert json.loads(wav.with_suffix(".json").read_text())["folder"] == "saved"
