"""Message waiting indication in the running server: SUBSCRIBE and NOTIFY (RFC 3842, RFC 6665).

Theory of operation
-------------------
The call manager hands every SUBSCRIBE here (``handle``). One out of dialog must name
``Event: message-summary`` (else 489 with ``Allow-Events``, RFC 6665 §4.2.1.1) and a box:
the To URI's user is a subscriber's number. It is authenticated like a REGISTER, by the
registrar's digest (``authorize``: the same nonces, lockout and HA1 values; a phone may
watch only its own box, and a number that is no box is challenged and refused alike, so
boxes cannot be told from other numbers) and then answered 200 with our To tag,
``Expires`` (asked, else ``voicemail.mwi_expires``, at most that; under 60 s: 423 with
``Min-Expires``) and a Contact, and gets its first NOTIFY at once (§4.2.1.2). A SUBSCRIBE
inside the dialog (same Call-ID and tags, from the flow's host, a higher CSeq: else 403,
500) refreshes it, or with ``Expires: 0`` ends it (NOTIFY ``terminated``); one of no known
dialog gets 481.

``box_changed(number)`` sends a NOTIFY in every subscription to the box; when none
watches it, an unsolicited NOTIFY goes to each registered contact of the subscriber (out of
dialog, as phones that never subscribe expect it). Bodies are RFC 3842 §5.2 summaries.

The subscriptions are one ``SubscriptionTable``; each change is written off the loop (one
worker thread) to ``<data_dir>/mwi.sqlite``, so a restart keeps the UDP ones. Expiry runs on
one ``process.alarm.Alarm`` at the earliest deadline: an expired subscription gets a last NOTIFY
``terminated;reason=timeout`` (§4.2.2). A NOTIFY answered 481 or not at all ends its
subscription (§4.1.3).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import replace

import structlog

from callserver.calls.registration import Registration
from callserver.calls.screening import Screening
from callserver.config.centrex import Subscriber
from callserver.config.settings import Settings
from callserver.process.alarm import Alarm
from callserver.registrar.binding import Binding
from callserver.registrar.contacts import RegisterRejected
from callserver.sip.endpoint import SipEndpoint
from callserver.sip.events import RequestReceived, ResponseReceived, SipEvent, TransactionTimedOut
from callserver.sip.headers import parse_address
from callserver.sip.ids import new_tag
from callserver.sip.message import Request
from callserver.sip.transaction_key import TransactionKey
from callserver.voicemail.box import Summary
from callserver.voicemail.service import Voicemail
from callserver.voicemail.subscription_store import SubscriptionStore
from callserver.voicemail.subscriptions import (
    EVENT,
    MEDIA_TYPE,
    Change,
    Changed,
    DialogKey,
    Subscription,
    SubscriptionTable,
    summary_body,
)

__all__ = ["MIN_EXPIRES", "Mwi"]

log = structlog.get_logger("callserver.mwi")

MIN_EXPIRES = 60  # s: a shorter subscription gets 423 (RFC 6665 §4.2.1.1)
Authorize = Callable[[Request, str, str, float], object]  # raises RegisterRejected
Respond = Callable[..., None]
Source = Callable[[RequestReceived, float], tuple[str, int] | None]


def _source_of_peer(event: RequestReceived, now: float) -> tuple[str, int] | None:
    """The address a request came from: the caller's, when no SIP edge stands between."""
    return event.peer.host, event.peer.port


class Mwi:
    """SUBSCRIBE/NOTIFY for voicemail boxes; see the module docstring.

    Args:
        endpoint: answers the SUBSCRIBEs, sends the NOTIFYs.
        store: where subscriptions survive a restart (None: kept in memory only).
        authorize: the registrar's digest check of a request for an AOR from a host at now.
        respond: answers a request, holding it ``delay`` s when the lockout asks (screening).
        source: the caller's address of a request, None when refused for where it came from
            (screening's ``source_of``: behind a SIP edge, the address the edge names).
        subscriber: the subscriber of a number (the To user), or None.
        contacts: the usable bindings of an AOR at now (unsolicited NOTIFYs).
        summary: a box's counts, read off the loop.
        expires: the default and longest subscription, in seconds.
        loop: the event loop; ``wake`` pumps the endpoint after a NOTIFY sent from a task.
    """

    def __init__(
        self,
        *,
        endpoint: SipEndpoint,
        store: SubscriptionStore | None,
        authorize: Authorize,
        respond: Respond,
        source: Source = _source_of_peer,
        subscriber: Callable[[str], Subscriber | None],
        contacts: Callable[[str, float], list[Binding]],
        summary: Callable[[str], Awaitable[Summary]],
        expires: Callable[[], int],
        loop: asyncio.AbstractEventLoop,
        wake: Callable[[], None],
    ) -> None:
        self.endpoint, self.store = endpoint, store
        self._authorize, self._respond, self._source = authorize, respond, source
        self._subscriber, self._contacts, self._summary = subscriber, contacts, summary
        self._expires, self.loop, self.wake = expires, loop, wake
        self.table = SubscriptionTable()
        self._sent: dict[TransactionKey, DialogKey | None] = {}  # our NOTIFYs in flight
        self._writer = concurrent.futures.ThreadPoolExecutor(1, "mwi-store")
        self._alarm = Alarm(loop, self._expire)  # the earliest subscription's expiry
        self._tasks: set[asyncio.Task[None]] = set()
        if store is not None:
            self.table.restore(store.load(loop.time()))
        self._arm()

    @classmethod
    def open(
        cls,
        settings: Callable[[], Settings],
        registration: Registration,
        voicemail: Voicemail,
        subscriber: Callable[[str], Subscriber | None],
        *,
        screening: Screening,
        loop: asyncio.AbstractEventLoop,
        wake: Callable[[], None],
    ) -> Mwi:
        """The notifier of the running server: the registrar's digest and bindings, its
        subscriptions back from ``<data_dir>/mwi.sqlite``; told of every change of a box."""
        data_dir = settings().data_dir
        data_dir.mkdir(parents=True, exist_ok=True)
        mwi = cls(
            endpoint=registration.endpoint,
            store=SubscriptionStore(data_dir / "mwi.sqlite"),
            authorize=registration.registrar.digest.authorize,
            respond=screening.respond,
            source=screening.source_of,
            subscriber=subscriber,
            contacts=registration.lookup,
            summary=voicemail.summary,
            expires=lambda: settings().voicemail.mwi_expires,
            loop=loop,
            wake=wake,
        )
        voicemail.changed = mwi.box_changed
        return mwi

    # -- SUBSCRIBE ------------------------------------------------------------------------

    def handle(self, event: RequestReceived, now: float) -> None:
        """Answer one SUBSCRIBE (RFC 6665 §4.2.1); see the module docstring."""
        request, key = event.request, event.key
        if (request.headers.get("Event") or "").split(";")[0].strip().lower() != EVENT:
            self._respond(key, 489, now, headers=(("Allow-Events", EVENT),))
            return
        asked = _expires(request, self._expires())
        if asked is None:
            self._respond(key, 400, now)
        elif 0 < asked < MIN_EXPIRES:
            self._respond(key, 423, now, headers=(("Min-Expires", str(MIN_EXPIRES)),))
        elif request.to().tag is None:
            self._subscribe(event, min(asked, self._expires()), now)
        else:
            self._refresh(event, min(asked, self._expires()), now)

    def _subscribe(self, event: RequestReceived, expires: int, now: float) -> None:
        request = event.request
        user = getattr(request.to().uri, "user", None) or ""
        subscriber = self._subscriber(user)
        contact = request.headers.get("Contact")
        aor = user if subscriber is None else subscriber.number
        source = self._source(event, now)
        if source is None:  # behind the SIP edge, refused for where it came from
            return
        try:  # an unknown box is challenged and refused like a wrong password: no enumeration
            self._authorize(request, aor, source[0], now)
        except RegisterRejected as refused:
            self._respond(
                event.key, refused.status, now, headers=refused.headers, delay=refused.delay
            )
            return
        if subscriber is None or contact is None:
            self._respond(event.key, 404 if subscriber is None else 400, now)
            return
        tag = new_tag()
        subscription = Subscription(
            key=DialogKey(request.call_id(), tag, request.from_().tag or ""),
            aor=subscriber.number,
            local=str(request.to().with_tag(tag)),
            remote=str(request.from_()),
            target=str(parse_address(contact).uri),
            route=tuple(request.headers.get_all("Record-Route")),
            peer=event.peer,
            expires=now + expires,
            remote_cseq=request.cseq().seq,
        )
        self._accept(event, subscription, expires, now)
        if expires == 0:  # a fetch: one NOTIFY of the state, then the end
            self._notify_later(subscription, terminated=True)
            return
        self._changed([self.table.apply(subscription, Change.SUBSCRIBED)], now)
        log.info("mwi.subscribed", aor=subscriber.number, source=source[0], expires=expires)
        self._notify_later(subscription)

    def _refresh(self, event: RequestReceived, expires: int, now: float) -> None:
        request = event.request
        key = DialogKey(request.call_id(), request.to().tag or "", request.from_().tag or "")
        current = self.table.get(key)
        if current is None:
            self._respond(event.key, 481, now)
            return
        if event.peer.host != current.peer.host:
            self._respond(event.key, 403, now)
            return
        cseq = request.cseq().seq
        if cseq <= current.remote_cseq:  # RFC 3261 §12.2.2: out of order
            self._respond(event.key, 500, now)
            return
        refreshed = replace(current, expires=now + expires, peer=event.peer, remote_cseq=cseq)
        self._accept(event, refreshed, expires, now)
        change = Change.UNSUBSCRIBED if expires == 0 else Change.REFRESHED
        self._changed([self.table.apply(refreshed, change)], now)
        self._notify_later(refreshed, terminated=expires == 0)

    def _accept(
        self, event: RequestReceived, subscription: Subscription, expires: int, now: float
    ) -> None:
        contact = self.endpoint.config.contact(event.peer.transport)
        headers = (("Expires", str(expires)), ("Contact", contact))
        self.endpoint.respond(
            event.key, 200, now, headers=headers, to_tag=subscription.key.local_tag
        )

    # -- NOTIFY ---------------------------------------------------------------------------

    def box_changed(self, number: str) -> None:
        """The box ``number`` changed: NOTIFY its watchers, else its phones unsolicited."""
        task = self.loop.create_task(self._box_changed(number))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _box_changed(self, number: str) -> None:
        owner = self._subscriber(number)
        number = number if owner is None else owner.number  # as the subscriptions name it
        summary = await self._summary(number)
        watching = self.table.watching(number)
        now = self.loop.time()
        for subscription in watching:
            self._notify(subscription, summary, now)
        if not watching:
            for binding in self._contacts(number, now):
                self._unsolicited(number, binding, summary, now)
        self.wake()

    def _notify_later(self, subscription: Subscription, *, terminated: bool = False) -> None:
        async def send() -> None:
            summary = await self._summary(subscription.aor)
            self._notify(subscription, summary, self.loop.time(), terminated=terminated)
            self.wake()

        task = self.loop.create_task(send())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _notify(
        self, subscription: Subscription, summary: Summary, now: float, *, terminated: bool = False
    ) -> None:
        """A NOTIFY in the subscription's dialog (RFC 6665 §4.2.1.2, RFC 3261 §12.2.1.1)."""
        advanced = self.table.next_cseq(subscription.key)
        sent = advanced or replace(subscription, cseq=subscription.cseq + 1)
        left = max(0, round(sent.expires - now))
        state = "terminated;reason=timeout" if terminated or left == 0 else f"active;expires={left}"
        key = self.endpoint.uac.request(
            "NOTIFY",
            parse_address(f"<{sent.target}>").uri,
            from_addr=parse_address(sent.local),
            to_addr=parse_address(sent.remote),
            peer=sent.peer,
            now=now,
            headers=(
                *(("Route", hop) for hop in sent.route),
                ("Event", EVENT),
                ("Subscription-State", state),
                ("Contact", self.endpoint.config.contact(sent.peer.transport)),
                ("Content-Type", MEDIA_TYPE),
            ),
            body=summary_body(
                summary.new, summary.saved, f"sip:{sent.aor}@{self.endpoint.config.sent_by()}"
            ),
            call_id=sent.key.call_id,
            cseq=sent.cseq,
        )
        self._sent[key] = None if terminated or advanced is None else sent.key
        if advanced is not None:
            self._changed([Changed(subscription=advanced, change=Change.REFRESHED)], now)

    def _unsolicited(self, number: str, binding: Binding, summary: Summary, now: float) -> None:
        """An out-of-dialog NOTIFY to a phone that did not subscribe."""
        account = f"sip:{number}@{self.endpoint.config.sent_by()}"
        contact = parse_address(f"<{binding.contact}>")
        key = self.endpoint.uac.request(
            "NOTIFY",
            contact.uri,
            from_addr=parse_address(f"<{account}>"),
            to_addr=parse_address(f"<sip:{number}@{self.endpoint.config.sent_by()}>"),
            peer=binding.flow,
            now=now,
            headers=(
                *(("Route", hop) for hop in binding.path),
                ("Event", EVENT),
                ("Subscription-State", "active"),
                ("Content-Type", MEDIA_TYPE),
            ),
            body=summary_body(summary.new, summary.saved, account),
        )
        self._sent[key] = None

    def handle_event(self, event: SipEvent, now: float) -> bool:
        """Take the outcome of a NOTIFY of ours; False for any other event."""
        if isinstance(event, ResponseReceived) and event.key in self._sent:
            if event.response.status < 200:
                return True
            dialog = self._sent.pop(event.key)
            if event.response.status == 481 and dialog is not None:
                self._gone(dialog, now)
            return True
        if isinstance(event, TransactionTimedOut) and event.key in self._sent:
            dialog = self._sent.pop(event.key)
            if dialog is not None:
                self._gone(dialog, now)
            return True
        return False

    def _gone(self, key: DialogKey, now: float) -> None:
        current = self.table.get(key)
        if current is not None:
            log.info("mwi.unreachable", aor=current.aor, source=current.peer.host)
            self._changed([self.table.apply(current, Change.UNREACHABLE)], now)

    # -- expiry and the store ---------------------------------------------------------------

    def _changed(self, changes: Sequence[Changed], now: float) -> None:
        if self.store is not None and changes:
            written = self._writer.submit(self.store.apply, list(changes), now)
            written.add_done_callback(_log_failure)
        self._arm()

    def _arm(self) -> None:
        self._alarm.arm(self.table.get_timer())

    def _expire(self, deadline: float) -> None:
        now = max(deadline, self.loop.time())
        expired = self.table.expired(now)
        for changed in expired:
            log.info("mwi.expired", aor=changed.subscription.aor)
            self._notify_later(changed.subscription, terminated=True)
        self._changed(expired, now)

    async def close(self) -> None:
        """Stop the timer, write what is pending and close the store."""
        self._alarm.cancel()
        for task in list(self._tasks):
            task.cancel()
        if self.store is not None:
            await asyncio.wrap_future(self._writer.submit(self.store.close))
        self._writer.shutdown(wait=True)


def _expires(request: Request, default: int) -> int | None:
    value = request.headers.get("Expires")
    if value is None:
        return default
    value = value.strip()
    return int(value) if value.isdigit() and len(value) < 10 else None


def _log_failure(future: concurrent.futures.Future[None]) -> None:
    error = future.exception()
    if error is not None:
        log.error("mwi.store_failed", error=repr(error))
