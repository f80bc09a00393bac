"""``callserver subscribers show NUMBER``: what is in force for one Centrex subscriber.

Read from the files and the data dir, never from the running server (so it works while the
server runs, and when it does not): the subscriber of config/centrex.yaml, its group,
extension, language, pickup group and role (a supervisor's); each service as the operator set
it, as its phone changed it (``<data_dir>/services.sqlite``, ``calls.services_store``) and so
in force, with the locks; and its registrations (``<data_dir>/registrar.sqlite``) with the
time each has left. Both databases are opened read-only: a missing one means nothing was stored yet.

A node of a cluster (``cluster.redis``) keeps both in Redis instead (docs/scaling.md
"Registrations and settings"): ``show`` given its URL reads them there (``shared_phone``), what
every node has in force.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields
from pathlib import Path

import redis

from callserver.calls.services_store import fits, laid_over
from callserver.cluster.bindings import KIND as BINDINGS
from callserver.cluster.bindings import recorded_flow
from callserver.cluster.records import Entry, decode, hash_key
from callserver.cluster.services import KIND as SERVICES
from callserver.config.centrex import Centrex, Subscriber
from callserver.policy.numbering import e164
from callserver.policy.services import ServiceSettings

__all__ = ["Registered", "describe", "phone_changes", "registrations", "shared_phone", "show"]

_NO_VALUE = object()


@dataclass(frozen=True, slots=True, kw_only=True)
class Registered:
    """One stored registration: its contact, where it came from, seconds left."""

    contact: str
    transport: str
    source: str
    expires_in: int


def _read_only(path: Path) -> sqlite3.Connection | None:
    if not path.is_file():
        return None
    return sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=10.0)


def phone_changes(data_dir: Path, number: str) -> dict[str, object]:
    """What the phone of ``number`` changed (setting: value), from services.sqlite.

    Raises:
        sqlite3.Error: the database cannot be read.
    """
    db = _read_only(data_dir / "services.sqlite")
    if db is None:
        return {}
    with db:
        rows = db.execute(
            "SELECT service, value FROM service_setting WHERE number = ?", (number,)
        ).fetchall()
    db.close()
    changes = {str(name): json.loads(str(value)) for name, value in rows}
    return {name: value for name, value in changes.items() if fits(name, value)}


def registrations(
    data_dir: Path, number: str, wall: Callable[[], float] = time.time
) -> list[Registered]:
    """The registrations of ``number`` stored in registrar.sqlite that have not expired.

    Raises:
        sqlite3.Error: the database cannot be read.
    """
    db = _read_only(data_dir / "registrar.sqlite")
    if db is None:
        return []
    now = wall()
    with db:
        rows = db.execute(
            "SELECT contact, expires_at, transport, host, port FROM binding"
            " WHERE aor = ? AND expires_at > ? ORDER BY contact",
            (number, now),
        ).fetchall()
    db.close()
    return [
        Registered(
            contact=str(contact),
            transport=str(transport),
            source=f"{host}:{port}",
            expires_in=int(float(expires_at) - now),
        )
        for contact, expires_at, transport, host, port in rows
    ]


def shared_phone(
    url: str, number: str, wall: Callable[[], float] = time.time
) -> tuple[dict[str, object], list[Registered]]:
    """What the phone of ``number`` changed and its unexpired registrations, from the
    cluster's Redis at ``url``.

    Raises:
        redis.exceptions.RedisError: Redis cannot be reached or read.
    """
    client = redis.Redis.from_url(url, socket_timeout=5.0, socket_connect_timeout=5.0)
    try:
        settings = client.hgetall(hash_key(SERVICES, number))
        bindings = client.hgetall(hash_key(BINDINGS, number))
    finally:
        client.close()
    changes = {
        e.field: e.value
        for e in _entries(number, settings)
        if not e.gone and fits(e.field, e.value)
    }
    now = wall()
    registered = [
        Registered(
            contact=e.field,
            transport=flow.transport,
            source=f"{flow.host}:{flow.port} (node {e.node})",
            expires_in=int(e.expires - now),
        )
        for e in _entries(number, bindings)
        if e.expires is not None and e.expires > now and (flow := recorded_flow(e)) is not None
    ]
    return changes, sorted(registered, key=lambda r: r.contact)


def _entries(key: str, fields: object) -> list[Entry]:
    """The entries of a hash as the synchronous client returns it (bytes to bytes)."""
    assert isinstance(fields, dict)  # redis-py's types also allow the asyncio client's
    return [decode(key, field.decode(), record) for field, record in fields.items()]


def _value(value: object) -> str:
    if value is _NO_VALUE:
        return "-"
    if value is None:
        return "off"
    if isinstance(value, bool):
        return "on" if value else "off"
    return str(value)


def describe(
    subscriber: Subscriber,
    changes: Mapping[str, object],
    registered: list[Registered],
    default_language: str,
) -> str:
    """The readable report of ``subscriber`` (see the module docstring)."""
    in_force = laid_over(subscriber.services, changes)
    language = subscriber.language or f"{default_language} (the server's default)"
    lines = [
        f"{subscriber.number}  {subscriber.name or ''}".rstrip(),
        f"  group {subscriber.group}, extension {subscriber.extension},"
        f" username {subscriber.username}",
        f"  language: {language}",
        f"  pickup group: {subscriber.pickup_group}"
        + (f", role: {subscriber.role}" if subscriber.role else ""),
        f"  locked (the phone may not change): {', '.join(sorted(subscriber.locks)) or 'none'}",
        "",
        f"  {'service':<20}{'in force':<18}{'operator':<18}phone",
    ]
    for f in fields(ServiceSettings):
        name = f.name
        lines.append(
            f"  {name:<20}{_value(getattr(in_force, name)):<18}"
            f"{_value(getattr(subscriber.services, name)):<18}"
            f"{_value(changes.get(name, _NO_VALUE))}"
        )
    lines += ["", f"  registrations: {len(registered) or 'none'}"]
    lines += [
        f"    {r.contact}  {r.transport} from {r.source}, {r.expires_in} s left" for r in registered
    ]
    return "\n".join(lines) + "\n"


def show(
    centrex: Centrex,
    data_dir: Path,
    written: str,
    default_language: str,
    wall: Callable[[], float] = time.time,
    shared: str | None = None,
) -> str:
    """The report of the subscriber ``written`` names (a number, E.164 or national), its
    changes and registrations from the data dir, or from the cluster's Redis at ``shared``.

    Raises:
        ValueError: ``written`` is not a number, or no subscriber's.
        sqlite3.Error: a database of the data dir cannot be read.
        redis.exceptions.RedisError: the cluster's Redis cannot be reached or read.
    """
    number = e164(written)
    subscriber = centrex.subscriber(number)
    if subscriber is None:
        raise ValueError(f"{number} is no subscriber of the centrex file")
    if shared is not None:
        changes, registered = shared_phone(shared, subscriber.number, wall)
    else:
        changes = phone_changes(data_dir, subscriber.number)
        registered = registrations(data_dir, subscriber.number, wall)
    return describe(subscriber, changes, registered, default_language)
