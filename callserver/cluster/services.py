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

from collections.abc import Callable, Sequence

import structlog

from callserver.cluster.mirrored import MirroredStore
from callserver.cluster.records import Change, Entry
from callserver.policy.services import Override, fits

__all__ = ["KIND", "RedisServiceStore"]

log = structlog.get_logger("callserver.cluster")

KIND = "services"


class RedisServiceStore(MirroredStore[Callable[[Override], None]]):
    """The phones' settings in Redis, shared by the nodes; see the module docstring (and
    :class:`callserver.cluster.mirrored.MirroredStore` for its arguments)."""

    kind = KIND

    def load(self) -> list[Override]:
        """The settings read by :meth:`open`; a value a setting cannot take is skipped."""
        return [o for entry in self._take_loaded() if (o := _override(entry)) is not None]

    def apply(self, overrides: Sequence[Override]) -> None:
        """Hand ``overrides`` to the mirror, in order; any thread."""
        changes = [Change(key=o.number, field=o.service, value=o.value) for o in overrides]
        self._loop.call_soon_threadsafe(self.mirror.write, changes)

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
