"""Voicemail boxes end to end: a caller leaves a message (RTP audio) in a subscriber's box,
the subscriber's phone dials *97 and goes through it by RFC 4733 key presses, hearing the
counts, the message's date and time and the message itself; PIN access from another number;
the message mailed (aiosmtpd on loopback), MWI NOTIFYs to a subscribed SIPp and to a
registered phone that never subscribed, and the server's purge of old messages."""

from __future__ import annotations

import json
import time
import wave
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np
import pytest

from callserver.media import g711
from callserver.media.prompts import Play, SayNumber
from callserver.media.say import say_datetime
from tests.e2e.conftest import (
    HOST,
    SCENARIOS,
    ServerProcess,
    exported_cdrs,
    free_port,
    popen_sipp,
    start_server,
    stopped_on_exit,
)
from tests.e2e.rtp_party import RtpParty
from tests.e2e.subscribers import CALLING, PHONES, finished, phone, register_phone
from tests.e2e.voicemail_calls import (
    CALLER_FILL,
    call,
    heard,
    rendered,
    sipp_command,
    wait_fill,
    wait_heard,
    write_boxes,
)
from tests.voicemail.messages import write_message
from tests.voicemail.test_service import Inbox, smtp  # noqa: F401 (the SMTP server fixture)

BOX = "38733100201"
PIN = "2468"
ZONE = "Europe/Sarajevo"


def _server(tmp_path: Path, smtp_port: int | None = None) -> ServerProcess:
    """acme's phones 201 and 202 forwarded always to their boxes; 201's messages mailed."""
    write_boxes(tmp_path, email="reception@acme.example")
    relay = {"host": HOST, "port": smtp_port, "sender": "vm@op.example"} if smtp_port else {}
    settings = {"default_pin": PIN, "timezone": ZONE, "smtp": relay}
    return start_server(tmp_path, trunks=CALLING, voicemail=settings)


def _leave_message(sipp: str, tmp_path: Path, server: ServerProcess, number: str = BOX) -> Path:
    """A caller from the trunk calls ``number`` and talks for a few seconds after the beep;
    the message's JSON."""
    left = len(server.events("voicemail.message_left"))
    args = ("-s", number, "-key", "caller", "38761000000", "-d", "11000")
    with call(sipp, tmp_path, server, "uac-call-rtp-party.xml", *args):
        pass
    deadline = time.monotonic() + 20
    while len(server.events("voicemail.message_left")) <= left and time.monotonic() < deadline:
        time.sleep(0.05)
    found = sorted((server.data_dir / "voicemail" / number).glob("*Z-*.json"))
    assert found, "no message recorded:\n" + "\n".join(server.raw[-40:])
    return found[-1]


def _date_prompt(message: Path) -> bytes:
    """What the box says before the message: "Message received on" and its date and time."""
    began = datetime.fromisoformat(json.loads(message.read_text())["time"].replace("Z", "+00:00"))
    said = say_datetime(began.astimezone(ZoneInfo(ZONE)), "en")
    return rendered([Play("vm_message"), *map(Play, said)])


def _counts(new: int, saved: int) -> bytes:
    return rendered([Play("vm_new_count"), SayNumber(new)]), rendered(
        [Play("vm_saved_count"), SayNumber(saved)]
    )


def _as_phone(ext: str, dialled: str, server: ServerProcess, seconds: float) -> tuple[str, ...]:
    user = f"38733100{ext}"
    return (
        *("-s", dialled, "-key", "caller", user, "-au", user, "-ap", PHONES[ext]),
        *("-auth_uri", f"{dialled}@{HOST}:{server.port}", "-d", str(int(seconds * 1000))),
    )


@pytest.fixture
def relay(smtp: tuple[Inbox, int]) -> Iterator[tuple[Inbox, int]]:  # noqa: F811
    """The loopback SMTP server the voicemail settings name."""
    yield smtp


def test_a_message_left_is_mailed_then_heard_saved_and_deleted_from_the_phone(
    sipp: str, tmp_path: Path, relay: tuple[Inbox, int]
) -> None:
    """A caller's message lands in 201's box and is mailed with its WAV; 201 dials *97 and
    hears 1 new 0 saved, the message's date and time and its audio, saves it (9), hears
    0 new 1 saved, plays it again and deletes it (7): the box is empty. The CDRs: the
    caller's names the message, the phone's its menu keys."""
    inbox, port = relay
    with stopped_on_exit(_server(tmp_path, port)) as server:
        message = _leave_message(sipp, tmp_path, server)
        server.wait_for("voicemail.mailed", timeout=20)
        wav = message.with_suffix(".wav")
        [mail] = inbox.mails
        [attachment] = list(mail.iter_attachments())
        assert attachment.get_content() == wav.read_bytes()
        with call(
            sipp,
            tmp_path,
            server,
            "uac-phone-call-rtp-party.xml",
            *_as_phone("201", "*97", server, 60),
        ) as party:
            new, saved = _counts(1, 0)
            wait_heard(party, new, server)
            wait_heard(party, saved, server)
            party.press("1")
            wait_heard(party, _date_prompt(message), server)
            wait_fill(party, 50, server)  # a second of the caller's message
            party.press("9")
            wait_heard(party, rendered([Play("vm_saved")]), server)
            new, saved = _counts(0, 1)
            wait_heard(party, saved, server)
            party.press("1")
            wait_fill(party, 50, server)
            party.press("7")
            wait_heard(party, rendered([Play("vm_deleted")]), server)
            wait_heard(party, rendered([Play("vm_no_more")]), server)
        assert not wav.exists() and not message.exists()
    assert not list((server.data_dir / "voicemail" / BOX).glob("*Z-*.json"))
    records = exported_cdrs(server.data_dir)
    [left] = [r for r in records if r.get("voicemail_path")]
    assert left["voicemail_path"] == str(wav) and left["called_raw"] == BOX, left
    [listened] = [r for r in records if r.get("subscriber") == "+38733100201"]
    keys = [entry for entry in str(listened["digits"]).split(",") if entry]  # "": a silence
    assert keys == ["1", "9", "1", "7"] and listened["end_reason"] == "normal", listened


def test_a_greeting_recorded_from_the_phone_ends_on_hash_without_its_tone(
    sipp: str, tmp_path: Path
) -> None:
    """201 dials *97, 0, 1 and after the beep talks (the party's fill, never silent), then
    holds # for 200 ms with its tone in the audio beside the RFC 4733 events: the recording
    ends there (the greeting menu comes, though max_message is 120 s and the talk never went
    quiet), 1 keeps it, and greeting.wav holds the talk and not one sample of the tone."""
    with stopped_on_exit(_server(tmp_path)) as server:
        phone_call = _as_phone("201", "*97", server, 40)
        with call(sipp, tmp_path, server, "uac-phone-call-rtp-party.xml", *phone_call) as party:
            wait_heard(party, _counts(0, 0)[1], server)
            party.press("0")
            wait_heard(party, rendered([Play("vm_options")]), server)
            party.press("1")
            wait_heard(party, rendered([Play("vm_record_greeting"), Play("beep")]), server)
            time.sleep(2.0)  # the greeting: two seconds of talk
            party.hold_key("#", 10)
            wait_heard(party, rendered([Play("vm_greeting_menu")]), server, timeout=30)
            party.press("1")
            wait_heard(party, rendered([Play("vm_greeting_kept")]), server)
    with wave.open(str(server.data_dir / "voicemail" / BOX / "greeting.wav"), "rb") as wav:
        samples = np.frombuffer(wav.readframes(wav.getnframes()), dtype="<i2")
    talk = int(g711.decode("PCMU", bytes([CALLER_FILL]))[0])
    assert set(np.unique(samples).tolist()) <= {talk, 0}, np.unique(samples)
    assert np.count_nonzero(samples == talk) >= 8000  # at least a second of the talk


def test_a_caller_ends_its_message_with_hash_heard_in_band(sipp: str, tmp_path: Path) -> None:
    """A trunk caller that offers no telephone-event reaches 201's box (forwarded to VM),
    talks after the beep, then sends # as a tone in its audio: the server hears it in band,
    ends the message there and hangs up (the caller's scenario waits for that BYE, 30 s at
    most, and its talk never goes quiet), and the message holds the talk, not the tone."""
    with stopped_on_exit(_server(tmp_path)) as server:
        party = RtpParty(CALLER_FILL)
        answered = len(server.events("call.answered"))
        scenario = "uac-caller-hears-prompts-until-server-bye.xml"
        args = ("-s", BOX, "-key", "caller", "38761000000", "-set", "codec", "0")
        command = sipp_command(sipp, tmp_path, server, scenario, party, *args)
        proc = popen_sipp([*command, "-set", "rtp_port", str(party.port)], tmp_path)
        try:
            server.wait_for("call.answered")
            party.send_to(int(str(server.events("call.answered")[answered]["rtp_port"])))
            wait_heard(party, rendered([Play("beep")]), server)
            time.sleep(2.0)  # the message: two seconds of talk
            party.hold_key("#", 10)
            out, _ = proc.communicate(timeout=60)
        finally:
            if proc.poll() is None:
                proc.kill()
            party.close()
        assert proc.returncode == 0, out[-3000:] + "\n".join(server.raw[-40:])
        server.wait_for("voicemail.message_left")
    [message] = (server.data_dir / "voicemail" / BOX).glob("*Z-*.wav")
    with wave.open(str(message), "rb") as wav:
        samples = np.frombuffer(wav.readframes(wav.getnframes()), dtype="<i2")
    talk = int(g711.decode("PCMU", bytes([CALLER_FILL]))[0])
    assert set(np.unique(samples).tolist()) <= {talk, 0}, np.unique(samples)
    assert np.count_nonzero(samples == talk) >= 8000  # at least a second of the talk


def test_4_goes_back_to_the_previous_message(sipp: str, tmp_path: Path) -> None:
    """A box holding two messages (pinned dates): 201 dials *97, 1 plays the first after its
    date, 6 the second after its date, 4 the first again (its date heard a second time);
    the phone's CDR has the keys 1, 6, 4."""
    box = tmp_path / "var" / "voicemail" / BOX
    first = write_message(box, datetime(2999, 1, 1, 9, 0, tzinfo=UTC), call_id="first")
    second = write_message(box, datetime(2999, 1, 2, 10, 5, tzinfo=UTC), call_id="second")
    first_date, second_date = (
        _date_prompt(first.with_suffix(".json")),
        _date_prompt(second.with_suffix(".json")),
    )
    with stopped_on_exit(_server(tmp_path)) as server:
        phone_call = _as_phone("201", "*97", server, 40)
        with call(sipp, tmp_path, server, "uac-phone-call-rtp-party.xml", *phone_call) as party:
            wait_heard(party, _counts(2, 0)[1], server)
            party.press("1")
            wait_heard(party, first_date, server)
            party.press("6")
            wait_heard(party, second_date, server)
            party.press("4")
            deadline = time.monotonic() + 30
            while heard(party).count(first_date) < 2 and time.monotonic() < deadline:
                time.sleep(0.05)
            assert heard(party).count(first_date) == 2, "\n".join(server.raw[-40:])
    [listened] = [r for r in exported_cdrs(server.data_dir) if r.get("subscriber")]
    keys = [entry for entry in str(listened["digits"]).split(",") if entry]
    assert keys[:3] == ["1", "6", "4"], listened


def test_pin_access_from_another_number(sipp: str, tmp_path: Path) -> None:
    """Calling 201 from the trunk and pressing * in the greeting asks for the PIN; a wrong
    one is refused, the default PIN then opens the box and its counts are said."""
    with stopped_on_exit(_server(tmp_path)) as server:
        _leave_message(sipp, tmp_path, server)
        args = ("-s", BOX, "-key", "caller", "38761000000", "-d", "30000")
        with call(sipp, tmp_path, server, "uac-call-rtp-party.xml", *args) as party:
            time.sleep(1.0)
            party.press("*")
            wait_heard(party, rendered([Play("vm_enter_pin")]), server)
            for digit in "1111#":
                party.press(digit)
            wait_heard(party, rendered([Play("vm_wrong_pin")]), server)
            for digit in f"{PIN}#":
                party.press(digit)
            new, _ = _counts(1, 0)
            wait_heard(party, new, server)
        wrong = server.events("voicemail.pin_wrong")
        assert [line["box"] for line in wrong] == [BOX]


def test_mwi_notify_to_a_subscriber_and_unsolicited_to_a_registered_phone(
    sipp: str, tmp_path: Path
) -> None:
    """201 subscribes to message-summary (401, then 200 and a NOTIFY: none waiting); a
    message left for 201 brings a NOTIFY saying 1/0; 202 never subscribed but is registered:
    a message for 202 brings it an unsolicited NOTIFY saying 1/0."""
    with stopped_on_exit(_server(tmp_path)) as server:
        sub_port = free_port(both=False)
        subscriber = popen_sipp(
            [
                sipp,
                f"{HOST}:{server.port}",
                *("-sf", str(SCENARIOS / "uac-subscribe-message-summary.xml")),
                *("-i", HOST, "-p", str(sub_port), "-m", "1", "-nostdin"),
                *("-timeout", "60s", "-timeout_error", "-trace_msg", "-trace_err"),
                *("-message_file", str(tmp_path / "subscribe.messages")),
                *("-error_file", str(tmp_path / "subscribe.errors")),
                *("-key", "user", BOX, "-au", BOX, "-ap", PHONES["201"]),
                *("-auth_uri", f"{BOX}@{HOST}:{server.port}"),
            ],
            tmp_path,
        )
        server.wait_for("mwi.subscribed", timeout=20)
        _leave_message(sipp, tmp_path, server)
        subscriber.communicate(timeout=60)
        messages = (tmp_path / "subscribe.messages").read_text(errors="replace")
        assert subscriber.returncode == 0, messages[-4000:] + "\n".join(server.raw[-40:])
        other = "38733100202"
        port = register_phone(sipp, tmp_path, server, user=other, password=PHONES["202"])
        with phone(sipp, tmp_path, "uas-expects-message-summary-notify.xml", port) as notified:
            _leave_message(sipp, tmp_path, server, other)
            finished(notified, server)


def test_the_server_purges_messages_past_retention(tmp_path: Path) -> None:
    """Started with a box holding a message long past retention_days and one dated far
    ahead, the server's scheduled purge deletes the old one only (pinned dates, on either
    side of any day the test runs)."""
    write_boxes(tmp_path)
    box = tmp_path / "var" / "voicemail" / BOX
    old = write_message(box, datetime(2001, 1, 1, tzinfo=UTC), call_id="old")
    recent = write_message(box, datetime(2999, 1, 1, tzinfo=UTC), call_id="recent")
    settings = {"retention_days": 7, "purge_interval": 3600}
    with stopped_on_exit(start_server(tmp_path, trunks=CALLING, voicemail=settings)) as server:
        purged = server.wait_for("voicemail.purged", timeout=20)
    assert (purged["box"], purged["messages"]) == (BOX, 1)
    assert not old.exists() and not old.with_suffix(".json").exists()
    assert recent.exists()
