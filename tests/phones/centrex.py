"""`callserver run` with one Centrex group for the phone tests: subscriber 201 of acme's
group ``+387 33 100 200-299`` (or its phones 201 and 202, ``group_server``) and the ``test``
trunk for callers from 127.0.0.1.

The server challenges with SHA-256 then MD5 by default; baresip 1.0 (libre 1.x) gives up
when any challenge is SHA-256, in either order ("Register: Function not implemented"), so
its tests offer MD5 alone. pyVoIP 1.6 answers the server's nonce with MD5 whatever is
offered."""

from __future__ import annotations

import contextlib
import sqlite3
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from tests.e2e.conftest import HOST, ServerProcess, start_server
from tests.e2e.subscribers import (
    AOR,
    CALLING,
    PASSWORD,
    PHONES,
    USERNAME,
    write_centrex,
    write_group,
)
from tests.phones.audio import tone, write_wav
from tests.phones.baresip import Account, Baresip

NUMBER = AOR.removeprefix("+")  # what a caller dials
MD5_ONLY = ("MD5",)
DEFAULT_ALGORITHMS = ("SHA-256", "MD5")


def centrex_server(
    tmp_path: Path,
    algorithms: tuple[str, ...] = MD5_ONLY,
    *,
    ring_timeout: float = 30.0,
    t1: float = 0.5,
) -> ServerProcess:
    """The server with acme's group and its phone 201 (tests/e2e/subscribers.py), the trunk
    ``test`` for callers from 127.0.0.1, challenging with ``algorithms``, ringing phones for
    ``ring_timeout`` s, with SIP timer T1 ``t1``; files in ``tmp_path``."""
    write_centrex(tmp_path)
    trunks = {**CALLING, "digest": {"algorithms": list(algorithms)}}
    return start_server(tmp_path, trunks=trunks, t1=t1, ring_timeout=ring_timeout)


def phone_201(server: ServerProcess, transport: str = "udp", answermode: str = "auto") -> Account:
    """baresip's account of subscriber 201 registering to ``server`` over ``transport``."""
    return Account(
        user=USERNAME,
        registrar=(HOST, server.port),
        transport=transport,
        auth_user=USERNAME,
        password=PASSWORD,
        answermode=answermode,
    )


def microphone(tmp_path: Path, frequency: float = 440.0, seconds: float = 4.0) -> Path:
    """A WAV file in ``tmp_path`` of ``seconds`` of ``frequency`` Hz for a phone to send
    (baresip hangs up its call when the file ends)."""
    path = tmp_path / f"microphone-{int(frequency)}-{int(seconds)}.wav"
    return write_wav(path, tone(frequency, seconds))


def group_server(
    tmp_path: Path,
    services: Mapping[str, Mapping[str, object]] | None = None,
    *,
    ring_timeout: float = 30.0,
) -> ServerProcess:
    """The server with acme's phones 201 and 202 (tests/e2e/subscribers.py, ``services`` by
    extension), the trunk ``test`` for callers from 127.0.0.1, MD5 challenges only, ringing
    phones for ``ring_timeout`` s."""
    write_group(tmp_path, services={ext: dict(values) for ext, values in (services or {}).items()})
    trunks = {**CALLING, "digest": {"algorithms": ["MD5"]}}
    return start_server(tmp_path, trunks=trunks, ring_timeout=ring_timeout)


def group_phone(
    server: ServerProcess, ext: str, *, answermode: str = "auto", mwi: bool = False
) -> Account:
    """baresip's account of acme's phone ``ext`` (201 or 202) registering to ``server``
    (``answermode`` and ``mwi`` as ``Account`` has them)."""
    user = f"38733100{ext}"
    return Account(
        user=user,
        registrar=(HOST, server.port),
        auth_user=user,
        password=PHONES[ext],
        answermode=answermode,
        mwi=mwi,
    )


def dial_code(phone: Baresip, server: ServerProcess, code: str) -> dict[str, object]:
    """``phone`` dials the service ``code``: the server answers, says its confirmation and
    hangs up; the ``services.changed`` log line the code brought."""
    before = len(server.events("services.changed"))
    phone.dial(f"sip:{code}@{HOST}:{server.port}")
    phone.wait_for("established", timeout=10)
    phone.wait_for("closed", timeout=20)
    deadline = time.monotonic() + 5.0
    while len(server.events("services.changed")) <= before and time.monotonic() < deadline:
        time.sleep(0.02)
    changes = server.events("services.changed")
    assert len(changes) > before, f"{code} changed nothing:\n" + "\n".join(server.raw[-20:])
    return changes[-1]


@dataclass(frozen=True, slots=True, kw_only=True)
class StoredBinding:
    """A row of the server's registrar.sqlite: a contact and the flow it registered from."""

    aor: str
    contact: str
    transport: str
    host: str
    port: int


def stored_bindings(server: ServerProcess, count: int, timeout: float = 5.0) -> list[StoredBinding]:
    """The bindings in the server's store once it holds ``count`` of them (it writes them off
    the event loop, a moment after the 200); fails with what it holds after ``timeout``."""
    path = server.data_dir / "registrar.sqlite"
    deadline = time.monotonic() + timeout
    found: list[StoredBinding] = []
    while time.monotonic() < deadline:
        if path.exists():
            found = _read_bindings(path)
            if len(found) == count:
                return found
        time.sleep(0.05)
    raise AssertionError(f"registrar.sqlite holds {found}, not {count} bindings")


def _read_bindings(path: Path) -> list[StoredBinding]:
    with contextlib.closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=1)) as db:
        try:
            rows = db.execute("SELECT aor, contact, transport, host, port FROM binding").fetchall()
        except sqlite3.OperationalError:  # the schema is not there yet
            return []
    return [
        StoredBinding(aor=aor, contact=contact, transport=transport, host=host, port=port)
        for aor, contact, transport, host, port in sorted(rows)
    ]
