"""REGISTER in the running server: the registrar's asyncio side (RFC 3261 §10.3).

Theory of operation
-------------------
The call manager hands every out-of-dialog REGISTER here. :class:`Registration` asks the
sans-IO :class:`callserver.registrar.registrar.Registrar` for the answer, sends it (held, like
a failed INVITE authentication, through :class:`Screening` when the lockout asks for a delay),
and passes the bindings that changed to the store.

Store writes never run on the event loop: changes are gathered for ``STORE_INTERVAL`` (0.1 s)
and written in one transaction by a single worker thread, in the order they happened (a SQLite
WAL checkpoint can take tens of milliseconds, which the media clock must not wait for). A
transaction and a wake of the worker per REGISTER would cost more than the REGISTER itself;
one per interval costs a few microseconds a binding. A crash loses at most the last interval's
changes, as a power loss loses the last transactions of the store: the phones register again.

Expiry is on time: one ``loop.call_at`` on the registrar's earliest deadline, re-armed after
each REGISTER and each expiry. A closed TCP connection (:meth:`Registration.stream_closed`)
makes its bindings unusable (RFC 5626 §4.2).

Several nodes (``cluster.redis``): the store is the shared one
(``cluster.bindings.RedisBindingStore``), opened and loaded before the registrar; it brings
the REGISTERs other nodes took to :meth:`Registration.changed_elsewhere`, which puts them in
the registrar and re-arms the timer. They are not stored again. Changes are gathered for its
shorter interval (``store_interval``), so another node sees a REGISTER within milliseconds.

Qualify (``registrar.qualify`` seconds, 0 off): the same timer takes the bindings due an
OPTIONS (RFC 3261 §11) from the registrar and sends each one through the UAC core on the
binding's flow, to its contact, with its Path as the Route set (RFC 3327 §5.3).
:meth:`Registration.handle_event` takes the outcome (any final response, or Timer F) of those
OPTIONS back to the registrar; the changes it makes are stored and logged
(``registrar.binding_unreachable``, ``registrar.binding_reachable``).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
from collections.abc import Callable, Sequence

import structlog

from callserver.calls.authentication import DigestAuthenticator
from callserver.calls.screening import Screening
from callserver.config.centrex import Subscriber
from callserver.config.settings import Settings
from callserver.process.alarm import Alarm
from callserver.registrar.accounts import Account, Accounts
from callserver.registrar.binding import Binding, BindingChange, Changed
from callserver.registrar.contacts import ExpiryPolicy
from callserver.registrar.digest import RegisterDigest
from callserver.registrar.registrar import Registrar, ThrottlePolicy
from callserver.registrar.store import BindingStore, SqliteBindingStore
from callserver.sip.endpoint import SipEndpoint
from callserver.sip.events import (
    RequestReceived,
    ResponseReceived,
    SipEvent,
    TransactionTimedOut,
)
from callserver.sip.headers import parse_address
from callserver.sip.peer import Peer
from callserver.sip.transaction_key import TransactionKey

__all__ = ["STORE_INTERVAL", "Registration", "account_of"]

log = structlog.get_logger("callserver.registrar")

STORE_INTERVAL = 0.1  # s: the changes gathered this long are written in one transaction


class Registration:
    """Answers REGISTERs and keeps the store and the expiry timer; see the module docstring.

    Args:
        registrar: the sans-IO registrar, its bindings restored from ``store``.
        store: where bindings survive a restart (written from one worker thread).
        endpoint: answers the REGISTERs; ``screening`` holds the answers a lockout delays.
        loop: the event loop; ``wake`` pumps the endpoint after a timer sent OPTIONS.
        store_interval: how long changes are gathered before they are written.
    """

    def __init__(
        self,
        registrar: Registrar,
        store: BindingStore,
        *,
        endpoint: SipEndpoint,
        screening: Screening,
        loop: asyncio.AbstractEventLoop,
        wake: Callable[[], None],
        store_interval: float = STORE_INTERVAL,
    ) -> None:
        self.registrar = registrar
        self.store = store
        self.endpoint = endpoint
        self.screening = screening
        self.loop = loop
        self.wake = wake
        self._probes: dict[TransactionKey, Binding] = {}  # OPTIONS in flight, by handle
        self._writer = concurrent.futures.ThreadPoolExecutor(1, "registrar-store")
        self._pending: list[Changed] = []
        self._store_interval = store_interval
        self._flushing: asyncio.TimerHandle | None = None  # the gathered changes' write
        self._alarm = Alarm(loop, self._expire)  # the registrar's next deadline
        self._written: concurrent.futures.Future[None] | None = None

    @classmethod
    def open(
        cls,
        settings: Settings,
        accounts: Accounts,
        *,
        auth: DigestAuthenticator,
        endpoint: SipEndpoint,
        screening: Screening,
        loop: asyncio.AbstractEventLoop,
        wake: Callable[[], None],
        store: BindingStore | None = None,
        store_interval: float = STORE_INTERVAL,
    ) -> Registration:
        """The registrar of ``settings``, its bindings back from ``store`` (default:
        ``<data_dir>/registrar.sqlite``), its changes gathered ``store_interval`` seconds.

        It shares the trunks' realm, algorithms, nonces and lockout (``auth``), so failed
        authentications of REGISTERs and INVITEs count toward the same per-source and
        per-username limits.
        """
        digest = RegisterDigest(
            accounts,
            realm=auth.settings.realm,
            nonces=auth.nonces,
            lockout=auth.lockout,
            algorithms=tuple(auth.settings.algorithms),
        )
        registrar = Registrar(digest)
        if store is None:
            settings.data_dir.mkdir(parents=True, exist_ok=True)
            store = SqliteBindingStore(settings.data_dir / "registrar.sqlite")
        registrar.restore(store.load(loop.time()))
        _configure(registrar, settings, auth, loop.time())  # qualify books the restored ones
        registration = cls(
            registrar,
            store,
            endpoint=endpoint,
            screening=screening,
            loop=loop,
            wake=wake,
            store_interval=store_interval,
        )
        registration._arm(loop.time())
        return registration

    def update(self, settings: Settings, auth: DigestAuthenticator) -> None:
        """A reload: new expiry limits, REGISTER rate and qualify interval, the trunks' new
        realm and algorithms.

        Bindings and the nonces issued stay; the rate of an AOR already counting keeps its
        bucket until it is evicted; a new qualify interval starts counting now.
        """
        now = self.loop.time()
        _configure(self.registrar, settings, auth, now)
        self._arm(now)

    def handle(self, event: RequestReceived, now: float) -> None:
        """Answer one REGISTER (RFC 3261 §10.3) and keep what it changed."""
        source = self.screening.source_of(event, now)
        if source is None:  # behind the SIP edge, refused for where it came from
            return
        answer = self.registrar.register(event.request, event.peer, now, source=source[0])
        if answer.delay > 0:
            self.screening.respond(
                event.key, answer.status, now, headers=answer.headers, delay=answer.delay
            )
        else:
            self.endpoint.respond(
                event.key, answer.status, now, reason=answer.reason, headers=answer.headers
            )
        if answer.status == 200 and answer.changes:
            log.info(
                "registrar.bindings_changed",
                aor=answer.changes[0].binding.aor,
                changes=[c.change.value for c in answer.changes],
                source=source[0],
            )
        self._changed(answer.changes, now)

    def lookup(self, aor: str, now: float) -> list[Binding]:
        """The usable bindings of ``aor`` at ``now``, best first (``Registrar.lookup``)."""
        return self.registrar.lookup(aor, now)

    def unregister(self, aor: str, now: float) -> int:
        """Remove every binding of ``aor`` (``Registrar.unregister``), stored and logged as
        ``registrar.bindings_removed``; how many there were."""
        changes = self.registrar.unregister(aor)
        if changes:
            log.info("registrar.bindings_removed", aor=aor, contacts=len(changes))
        self._changed(changes, now)
        return len(changes)

    def changed_elsewhere(self, aor: str, contact: str, binding: Binding | None) -> None:
        """Another node changed a binding (``Registrar.changed_elsewhere``): in force here at
        once, its expiry on the timer; nothing is stored (it came from the store)."""
        now = self.loop.time()
        self.registrar.changed_elsewhere(aor, contact, binding, now)
        self._arm(now)

    def handle_event(self, event: SipEvent, now: float) -> bool:
        """Take the outcome of an OPTIONS of ours (a final response, or Timer F); False for any
        other event."""
        if isinstance(event, ResponseReceived) and event.key in self._probes:
            if event.response.status >= 200:
                self._qualified(self._probes.pop(event.key), answered=True, now=now)
            return True
        if isinstance(event, TransactionTimedOut) and event.key in self._probes:
            self._qualified(self._probes.pop(event.key), answered=False, now=now)
            return True
        return False

    def stream_closed(self, peer: Peer, now: float) -> None:
        """A TCP connection closed: its bindings cannot reach their phones any more."""
        if peer.conn_id is not None:
            self._changed(self.registrar.flow_closed(peer.conn_id), now)

    async def close(self) -> None:
        """Write what is pending, stop the worker and close the store."""
        self._alarm.cancel()
        if self._flushing is not None:
            self._flushing.cancel()
        self._flush()
        await asyncio.wrap_future(self._writer.submit(self.store.close))
        self._writer.shutdown(wait=True)

    def _changed(self, changes: Sequence[Changed], now: float) -> None:
        if changes:
            if self._flushing is None:
                self._flushing = self.loop.call_later(self._store_interval, self._flush)
            self._pending.extend(changes)
        self._arm(now)

    def _flush(self) -> None:
        """One transaction for every change gathered, off the loop."""
        self._flushing = None
        if not self._pending:
            return
        batch, self._pending = self._pending, []
        self._written = self._writer.submit(self.store.apply, batch, self.loop.time())
        self._written.add_done_callback(_log_failure)

    def _arm(self, now: float) -> None:
        self._alarm.arm(self.registrar.get_timer())

    def _expire(self, deadline: float) -> None:
        now = self.loop.time()
        expired = self.registrar.handle_timer(now)
        for changed in expired:
            log.info("registrar.binding_expired", aor=changed.binding.aor)
        due = self.registrar.qualify_due(now)
        for binding in due:
            self._probe(binding, now)
        self._changed(expired, now)
        if due:
            self.wake()

    def _probe(self, binding: Binding, now: float) -> None:
        """An OPTIONS to the phone of ``binding`` on its flow (RFC 3261 §11, RFC 3327 §5.3)."""
        contact = parse_address(f"<{binding.contact}>")
        key = self.endpoint.uac.request(
            "OPTIONS",
            contact.uri,
            from_addr=parse_address(f"<sip:callserver@{self.endpoint.config.sent_by()}>"),
            to_addr=contact,
            peer=binding.flow,
            now=now,
            headers=(*(("Route", hop) for hop in binding.path), ("Accept", "application/sdp")),
        )
        self._probes[key] = binding

    def _qualified(self, binding: Binding, *, answered: bool, now: float) -> None:
        changes = self.registrar.qualified(binding, answered=answered)
        where = {"aor": binding.aor, "contact": binding.contact, "source": binding.flow.host}
        for changed in changes:
            if changed.change is BindingChange.QUALIFY_TIMED_OUT:
                log.warning("registrar.binding_unreachable", **where, port=binding.flow.port)
            else:
                log.info("registrar.binding_reachable", **where, port=binding.flow.port)
        self._changed(changes, now)


def _configure(
    registrar: Registrar, settings: Settings, auth: DigestAuthenticator, now: float
) -> None:
    """The ``registrar`` section and the trunks' digest realm and algorithms, in force."""
    section = settings.registrar
    registrar.expiry = ExpiryPolicy(
        minimum=section.min_expires,
        default=section.default_expires,
        maximum=section.max_expires,
    )
    registrar.throttle = ThrottlePolicy(rate=section.register_rate, burst=section.register_burst)
    registrar.digest.realm = auth.settings.realm
    registrar.digest.algorithms = tuple(auth.settings.algorithms)
    registrar.set_qualify(section.qualify, now)


def _log_failure(future: concurrent.futures.Future[None]) -> None:
    """A failed write is logged; the bindings stay served from memory."""
    error = future.exception()
    if error is not None:
        log.error("registrar.store_failed", error=repr(error))


def account_of(subscriber: Subscriber, default_max_contacts: int) -> Account:
    """The registrar's :class:`Account` of a centrex.yaml phone (RFC 3261 §10.3 steps 3-5): its
    number as the AOR, its digest username, realm and HA1 values, and its maximum contacts
    (``default_max_contacts``, the registrar section's, when the phone sets none)."""
    return Account(
        aor=subscriber.number,
        username=subscriber.username,
        realm=subscriber.realm,
        ha1=subscriber.ha1,
        max_contacts=(
            default_max_contacts if subscriber.max_contacts is None else subscriber.max_contacts
        ),
    )
