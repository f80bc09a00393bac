"""``/api/dialplans``: the dialplan files (list, read), checked and uploaded, scoped by customer.

A dialplan belongs to the customer whose number it is (``customers.<name>.numbers`` of
config/trunks.yaml, Centrex group blocks included); ``default`` and the plans of numbers no
customer has belong to the operator. A customer token lists, reads, validates and uploads only
its own numbers' dialplans (another customer's is 404, as one that does not exist) and may
create one for a number of its own; validating or writing the plan of a number no customer has
needs an operator token (403).

Validation is the loader's own compile in the compile context in force (``dialplan.files``),
so the answer is what a reload and ``callserver check`` would say. An upload is validated
first: with errors it is 422 and nothing changes. A valid one keeps the file it replaces under
``.previous/``, is written atomically and reloaded at once (``Dialplans.reload_file``): the
answer names the version now in force, the hash the CDRs and the ``callserver_dialplan_info``
metric name. File work runs in worker threads; uploads run one at a time.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

import structlog
from aiohttp import web

from callserver.admin.answers import iso_utc
from callserver.admin.auth import request_token, require_operator, sees_customer
from callserver.admin.bodies import json_object
from callserver.admin.params import check_known
from callserver.config.trunks import CustomerConfig
from callserver.dialplan.compiler import PlanContext
from callserver.dialplan.files import (
    FileProblem,
    TextChecked,
    check_text,
    dialplan_file,
    install,
    listed_files,
    name_problem,
)
from callserver.dialplan.loader import LoadResult
from callserver.dialplan.plan import PlanSet
from callserver.policy.numbering import number_owners as owners_of

__all__ = ["DialplansApi", "DialplansView", "number_owners"]

log = structlog.get_logger("callserver.admin")
_BODY = '{"text": "<the dialplan\'s YAML>"}'


class DialplansView(Protocol):
    """What the API reads and does of the dialplans in force (``Dialplans`` has it)."""

    @property
    def directory(self) -> Path:
        """The dialplans directory."""

    @property
    def plans(self) -> PlanSet:
        """The plan set in force."""

    def context(self) -> PlanContext:
        """The compile context in force."""

    async def reload_file(self, path: Path) -> LoadResult:
        """Compile ``path`` again and put its plan in force (a bad one keeps the old)."""


def number_owners(customers: Mapping[str, CustomerConfig]) -> dict[str, str]:
    """The customer of each number, by its dialplan name (E.164 digits without ``+``)."""
    return owners_of({name: customer.numbers for name, customer in customers.items()})


def _problems(problems: tuple[FileProblem, ...]) -> list[dict[str, Any]]:
    return [
        {"file": p.file, "line": p.line, "field": p.field, "message": p.message} for p in problems
    ]


class DialplansApi:
    """The handlers of ``/api/dialplans``, ``/api/dialplans/{name}`` and its ``/validate``."""

    def __init__(
        self,
        dialplans: DialplansView,
        owners: Callable[[], Mapping[str, str]],
        wall: Callable[[], float] = time.time,
    ) -> None:
        """``owners`` gives the customer of each number in force (``number_owners``);
        ``wall`` is the clock that names the kept previous files."""
        self._dialplans = dialplans
        self._owners = owners
        self._wall = wall
        self._writing = asyncio.Lock()

    def add_routes(self, router: web.UrlDispatcher) -> None:
        """GET the list; GET and PUT one dialplan; POST a text to validate."""
        router.add_get("/api/dialplans", self.list_dialplans)
        router.add_get("/api/dialplans/{name}", self.get_dialplan)
        router.add_put("/api/dialplans/{name}", self.upload)
        router.add_post("/api/dialplans/{name}/validate", self.validate)

    async def list_dialplans(self, request: web.Request) -> web.Response:
        """The dialplan files the token may see, by name, with the version in force."""
        check_known(request, ())
        token = request_token()
        owners = self._owners()
        plans = self._dialplans.plans.plans
        files = await asyncio.to_thread(listed_files, self._dialplans.directory)
        listed = []
        for path, modified in files:
            customer = owners.get(path.stem)
            if not sees_customer(token, customer):
                continue
            plan = plans.get(path.stem)
            listed.append(
                {
                    "name": path.stem,
                    "file": str(path),
                    "customer": customer,
                    "version": None if plan is None else plan.version,
                    "modified": _modified(modified),
                }
            )
        return web.json_response({"dialplans": listed})

    async def get_dialplan(self, request: web.Request) -> web.Response:
        """One dialplan's text as the file holds it, and the version in force."""
        check_known(request, ())
        name = self._name(request)
        customer = self._owners().get(name)
        if not sees_customer(request_token(), customer):
            raise self._not_found(name)
        try:
            path, text, modified = await asyncio.to_thread(_read, self._dialplans.directory, name)
        except FileNotFoundError:
            raise self._not_found(name) from None
        plan = self._dialplans.plans.plans.get(name)
        return web.json_response(
            {
                "name": name,
                "file": str(path),
                "customer": customer,
                "text": text,
                "version": None if plan is None else plan.version,
                "modified": _modified(modified),
            }
        )

    async def validate(self, request: web.Request) -> web.Response:
        """The loader's verdict on a text for this dialplan; nothing is written."""
        name = self._writable_name(request)
        checked = await self._check(name, await _data(request))
        return web.json_response(
            {
                "valid": not checked.errors,
                "errors": _problems(checked.errors),
                "warnings": _problems(checked.warnings),
                "version": checked.version,
            }
        )

    async def upload(self, request: web.Request) -> web.Response:
        """Validate, keep the file replaced, write atomically, reload; 422 with the errors."""
        name = self._writable_name(request)
        data = await _data(request)
        async with self._writing:
            checked = await self._check(name, data)
            if checked.errors:
                return self._refused(name, checked)
            now = datetime.fromtimestamp(self._wall(), UTC)
            directory = self._dialplans.directory
            try:
                installed = await asyncio.to_thread(install, directory, name, data, now)
            except OSError as exc:
                raise web.HTTPInternalServerError(
                    text=f"cannot write the dialplan into {directory}: {exc.strerror}; the "
                    "server's user must be able to write there (and ReadWritePaths of its "
                    "systemd unit name it); nothing changed"
                ) from exc
            await self._dialplans.reload_file(installed.path)
        plan = self._dialplans.plans.plans.get(name)
        if plan is None or plan.version != checked.version:
            raise web.HTTPInternalServerError(
                text=f"{installed.path} was written (version {checked.version}) but its reload "
                "failed: the log's dialplan.invalid says why; the version before stays in force"
            )
        previous = None if installed.previous is None else str(installed.previous)
        log.info(
            "admin.dialplan_uploaded",
            token=request_token().name,
            file=str(installed.path),
            version=plan.version,
            previous=previous,
        )
        return web.json_response(
            {
                "name": name,
                "file": str(installed.path),
                "version": plan.version,
                "previous": previous,
            }
        )

    async def _check(self, name: str, data: bytes) -> TextChecked:
        context = self._dialplans.context()
        return await asyncio.to_thread(check_text, self._dialplans.directory, name, data, context)

    def _refused(self, name: str, checked: TextChecked) -> web.Response:
        plan = self._dialplans.plans.plans.get(name)
        in_force = "no version" if plan is None else f"version {plan.version}"
        count = len(checked.errors)
        return web.json_response(
            {
                "error": f"the dialplan {name} has {count} error{'s' * (count != 1)}: fix them "
                f"and upload again; nothing was written and {in_force} stays in force",
                "errors": _problems(checked.errors),
            },
            status=422,
        )

    def _name(self, request: web.Request) -> str:
        name = request.match_info["name"]
        problem = name_problem(name)
        if problem is not None:
            raise web.HTTPBadRequest(text=problem)
        return name

    def _writable_name(self, request: web.Request) -> str:
        """The name when the token may write its dialplan: 403 for a customer token and a
        number no customer has, 404 for another customer's number."""
        name = self._name(request)
        token = request_token()
        if token.role == "operator":
            return name
        customer = self._owners().get(name)
        if customer is None:
            require_operator(f"the dialplan {name} (of a number no customer has)")
        if customer != token.customer:
            raise self._not_found(name)
        return name

    def _not_found(self, name: str) -> web.HTTPNotFound:
        return web.HTTPNotFound(text=f"no dialplan {name}: GET /api/dialplans lists yours")


def _modified(epoch: float) -> str:
    return iso_utc(datetime.fromtimestamp(epoch, UTC), timespec="seconds")


def _read(directory: Path, name: str) -> tuple[Path, str, float]:
    path = dialplan_file(directory, name)
    return path, path.read_bytes().decode("utf-8", errors="replace"), path.stat().st_mtime


async def _data(request: web.Request) -> bytes:
    """The body's ``text`` as the UTF-8 bytes of the file; 400 for anything else."""
    body = await json_object(request, _BODY)
    if not isinstance(body.get("text"), str):
        raise web.HTTPBadRequest(text=f"the body has no text: send {_BODY}")
    try:
        return str(body["text"]).encode("utf-8")
    except UnicodeEncodeError as exc:  # a lone surrogate (\ud800) JSON may hold
        raise web.HTTPBadRequest(
            text=f"the text is not UTF-8 at character {exc.start}: send the dialplan's YAML "
            "as Unicode text"
        ) from None
