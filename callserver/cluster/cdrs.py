"""A node's side of the central CDR store (``cluster.postgres``): its feeder and its reads.

``open_central_cdrs`` starts the node's ``cdr.feeder.CdrFeeder`` (the spool shipped to
PostgreSQL, its lines parsed in a worker process) and opens the reads the admin API answers
from (``cdr.central.CentralCdrs``). Without ``cluster.postgres`` it returns None: the embedded
single node runs nothing of this, and asyncpg is not even imported. docs/scaling.md,
"CDRs in PostgreSQL", describes the whole.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from callserver.config.settings import Settings

if TYPE_CHECKING:
    from callserver.cdr.central import CentralCdrs
    from callserver.cdr.feeder import CdrFeeder

__all__ = ["CLOSE_GRACE", "CentralCdrStore", "open_central_cdrs"]

CLOSE_GRACE = 5.0
"""Seconds the feeder's last delivery may take when the server stops."""


@dataclass(frozen=True, slots=True)
class CentralCdrStore:
    """The feeder of this node's spool and the reads of every node's records."""

    feeder: CdrFeeder
    reads: CentralCdrs

    async def close(self, grace: float = CLOSE_GRACE) -> None:
        """The feeder's last delivery (within ``grace`` seconds), then every connection
        closed; call it after the spool closed."""
        await self.feeder.close(grace)
        await self.reads.close()


def open_central_cdrs(settings: Settings) -> CentralCdrStore | None:
    """Start the feeder and open the reads when ``cluster.postgres`` is set; call it after
    the spool's start-up recovery (its ABORTED records are shipped first)."""
    dsn = settings.cluster.postgres
    if dsn is None:
        return None
    from callserver.cdr.central import CentralCdrs
    from callserver.cdr.feeder import CHECKPOINT, CdrFeeder

    feeder = CdrFeeder(
        settings.data_dir / "cdr",
        dsn,
        settings.cluster.node,
        checkpoint=settings.data_dir / CHECKPOINT,
        log_level=settings.log_level,
        log_format=settings.log_format,
    )
    feeder.start()
    return CentralCdrStore(feeder=feeder, reads=CentralCdrs(dsn))
