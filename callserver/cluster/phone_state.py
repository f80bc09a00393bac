"""The phones' state a node shares with the others: bindings and service settings in Redis.

``SharedPhoneState.open`` opens both stores on the node's Redis link and reads what the other
nodes (and earlier runs of this one) left there, before the registrar and the services store
are built on them (``phone_services.PhoneServices.open`` attaches them); ``close`` sends what is
still pending and stops both mirrors. docs/scaling.md "Registrations and settings".
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from callserver.cluster.bindings import RedisBindingStore
from callserver.cluster.link import RedisLink
from callserver.cluster.mirror import MirrorStatistics
from callserver.cluster.services import RedisServiceStore

__all__ = ["SharedPhoneState"]


@dataclass(frozen=True, slots=True)
class SharedPhoneState:
    """The registrar's bindings and the phones' settings, shared through Redis."""

    bindings: RedisBindingStore
    services: RedisServiceStore

    @classmethod
    async def open(
        cls, link: RedisLink, *, node: str, holder: str, loop: asyncio.AbstractEventLoop
    ) -> SharedPhoneState:
        """Both stores of node ``node`` (process ``holder``), everything in Redis read."""
        shared = cls(
            RedisBindingStore(link, node=node, holder=holder, loop=loop),
            RedisServiceStore(link, node=node, holder=holder, loop=loop),
        )
        await shared.bindings.open()
        await shared.services.open()
        return shared

    def statistics(self) -> list[MirrorStatistics]:
        """Each mirror's: up, changes received and written, unsent, re-reads."""
        return [self.bindings.mirror.statistics(), self.services.mirror.statistics()]

    async def close(self) -> None:
        """Send what is pending and stop both mirrors."""
        await self.bindings.mirror.close()
        await self.services.mirror.close()
