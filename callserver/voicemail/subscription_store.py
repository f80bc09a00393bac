"""Where message-summary subscriptions survive a restart: a SQLite file in the data dir.

As the registrar's store (``registrar.store``): deadlines are on the loop's monotonic clock,
so each expiry is written on the wall clock (``wall() + (expires - now)``) and turned back on
``load(now)``; expired rows are deleted on load. A subscription that came over a stream
transport is not loaded: its connection did not outlive the process (RFC 5626 §4.2), and the
phone subscribes again when its NOTIFYs stop. Blocking: the adapter calls ``apply`` from one
worker thread.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path

from callserver.process.sqlite import open_database, transaction
from callserver.sip.peer import Peer
from callserver.voicemail.subscriptions import Changed, DialogKey, State, Subscription

__all__ = ["SubscriptionStore"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS subscription (
    call_id TEXT NOT NULL,
    local_tag TEXT NOT NULL,
    remote_tag TEXT NOT NULL,
    aor TEXT NOT NULL,
    expires_at REAL NOT NULL,
    data TEXT NOT NULL,
    PRIMARY KEY (call_id, local_tag, remote_tag)
)
"""


class SubscriptionStore:
    """Subscriptions in a SQLite file (``mwi.sqlite``); ``wall``: seconds, tests pin it."""

    def __init__(self, path: Path, *, wall: Callable[[], float] = time.time) -> None:
        self._wall = wall
        self._db = open_database(path, _SCHEMA, threads=True)

    def load(self, now: float) -> list[Subscription]:
        """Every subscription still valid at ``now`` over UDP, its deadline on ``now``'s clock."""
        wall = self._wall()
        self._db.execute("DELETE FROM subscription WHERE expires_at <= ?", (wall,))
        rows = self._db.execute("SELECT * FROM subscription").fetchall()
        loaded = [_subscription(row, now - wall) for row in rows]
        return [s for s in loaded if not s.peer.reliable]

    def apply(self, changes: Sequence[Changed], now: float) -> None:
        """One transaction: live subscriptions upserted, terminated ones deleted."""
        offset = self._wall() - now
        with transaction(self._db):
            for changed in changes:
                self._write(changed.subscription, offset)

    def close(self) -> None:
        """Close the database."""
        self._db.close()

    def _write(self, s: Subscription, offset: float) -> None:
        key = (s.key.call_id, s.key.local_tag, s.key.remote_tag)
        if s.state is not State.ACTIVE:
            self._db.execute(
                "DELETE FROM subscription WHERE call_id = ? AND local_tag = ? AND remote_tag = ?",
                key,
            )
            return
        data = {
            "local": s.local,
            "remote": s.remote,
            "target": s.target,
            "route": list(s.route),
            "peer": [s.peer.transport, s.peer.host, s.peer.port],
            "cseq": s.cseq,
            "remote_cseq": s.remote_cseq,
        }
        self._db.execute(
            "INSERT OR REPLACE INTO subscription VALUES (?, ?, ?, ?, ?, ?)",
            (*key, s.aor, s.expires + offset, json.dumps(data)),
        )


def _subscription(row: tuple[object, ...], offset: float) -> Subscription:
    call_id, local_tag, remote_tag, aor, expires_at, text = row
    data = json.loads(str(text))
    transport, host, port = data["peer"]
    subscription = Subscription(
        key=DialogKey(str(call_id), str(local_tag), str(remote_tag)),
        aor=str(aor),
        local=str(data["local"]),
        remote=str(data["remote"]),
        target=str(data["target"]),
        route=tuple(data["route"]),
        peer=Peer(str(transport), str(host), int(port)),
        expires=float(str(expires_at)) + offset,
        cseq=int(data["cseq"]),
        remote_cseq=int(data.get("remote_cseq", 0)),
    )
    return replace(subscription, state=State.ACTIVE)
