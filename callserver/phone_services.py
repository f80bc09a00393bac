"""The registered phones' side of one server: their registrations, services and boxes.

``PhoneServices`` wires what serves Centrex phones around the calls layer (docs/centrex.md):
the phone book (a call to a subscriber's number rings its registered phones), forwarding and
call waiting in front of the forwarder, the codes a phone dials (service codes, pickup, a
supervisor's listen, whisper and barge, its voicemail box: ``codes``, for the routing; an
INVITE with Replaces is asked first), the voicemail boxes and their MWI subscriptions, and
the durable stores these keep in the data dir: the registrar's bindings, the phones' own
service settings, the last incoming calls and the MCID marks, the MWI subscriptions. The call
centre (``centre``, a ``calls.centre_driver.CentreDriver``) takes its agents from the
Centrex phones, which log in and out with their codes (``agents``, ``calls.agent_desk``) or
the operator's ``callserver agents`` commands on the control socket (``open_control``); the
queue step's callers wait through it (``queues``, ``calls.queue_calls``). ``open`` starts
them once the server listens (they write to the data dir), ``close`` puts them on disk for
the next start. In a cluster (``cluster.redis``) the bindings and the settings are kept in
Redis instead (``cluster.phone_state``): ``open`` takes the shared stores and attaches the
registrar and the services store to the changes other nodes make.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Coroutine
from datetime import UTC, datetime
from pathlib import Path

import structlog

from callserver.calls.admission import Admission
from callserver.calls.agent_desk import AgentDesk
from callserver.calls.centre_driver import CentreDriver
from callserver.calls.forwarding import Forwarding
from callserver.calls.incoming_store import SqliteIncomingStore
from callserver.calls.malicious import MaliciousCalls
from callserver.calls.manager import CallManager
from callserver.calls.phones import PhoneBook
from callserver.calls.pickup import Pickup
from callserver.calls.queue_calls import QueueCalls
from callserver.calls.registration import STORE_INTERVAL, Registration, account_of
from callserver.calls.replacing import Replacing
from callserver.calls.service_codes import ServiceCodeCalls
from callserver.calls.services_store import ServicesStore
from callserver.calls.session import CallSession
from callserver.calls.supervision import Supervision
from callserver.calls.transfer_services import SubscriberTransfers
from callserver.cluster.bindings import GATHER_INTERVAL
from callserver.cluster.phone_state import SharedPhoneState
from callserver.config.centrex import Centrex, Subscriber
from callserver.config.settings import Settings
from callserver.policy.services import ServiceSettings
from callserver.process.control import ControlServer
from callserver.queues.eventlog import QueueEventLog
from callserver.registrar.accounts import Account
from callserver.sip.endpoint import SipEndpoint
from callserver.voicemail.mwi import Mwi
from callserver.voicemail.service import Voicemail

__all__ = ["PhoneServices"]

log = structlog.get_logger("callserver.phones")

Code = Callable[[CallSession], Awaitable[None] | None]


class PhoneServices:
    """The phones' services of a server (see the module docstring).

    Args:
        settings: the settings in force (a reload replaces them).
        centrex: the groups and subscribers in force.
        calls: the calls layer whose forwarder, hosting and registry the services join.
        endpoint: the SIP endpoint (the registrar's and MWI's requests go through it).
        admission: the trunks' digest (phones are challenged in its realm, with its nonces).
        loop: the event loop; ``wake`` pumps the endpoint after a timer sent something.
    """

    def __init__(
        self,
        *,
        settings: Callable[[], Settings],
        centrex: Callable[[], Centrex],
        calls: CallManager,
        endpoint: SipEndpoint,
        admission: Admission,
        loop: asyncio.AbstractEventLoop,
        wake: Callable[[], None],
    ) -> None:
        self._settings, self._centrex, self._calls = settings, centrex, calls
        self._endpoint, self._admission = endpoint, admission
        self._loop, self._wake = loop, wake
        self.book = PhoneBook(
            centrex,
            lambda aor, now: [] if (r := calls.registration) is None else r.lookup(aor, now),
            lambda: settings().calls.ring_timeout,
        )
        calls.forwarder.phones = self.book
        self.voicemail = Voicemail.of(
            settings, self.subscriber, lambda: "*" + centrex().codes.voicemail
        )
        calls.host.forwarding = forwarding = Forwarding(
            calls.forwarder.forward,
            phones=self.book,
            centrex=centrex,
            settings_of=self.settings_of,
            in_call=calls.calls.in_call,
            voicemail=self.voicemail.leave,
            outbound_ring_timeout=lambda: settings().calls.outbound_ring_timeout,
            host=endpoint.config.host,
            now=loop.time,
            plans=calls.forwarder.transfers.plans,  # a diversion to a plan of ours
        )
        plans = calls.forwarder.transfers.plans
        plans.voicemail = self.voicemail.leave  # a transfer's forwarding to VM
        transfers = SubscriberTransfers(
            calls.services, calls.forwarder.place_answered, forwarding, centrex, plans
        )
        calls.forwarder.transfers.subscriber_leg = transfers.place  # a transfer to a phone
        self.pickup = Pickup(calls.services, calls.calls, centrex)
        self.supervision = Supervision(calls.services, calls.calls, centrex)
        forwarder = calls.forwarder
        self.replacing = Replacing(  # INVITEs with Replaces (RFC 3891) from phones
            calls.services,
            calls.calls,
            centrex,
            self.pickup,
            forwarder.transfers.handover.release,
            forwarder.bridges,
        )
        self.centre = CentreDriver(  # the call centre: its agents are the Centrex phones
            centrex=centrex,
            licences=self.licences,
            phone_busy=calls.calls.in_call,
            loop=loop,
        )
        calls.calls.phone_freed = lambda number: self.centre.changed()
        # A reload replaces the Centrex in force once the admission has its files: the
        # agents are refreshed on the next turn of the loop, with both files in force.
        admission.reloaded.append(lambda: loop.call_soon(self.centre.reload))
        self.agents = AgentDesk(self.centre, centrex)  # *45, *46, *47*REASON#, #47#
        self.queues = calls.host.queues = QueueCalls(  # the queue step's callers
            self.centre, forwarder, calls.media, lambda: calls.live.music, loop
        )
        self.control: ControlServer | None = None  # <data_dir>/control.sock: open_control()
        self.services: ServicesStore | None = None  # the phones' own settings: open()
        self.service_codes: ServiceCodeCalls | None = None
        self.malicious: MaliciousCalls | None = None  # the last incoming calls, for *39
        self.mwi: Mwi | None = None
        self.shared: SharedPhoneState | None = None  # in Redis, with a cluster: open()

    def codes(self) -> tuple[Code, ...]:
        """What a phone may dial besides numbers, in the order the routing tries them."""
        return (
            self.replacing.route,
            self._service_code,
            self.agents.route,
            self.pickup.route,
            self.supervision.route,
            self.voicemail.route,
        )

    def _service_code(self, session: CallSession) -> Awaitable[None] | None:
        return None if self.service_codes is None else self.service_codes.route(session)

    def open(
        self,
        cdr_directory: Path,
        stop: asyncio.Event,
        queue_events: QueueEventLog | None = None,
        shared: SharedPhoneState | None = None,
    ) -> Coroutine[None, None, None]:
        """Open the stores in the data dir and the registrar, restore the call centre's agents
        (its events to ``queue_events``); the bindings and settings from ``shared`` when
        given (a cluster); returns the voicemail purges (run until ``stop`` is set) for the
        server's background work."""
        settings, centrex, calls = self._settings(), self._centrex, self._calls
        self.centre.open(settings.data_dir, queue_events)
        self.shared = shared
        services = None if shared is None else shared.services
        self.services = ServicesStore.open(settings.data_dir, centrex, self._loop, services)
        self.malicious = MaliciousCalls(
            cdr_directory,
            SqliteIncomingStore(settings.data_dir / "mcid.sqlite"),
            self._loop,
            lambda: centrex().codes.mcid_window_seconds,
            datetime.now(UTC),
        )
        self.book.incoming = self.malicious.incoming
        self.service_codes = ServiceCodeCalls(centrex, self.services, self.malicious.mark)
        calls.registration = Registration.open(
            settings,
            self.account,
            auth=self._admission.auth,
            endpoint=self._endpoint,
            screening=calls.screening,
            loop=self._loop,
            wake=self._wake,
            store=None if shared is None else shared.bindings,
            store_interval=STORE_INTERVAL if shared is None else GATHER_INTERVAL,
        )
        if shared is not None:
            shared.bindings.attach(calls.registration.changed_elsewhere)
            shared.services.attach(self.services.changed_elsewhere)
        self.mwi = calls.subscriptions = Mwi.open(
            self._settings,
            calls.registration,
            self.voicemail,
            lambda user: self.subscriber(user) or self._centrex().account(user),
            screening=calls.screening,
            loop=self._loop,
            wake=self._wake,
        )
        return self.voicemail.run_purges(stop)

    async def open_control(self) -> None:
        """``<data_dir>/control.sock``, which ``callserver agents login ...`` reach; without
        it the server still serves calls (those commands then say no server runs)."""
        control = ControlServer(self._settings().data_dir, self.agents.handlers())
        try:
            await control.start()
        except OSError as exc:
            log.error("control.unavailable", path=str(control.path), error=str(exc))
            return
        self.control = control

    def settings_of(self, number: str) -> ServiceSettings:
        """The services in force for the subscriber ``number``: the operator's (centrex.yaml)
        with what its phone set by service codes (``calls.services_store``)."""
        if self.services is not None:
            return self.services.settings_of(number)
        subscriber = self._centrex().subscriber(number)  # before open(): the operator's alone
        return ServiceSettings() if subscriber is None else subscriber.services

    def account(self, username: str) -> Account | None:
        """The account of the centrex.yaml phone ``username`` in force now, for its REGISTERs
        and its INVITEs (a SIGHUP reload of the file or of the registrar section applies to the
        next request)."""
        subscriber = self._centrex().account(username)
        if subscriber is None:
            return None
        return account_of(subscriber, self._settings().registrar.max_contacts)

    def licences(self, customer: str) -> int:
        """The call-centre agent licences of ``customer`` in force (trunks.yaml ``agents``)."""
        config = self._admission.table.config.customers.get(customer)
        return 0 if config is None else config.agents

    def subscriber(self, number: str) -> Subscriber | None:
        """The subscriber of ``number`` in force now, else None."""
        return self._centrex().subscriber(number)

    async def close(self) -> None:
        """Every store on disk for the next start: subscriptions, bindings, settings, marks,
        the agents."""
        if self.control is not None:
            await self.control.close()
        await self.centre.close()
        if self.mwi is not None:
            await self.mwi.close()
        if self._calls.registration is not None:
            await self._calls.registration.close()
        if self.services is not None:
            await self.services.close()
        if self.malicious is not None:
            await self.malicious.close()
