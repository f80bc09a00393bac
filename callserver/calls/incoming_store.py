"""Where each subscriber's last incoming call survives a restart, for MCID (``*39``).

``calls.malicious`` keeps, per subscriber, one row: the call's Call-ID (the caller's leg's,
which its CDRs carry as ``call_id`` or ``linked_id``), the caller as received (From,
P-Asserted-Identity, Privacy, source address), when it was put through and when it ended
(NULL while it lasts). ``SqliteIncomingStore`` keeps them in ``<data_dir>/mcid.sqlite``;
The values ``Received`` (the caller's identity as received) and ``IncomingCall`` are the
rows' content. ``apply`` writes the rows of one batch in one transaction (``process.sqlite``: WAL,
``synchronous=NORMAL``), called from one worker thread, never from the event loop.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import structlog

from callserver.cdr.record import utc_stamp
from callserver.process.sqlite import open_database, transaction

__all__ = ["IncomingCall", "Received", "SqliteIncomingStore"]

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
    """A call put through to a subscriber's phones: its Call-ID, caller as received, when it
    started and when it ended (None: it goes on)."""

    call_id: str
    received: Received
    at: datetime
    ended: datetime | None = None

    def markable(self, now: datetime, window: float) -> bool:
        """Whether ``*39`` at ``now`` marks this call: it goes on, or ended at most ``window``
        seconds ago."""
        return self.ended is None or now - self.ended <= timedelta(seconds=window)


_SCHEMA = """
CREATE TABLE IF NOT EXISTS last_incoming (
    number TEXT PRIMARY KEY,
    call_id TEXT NOT NULL,
    from_header TEXT NOT NULL,
    asserted TEXT,
    privacy TEXT,
    source TEXT NOT NULL,
    started TEXT NOT NULL,
    ended TEXT
)
"""
_UPSERT = "INSERT OR REPLACE INTO last_incoming VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
_COLUMNS = "number, call_id, from_header, asserted, privacy, source, started, ended"


class SqliteIncomingStore:
    """The last incoming call of each subscriber in a SQLite file (``mcid.sqlite``)."""

    def __init__(self, path: Path) -> None:
        # Loaded on the loop at start-up, then written from one worker thread at a time.
        self._db = open_database(path, _SCHEMA, threads=True)

    def load(self) -> dict[str, IncomingCall]:
        """Every stored call by its subscriber's number; a row that does not read back (a
        stamp mangled by hand) is skipped and logged."""
        rows = self._db.execute(f"SELECT {_COLUMNS} FROM last_incoming").fetchall()
        calls: dict[str, IncomingCall] = {}
        for number, call_id, from_header, asserted, privacy, source, started, ended in rows:
            try:
                calls[str(number)] = IncomingCall(
                    call_id=str(call_id),
                    received=Received(
                        from_header=str(from_header),
                        asserted=asserted,
                        privacy=privacy,
                        source=str(source),
                    ),
                    at=_parse(str(started)),
                    ended=None if ended is None else _parse(str(ended)),
                )
            except ValueError:
                log.warning("call.incoming_row_skipped", number=number)
        return calls

    def apply(self, calls: Sequence[tuple[str, IncomingCall]]) -> None:
        """Write ``calls`` (number, call) in one transaction; a number's row is replaced."""
        if not calls:
            return
        with transaction(self._db):
            for number, call in calls:
                self._db.execute(_UPSERT, _row(number, call))

    def close(self) -> None:
        """Close the database."""
        self._db.close()


def _row(number: str, call: IncomingCall) -> tuple[str | None, ...]:
    received = call.received
    ended = None if call.ended is None else utc_stamp(call.ended)
    return (
        number,
        call.call_id,
        received.from_header,
        received.asserted,
        received.privacy,
        received.source,
        utc_stamp(call.at),
        ended,
    )


def _parse(stamp: str) -> datetime:
    when = datetime.fromisoformat(stamp.replace("Z", "+00:00"))
    if when.tzinfo is None:
        raise ValueError(f"{stamp!r} has no zone")
    return when
