"""What every store kept on a shared mirror has in common (the bindings', the settings').

A :class:`MirroredStore` owns the :class:`callserver.cluster.mirror.Mirror` of its ``kind``,
keeps what :meth:`MirroredStore.open` read until its owner loads it, and hands other nodes'
changes, once :meth:`MirroredStore.attach`\\ ed, to the owner's callback through its own
``_received`` (each store makes its records out of the mirror's entries).
"""

from __future__ import annotations

import asyncio
import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import ClassVar, Generic, TypeVar

from callserver.cluster.link import RedisLink
from callserver.cluster.mirror import Mirror
from callserver.cluster.records import Entry

__all__ = ["MirroredStore"]

C = TypeVar("C")  # the owner's callback for other nodes' changes


class MirroredStore(ABC, Generic[C]):
    """A store on the mirror of ``kind``; see the module docstring.

    Args:
        link: the node's Redis link.
        node: this node's name; ``holder`` this process's id.
        loop: the event loop (``apply`` runs in a worker thread and hands over to it).
        wall: the wall clock in seconds (tests pin it).
    """

    kind: ClassVar[str]

    def __init__(
        self,
        link: RedisLink,
        *,
        node: str,
        holder: str,
        loop: asyncio.AbstractEventLoop,
        wall: Callable[[], float] = time.time,
    ) -> None:
        self.mirror = Mirror(link, self.kind, node=node, holder=holder, wall=wall)
        self._node, self._loop, self._wall = node, loop, wall
        self._loaded: list[Entry] = []
        self._changed: C | None = None

    async def open(self) -> None:
        """Read every entry (none while Redis is unreachable: they come when it answers)."""
        self._loaded = await self.mirror.start()

    def attach(self, changed_elsewhere: C) -> None:
        """Other nodes' changes go to ``changed_elsewhere`` from now on, those that came since
        :meth:`open` first."""
        self._changed = changed_elsewhere
        self.mirror.attach(self._received)

    def close(self) -> None:
        """No more changes into the owner (it is closing); the mirror is closed by whoever
        opened the store."""
        self._changed = None

    def _take_loaded(self) -> list[Entry]:
        """What :meth:`open` read, once."""
        loaded, self._loaded = self._loaded, []
        return loaded

    @abstractmethod
    def _received(self, entry: Entry) -> None:
        """Another node's change of an entry: the owner's record of it to ``_changed``."""
