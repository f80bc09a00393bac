"""The SQLite binding store: bindings survive a restart, expired ones are gone."""

from __future__ import annotations

import sqlite3
from dataclasses import replace
from pathlib import Path

from callserver.registrar.binding import BindingChange, BindingState
from callserver.registrar.store import BindingStore, SqliteBindingStore

from .support import AOR, TCP, UDP, registered, registrar

WALL = 1_900_000_000.0  # a pinned wall clock


class PinnedWall:
    """A wall clock the test moves."""

    def __init__(self, at: float) -> None:
        self.at = at

    def __call__(self) -> float:
        return self.at


def test_bindings_come_back_after_a_restart_and_expired_ones_are_dropped(tmp_path: Path) -> None:
    """Saved bindings load with their remaining expiry on the new clock; expired rows go."""
    wall = PinnedWall(WALL)
    store: BindingStore = SqliteBindingStore(tmp_path / "registrar.sqlite", wall=wall)
    reg = registrar()
    short = registered(reg, 100.0, ["<sip:201@192.0.2.10:5062>;expires=60"], flow=UDP)
    long = registered(
        reg,
        100.0,
        ["<sip:201@192.0.2.12>;q=0.7"],
        call_id="desk@192.0.2.12",
        extra=[("Path", "<sip:edge.example.net;lr>")],
    )
    store.apply([*short.changes, *long.changes], 100.0)
    store.close()
    wall.at = WALL + 120.0  # the process restarts two minutes later, its clock starts at 5
    again = SqliteBindingStore(tmp_path / "registrar.sqlite", wall=wall)
    (binding,) = again.load(5.0)
    assert (binding.aor, binding.contact, binding.q) == (AOR, "sip:201@192.0.2.12", 0.7)
    assert binding.expires == 5.0 + 3600 - 120 and binding.path == ("<sip:edge.example.net;lr>",)
    assert binding.flow == UDP and binding.state is BindingState.ACTIVE
    restored = registrar()
    restored.restore(again.load(5.0))
    assert [b.contact for b in restored.lookup(AOR, 6.0)] == ["sip:201@192.0.2.12"]
    again.close()


def test_removed_bindings_are_deleted_and_tcp_ones_load_unusable(tmp_path: Path) -> None:
    """A removal deletes the row; a binding of a TCP flow loads as FLOW_CLOSED."""
    wall = PinnedWall(WALL)
    store = SqliteBindingStore(tmp_path / "registrar.sqlite", wall=wall)
    reg = registrar()
    made = registered(reg, 1.0, ["<sip:201@192.0.2.11:40312;transport=tcp>"], flow=TCP)
    gone = registered(reg, 1.0, ["<sip:201@192.0.2.10>"], call_id="other@x")
    removed = registered(reg, 2.0, ["<sip:201@192.0.2.10>;expires=0"], call_id="other@x", cseq=3)
    assert [c.change for c in removed.changes] == [BindingChange.REMOVED]
    for answer in (made, gone, removed):
        store.apply(answer.changes, 2.0)
    (binding,) = store.load(2.0)
    assert binding.state is BindingState.FLOW_CLOSED and binding.flow.conn_id is None
    store.close()


def test_a_batch_of_a_thousand_changes_is_one_transaction(tmp_path: Path) -> None:
    """Writing many changes at once stores them all (one BEGIN ... COMMIT)."""
    store = SqliteBindingStore(tmp_path / "registrar.sqlite", wall=PinnedWall(WALL))
    reg = registrar()
    answer = registered(reg, 1.0, ["<sip:201@192.0.2.10>"])
    (changed,) = answer.changes
    batch = [
        replace(changed, binding=replace(changed.binding, aor=f"+3873310{n:04d}"))
        for n in range(1000)
    ]
    store.apply(batch, 1.0)
    assert len(store.load(1.0)) == 1000
    store.close()


def test_an_unreachable_binding_is_kept_and_loads_active(tmp_path: Path) -> None:
    """A qualify timeout rewrites the row unchanged; after a restart the binding is usable."""
    store = SqliteBindingStore(tmp_path / "registrar.sqlite", wall=PinnedWall(WALL))
    reg = registrar()
    reg.set_qualify(30.0, 100.0)
    made = registered(reg, 100.0, ["<sip:201@192.0.2.10:5062>"], flow=UDP)
    (probed,) = reg.qualify_due(130.0)
    lost = reg.qualified(probed, answered=False)
    assert [c.binding.state for c in lost] == [BindingState.UNREACHABLE]
    store.apply([*made.changes, *lost], 130.0)
    (binding,) = store.load(130.0)
    assert binding.state is BindingState.ACTIVE and binding.expires == 3700.0
    store.close()


def test_the_user_agent_is_kept_and_an_older_file_gains_its_column(tmp_path: Path) -> None:
    """A file written before the User-Agent was kept opens with the column added; a binding
    written then loads with its User-Agent."""
    path = tmp_path / "registrar.sqlite"
    old = sqlite3.connect(path)
    old.execute(
        "CREATE TABLE binding (aor TEXT NOT NULL, contact TEXT NOT NULL, expires_at REAL"
        " NOT NULL, q REAL, call_id TEXT NOT NULL, cseq INTEGER NOT NULL, transport TEXT"
        " NOT NULL, host TEXT NOT NULL, port INTEGER NOT NULL, path TEXT NOT NULL, instance"
        " TEXT, reg_id INTEGER, PRIMARY KEY (aor, contact))"
    )
    old.execute(
        "INSERT INTO binding VALUES ('+38733100202', 'sip:202@192.0.2.20', ?, NULL, 'c', 1,"
        " 'udp', '192.0.2.20', 5060, '[]', NULL, NULL)",
        (WALL + 600,),
    )
    old.commit()
    old.close()
    store = SqliteBindingStore(path, wall=PinnedWall(WALL))
    reg = registrar()
    answer = registered(reg, 100.0, extra=[("User-Agent", "  Grandstream GXP2170 1.0.11  ")])
    store.apply(answer.changes, 100.0)
    loaded = {b.aor: b for b in store.load(100.0)}
    store.close()
    assert loaded[AOR].user_agent == "Grandstream GXP2170 1.0.11"
    assert loaded["+38733100202"].user_agent is None
