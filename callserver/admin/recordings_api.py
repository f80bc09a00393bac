"""``/api/recordings``: the call recordings on disk (list, download, delete), by customer.

Theory of operation
-------------------
The recordings are those ``callserver recordings list`` shows, picked by the same code
(``cdr.recording_files.select``: a customer, days in ``[from, to)`` by the day folder each is
in). A recording's id is its file's stem, the ``uuid`` of its call's CDR; ``call_id`` and
``start`` come from that CDR in ``cdr.sqlite`` (null until the CDR is ingested there: within
``cdr.ingest_interval`` of the call's end). ``seconds`` is read from the WAV header.

An id is checked against the form of a uuid and then only compared with the names found on
disk (``recording_files.find``): it never becomes part of a path, so no id reaches a file
outside ``<data_dir>/recordings``. The download is the file itself, streamed from disk by
aiohttp (``web.FileResponse``: ranges, no copy in memory). A delete removes the file as the
retention purge would (``recording_files.delete``: the file, its emptied folders, a note in
``cdr.sqlite``'s ``recording_purge``) and answers the recording deleted.

Scope: a customer token sees only its customer's recordings; another customer's recording is
404, as one that does not exist, and naming another customer in the list is 404.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from aiohttp import web

from callserver.admin.answers import wav_download
from callserver.admin.auth import request_token
from callserver.admin.params import (
    check_known,
    customer_scope,
    page_of,
    query_period,
    query_text,
)
from callserver.cdr.recording_files import delete, find, seconds, select
from callserver.cdr.retention import StoredRecording
from callserver.cdr.store import CdrStore

__all__ = ["RecordingsApi", "recording_view"]

_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,127}")
_LIST = frozenset({"from", "to", "customer", "limit", "offset"})


def recording_view(
    recording: StoredRecording, call: tuple[str, str] | None, length: float
) -> dict[str, object]:
    """The JSON of one recording; ``call`` is its CDR's Call-ID and start stamp, if known."""
    return {
        "id": recording.path.stem,
        "customer": recording.customer,
        "call_id": call[0] if call else None,
        "start": call[1] if call else None,
        "day": recording.day.isoformat(),
        "bytes": recording.size,
        "seconds": round(length, 3),
        "file": recording.relative,
    }


class RecordingsApi:
    """The handlers of ``/api/recordings`` and ``/api/recordings/{id}``."""

    def __init__(
        self,
        data_dir: Callable[[], Path],
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        """``data_dir``: the data directory in force; ``clock``: when a delete is noted."""
        self._data_dir = data_dir
        self._clock = clock

    def add_routes(self, router: web.UrlDispatcher) -> None:
        """GET the list; GET (the WAV) and DELETE one recording."""
        router.add_get("/api/recordings", self.list_recordings)
        router.add_get("/api/recordings/{id}", self.download)
        router.add_delete("/api/recordings/{id}", self.delete)

    async def list_recordings(self, request: web.Request) -> web.Response:
        """``{"recordings": [...], "total": n, "offset": n}``: ``limit`` of those the token
        may see from ``offset``, newest first (by day, then the file's time)."""
        check_known(request, _LIST)
        query_period(request)  # checked; the files are picked by the texts, as the command does
        customer = customer_scope(request)
        offset, limit = page_of(request)
        period = query_text(request, "from"), query_text(request, "to")
        views, total = await asyncio.to_thread(self._views, customer, *period, offset, limit)
        return web.json_response({"recordings": views, "total": total, "offset": offset})

    async def download(self, request: web.Request) -> web.FileResponse:
        """The recording's WAV, streamed from disk."""
        check_known(request, ())
        return wav_download((await self._find(request)).path)

    async def delete(self, request: web.Request) -> web.Response:
        """Delete the recording: 200 with it as it was."""
        recording = await self._find(request)
        view = await asyncio.to_thread(self._view, recording)
        await asyncio.to_thread(delete, self._data_dir(), recording, self._clock())
        return web.json_response({"deleted": view})

    async def _find(self, request: web.Request) -> StoredRecording:
        token = request_token()
        wanted = request.match_info["id"]
        if not _ID.fullmatch(wanted):
            raise web.HTTPNotFound(text=f"no recording {wanted!r}: an id is a CDR's uuid")
        customer = token.customer if token.role == "customer" else None
        found = await asyncio.to_thread(find, self._data_dir(), wanted, customer=customer)
        if found is None:
            raise web.HTTPNotFound(text=f"no recording with id {wanted}")
        return found

    def _views(
        self, customer: str | None, since: str | None, until: str | None, offset: int, limit: int
    ) -> tuple[list[dict[str, object]], int]:
        """One page of the recordings picked, newest first, and how many were picked."""
        data_dir = self._data_dir()
        picked = select(data_dir, customer=customer, since=since, until=until)
        picked.sort(key=_newest_first)
        page = picked[offset : offset + limit]
        calls = _calls_of(data_dir / "cdr.sqlite", [r.path.stem for r in page])
        views = [recording_view(r, calls.get(r.path.stem), seconds(r)) for r in page]
        return views, len(picked)

    def _view(self, recording: StoredRecording) -> dict[str, object]:
        calls = _calls_of(self._data_dir() / "cdr.sqlite", [recording.path.stem])
        return recording_view(recording, calls.get(recording.path.stem), seconds(recording))


def _newest_first(recording: StoredRecording) -> tuple[int, float, str]:
    try:
        written = recording.path.stat().st_mtime
    except FileNotFoundError:  # deleted meanwhile: last, and not on the page's own read
        written = 0.0
    return -recording.day.toordinal(), -written, recording.path.stem


def _calls_of(database: Path, uuids: list[str]) -> dict[str, tuple[str, str]]:
    if not uuids or not database.is_file():
        return {}
    with CdrStore(database) as store:
        return store.calls_of(uuids)
