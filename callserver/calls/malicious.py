"""Malicious call identification (MCID, ETSI EN 300 356-11): ``*39`` after a call marks it.

``MaliciousCalls.incoming`` keeps, per subscriber, the last call that was put through to its
phones (``calls.phones``) with who it said it was from *as received*: the From and
P-Asserted-Identity headers and Privacy (so a withheld number is still identified), the source
address and the Call-ID (``Received``, taken from the INVITE by ``received_of``). Only the
last one is kept: one small value per subscriber.

``MaliciousCalls.mark`` (the phone dialled ``*39``, ``calls.service_codes``) logs it for the
operator as a ``call.malicious`` warning with all of that and the time, and appends a mark
for the call's CDR (``cdr.marks``), written off the event loop; ``callserver cdr export`` then
shows ``malicious`` on the call's legs. A subscriber with no incoming call since the server
started has nothing to mark.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import structlog

from callserver.cdr.marks import CdrMark, append_mark
from callserver.cdr.record import utc_stamp
from callserver.sip.events import RequestReceived

__all__ = ["IncomingCall", "MaliciousCalls", "Received", "received_of"]

log = structlog.get_logger("callserver.calls")


@dataclass(frozen=True, slots=True, kw_only=True)
class Received:
    """Who an INVITE said it came from, as received (RFC 3261 §20.20, RFC 3325 §9.1, RFC 3323
    §4.2) and where it came from (``host:port``)."""

    from_header: str
    asserted: str | None
    privacy: str | None
    source: str


@dataclass(frozen=True, slots=True, kw_only=True)
class IncomingCall:
    """A call put through to a subscriber's phones: its Call-ID, caller as received, time."""

    call_id: str
    received: Received
    at: datetime


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
        clock: the wall clock (UTC, aware).
    """

    def __init__(
        self, spool_dir: Path, clock: Callable[[], datetime] = lambda: datetime.now(UTC)
    ) -> None:
        self._spool_dir = spool_dir
        self._clock = clock
        self._last: dict[str, IncomingCall] = {}
        self._writer = concurrent.futures.ThreadPoolExecutor(1, "cdr-marks")

    def incoming(self, number: str, call_id: str, received: Received | None) -> None:
        """A call ``call_id`` is put through to the subscriber of ``number`` now."""
        if received is not None:
            self._last[number] = IncomingCall(call_id=call_id, received=received, at=self._clock())

    def last(self, number: str) -> IncomingCall | None:
        """The last incoming call of ``number``'s subscriber, if any."""
        return self._last.get(number)

    def mark(self, number: str) -> bool:
        """Mark the last incoming call of ``number``'s subscriber malicious; False: none."""
        call = self._last.get(number)
        if call is None:
            return False
        now = utc_stamp(self._clock())
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
            marked_at=now,
        )
        mark = CdrMark(call_id=call.call_id, malicious=now)
        self._writer.submit(append_mark, self._spool_dir, mark).add_done_callback(_log_failure)
        return True

    async def close(self) -> None:
        """Wait for the marks being written."""
        await asyncio.get_running_loop().run_in_executor(None, self._writer.shutdown, True)


def _log_failure(future: concurrent.futures.Future[None]) -> None:
    error = future.exception()
    if error is not None:
        log.error("cdr.mark_failed", error=repr(error))
