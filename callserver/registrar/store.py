"""Where bindings survive a restart: the :class:`BindingStore` port and its SQLite store.

Theory of operation
-------------------
The registrar is sans-IO: it returns the :class:`Changed` bindings of each REGISTER, expiry
and closed flow, and its adapter hands them to a :class:`BindingStore` with
:meth:`BindingStore.apply`. A store shared by several nodes can take the place of
:class:`SqliteBindingStore` behind the same three calls (``load``, ``apply``, ``close``).

Deadlines in the registrar are on the event loop's monotonic clock, which means nothing after
a restart, so the store keeps each expiry on the wall clock: ``apply(changes, now)`` turns
``expires`` into ``wall() + (expires - now)`` and ``load(now)`` turns it back. Bindings whose
wall-clock expiry has passed are deleted on load, not returned. A binding that came over a
stream transport is loaded as ``FLOW_CLOSED``: its connection did not outlive the process, so
it is unusable until the phone registers again (RFC 5626 §4.2). Whether a UDP binding's phone
answered its last qualify OPTIONS is not kept: it loads ``ACTIVE`` and the next OPTIONS decides.

One :meth:`SqliteBindingStore.apply` is one transaction (``BEGIN IMMEDIATE`` ... ``COMMIT``)
in WAL mode with ``synchronous=NORMAL``, so a REGISTER's changes are written together without
an fsync on the event loop (a power loss may undo the last ones; the phones register again).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Protocol

from callserver.process.sqlite import open_database, transaction
from callserver.registrar.binding import Binding, BindingChange, BindingState, Changed
from callserver.sip.peer import Peer

__all__ = ["BindingStore", "SqliteBindingStore"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS binding (
    aor TEXT NOT NULL,
    contact TEXT NOT NULL,
    expires_at REAL NOT NULL,
    q REAL,
    call_id TEXT NOT NULL,
    cseq INTEGER NOT NULL,
    transport TEXT NOT NULL,
    host TEXT NOT NULL,
    port INTEGER NOT NULL,
    path TEXT NOT NULL,
    instance TEXT,
    reg_id INTEGER,
    user_agent TEXT,
    PRIMARY KEY (aor, contact)
)
"""
_COLUMNS = (
    "aor, contact, expires_at, q, call_id, cseq, transport, host, port, path, instance, reg_id,"
    " user_agent"
)
_UPSERT = f"INSERT OR REPLACE INTO binding ({_COLUMNS}) VALUES ({', '.join('?' * 13)})"
_DELETE = "DELETE FROM binding WHERE aor = ? AND contact = ?"
_GONE = (BindingChange.REMOVED, BindingChange.EXPIRED)


class BindingStore(Protocol):
    """Bindings kept across restarts (the port a shared store would implement)."""

    def load(self, now: float) -> list[Binding]:
        """Every binding not yet expired, with its deadline on the clock of ``now``."""

    def apply(self, changes: Sequence[Changed], now: float) -> None:
        """Write ``changes`` (made at ``now``) together."""

    def close(self) -> None:
        """Release the store."""


class SqliteBindingStore:
    """Bindings in a SQLite file; see the module docstring.

    Args:
        path: the database file (``registrar.sqlite`` in the data dir).
        wall: the wall clock in seconds (tests pin it).
    """

    def __init__(self, path: Path, *, wall: Callable[[], float] = time.time) -> None:
        self._wall = wall
        # Loaded on the loop at start-up, then written from one worker thread at a time.
        self._db = open_database(path, _SCHEMA, threads=True)
        columns = {row[1] for row in self._db.execute("PRAGMA table_info(binding)")}
        if "user_agent" not in columns:  # a file of a version before it was kept
            self._db.execute("ALTER TABLE binding ADD COLUMN user_agent TEXT")

    def load(self, now: float) -> list[Binding]:
        """Every binding still valid at ``now``; expired rows are deleted, not returned."""
        wall = self._wall()
        self._db.execute("DELETE FROM binding WHERE expires_at <= ?", (wall,))
        rows = self._db.execute(f"SELECT {_COLUMNS} FROM binding ORDER BY aor, contact").fetchall()
        return [_binding(row, now - wall) for row in rows]

    def apply(self, changes: Sequence[Changed], now: float) -> None:
        """One transaction: saved or refreshed bindings upserted, gone ones deleted."""
        if not changes:
            return
        offset = self._wall() - now
        with transaction(self._db):
            for changed in changes:
                self._write(changed, offset)

    def close(self) -> None:
        """Close the database."""
        self._db.close()

    def _write(self, changed: Changed, offset: float) -> None:
        b = changed.binding
        if changed.change in _GONE:
            self._db.execute(_DELETE, (b.aor, b.contact))
            return
        flow = b.flow
        path = json.dumps(list(b.path))
        row = (b.aor, b.contact, b.expires + offset, b.q, b.call_id, b.cseq, flow.transport)
        self._db.execute(
            _UPSERT, (*row, flow.host, flow.port, path, b.instance, b.reg_id, b.user_agent)
        )


def _binding(row: Iterable[object], offset: float) -> Binding:
    """A row as a binding whose deadline is on the clock ``offset`` away from the wall's."""
    aor, contact, expires_at, q, call_id, cseq, transport, host, port, path, inst, reg, ua = row
    flow = Peer(str(transport), str(host), int(str(port)))
    state = BindingState.FLOW_CLOSED if flow.reliable else BindingState.ACTIVE
    binding = Binding(
        aor=str(aor),
        contact=str(contact),
        expires=float(str(expires_at)) + offset,
        q=None if q is None else float(str(q)),
        call_id=str(call_id),
        cseq=int(str(cseq)),
        flow=flow,
        path=tuple(json.loads(str(path))),
        instance=None if inst is None else str(inst),
        reg_id=None if reg is None else int(str(reg)),
        user_agent=None if ua is None else str(ua),
    )
    return replace(binding, state=state)
