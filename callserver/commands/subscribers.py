"""``callserver subscribers show NUMBER``: what is in force for one Centrex subscriber.

Read from the files and the data dir, never from the running server (so it works while the
server runs, and when it does not): the subscriber of config/centrex.yaml, its group,
extension, language, pickup group and role (a supervisor's); each service as the operator set
it, as its phone changed it (``<data_dir>/services.sqlite``, ``calls.services_store``) and so
in force, with the locks; and its registrations (``<data_dir>/registrar.sqlite``) with the
time each has left. Both databases are opened read-only: a missing one means nothing was stored yet.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields
from pathlib import Path

from callserver.calls.services_store import fits, laid_over
from callserver.config.centrex import Centrex, Subscriber
from callserver.policy.numbering import e164
from callserver.policy.services import ServiceSettings

__all__ = ["Registered", "describe", "phone_changes", "registrations", "show"]

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
) -> str:
    """The report of the subscriber ``written`` names (a number, E.164 or national).

    Raises:
        ValueError: ``written`` is not a number, or no subscriber's.
        sqlite3.Error: a database of the data dir cannot be read.
    """
    number = e164(written)
    subscriber = centrex.subscriber(number)
    if subscriber is None:
        raise ValueError(f"{number} is no subscriber of the centrex file")
    changes = phone_changes(data_dir, subscriber.number)
    return describe(
        subscriber, changes, registrations(data_dir, subscriber.number, wall), default_language
    )
