"""``/api/campaigns``: outbound campaigns' progress, started and stopped as the command does.

``GET`` lists every campaign ever started (``<data_dir>/campaigns/<name>/``) with what
``callserver campaign status`` prints, as JSON. ``POST /api/campaigns {"file": NAME}`` starts
the campaign file ``<data_dir>/campaigns/NAME`` (a ``.yaml`` file put there beforehand) as
``callserver campaign start`` does (``campaigns.operations.start_campaign``: checked against
the customers and dialplans in force, copied to its folder) and has the running server pick
it up at once (``CampaignRunner.scan``, which the command reaches with SIGHUP); 202 with its
status. ``POST /api/campaigns/{name}/stop`` stops it as ``callserver campaign stop`` does.
The file work runs in a thread. A customer token sees and starts its own customer's
campaigns only (another's is 404, as one that does not exist).
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable
from dataclasses import fields
from pathlib import Path
from typing import Any, Protocol

from aiohttp import web

from callserver.admin.auth import request_token, sees_customer
from callserver.admin.bodies import json_object
from callserver.admin.params import check_known
from callserver.campaigns.operations import (
    CAMPAIGNS_DIR,
    CampaignStatus,
    read_status,
    start_campaign,
    started_folders,
    stop_campaign,
)
from callserver.campaigns.store import CampaignFolder
from callserver.config.errors import OperatorFileError
from callserver.config.settings import read_yaml
from callserver.config.trunks import TrunksFile

__all__ = ["CampaignsApi", "Scanner"]

_FILE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}\.ya?ml")


class Scanner(Protocol):
    """The server's campaigns (``campaigns.runner.CampaignRunner``)."""

    def scan(self) -> None:
        """Start the campaigns started since the last scan; wake the stopped ones."""


class CampaignsApi:
    """The handlers of ``/api/campaigns``.

    Args:
        runner: the running server's campaigns.
        data_dir: the data dir in force.
        trunks: trunks.yaml in force (the customers a campaign is checked against).
        dialplans: the dialplans directory in force.
    """

    def __init__(
        self,
        runner: Scanner,
        *,
        data_dir: Callable[[], Path],
        trunks: Callable[[], TrunksFile],
        dialplans: Callable[[], Path],
    ) -> None:
        self._runner, self._data_dir = runner, data_dir
        self._trunks, self._dialplans = trunks, dialplans

    def add_routes(self, router: web.UrlDispatcher) -> None:
        """GET the list, POST a start, POST a stop."""
        router.add_get("/api/campaigns", self.list_campaigns)
        router.add_post("/api/campaigns", self.start)
        router.add_post("/api/campaigns/{name}/stop", self.stop)

    async def list_campaigns(self, request: web.Request) -> web.Response:
        """Every started campaign the token may see, by name."""
        check_known(request, ())
        token = request_token()
        shown = await asyncio.to_thread(_statuses, self._root())
        mine = [_json(s) for s in shown if sees_customer(token, s.customer)]
        return web.json_response({"campaigns": mine})

    async def start(self, request: web.Request) -> web.Response:
        """Check and start the campaign file named in the body; 202 with its status."""
        source = self._source(await _file(request))
        customer = await asyncio.to_thread(_customer_of, source)
        if not sees_customer(request_token(), customer):
            raise web.HTTPNotFound(text=f"no campaign file {source.name} in {source.parent}")
        trunks, plans = self._trunks(), self._dialplans()
        try:
            campaign = await asyncio.to_thread(start_campaign, self._root(), source, trunks, plans)
        except OperatorFileError as exc:
            return web.json_response(
                {"error": f"{source.name} has errors: correct them", "errors": exc.errors},
                status=422,
            )
        except ValueError as exc:
            raise web.HTTPConflict(text=str(exc)) from None
        self._runner.scan()
        folder = CampaignFolder(self._root(), campaign.name)
        return web.json_response(_json(await asyncio.to_thread(read_status, folder)), status=202)

    async def stop(self, request: web.Request) -> web.Response:
        """Stop a started campaign: no new call; its status."""
        name = request.match_info["name"]
        missing = web.HTTPNotFound(text=f"no campaign {name} was started (GET /api/campaigns)")
        if "/" in name or name.startswith("."):  # checked before any file is read
            raise missing
        folder = CampaignFolder(self._root(), name)
        shown = await asyncio.to_thread(_status_or_none, folder)
        if shown is None or not sees_customer(request_token(), shown.customer):
            raise missing
        await asyncio.to_thread(stop_campaign, folder)
        self._runner.scan()
        return web.json_response(_json(await asyncio.to_thread(read_status, folder)))

    def _root(self) -> Path:
        return self._data_dir() / CAMPAIGNS_DIR

    def _source(self, name: str) -> Path:
        if not _FILE.fullmatch(name):
            raise web.HTTPBadRequest(
                text=f"file: the name of a .yaml file in {self._root()} (no folders)"
            )
        return self._root() / name


async def _file(request: web.Request) -> str:
    body = await json_object(request, '{"file": "spring.yaml"}')
    if set(body) != {"file"} or not isinstance(body["file"], str):
        raise web.HTTPBadRequest(text='file: the body is {"file": NAME}, NAME a .yaml file name')
    return body["file"]


def _customer_of(source: Path) -> str | None:
    """The customer a campaign file names; 404 when there is no such file."""
    if not source.is_file():
        raise web.HTTPNotFound(text=f"no campaign file {source.name} in {source.parent}")
    try:
        data, _ = read_yaml(source, "a campaign's fields")
    except OperatorFileError:
        return None  # start_campaign reports what is wrong with it
    customer = data.get("customer")
    return customer if isinstance(customer, str) else None


def _statuses(root: Path) -> list[CampaignStatus]:
    return [read_status(folder) for folder in started_folders(root)]


def _status_or_none(folder: CampaignFolder) -> CampaignStatus | None:
    return read_status(folder) if folder.path.is_dir() and folder.started() else None


def _json(status: CampaignStatus) -> dict[str, Any]:
    data: dict[str, Any] = {f.name: getattr(status, f.name) for f in fields(status)}
    data["results"] = dict(status.results)
    data["window"] = None if status.window is None else dict(status.window)
    data["results_file"] = None if status.results_file is None else str(status.results_file)
    return data
