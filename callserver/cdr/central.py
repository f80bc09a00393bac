"""The cluster's central CDR store in PostgreSQL (``cluster.postgres``): its tables, and reads.

Theory of operation
-------------------
Every node ships its spool's records to one PostgreSQL database (``cdr.feeder``); this module
holds the tables they go into and reads them back for ``callserver cdr export``,
``callserver cdr stats`` and ``/api/cdrs``.

Tables. ``cdr`` has one row per leg: the columns of the node's ``cdr.sqlite`` (uuid, call_id,
linked_id, leg, status, trunk, customer, called, start_stamp, end_stamp, billsec, disposition,
and ``record``, the spooled JSON line itself), plus ``node`` (whose spool it came from) and
``id``, an identity giving the order rows were stored. ``uuid`` is the primary key: the feeder
inserts with ``ON CONFLICT (uuid) DO NOTHING``, so a batch sent twice (a crash between the
commit and the feeder's checkpoint) adds nothing. ``cdr_mark`` holds the MCID marks
(``cdr.marks``), first mark of a call kept, as in SQLite. The text columns that are compared
or sorted use the "C" collation: byte order, as SQLite's, whatever the database's locale, so
records and the per-trunk and per-number tables come in the same order from both stores.
``ensure_schema`` creates the tables when one is missing, under an advisory lock (two nodes
starting at once would otherwise race in PostgreSQL's catalog); once they are there, a
database user with only SELECT and INSERT on them is enough.

Reads. ``CentralCdrs`` keeps a small asyncpg pool on the event loop that first uses it (the
server's, or the one ``read_central`` runs for a command). ``CentralRows`` is its blocking
face for worker threads (``cdr.rows.CdrRows``, as ``CdrStore`` is): each query is handed to
that loop and waited for, so the loop only sends and receives while the thread decodes
records and formats them. Records and legs without a limit come in pages of ``_PAGE`` rows,
each page the next ``(start_stamp, id)`` after the last (keyset paging: every page is one
short indexed query, and a large export never sits in memory whole). The SQL is the SQLite
store's, in PostgreSQL's words: the same period bounds, the same filter (``CdrFilter``), the
same order, ``malicious`` set from ``cdr_mark`` on every leg of a marked call.

Failures. A database that cannot be reached, times out or refuses a query raises
``StoreUnavailable`` naming the database (without its password) and what to do.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import datetime
from typing import TypeVar, cast
from urllib.parse import urlsplit

import asyncpg
from asyncpg.pool import PoolConnectionProxy

from callserver.cdr.record import CdrRecord, utc_stamp
from callserver.cdr.rows import CdrRows, StoreUnavailable
from callserver.cdr.selection import CdrFilter, LegRow
from callserver.cdr.store import CdrStats, GroupStats

__all__ = [
    "INSERT_MARKS",
    "INSERT_RECORDS",
    "SCHEMA",
    "UNREACHABLE",
    "CentralCdrs",
    "CentralRows",
    "ensure_schema",
    "read_central",
    "redacted",
]

T = TypeVar("T")

SCHEMA = """
SELECT pg_advisory_xact_lock(4172052417);
CREATE TABLE IF NOT EXISTS cdr (
    uuid text COLLATE "C" PRIMARY KEY,
    node text COLLATE "C" NOT NULL,
    call_id text COLLATE "C" NOT NULL,
    linked_id text COLLATE "C" NOT NULL,
    leg text NOT NULL,
    status text NOT NULL,
    trunk text COLLATE "C",
    customer text COLLATE "C",
    called text COLLATE "C",
    start_stamp text COLLATE "C" NOT NULL,
    end_stamp text COLLATE "C" NOT NULL,
    billsec integer NOT NULL,
    disposition text NOT NULL,
    record text NOT NULL,
    id bigint GENERATED ALWAYS AS IDENTITY
);
CREATE INDEX IF NOT EXISTS cdr_start ON cdr (start_stamp, id);
CREATE INDEX IF NOT EXISTS cdr_linked ON cdr (linked_id);
CREATE TABLE IF NOT EXISTS cdr_mark (
    call_id text COLLATE "C" PRIMARY KEY,
    malicious text COLLATE "C" NOT NULL,
    node text COLLATE "C" NOT NULL
);
"""
# One statement a batch: the columns as arrays ($2..$14), in the order of the lines.
INSERT_RECORDS = """
INSERT INTO cdr (uuid, node, call_id, linked_id, leg, status, trunk, customer, called,
                 start_stamp, end_stamp, billsec, disposition, record)
SELECT u, $1, c, l, g, s, t, k, d, a, e, b, p, r
FROM unnest($2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[],
            $8::text[], $9::text[], $10::text[], $11::text[], $12::int[], $13::text[],
            $14::text[]) WITH ORDINALITY AS x(u, c, l, g, s, t, k, d, a, e, b, p, r, n)
ORDER BY n
ON CONFLICT (uuid) DO NOTHING
"""
INSERT_MARKS = """
INSERT INTO cdr_mark (call_id, malicious, node)
SELECT c, m, $1 FROM unnest($2::text[], $3::text[]) WITH ORDINALITY AS x(c, m, n)
ORDER BY n
ON CONFLICT (call_id) DO NOTHING
"""
# What says PostgreSQL cannot be used now: not reached, gone, too slow, or refusing us.
UNREACHABLE = (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError)

_TABLES_THERE = "SELECT to_regclass('cdr') IS NOT NULL AND to_regclass('cdr_mark') IS NOT NULL"
_PAGE = 500
_FAR_PAST, _FAR_FUTURE = "0000", "9999"
_MALICIOUS = (
    "(SELECT MIN(malicious) FROM cdr_mark WHERE cdr_mark.call_id IN (cdr.call_id, cdr.linked_id))"
)
_LEG = "customer, disposition, billsec, record::json ->> 'currency', record::json ->> 'charges'"
_NUMBERS = ", ".join(  # a record's numbers (in its JSON), each without a leading "+"
    f"ltrim(COALESCE(record::json ->> '{name}', ''), '+')"
    for name in ("caller_raw", "caller_e164", "called_raw", "called_e164")
)
_GROUP = (
    "SELECT {key} COLLATE \"C\", COUNT(*), SUM((disposition = 'ANSWERED')::int),"
    " SUM(CASE WHEN disposition = 'ANSWERED' THEN billsec ELSE 0 END)"
    " FROM cdr WHERE start_stamp >= $1 AND start_stamp < $2 GROUP BY 1 ORDER BY 2 DESC, 1"
)


async def ensure_schema(connection: asyncpg.Connection | PoolConnectionProxy) -> None:
    """Create the tables when one is missing (see the module docstring); with both there,
    nothing is asked but whether they are (a user without CREATE can feed and read)."""
    if await connection.fetchval(_TABLES_THERE):
        return
    async with connection.transaction():
        await connection.execute(SCHEMA)


def redacted(dsn: str) -> str:
    """``dsn`` without its password, for logs and errors: ``postgresql://user@host:port/db``."""
    parts = urlsplit(dsn)
    user = f"{parts.username}@" if parts.username else ""
    host = parts.hostname or ""
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{user}{host}{port}{parts.path}"


class CentralCdrs:
    """The central store's reads, on the event loop that first uses it.

    Args:
        dsn: ``postgresql://user@host:port/db`` (``cluster.postgres``).
        timeout: Seconds to connect, and that a query may take.
    """

    def __init__(self, dsn: str, *, timeout: float = 10.0) -> None:
        self.dsn = dsn
        self._timeout = timeout
        self._pool: asyncpg.Pool | None = None
        self._ready = False

    async def ensure(self) -> None:
        """Connect (at the first call) and create the tables if missing.

        Raises:
            StoreUnavailable: PostgreSQL cannot be reached or refused us.
        """
        try:
            if self._pool is None:
                self._pool = await asyncpg.create_pool(
                    self.dsn,
                    min_size=0,
                    max_size=2,
                    timeout=self._timeout,
                    command_timeout=self._timeout,
                )
            if not self._ready:
                async with self._pool.acquire() as connection:
                    await ensure_schema(connection)
                self._ready = True
        except UNREACHABLE as exc:
            raise self._unavailable(exc) from exc

    async def check(self) -> None:
        """Ask PostgreSQL whether it answers (before a download starts: its status is sent
        before any row is read).

        Raises:
            StoreUnavailable: PostgreSQL cannot be reached or refused us.
        """
        await self.fetch("SELECT 1")

    async def fetch(self, sql: str, *args: object) -> list[asyncpg.Record]:
        """The rows of ``sql``.

        Raises:
            StoreUnavailable: PostgreSQL cannot be reached or refused the query.
        """
        await self.ensure()
        assert self._pool is not None
        try:
            return await self._pool.fetch(sql, *args)
        except UNREACHABLE as exc:
            raise self._unavailable(exc) from exc

    def rows(self, loop: asyncio.AbstractEventLoop) -> CentralRows:
        """The blocking reads for a worker thread; ``loop`` is the one this store runs on."""
        return CentralRows(self, loop)

    async def close(self) -> None:
        """Close the connections."""
        pool, self._pool = self._pool, None
        if pool is not None:
            await pool.close()

    def _unavailable(self, exc: BaseException) -> StoreUnavailable:
        return StoreUnavailable(
            f"the central CDR store {redacted(self.dsn)} cannot be read"
            f" ({type(exc).__name__}: {exc}): check that PostgreSQL runs and that"
            " cluster.postgres names it; this node's own records: callserver cdr export --local"
        )


class CentralRows:
    """``CdrRows`` over ``CentralCdrs`` for a worker thread (see the module docstring)."""

    def __init__(self, central: CentralCdrs, loop: asyncio.AbstractEventLoop) -> None:
        self._central = central
        self._loop = loop

    def records(
        self,
        since: datetime | None = None,
        until: datetime | None = None,
        *,
        where: CdrFilter | None = None,
        limit: int | None = None,
        offset: int = 0,
    ) -> Iterator[CdrRecord]:
        """As ``CdrStore.records``: by start time, then the order stored."""
        columns = f"record, {_MALICIOUS}"
        if limit is None:
            rows: Iterator[tuple[object, ...]] = self._pages(columns, since, until, where)
        else:
            clause, args = _conditions(since, until, where)
            sql = f"SELECT {columns} FROM cdr WHERE {clause} ORDER BY start_stamp, id"
            page = self._fetch(f"{sql} LIMIT {int(limit)} OFFSET {int(offset)}", args)
            rows = (tuple(row) for row in page)
        for line, malicious in rows:
            record = CdrRecord.from_json(str(line))
            yield record if malicious is None else replace(record, malicious=str(malicious))

    def count(
        self,
        since: datetime | None = None,
        until: datetime | None = None,
        *,
        where: CdrFilter | None = None,
    ) -> int:
        """How many records ``records`` gives without a limit."""
        clause, args = _conditions(since, until, where)
        return int(self._fetch(f"SELECT COUNT(*) FROM cdr WHERE {clause}", args)[0][0])

    def legs(
        self,
        since: datetime | None = None,
        until: datetime | None = None,
        *,
        where: CdrFilter | None = None,
    ) -> Iterator[LegRow]:
        """As ``CdrStore.legs``: customer, disposition, billsec, currency, charges' JSON."""
        for row in self._pages(_LEG, since, until, where):
            yield cast(LegRow, row)  # the columns of _LEG

    def stats(self, since: datetime | None = None, until: datetime | None = None) -> CdrStats:
        """As ``CdrStore.stats``: in all, per trunk, per called number (busiest first)."""
        bounds: list[object] = [*_bounds(since, until)]
        total = self._groups("'all'::text", bounds)
        return CdrStats(
            total=total[0] if total else GroupStats(key="all", calls=0, answered=0, billsec=0),
            per_trunk=tuple(self._groups("COALESCE(trunk, '')", bounds)),
            per_called=tuple(self._groups("COALESCE(called, '')", bounds)),
        )

    def _groups(self, key: str, bounds: list[object]) -> list[GroupStats]:
        rows = self._fetch(_GROUP.format(key=key), bounds)
        return [
            GroupStats(key=str(k), calls=int(n), answered=int(a or 0), billsec=int(s or 0))
            for k, n, a, s in rows
        ]

    def _pages(
        self,
        columns: str,
        since: datetime | None,
        until: datetime | None,
        where: CdrFilter | None,
    ) -> Iterator[tuple[object, ...]]:
        """``columns`` of every row picked, by (start_stamp, id), a page a query."""
        clause, base = _conditions(since, until, where)
        order = f" ORDER BY start_stamp, id LIMIT {_PAGE}"
        first = f"SELECT {columns}, start_stamp, id FROM cdr WHERE {clause}"
        after = f"{first} AND (start_stamp, id) > (${len(base) + 1}, ${len(base) + 2})"
        sql, args = first + order, base
        while True:
            page = self._fetch(sql, args)
            for row in page:
                yield tuple(row)[:-2]
            if len(page) < _PAGE:
                return
            sql, args = after + order, [*base, page[-1][-2], page[-1][-1]]

    def _fetch(self, sql: str, args: list[object]) -> list[asyncpg.Record]:
        future = asyncio.run_coroutine_threadsafe(self._central.fetch(sql, *args), self._loop)
        return future.result()


def read_central(dsn: str, work: Callable[[CdrRows], T]) -> T:
    """Run ``work`` over the central store's rows in a worker thread, with a loop of its own
    for the connection; what it returns (``callserver cdr export|stats``).

    Raises:
        StoreUnavailable: PostgreSQL cannot be reached or refused a query.
    """

    async def run() -> T:
        central = CentralCdrs(dsn)
        try:
            await central.ensure()
            return await asyncio.to_thread(work, central.rows(asyncio.get_running_loop()))
        finally:
            await central.close()

    return asyncio.run(run())


def _conditions(
    since: datetime | None, until: datetime | None, where: CdrFilter | None
) -> tuple[str, list[object]]:
    """The WHERE clause of a period and a filter, and its parameters ($1, $2 ...)."""
    args: list[object] = list(_bounds(since, until))
    clauses = ["start_stamp >= $1", "start_stamp < $2"]
    if where is not None:
        if where.customer is not None:
            args.append(where.customer)
            clauses.append(f"customer = ${len(args)}")
        if where.disposition is not None:
            args.append(where.disposition.value)
            clauses.append(f"disposition = ${len(args)}")
        if where.number is not None:
            args.append(where.number.lstrip("+"))
            clauses.append(f"${len(args)}::text IN ({_NUMBERS})")
    return " AND ".join(clauses), args


def _bounds(since: datetime | None, until: datetime | None) -> tuple[str, str]:
    return (
        utc_stamp(since) if since else _FAR_PAST,
        utc_stamp(until) if until else _FAR_FUTURE,
    )
