"""What reads CDRs back, whichever store holds them: the node's SQLite or PostgreSQL.

Theory of operation
-------------------
``callserver cdr export``, ``callserver cdr stats`` and the admin API's ``/api/cdrs`` read
their records through ``CdrRows``: the node's own ``CdrStore`` (``cdr.sqlite``) satisfies it,
and so does ``cdr.central.CentralRows`` over the cluster's PostgreSQL (``cluster.postgres``).
Both pick the same records for the same period and filter, in the same order (start time,
then the order they were stored), so the formatting that follows (``cdr.export.export``,
``format_stats``, ``cdr.selection.customer_totals``) is one code path and its bytes are the
same from either store.

The methods block: a store is read in a worker thread (or a command), never on the loop.
``StoreUnavailable`` says a store could not be read at all (PostgreSQL down or refusing us),
with what to do; it is an ``OSError``, as the other failures of reading a store are.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Protocol

from callserver.cdr.record import CdrRecord
from callserver.cdr.selection import CdrFilter, LegRow
from callserver.cdr.store import CdrStats

__all__ = ["CdrRows", "StoreUnavailable"]


class StoreUnavailable(OSError):
    """The CDR store cannot be reached or refused the read; the message says what to do."""


class CdrRows(Protocol):
    """The reads of a CDR store (``CdrStore``, ``CentralRows``); periods by ``start_stamp``,
    ``since`` inclusive, ``until`` exclusive."""

    def records(
        self,
        since: datetime | None = None,
        until: datetime | None = None,
        *,
        where: CdrFilter | None = None,
        limit: int | None = None,
        offset: int = 0,
    ) -> Iterator[CdrRecord]:
        """The records of the period the filter picks, by start time then storing order;
        ``limit`` of them from ``offset``."""

    def count(
        self,
        since: datetime | None = None,
        until: datetime | None = None,
        *,
        where: CdrFilter | None = None,
    ) -> int:
        """How many records ``records`` gives for the same arguments, without a limit."""

    def legs(
        self,
        since: datetime | None = None,
        until: datetime | None = None,
        *,
        where: CdrFilter | None = None,
    ) -> Iterator[LegRow]:
        """What ``customer_totals`` adds up of each of those records."""

    def stats(self, since: datetime | None = None, until: datetime | None = None) -> CdrStats:
        """Calls, answered, ASR and ACD of the period: in all, per trunk, per number."""
