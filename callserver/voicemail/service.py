"""The voicemail boxes in the running server: the one facade the rest of the server calls.

Theory of operation
-------------------
- ``route`` (a ``dialplan.routing.Routing`` hook, like the phones'): a subscriber's phone
  dialling ``*97`` opens its own box without a PIN (``menu.box_menu``), in the subscriber's
  language; a ``*97`` call that did not authenticate as that phone (a PBX trunk presenting
  the number) is asked the PIN first.
- ``leave(session, mailbox)``, what a diversion to ``VM`` runs (``calls.forwarding``), is
  ``deposit(session, subscriber)`` (``menu.deposit``): the box's greeting, ``*`` and the PIN
  for its owner, else a message recorded into the box.
- After a message is left, one is saved or deleted, or the box was visited,
  ``changed(number)`` (MWI: ``mwi.Mwi``) is told, and each new message of the call is
  mailed to the subscriber's ``email`` through the operator's relay (``mail``; smtplib in a
  worker thread). A failed mail is logged and not retried; the message stays in the box.
- ``purge(now)``: every subscriber's box's messages older than ``voicemail.retention_days``
  are deleted (the dialplans' own mailboxes are not touched); ``run_purges`` does it every
  ``voicemail.purge_interval`` seconds.

Boxes are ``<data_dir>/voicemail/<number>/`` (``box.Mailbox``); their files are touched
only off the event loop.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Coroutine
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import structlog

from callserver.calls.session import CallSession
from callserver.config.centrex import Subscriber
from callserver.config.settings import Settings
from callserver.config.voicemail import VoicemailSettings
from callserver.dialplan.verbs.voicemail import leave_message
from callserver.policy.service_codes import ServiceCodes
from callserver.voicemail.box import Mailbox, Message, Summary, hash_pin
from callserver.voicemail.mail import message_mail, send_mail
from callserver.voicemail.menu import BoxCall, box_menu, deposit, login

__all__ = ["Voicemail"]

log = structlog.get_logger("callserver.voicemail")


class Voicemail:
    """The subscribers' boxes; see the module docstring.

    Args:
        root: ``<data_dir>/voicemail`` in force.
        settings: the ``voicemail`` section in force.
        subscriber: the subscriber of a number (with or without ``+``), or None.
        default_language: the server's prompt language in force.
        clock: the wall clock, UTC and aware (tests pin it).
    """

    def __init__(
        self,
        *,
        root: Callable[[], Path],
        settings: Callable[[], VoicemailSettings],
        subscriber: Callable[[str], Subscriber | None],
        default_language: Callable[[], str],
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        access_code: Callable[[], str] = lambda: "*" + ServiceCodes().voicemail,
    ) -> None:
        self._root, self._settings, self._subscriber = root, settings, subscriber
        self._access_code = access_code  # *97 unless centrex.yaml's service_codes says otherwise
        self._default_language, self._clock = default_language, clock
        self.changed: Callable[[str], None] = lambda number: None  # MWI's, wired by the app
        self._pin: tuple[str | None, str | None] = (None, None)  # default PIN and its hash
        self._tasks: set[asyncio.Task[None]] = set()

    @classmethod
    def of(
        cls,
        settings: Callable[[], Settings],
        subscriber: Callable[[str], Subscriber | None],
        access_code: Callable[[], str],
    ) -> Voicemail:
        """The boxes of the running server: its data dir, sections, language and code in force."""
        return cls(
            root=lambda: settings().data_dir / "voicemail",
            settings=lambda: settings().voicemail,
            subscriber=subscriber,
            default_language=lambda: settings().media.default_language,
            access_code=access_code,
        )

    def box(self, number: str) -> Mailbox:
        """The box of the subscriber ``number`` (E.164, with or without ``+``)."""
        return Mailbox(self._root() / number.lstrip("+"))

    async def summary(self, number: str) -> Summary:
        """How many new and saved messages the box ``number`` holds (read off the loop)."""
        return await asyncio.to_thread(self.box(number).summary)

    def route(self, session: CallSession) -> Awaitable[None] | None:
        """``*97`` from a subscriber's phone; None for any other call."""
        called = session.called
        if called[:1] == "*" and session.originating and called == self._access_code():
            owner = self._subscriber(session.caller.e164 or session.caller.raw)
            return None if owner is None else self.listen(session, owner)
        return None

    async def leave(self, session: CallSession, mailbox: str) -> None:
        """A call diverted to ``VM`` (``calls.forwarding``'s voicemail): the caller's message
        into the box ``mailbox`` (its subscriber's number digits), as ``deposit``. A mailbox
        of no subscriber (none diverts there) records as the dialplan's ``voicemail`` step."""
        subscriber = self._subscriber(mailbox)
        if subscriber is None:
            await leave_message(session, mailbox)
            return
        await self.deposit(session, subscriber)

    async def listen(self, session: CallSession, subscriber: Subscriber) -> None:
        """The owner's box menu, then the hang-up. The PIN is asked unless the call came
        from the subscriber's own phone, authenticated as it (a PBX trunk of the customer may
        present the subscriber's number too)."""
        session.language = subscriber.language or self._default_language()
        session.note("voicemail_box", subscriber.number)
        box = self._box_call(subscriber)
        try:
            if session.subscriber == subscriber.number or await login(session, box):
                await box_menu(session, box)
        finally:
            self.changed(subscriber.number)
        await session.hangup(code=None, cause=None, reason="normal")

    async def deposit(self, session: CallSession, subscriber: Subscriber) -> None:
        """A message into ``subscriber``'s box (a forward to ``VM``), then the hang-up."""
        session.language = subscriber.language or self._default_language()
        session.note("voicemail_box", subscriber.number)
        try:
            await deposit(session, self._box_call(subscriber))
        finally:
            self._left(subscriber, session.call_id)  # also when the caller hung up to end it
        await session.hangup(code=None, cause=None, reason="normal")

    def _box_call(self, subscriber: Subscriber) -> BoxCall:
        settings = self._settings()
        return BoxCall(
            box=self.box(subscriber.number),
            zone=ZoneInfo(settings.timezone),
            default_pin=self._default_pin(settings.default_pin),
            max_message=settings.max_message,
            changed=lambda: self.changed(subscriber.number),
        )

    def _default_pin(self, pin: str | None) -> str | None:
        if self._pin[0] != pin:
            self._pin = (pin, None if pin is None else hash_pin(pin))
        return self._pin[1]

    def _left(self, subscriber: Subscriber, call_id: str) -> None:
        self._spawn(self.message_left(subscriber, call_id))

    async def message_left(self, subscriber: Subscriber, call_id: str) -> None:
        """A call ``call_id`` left messages in ``subscriber``'s box: MWI for the box, and
        each of them mailed to the subscriber's address (when it has one and a relay is set)."""
        self.changed(subscriber.number)
        box = self.box(subscriber.number)
        left = [m for m in await asyncio.to_thread(box.messages) if m.call_id == call_id]
        log.info("voicemail.message_left", box=box.number, call_id=call_id, messages=len(left))
        smtp = self._settings().smtp
        if subscriber.email is None or smtp.host is None:
            return
        for message in left:
            try:
                await asyncio.to_thread(self._mail, subscriber, box, message)
            except (OSError, ValueError) as exc:  # smtplib's errors are OSErrors
                log.error(
                    "voicemail.mail_failed", box=box.number, to=subscriber.email, error=str(exc)
                )
            else:
                log.info(
                    "voicemail.mailed", box=box.number, to=subscriber.email, message=message.name
                )

    def _mail(self, subscriber: Subscriber, box: Mailbox, message: Message) -> None:
        assert subscriber.email is not None
        settings = self._settings()
        mail = message_mail(
            message,
            box=box.number,
            to=subscriber.email,
            sender=settings.smtp.sender,
            zone=ZoneInfo(settings.timezone),
            now=self._clock(),
        )
        send_mail(settings.smtp, mail)

    async def purge(self, now: datetime) -> int:
        """Delete every subscriber's box's messages older than the retention at ``now``; how
        many. The mailboxes of dialplans' ``voicemail`` steps (named by the plan, not by a
        subscriber's number) are the operator's and are left alone."""
        retention = timedelta(days=self._settings().retention_days)
        root = self._root()
        folders = await asyncio.to_thread(lambda: sorted(p for p in root.glob("*") if p.is_dir()))
        removed = 0
        for folder in (f for f in folders if self._subscriber(f.name) is not None):
            gone = await asyncio.to_thread(Mailbox(folder).purge, now, retention)
            if gone:
                removed += len(gone)
                log.info("voicemail.purged", box=folder.name, messages=len(gone))
                self.changed(folder.name)
        return removed

    async def run_purges(self, stop: asyncio.Event) -> None:
        """``purge`` every ``purge_interval`` seconds until ``stop`` is set."""
        while not stop.is_set():
            try:
                await self.purge(self._clock())
            except OSError as exc:
                log.error("voicemail.purge_failed", error=str(exc))
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self._settings().purge_interval):
                    await stop.wait()

    def _spawn(self, work: Coroutine[None, None, None]) -> None:
        task = asyncio.get_running_loop().create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
