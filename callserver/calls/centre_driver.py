"""The asyncio adapter of the call centre: its one loop timer, its event log, its store.

Theory of operation
-------------------
``queues.CallCentre`` is sans-IO; :class:`CentreDriver` drives it the way ``app.Server``
drives the SIP endpoint. Whoever gives the centre an input (a phone's agent code, the
operator's command, the ``queue`` dialplan step) takes the time from :meth:`moment` (loop
monotonic time and UTC now), calls the centre, then :meth:`changed`, which:

1. drains the centre's events; each becomes its queue event log lines
   (``queues.log_records``, written by the durable ``QueueEventLog``), the agents it changed
   are saved to ``agents.sqlite`` by one writer thread (in the order of the changes; the
   loop only hands over frozen snapshots), and each event goes to the ``on_event``
   listeners;
2. asks the centre for its offers and hands a non-empty list to the ``on_offers`` ringer
   (with no ringer, no offer is asked for: nothing could ring the agents);
3. re-arms the one loop timer on the centre's next deadline (``process.alarm.Alarm``); when
   it is due, ``handle_timer`` runs and then :meth:`changed`.

A listener or ringer may give the centre inputs of its own and call :meth:`changed` again:
that call only marks the work, and the outer call goes round until nothing is left, so
events keep their order. A listener that raises is logged (``queues.listener_failed``) and
the others still run.

Every call into the centre, from the driver and from whoever holds ``centre``, is timed
(``calls.centre_timings``); ``timings`` holds the figures for the control channel.

Each log line also goes to ``tally`` (``queues.day_tally``), which keeps today's figures of
each queue for the admin API's wallboard; :meth:`today` gives it, seeded once (in a thread)
with what the event log held from before the start.

Callback requests (``queues.callbacks``) have no live call, so the driver keeps them on disk
(``queues.callback_store``, in ``agents.sqlite``, by the same writer thread): a
``CallbackRequested`` or ``CallbackFailed`` writes the request as it is now, a
``CallbackAnswered`` or ``CallbackDropped`` deletes it; :meth:`open` puts the stored requests
back in their queues (defining a queue from the stored settings when no caller has run its
step yet). A request whose queue's agents changed meanwhile (``define`` refuses them) is
logged (``queues.callback_not_restored``) and stays on disk.

At start :meth:`open` loads ``agents.sqlite`` and restores the agents (``CallCentre.restore``):
an agent beyond its customer's licences (lowered meanwhile) is logged out and logged as
``queues.agent_no_licence``. The Directory (centrex.yaml's ``Centrex``) and the licences
(trunks.yaml ``customers.<id>.agents``) are read through callables, so a reload's files are
in force at the next input. A reload calls :meth:`CentreDriver.reload`: the agents' extensions
and customers are read again and the agents removed from centrex.yaml or beyond lowered
licences are logged out (``queues.departures``), each logged as ``queues.agent_logged_out``
(or ``queues.agent_logout_pending`` while its call lasts).
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TypeVar

import structlog

from callserver.calls.centre_timings import TimedCentre, Timings
from callserver.process.alarm import Alarm
from callserver.queues.agents import Agent, Agents, AgentStateChanged, Directory
from callserver.queues.callback_store import SqliteCallbackStore
from callserver.queues.callbacks import StoredCallback
from callserver.queues.centre import CallCentre
from callserver.queues.day_tally import WINDOW, DayTally
from callserver.queues.eventlog import QueueEventLog, read_events
from callserver.queues.events import (
    CallbackAnswered,
    CallbackDropped,
    CallbackFailed,
    CallbackRequested,
    CentreEvent,
    Offer,
)
from callserver.queues.log_records import log_records
from callserver.queues.records import QueueLogRecord
from callserver.queues.store import SqliteAgentStore

__all__ = ["CentreDriver"]

log = structlog.get_logger("callserver.queues")

T = TypeVar("T")
Listener = Callable[[CentreEvent], None]
Ringer = Callable[[list[Offer]], None]


def _utc_now() -> datetime:
    return datetime.now(UTC)


def _uuid() -> str:
    return str(uuid.uuid4())


def _drained(
    centre: CallCentre, new_id: Callable[[], str] = _uuid
) -> tuple[list[CentreEvent], list[QueueLogRecord], list[Agent]]:
    """Drain ``centre``: its events, their queue log lines, and the agents they changed as
    they are now (each once)."""
    events = centre.drain_events()
    records = [record for event in events for record in log_records(event, new_id)]
    numbers = dict.fromkeys(e.agent for e in events if isinstance(e, AgentStateChanged))
    return events, records, [centre.agents.get(number) for number in numbers]


def _requests(
    centre: CallCentre, events: list[CentreEvent]
) -> tuple[list[StoredCallback], list[str]]:
    """The callback requests ``events`` made or changed (as they are now), and those they
    ended."""
    kept: dict[str, StoredCallback] = {}
    ended: list[str] = []
    for event in events:
        if isinstance(event, CallbackRequested | CallbackFailed):
            stored = centre.stored_callback(event.caller)
            if stored is not None:
                kept[event.caller] = stored
        elif isinstance(event, CallbackAnswered | CallbackDropped):
            kept.pop(event.caller, None)
            ended.append(event.caller)
    return list(kept.values()), ended


class CentreDriver:
    """The call centre of a running server (module docstring).

    Args:
        centrex: the Centrex in force (its subscribers are the agents).
        licences: a customer's agent licences in force.
        phone_busy: whether an agent's phone is on a call of its own.
        loop: the event loop (its time is the centre's ``now``; its timer, the centre's).
        wall: UTC now (tests pin it).
    """

    def __init__(
        self,
        *,
        centrex: Callable[[], Directory],
        licences: Callable[[str], int],
        phone_busy: Callable[[str], bool],
        loop: asyncio.AbstractEventLoop,
        wall: Callable[[], datetime] = _utc_now,
    ) -> None:
        self.timings = Timings()  # every call into the centre, timed (``centre_timings``)
        self.centre: CallCentre = TimedCentre(
            Agents(centrex, licences), phone_busy, timings=self.timings
        )
        self._loop, self._wall = loop, wall
        self._alarm = Alarm(loop, self._on_timer)
        self._listeners: list[Listener] = []
        self._ringers: list[Ringer] = []
        self._events: QueueEventLog | None = None
        self._store: SqliteAgentStore | None = None
        self._callbacks: SqliteCallbackStore | None = None
        self._writer: ThreadPoolExecutor | None = None
        self._busy = self._again = self._closed = False
        self.tally = DayTally(started=wall())  # today's figures of each queue, fed as logged
        self._seeding: asyncio.Future[DayTally] | None = None

    def on_event(self, listener: Listener) -> None:
        """Hand every centre event to ``listener`` (after it is logged and saved)."""
        self._listeners.append(listener)

    def on_offers(self, ringer: Ringer) -> None:
        """Hand each non-empty list of offers to ``ringer``, which rings the agents' phones."""
        self._ringers.append(ringer)

    def moment(self) -> tuple[float, datetime]:
        """(loop monotonic time, UTC now): the ``now`` and ``at`` of an input."""
        return self._loop.time(), self._wall()

    def open(self, data_dir: Path, events: QueueEventLog | None) -> None:
        """Open ``data_dir/agents.sqlite``, restore its agents, and log to ``events``.

        Raises:
            sqlite3.Error: the store cannot be opened or read.
        """
        self._events = events
        self._store = SqliteAgentStore.open(data_dir, threads=True)
        self._writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="agents-store")
        now, at = self.moment()
        for refused in self.centre.restore(self._store.load(now, at), now, at):
            log.warning(
                "queues.agent_no_licence",
                agent=refused.agent,
                customer=refused.customer,
                licences=refused.licences,
            )
        self._callbacks = SqliteCallbackStore.open(data_dir, threads=True)
        self._restore_callbacks(self._callbacks, now, at)
        self.changed()

    async def today(self) -> DayTally:
        """``tally``, seeded first (once, in a thread) with the event log's records of the
        ``WINDOW`` before the start; an unreadable log is logged and leaves it unseeded."""
        if self._seeding is None:
            self._seeding = asyncio.ensure_future(self._seed())
        return await asyncio.shield(self._seeding)

    async def _seed(self) -> DayTally:
        tally = self.tally
        if self._events is not None:
            directory, until = self._events.directory, tally.started
            try:
                records, _ = await asyncio.to_thread(
                    read_events, directory, until - WINDOW, until, lookback=timedelta(0)
                )
            except OSError as exc:
                log.error("queues.tally_not_seeded", path=str(directory), error=str(exc))
                return tally
            tally.seed(records)
        return tally

    def reload(self) -> None:
        """centrex.yaml or trunks.yaml was reloaded: refresh the agents, log out those
        removed or beyond their customer's licences (``queues.departures``)."""
        if self._closed:
            return
        now, at = self.moment()
        for departure in self.centre.refresh(now, at):
            log.warning(
                "queues.agent_logout_pending" if departure.pending else "queues.agent_logged_out",
                agent=departure.agent,
                customer=departure.customer,
                reason=departure.reason,
                licences=departure.licences,
            )
        self.changed()

    def _restore_callbacks(self, store: SqliteCallbackStore, now: float, at: datetime) -> None:
        stored, unreadable = store.load()
        for caller in unreadable:
            log.error("queues.callback_not_restored", caller=caller, error="unreadable row")
        centre, restored = self.centre, 0
        for request in stored:
            try:
                if centre.config_of(request.config.key) is None:
                    centre.define(request.config)
                centre.restore_callback(request, now, at)
                restored += 1
            except (LookupError, ValueError) as exc:
                log.error("queues.callback_not_restored", caller=request.caller, error=str(exc))
        if restored:
            log.info("queues.callbacks_restored", count=restored)

    def changed(self) -> None:
        """Log, save and hand on what the centre did; ring its offers; re-arm the timer."""
        if self._busy or self._closed:
            self._again = True
            return
        self._busy = True
        try:
            self._again = True
            while self._again:
                self._again = False
                self._drain()
                self._ring()
            self._alarm.arm(self.centre.next_deadline())
        finally:
            self._busy = False

    def _drain(self) -> None:
        events, records, agents = _drained(self.centre)
        for record in records:
            if self._events is not None:
                self._events.write(record)  # durable; a failed write is logged and retried
            self.tally.add(record)
        if agents and self._store is not None and self._writer is not None:
            now, at = self.moment()
            self._writer.submit(self._save, self._store, agents, now, at)
        kept, ended = _requests(self.centre, events)
        if (kept or ended) and self._callbacks is not None and self._writer is not None:
            self._writer.submit(self._keep, self._callbacks, kept, ended)
        for event in events:
            for listener in self._listeners:
                self._tell(listener, event)

    def _ring(self) -> None:
        if not self._ringers:
            return
        now, at = self.moment()
        offers = self.centre.offers(now, at)
        if offers:
            self._again = True  # the agents are RINGING: their changes to drain
            for ringer in self._ringers:
                self._tell(ringer, offers)

    @staticmethod
    def _tell(listener: Callable[[T], None], item: T) -> None:
        try:
            listener(item)
        except Exception:
            log.exception("queues.listener_failed", listener=getattr(listener, "__name__", ""))

    @staticmethod
    def _save(store: SqliteAgentStore, agents: list[Agent], now: float, at: datetime) -> None:
        try:
            store.apply(agents, now, at)
        except Exception:
            log.exception("queues.agent_store_failed", agents=[a.number for a in agents])

    @staticmethod
    def _keep(store: SqliteCallbackStore, kept: list[StoredCallback], ended: list[str]) -> None:
        try:
            store.put(kept)
            store.delete(ended)
        except Exception:
            log.exception("queues.callback_store_failed", callers=[r.caller for r in kept])

    def _on_timer(self, deadline: float) -> None:
        now = max(deadline, self._loop.time())
        self.centre.handle_timer(now, self._wall())
        self.changed()

    async def close(self) -> None:
        """Stop the timer and put every change on disk (the event log is the server's); the
        centre is not driven any more."""
        self._closed = True
        self._alarm.cancel()
        if self._writer is not None:
            await asyncio.to_thread(self._writer.shutdown, wait=True)
            self._writer = None
        if self._store is not None:
            self._store.close()
            self._store = None
        if self._callbacks is not None:
            self._callbacks.close()
            self._callbacks = None
