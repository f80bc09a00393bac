"""The phones' own service settings shared by every node: a services store on the mirror.

Theory of operation
-------------------
:class:`RedisServiceStore` takes the place of ``calls.services_store.SqliteServiceStore``
when ``cluster.redis`` is set, behind the same port (``load``, ``apply``, ``close``). Each
subscriber's number is the hash ``cs:services:<number>``, each setting a phone changed a field
of it, the value as JSON (``null``: the service turned off), with no expiry: a setting stays
until the phone (or the operator, ``PATCH /api/subscribers``) changes it again.

A change dialled on one node (``*21*202#``) is written and published by the mirror
(:mod:`callserver.cluster.mirror`); every other node's store hands it to
``ServicesStore.changed_elsewhere``, so the next call to that number on any node meets it,
within the pub/sub delay. Two nodes changing one setting at once: the later wall-clock time
wins on every node. ``load`` gives what was read at :meth:`RedisServiceStore.open`.

Redis keeps the settings for every node: run it with persistence (appendonly) so they survive
a restart of Redis itself. A node writes back what it changed after Redis lost it; a setting
changed on a node that is down when Redis restarts empty stays in the memory of the running
nodes only, until it is changed again.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence

import structlog

from callserver.cluster.link import RedisLink
from callserver.cluster.mirror import Mirror
from callserver.cluster.records import Change, Entry
from callserver.policy.services import Override, fits

__all__ = ["KIND", "RedisServiceStore"]

log = structlog.get_logger("callserver.cluster")

KIND = "services"


class RedisServiceStore:
    """The phones' settings in Redis, shared by the nodes; see the module docstring.

    Args:
        link: the node's Redis link.
        node: this node's name; ``holder`` this process's id.
        loop: the event loop (``apply`` runs in a worker thread and hands over to it).
        wall: the wall clock in seconds (tests pin it).
    """

    def __init__(
        self,
        link: RedisLink,
        *,
        node: str,
        holder: str,
        loop: asyncio.AbstractEventLoop,
        wall: Callable[[], float] = time.time,
    ) -> None:
        self.mirror = Mirror(link, KIND, node=node, holder=holder, wall=wall)
        self._loop = loop
        self._loaded: list[Entry] = []
        self._changed: Callable[[Override], None] | None = None

    async def open(self) -> None:
        """Read every setting (none while Redis is unreachable: they come when it answers)."""
        self._loaded = await self.mirror.start()

    def load(self) -> list[Override]:
        """The settings read by :meth:`open`; a value a setting cannot take is skipped."""
        loaded, self._loaded = self._loaded, []
        return [o for entry in loaded if (o := _override(entry)) is not None]

    def attach(self, changed_elsewhere: Callable[[Override], None]) -> None:
        """Other nodes' changes go to ``changed_elsewhere`` from now on, those that came since
        :meth:`open` first."""
        self._changed = changed_elsewhere
        self.mirror.attach(self._received)

    def apply(self, overrides: Sequence[Override]) -> None:
        """Hand ``overrides`` to the mirror, in order; any thread."""
        changes = [Change(key=o.number, field=o.service, value=o.value) for o in overrides]
        self._loop.call_soon_threadsafe(self.mirror.write, changes)

    def close(self) -> None:
        """No more changes into the services store (it is closing); the mirror is closed by
        whoever opened this store."""
        self._changed = None

    def _received(self, entry: Entry) -> None:
        override = _override(entry)
        if override is None or self._changed is None:
            return
        log.info(
            "cluster.services_changed",
            number=override.number,
            service=override.service,
            value=override.value,
            node=entry.node,
        )
        self._changed(override)


def _override(entry: Entry) -> Override | None:
    value = entry.value
    if entry.gone or not fits(entry.field, value):
        log.warning("cluster.services_value_skipped", number=entry.key, service=entry.field)
        return None
    assert value is None or isinstance(value, str | bool | int)  # fits() says so
    return Override(number=entry.key, service=entry.field, value=value)
