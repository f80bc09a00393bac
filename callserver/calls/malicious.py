"""Malicious call identification (MCID, ETSI EN 300 356-11): ``*39`` after a call marks it.

Theory of operation
-------------------
``MaliciousCalls.incoming`` keeps, per subscriber, the last call that was put through to its
phones (``calls.phones``) with who it said it was from *as received*: the From and
P-Asserted-Identity headers and Privacy (so a withheld number is still identified), the source
address and the Call-ID (``Received``, taken from the INVITE by ``received_of``), and when it
started; the callable it returns is told when the call ends. Only the last one is kept: one
small row per subscriber, in memory and in ``<data_dir>/mcid.sqlite``
(``calls.incoming_store``), written by one worker thread, the changes of one loop iteration in
one transaction, and read back on start: ``*39`` after a restart still finds the call.

``MaliciousCalls.mark`` (the phone dialled ``*39``, ``calls.service_codes``) marks that call
while it lasts (a phone may dial ``*39`` on a second line during the call) or until
``window`` seconds after it ended (centrex.yaml's ``service_codes.mcid_window_seconds``).
It logs it for the operator as a ``call.malicious`` warning with all of that and the time,
and appends a mark for the call's CDR (``cdr.marks``), written off the event loop;
``callserver cdr export`` then shows ``malicious`` on the call's legs. A subscriber with no
incoming call, or whose last one ended longer ago than the window, has nothing to mark
(``call.malicious_none``). A call whose end was never stored (the server stopped during it)
is taken as ended when the store was read back.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime
from pathlib import Path

import structlog

from callserver.calls.incoming_store import IncomingCall, Received, SqliteIncomingStore
from callserver.cdr.marks import CdrMark, append_mark
from callserver.cdr.record import utc_stamp
from callserver.sip.events import RequestReceived

__all__ = ["IncomingCall", "MaliciousCalls", "Received", "received_of"]

log = structlog.get_logger("callserver.calls")


def received_of(event: RequestReceived) -> Received:
    """The caller's identity headers and source address of an INVITE."""
    headers = event.request.headers
    return Received(
        from_header=headers.get("From") or "",
        asserted=headers.get("P-Asserted-Identity"),
        privacy=headers.get("Privacy"),
        source=f"{event.peer.host}:{event.peer.port}",
    )


class MaliciousCalls:
    """The last incoming call of each subscriber, and marking it; see the module docstring.

    Args:
        spool_dir: the CDR spool directory, where the marks go.
        store: where the last incoming calls survive a restart (loaded here, at ``now``).
        loop: the event loop the writes are scheduled from.
        window: the seconds after a call's end during which it may be marked, in force.
        now: the wall clock's time now (UTC, aware), for the calls whose end was not stored.
    """

    def __init__(
        self,
        spool_dir: Path,
        store: SqliteIncomingStore,
        loop: asyncio.AbstractEventLoop,
        window: Callable[[], float],
        now: datetime,
    ) -> None:
        self._spool_dir = spool_dir
        self._store, self._loop, self._window = store, loop, window
        self._writer = concurrent.futures.ThreadPoolExecutor(1, "mcid-store")
        self._pending: list[tuple[str, IncomingCall]] = []
        self._flushing: asyncio.Handle | None = None
        self._last = store.load()
        for number, call in self._last.items():
            if call.ended is None:  # the server stopped during it
                self._keep(number, replace(call, ended=now))

    def incoming(
        self, number: str, call_id: str, received: Received, now: datetime
    ) -> Callable[[datetime], None]:
        """A call ``call_id`` is put through to the subscriber of ``number`` at ``now``;
        returns what to call with the time it ends."""
        call = IncomingCall(call_id=call_id, received=received, at=now)
        self._keep(number, call)

        def ended(at: datetime) -> None:
            if self._last.get(number) is call:  # not already followed by a later call
                self._keep(number, replace(call, ended=at))

        return ended

    def last(self, number: str) -> IncomingCall | None:
        """The last incoming call of ``number``'s subscriber, if any."""
        return self._last.get(number)

    def mark(self, number: str, now: datetime) -> bool:
        """Mark the last incoming call of ``number``'s subscriber malicious at ``now``; False:
        none, or it ended longer than the window ago."""
        call = self._last.get(number)
        window = self._window()
        if call is None or not call.markable(now, window):
            ended = None if call is None or call.ended is None else utc_stamp(call.ended)
            log.info("call.malicious_none", subscriber=number, last_ended=ended, window=window)
            return False
        stamp = utc_stamp(now)
        received = call.received
        log.warning(
            "call.malicious",
            subscriber=number,
            call_id=call.call_id,
            from_header=received.from_header,
            p_asserted_identity=received.asserted,
            privacy=received.privacy,
            source=received.source,
            call_time=utc_stamp(call.at),
            call_ended=None if call.ended is None else utc_stamp(call.ended),
            marked_at=stamp,
        )
        mark = CdrMark(call_id=call.call_id, malicious=stamp)
        written = self._writer.submit(append_mark, self._spool_dir, mark)
        written.add_done_callback(_mark_failed)
        return True

    async def close(self) -> None:
        """Write what is pending and the marks being written; close the store."""
        if self._flushing is not None:
            self._flushing.cancel()
        self._flush()
        await asyncio.wrap_future(self._writer.submit(self._store.close))
        await self._loop.run_in_executor(None, self._writer.shutdown, True)

    def _keep(self, number: str, call: IncomingCall) -> None:
        self._last[number] = call
        self._pending.append((number, call))
        if self._flushing is None:
            self._flushing = self._loop.call_soon(self._flush)

    def _flush(self) -> None:
        self._flushing = None
        if self._pending:
            batch, self._pending = self._pending, []
            self._writer.submit(self._store.apply, batch).add_done_callback(_store_failed)


def _mark_failed(future: concurrent.futures.Future[None]) -> None:
    error = future.exception()
    if error is not None:
        log.error("cdr.mark_failed", error=repr(error))


def _store_failed(future: concurrent.futures.Future[None]) -> None:
    """A failed write is logged; the calls stay served from memory."""
    error = future.exception()
    if error is not None:
        log.error("call.mcid_store_failed", error=repr(error))
