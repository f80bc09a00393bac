"""The services in force per subscriber: the operator's defaults with what its phone set.

Theory of operation
-------------------
config/centrex.yaml gives each subscriber its ``ServiceSettings`` (the group's, then its own)
and the services its phone may not change (``locks``). What the phone changes with service
codes (``calls.service_codes``) is kept apart, as *overrides*: per number, the value of each
setting it changed (a forwarding target or None for off, a flag, the no-answer ring time).
``ServicesStore.settings_of`` lays them over the operator's values at the moment it is asked,
from memory, so a reload of centrex.yaml changes the defaults under the phone's own changes.
A setting the phone turned off stays off even if the operator later sets a default.

``ServicesStore.change`` refuses, whole, a change that touches a locked service; otherwise it
updates memory at once and queues the change for ``SqliteServiceStore``
(``<data_dir>/services.sqlite``), written by one worker thread, the changes of one loop
iteration in one transaction (WAL, ``synchronous=NORMAL``: as the registrar's store). They are
read back on start, so settings survive a restart.

Several nodes (``cluster.redis``): the store is ``cluster.services.RedisServiceStore`` instead,
behind the same port (:class:`ServiceStore`): a change goes to Redis and to every other node,
whose store hands it to :meth:`ServicesStore.changed_elsewhere`: in force there at once, not
written again.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from types import MappingProxyType
from typing import Any, Protocol, cast

import structlog

from callserver.config.centrex import Centrex, Subscriber
from callserver.policy.services import Override, ServiceSettings, fits
from callserver.process.sqlite import open_database, transaction

__all__ = [
    "Override",
    "ServiceStore",
    "ServicesStore",
    "SqliteServiceStore",
    "fits",
    "laid_over",
    "locked",
]

log = structlog.get_logger("callserver.services")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS service_setting (
    number TEXT NOT NULL,
    service TEXT NOT NULL,
    value TEXT NOT NULL,
    PRIMARY KEY (number, service)
)
"""
_UPSERT = "INSERT OR REPLACE INTO service_setting VALUES (?, ?, ?)"
_LOCKED_BY = {"no_answer_seconds": "forward_no_answer"}  # the lock that guards a setting


def locked(subscriber: Subscriber, names: Iterable[str]) -> list[str]:
    """Which of ``names`` (ServiceSettings names) the phone of ``subscriber`` may not change:
    its locks (``no_answer_seconds`` goes with ``forward_no_answer``)."""
    return [name for name in names if _LOCKED_BY.get(name, name) in subscriber.locks]


def laid_over(settings: ServiceSettings, overrides: Mapping[str, object]) -> ServiceSettings:
    """``settings`` with ``overrides`` (setting: value) in place of theirs.

    Raises:
        ValueError: a name that is not a setting, or a value it cannot take.
    """
    for service, value in overrides.items():
        if not fits(service, value):
            raise ValueError(f"{service} cannot be {value!r}")
    return replace(settings, **cast(dict[str, Any], overrides))


class ServiceStore(Protocol):
    """Where the phones' changes are kept (:class:`SqliteServiceStore`, or one shared by
    several nodes); ``apply`` and ``close`` run in a worker thread."""

    def load(self) -> list[Override]:
        """Every override kept."""

    def apply(self, overrides: Sequence[Override]) -> None:
        """Keep ``overrides`` (made now, in order)."""

    def close(self) -> None:
        """Release the store."""


class SqliteServiceStore:
    """The overrides in a SQLite file (``services.sqlite`` in the data dir)."""

    def __init__(self, path: Path) -> None:
        # Loaded on the loop at start-up, then written from one worker thread at a time.
        self._db = open_database(path, _SCHEMA, threads=True)

    def load(self) -> list[Override]:
        """Every stored override; a row of a setting this version does not know, or with a
        value it cannot take, is skipped (and logged)."""
        rows = self._db.execute("SELECT number, service, value FROM service_setting").fetchall()
        overrides = []
        for number, service, text in rows:
            value = json.loads(str(text))
            if fits(str(service), value):
                overrides.append(Override(number=str(number), service=str(service), value=value))
            else:
                log.warning("services.stored_value_skipped", number=number, service=service)
        return overrides

    def apply(self, overrides: Sequence[Override]) -> None:
        """Write ``overrides`` in one transaction."""
        if not overrides:
            return
        with transaction(self._db):
            for o in overrides:
                self._db.execute(_UPSERT, (o.number, o.service, json.dumps(o.value)))

    def close(self) -> None:
        """Close the database."""
        self._db.close()


class ServicesStore:
    """The services in force per subscriber, and the phone's changes; see the module docstring.

    Args:
        centrex: the groups and subscribers in force (a reload replaces them).
        store: where the phones' changes survive a restart (loaded here).
        loop: the event loop the writes are scheduled from.
    """

    def __init__(
        self,
        centrex: Callable[[], Centrex],
        store: ServiceStore,
        loop: asyncio.AbstractEventLoop,
    ) -> None:
        self._centrex = centrex
        self._store = store
        self._loop = loop
        self._overrides: dict[str, dict[str, str | bool | int | None]] = {}
        # The settings in force of a number with overrides, and the operator's they lie over.
        self._laid: dict[str, tuple[ServiceSettings, ServiceSettings]] = {}
        for override in store.load():
            self._overrides.setdefault(override.number, {})[override.service] = override.value
        self._writer = concurrent.futures.ThreadPoolExecutor(1, "services-store")
        self._pending: list[Override] = []
        self._flushing: asyncio.Handle | None = None

    @classmethod
    def open(
        cls,
        data_dir: Path,
        centrex: Callable[[], Centrex],
        loop: asyncio.AbstractEventLoop,
        store: ServiceStore | None = None,
    ) -> ServicesStore:
        """The overrides of ``store``, by default ``data_dir/services.sqlite`` (created when
        missing)."""
        if store is None:
            data_dir.mkdir(parents=True, exist_ok=True)
            store = SqliteServiceStore(data_dir / "services.sqlite")
        return cls(centrex, store, loop)

    def settings_of(self, number: str) -> ServiceSettings:
        """The ServiceSettings in force for the subscriber of ``number`` (E.164, ``+``
        optional): the operator's with the phone's changes; defaults for no subscriber."""
        subscriber = self._centrex().subscriber(number)
        if subscriber is None:
            return ServiceSettings()
        own = self._overrides.get(subscriber.number)
        if not own:
            return subscriber.services
        cached = self._laid.get(subscriber.number)
        if cached is None or cached[0] is not subscriber.services:  # changed, or reloaded
            cached = self._laid[subscriber.number] = (
                subscriber.services,
                laid_over(subscriber.services, own),
            )
        return cached[1]

    def overrides_of(self, number: str) -> Mapping[str, str | bool | int | None]:
        """What the phone of ``number`` changed (setting: value), for display."""
        own = self._overrides.get(number if number.startswith("+") else f"+{number}", {})
        return MappingProxyType(dict(own))

    def change(self, number: str, values: Mapping[str, str | bool | int | None]) -> bool:
        """Set ``values`` (ServiceSettings names) for the subscriber of ``number``; False, and
        nothing changed, when it is not a subscriber or one of them is locked.

        Raises:
            ValueError: a name that is not a setting, or a value it cannot take (our own bug).
        """
        wrong = sorted(name for name, value in values.items() if not fits(name, value))
        if wrong:
            raise ValueError(f"not service settings, or values they cannot take: {wrong}")
        subscriber = self._centrex().subscriber(number)
        if subscriber is None:
            return False
        if locked(subscriber, values):
            return False
        own = self._overrides.setdefault(subscriber.number, {})
        self._laid.pop(subscriber.number, None)
        for name, value in values.items():
            own[name] = value
            self._pending.append(Override(number=subscriber.number, service=name, value=value))
        if self._flushing is None:
            self._flushing = self._loop.call_soon(self._flush)
        return True

    def changed_elsewhere(self, override: Override) -> None:
        """Another node's phone (or operator) changed a setting: in force here from now on."""
        self._overrides.setdefault(override.number, {})[override.service] = override.value
        self._laid.pop(override.number, None)

    async def close(self) -> None:
        """Write what is pending, stop the worker and close the database."""
        if self._flushing is not None:
            self._flushing.cancel()
        self._flush()
        await asyncio.wrap_future(self._writer.submit(self._store.close))
        self._writer.shutdown(wait=True)

    def _flush(self) -> None:
        self._flushing = None
        if not self._pending:
            return
        batch, self._pending = self._pending, []
        self._writer.submit(self._store.apply, batch).add_done_callback(_log_failure)


def _log_failure(future: concurrent.futures.Future[None]) -> None:
    """A failed write is logged; the settings stay served from memory."""
    error = future.exception()
    if error is not None:
        log.error("services.store_failed", error=repr(error))
