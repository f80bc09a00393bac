"""Tests for the voicemail facade: new messages mailed through a real SMTP server, the purge."""

from __future__ import annotations

import asyncio
import email
import email.policy
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import MappingProxyType

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.handlers import Message as MessageHandler

from callserver.config.centrex import Subscriber
from callserver.config.voicemail import SmtpSettings, VoicemailSettings
from callserver.media.prompts import Play
from callserver.policy.caller import CallerId
from callserver.voicemail.box import Summary
from callserver.voicemail.service import Voicemail
from tests.dialplan.fakes import FakeCall
from tests.e2e.conftest import free_port
from tests.voicemail.messages import write_message

T0 = datetime(2026, 12, 7, 9, 30, tzinfo=UTC)
NUMBER = "+38733100201"
SILENT = (None, None, None)


class Inbox(MessageHandler):
    """Keeps every mail the SMTP server accepts."""

    def __init__(self) -> None:
        super().__init__()
        self.mails: list[email.message.EmailMessage] = []

    def handle_message(self, message: email.message.Message) -> None:
        """Parse again with the modern policy and keep it."""
        parsed = email.message_from_bytes(message.as_bytes(), policy=email.policy.default)
        assert isinstance(parsed, email.message.EmailMessage)
        self.mails.append(parsed)


@pytest.fixture
def smtp() -> Iterator[tuple[Inbox, int]]:
    """An aiosmtpd server on a free loopback port."""
    inbox = Inbox()
    port = free_port(both=False)
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield inbox, port
    finally:
        controller.stop()


def subscriber(email_address: str | None) -> Subscriber:
    """A phone of a group, with or without a mail address."""
    return Subscriber(
        number=NUMBER,
        group="acme-office",
        extension="201",
        name=None,
        username="38733100201",
        realm="callserver",
        ha1=MappingProxyType({"MD5": "0" * 32}),
        barring=(),
        clir=False,
        max_contacts=None,
        email=email_address,
    )


def service(
    root: Path, settings: VoicemailSettings, phone: Subscriber, access_code: str = "*97"
) -> Voicemail:
    """The facade over ``root`` with the clock pinned to T0."""
    return Voicemail(
        root=lambda: root,
        settings=lambda: settings,
        subscriber=lambda n: phone if n.lstrip("+") == NUMBER.lstrip("+") else None,
        default_language=lambda: "en",
        clock=lambda: T0,
        access_code=lambda: access_code,
    )


async def test_a_new_message_is_mailed_with_its_wav(
    tmp_path: Path, smtp: tuple[Inbox, int]
) -> None:
    """The call's message reaches the subscriber's address through the relay, WAV attached,
    and the box is reported changed."""
    inbox, port = smtp
    settings = VoicemailSettings(
        smtp=SmtpSettings(host="127.0.0.1", port=port, sender="vm@op.example")
    )
    facade = service(tmp_path, settings, subscriber("reception@acme.example"))
    changed: list[str] = []
    facade.changed = changed.append
    wav = write_message(tmp_path / "38733100201", T0, caller="38761555111", call_id="call-1")
    write_message(tmp_path / "38733100201", T0 - timedelta(hours=1), call_id="earlier")
    await facade.message_left(subscriber("reception@acme.example"), "call-1")
    assert changed == [NUMBER]
    assert len(inbox.mails) == 1
    mail = inbox.mails[0]
    assert (mail["To"], mail["From"]) == ("reception@acme.example", "vm@op.example")
    assert "38761555111" in mail["Subject"]
    body = mail.get_body(preferencelist=("plain",))
    assert body is not None and "Monday 07 December 2026 10:30" in body.get_content()
    attachments = list(mail.iter_attachments())
    assert [a.get_filename() for a in attachments] == [wav.name]
    assert attachments[0].get_content_type() == "audio/wav"
    assert attachments[0].get_content() == wav.read_bytes()


async def test_no_relay_or_no_address_sends_nothing(
    tmp_path: Path, smtp: tuple[Inbox, int]
) -> None:
    """Without an address, or without a relay, the box still changes but no mail goes."""
    inbox, port = smtp
    write_message(tmp_path / "38733100201", T0, call_id="call-1")
    relay = VoicemailSettings(smtp=SmtpSettings(host="127.0.0.1", port=port))
    await service(tmp_path, relay, subscriber(None)).message_left(subscriber(None), "call-1")
    phone = subscriber("a@b.example")
    await service(tmp_path, VoicemailSettings(), phone).message_left(phone, "call-1")
    assert inbox.mails == []


async def test_a_refusing_relay_is_logged_and_the_message_kept(tmp_path: Path) -> None:
    """A relay that cannot be reached loses nothing: the message stays in the box."""
    port = free_port(both=False)  # nobody listens
    settings = VoicemailSettings(smtp=SmtpSettings(host="127.0.0.1", port=port, timeout=2))
    phone = subscriber("a@b.example")
    write_message(tmp_path / "38733100201", T0, call_id="call-1")
    facade = service(tmp_path, settings, phone)
    await facade.message_left(phone, "call-1")
    assert await facade.summary(NUMBER) == Summary(new=1, saved=0)


async def test_purge_with_a_pinned_clock(tmp_path: Path) -> None:
    """The purge deletes the messages past retention_days at the given time, in every
    subscriber's box (not in a dialplan's mailbox), and reports each box that lost some."""
    settings = VoicemailSettings(retention_days=7)
    facade = service(tmp_path, settings, subscriber(None))
    changed: list[str] = []
    facade.changed = changed.append
    write_message(tmp_path / "38733100201", T0 - timedelta(days=8), call_id="old")
    write_message(tmp_path / "38733100201", T0 - timedelta(days=6), call_id="new")
    write_message(tmp_path / "38733100202", T0 - timedelta(days=1), call_id="kept")
    office = write_message(tmp_path / "office", T0 - timedelta(days=90), call_id="plan's")
    assert await facade.purge(T0) == 1
    assert office.exists()  # a dialplan's mailbox is not a subscriber's box
    assert changed == ["38733100201"]
    assert await facade.summary(NUMBER) == Summary(new=1, saved=0)
    assert await facade.purge(T0 + timedelta(days=2)) == 1


async def test_scheduled_purges_run_until_stopped(tmp_path: Path) -> None:
    """run_purges purges at once with the injected clock and ends when asked."""
    facade = service(tmp_path, VoicemailSettings(retention_days=1), subscriber(None))
    write_message(tmp_path / "38733100201", T0 - timedelta(days=2), call_id="old")
    stop = asyncio.Event()
    purged = asyncio.Event()
    facade.changed = lambda number: purged.set()
    task = asyncio.create_task(facade.run_purges(stop))
    await asyncio.wait_for(purged.wait(), 10)
    assert await facade.summary(NUMBER) == Summary(new=0, saved=0)
    stop.set()
    await asyncio.wait_for(task, 5)


def listening(tmp_path: Path) -> Voicemail:
    """The facade with a default PIN."""
    return service(tmp_path, VoicemailSettings(default_pin="2468"), subscriber(None))


async def test_star_97_from_the_own_phone_needs_no_pin(tmp_path: Path) -> None:
    """*97 of a call authenticated as the subscriber's phone opens the box at once, in the
    subscriber's language, and ends with BYE."""
    call = FakeCall([*SILENT], caller=CallerId(raw=NUMBER, e164=NUMBER), called="*97")
    call.originating, call.subscriber = True, NUMBER  # authenticated as the phone
    work = listening(tmp_path).route(call)  # type: ignore[arg-type]
    assert work is not None
    await work
    played = [i.name for p in call.played for i in p.items if isinstance(i, Play)]
    assert played[0] == "vm_new_count" and "vm_enter_pin" not in played
    assert call.hangups[0].reason == "normal"


async def test_the_access_code_is_the_one_in_force(tmp_path: Path) -> None:
    """With the box's code changed to *55 (centrex.yaml's service_codes), *55 opens the box
    and *97 is left to the rest of the routing."""
    facade = service(tmp_path, VoicemailSettings(), subscriber(None), access_code="*55")
    call = FakeCall([*SILENT], caller=CallerId(raw=NUMBER, e164=NUMBER), called="*97")
    call.originating, call.subscriber = True, NUMBER
    assert facade.route(call) is None  # type: ignore[arg-type]
    call.called = "*55"
    work = facade.route(call)  # type: ignore[arg-type]
    assert work is not None
    await work
    assert call.hangups[0].reason == "normal"


async def test_star_97_presenting_the_number_from_a_trunk_asks_the_pin(tmp_path: Path) -> None:
    """*97 from a call that presents the subscriber's number without having authenticated as
    its phone (a PBX trunk) is asked the PIN; a wrong one three times opens nothing."""
    keys = [*"1111#", *"1111#", *"1111#"]
    call = FakeCall(keys, caller=CallerId(raw=NUMBER, e164=NUMBER), called="*97")
    call.originating, call.subscriber = True, None  # a trunk's call
    work = listening(tmp_path).route(call)  # type: ignore[arg-type]
    assert work is not None
    await work
    played = [i.name for p in call.played for i in p.items if isinstance(i, Play)]
    assert played.count("vm_wrong_pin") == 3 and "vm_new_count" not in played


async def test_other_calls_are_not_the_boxes(tmp_path: Path) -> None:
    """*97 not from a customer, or from a number that is no subscriber's, and calls to a
    subscriber without forwarding to VM, are left to the rest of the routing."""
    facade = listening(tmp_path)
    trunk = FakeCall([], caller=CallerId(raw=NUMBER, e164=NUMBER), called="*97")
    trunk.originating = False
    stranger = FakeCall([], caller=CallerId(raw="38761555111", e164="+38761555111"), called="*97")
    stranger.originating = True
    plain = FakeCall([], called=NUMBER)
    plain.originating = False
    for call in (trunk, stranger, plain):
        assert facade.route(call) is None  # type: ignore[arg-type]


async def test_a_diversion_to_vm_leaves_a_message_in_the_subscribers_box(tmp_path: Path) -> None:
    """leave (forwarding's VM target) plays the box's greeting and beep, records into the
    subscriber's box, hangs up and reports the box changed."""
    facade = service(tmp_path, VoicemailSettings(), subscriber(None))
    changed: list[str] = []
    reported = asyncio.Event()

    def box_changed(number: str) -> None:
        changed.append(number)
        reported.set()

    facade.changed = box_changed
    call = FakeCall([], recording_path=str(tmp_path / "m.wav"))
    call.call_id = "diverted-1"
    await facade.leave(call, "38733100201")  # type: ignore[arg-type]
    await asyncio.wait_for(reported.wait(), 10)  # told by the task after the message
    assert [r.mailbox for r in call.recordings] == ["38733100201"]
    assert call.hangups[0].reason == "normal" and changed == [NUMBER]


async def test_a_mailbox_of_no_subscriber_records_as_the_dialplan_step(tmp_path: Path) -> None:
    """A mailbox no subscriber owns gets the voicemail step's greeting, beep and recording."""
    facade = service(tmp_path, VoicemailSettings(), subscriber(None))
    call = FakeCall([], recording_path=str(tmp_path / "m.wav"))
    await facade.leave(call, "office")  # type: ignore[arg-type]
    assert [r.mailbox for r in call.recordings] == ["office"] and call.hangups == []
