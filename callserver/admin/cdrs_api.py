"""``/api/cdrs``: the call detail records of ``cdr.sqlite``: a page, an export, totals.

Theory of operation
-------------------
Every request reads ``<data_dir>/cdr.sqlite`` in a worker thread with the code of
``callserver cdr export``: ``CdrStore.records`` of the period ``[from, to)`` (by start time,
as ``--since``/``--until``), in its order (start time, then the order stored: oldest first),
narrowed in the store's SQL by a ``cdr.selection.CdrFilter`` (customer, number, status).
So ``/api/cdrs`` pages through exactly the records the export writes, in the same order, and
the export's bytes are those of ``callserver cdr export --format csv|jsonl`` for the same
records (``cdr.export.export``).

What is shown: before it reads, the request has the server's ingester feed the spool into the
store (``CdrIngester.ingest``, in its worker process, as each ``callserver cdr`` command
ingests before it reads), so a record on disk when the request came is in the answer. With
``cdr.ingest_interval: 0`` (the server does not ingest) the store is read as the last
``callserver cdr`` command left it. No store yet: no records.

The export streams: a worker thread writes the records into chunks of about 256 KiB and hands
each to the response on the loop, waiting until it is sent, so a large export never sits in
memory whole and a slow client slows the thread down, not the server. A failure once the
download has begun (the database, the disk) is logged as ``admin.export_failed`` and the
connection closed: the client sees a download cut short, never a complete-looking one.

With ``cluster.postgres`` the records come from the cluster's central store instead
(``cdr.central``: every node's records; ``CentralRows`` in the worker thread, its queries run
on the loop), in the same order and the same bytes; before it reads, the request has this
node's feeder deliver what it spooled (``CdrFeeder.deliver``). PostgreSQL unreachable: 503
saying so, and how to read this node's own records.

Scope: a customer token sees only its customer's records; naming another customer is 404.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import sqlite3
from collections.abc import Awaitable, Callable, Iterator
from contextlib import AbstractContextManager
from pathlib import Path
from typing import TYPE_CHECKING

import structlog
from aiohttp import web

from callserver.admin.params import (
    bad,
    check_known,
    customer_scope,
    page_of,
    query_period,
    query_text,
)
from callserver.cdr.export import ExportFormat, export
from callserver.cdr.record import CdrRecord, Disposition
from callserver.cdr.rows import CdrRows, StoreUnavailable
from callserver.cdr.selection import CdrFilter, LegRow, customer_totals
from callserver.cdr.store import CdrStore

if TYPE_CHECKING:
    from callserver.cdr.central import CentralCdrs

__all__ = ["CdrQuery", "CdrsApi"]

log = structlog.get_logger("callserver.admin")

_PERIOD = ("from", "to")
_LIST = frozenset({*_PERIOD, "customer", "number", "status", "limit", "offset"})
_EXPORT = frozenset({*_PERIOD, "customer", "number", "status", "format"})
_TOTALS = frozenset({*_PERIOD, "customer"})
_CHUNK = 256 * 1024
_MEDIA = {"csv": "text/csv; charset=utf-8", "jsonl": "application/x-ndjson"}

Ingest = Callable[[], Awaitable[object]]
Opener = Callable[[], AbstractContextManager[CdrRows | None]]  # called in the worker thread


class CdrQuery:
    """A checked query: the period and the filter of a request."""

    def __init__(self, request: web.Request, known: frozenset[str]) -> None:
        """Read and check the request's parameters (400 naming a bad one; 404 for a customer
        the token may not see)."""
        check_known(request, known)
        self.since, self.until = query_period(request)
        status = query_text(request, "status")
        self.filter = CdrFilter(
            customer=customer_scope(request),
            number=query_text(request, "number"),
            disposition=_disposition(status),
        )

    def records(
        self, store: CdrRows, limit: int | None = None, offset: int = 0
    ) -> Iterator[CdrRecord]:
        """The store's records of the period the filter picks, in the export's order."""
        return store.records(self.since, self.until, where=self.filter, limit=limit, offset=offset)

    def legs(self, store: CdrRows) -> Iterator[LegRow]:
        """What the totals add up of the same records."""
        return store.legs(self.since, self.until, where=self.filter)

    def count(self, store: CdrRows) -> int:
        """How many records ``records`` gives without a limit."""
        return store.count(self.since, self.until, where=self.filter)


def _disposition(status: str | None) -> Disposition | None:
    if status is None:
        return None
    try:
        return Disposition(status.upper().replace(" ", "_"))
    except ValueError:
        names = ", ".join(d.value for d in Disposition)
        raise bad("status", f"{status!r} is not a disposition ({names})") from None


class CdrsApi:
    """The handlers of ``/api/cdrs``, ``/api/cdrs/export`` and ``/api/cdrs/totals``."""

    def __init__(
        self,
        database: Callable[[], Path],
        ingest: Ingest | None = None,
        *,
        central: CentralCdrs | None = None,
    ) -> None:
        """``database``: ``<data_dir>/cdr.sqlite`` in force; ``ingest``: feeds the spool into
        the store read before a read (None: read it as it is); ``central``: read the cluster's
        PostgreSQL instead of ``database``."""
        self._database = database
        self._ingest = ingest
        self._central = central

    def add_routes(self, router: web.UrlDispatcher) -> None:
        """GET the page, the export and the totals."""
        router.add_get("/api/cdrs", self.list_cdrs)
        router.add_get("/api/cdrs/export", self.export_cdrs)
        router.add_get("/api/cdrs/totals", self.totals)

    async def list_cdrs(self, request: web.Request) -> web.Response:
        """``{"cdrs": [...], "total": n}``: ``limit`` records from ``offset``, as the export
        orders them (oldest first), each as ``callserver cdr export`` writes it."""
        query = CdrQuery(request, _LIST)
        offset, limit = page_of(request)
        opener = await self._fresh()
        with _unavailable_as_503():
            page, total = await asyncio.to_thread(self._page, opener, query, offset, limit)
        return web.json_response({"cdrs": page, "total": total, "offset": offset})

    async def export_cdrs(self, request: web.Request) -> web.StreamResponse:
        """The records as a CSV or JSON lines download, byte for byte ``callserver cdr
        export``'s for the same records."""
        query = CdrQuery(request, _EXPORT)
        fmt = query_text(request, "format") or "jsonl"
        if fmt not in _MEDIA:
            raise bad("format", f"{fmt!r} is neither csv nor jsonl")
        opener = await self._fresh()
        response = web.StreamResponse(
            headers={
                "Content-Type": _MEDIA[fmt],
                "Content-Disposition": f'attachment; filename="cdrs.{fmt}"',
            }
        )
        await response.prepare(request)
        writer = _ChunkWriter(response, asyncio.get_running_loop())
        try:
            await asyncio.to_thread(
                self._export, opener, query, "csv" if fmt == "csv" else "jsonl", writer
            )
        except ConnectionResetError:  # the client went away: nothing more to send
            return response
        except (OSError, sqlite3.Error, ValueError) as exc:
            # The status is sent: the client sees a download cut short (no last chunk).
            log.error("admin.export_failed", path=request.path, error=str(exc))
            if request.transport is not None:
                request.transport.close()
            return response
        await response.write_eof()
        return response

    async def totals(self, request: web.Request) -> web.Response:
        """``{"totals": [...]}``: per customer, calls, answered, seconds, cost, VAT, total."""
        query = CdrQuery(request, _TOTALS)
        opener = await self._fresh()
        with _unavailable_as_503():
            rows = await asyncio.to_thread(self._totals, opener, query)
        return web.json_response({"totals": rows})

    async def _fresh(self) -> Opener:
        """Have the spool fed into the store read, and what opens that store in the thread
        (503 when PostgreSQL cannot be reached)."""
        if self._ingest is not None:
            await self._ingest()
        central = self._central
        if central is None:
            path = self._database()
            return lambda: _opened(path)
        with _unavailable_as_503():
            await central.check()
        rows = central.rows(asyncio.get_running_loop())
        return lambda: contextlib.nullcontext(rows)

    @staticmethod
    def _page(
        opener: Opener, query: CdrQuery, offset: int, limit: int
    ) -> tuple[list[dict[str, object]], int]:
        with opener() as store:
            if store is None:
                return [], 0
            page = [record.to_dict() for record in query.records(store, limit, offset)]
            return page, query.count(store)

    @staticmethod
    def _export(opener: Opener, query: CdrQuery, fmt: ExportFormat, writer: _ChunkWriter) -> None:
        with opener() as store:
            export([] if store is None else query.records(store), fmt, writer)
        writer.send()

    @staticmethod
    def _totals(opener: Opener, query: CdrQuery) -> list[dict[str, object]]:
        with opener() as store:
            if store is None:
                return []
            return [row.to_dict() for row in customer_totals(query.legs(store))]


@contextlib.contextmanager
def _unavailable_as_503() -> Iterator[None]:
    """A store that cannot be read (PostgreSQL down) is 503 with what to do."""
    try:
        yield
    except StoreUnavailable as exc:
        raise web.HTTPServiceUnavailable(text=str(exc)) from None


class _opened:
    """``CdrStore`` of ``path`` for a ``with`` block, None when there is no store yet (never
    created here: a read makes no file)."""

    def __init__(self, path: Path) -> None:
        self._store = CdrStore(path) if path.is_file() else None

    def __enter__(self) -> CdrStore | None:
        return self._store

    def __exit__(self, *exc: object) -> None:
        if self._store is not None:
            self._store.close()


class _ChunkWriter(io.StringIO):
    """What ``export`` writes into, in a worker thread: every ~256 KiB goes to the response on
    the loop, the thread waiting until it is written (the client's pace)."""

    def __init__(self, response: web.StreamResponse, loop: asyncio.AbstractEventLoop) -> None:
        super().__init__()
        self._response, self._loop = response, loop
        self._parts: list[str] = []
        self._size = 0

    def write(self, text: str) -> int:
        self._parts.append(text)
        self._size += len(text)
        if self._size >= _CHUNK:
            self.send()
        return len(text)

    def send(self) -> None:
        """Write what is buffered to the response and wait until it is written."""
        if self._parts:
            data = "".join(self._parts).encode("utf-8")
            self._parts, self._size = [], 0
            asyncio.run_coroutine_threadsafe(self._response.write(data), self._loop).result()
