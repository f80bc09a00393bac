"""``/api/voicemail``: the messages of the voicemail boxes (list, download, delete), by customer.

Theory of operation
-------------------
The boxes are the folders of ``<data_dir>/voicemail`` (``voicemail.box.Mailbox``): a
subscriber's box is named by its number (E.164 digits) and belongs to its Centrex group's
customer; a box of a dialplan's ``voicemail`` step (named by the plan) belongs to no customer
and only an operator sees it. A message's id is ``<box>-<name>``, its name being the stem of
its files (``20261122T101500Z-1a2b3c4d``); the id is checked against that form, and the
message is then looked up among those the box lists, so an id never reaches a file outside
the box's folder.

A delete is the phone menu's (``7`` on a message, ``voicemail.menu``): ``Mailbox.delete`` off
the loop, then ``Voicemail.changed`` with the box's number, which sends MWI (RFC 3842
NOTIFYs, ``voicemail.mwi``) to the subscriber's phones when the box is a subscriber's.

Scope: a customer token sees only its customer's boxes; another customer's box or message is
404, as one that does not exist.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable
from pathlib import Path
from typing import Protocol

from aiohttp import web

from callserver.admin.answers import iso_utc, wav_download
from callserver.admin.auth import request_token, sees_customer
from callserver.admin.params import bad, check_known, page_of, query_text
from callserver.config.admin import AdminToken
from callserver.config.centrex import Centrex
from callserver.voicemail.box import Mailbox, Message

__all__ = ["VoicemailApi", "VoicemailView", "box_customer", "message_view"]

_BOX = re.compile(r"\+?[A-Za-z0-9_-][A-Za-z0-9_.-]{0,63}")
_ID = re.compile(r"(?P<box>[A-Za-z0-9_-][A-Za-z0-9_.-]{0,63})-(?P<name>\d{8}T\d{6}Z-[0-9a-f]{8})")


class VoicemailView(Protocol):
    """What the API uses of the server's boxes (``voicemail.service.Voicemail`` has it)."""

    changed: Callable[[str], None]  # a box's messages changed: MWI

    def box(self, number: str) -> Mailbox:
        """The box named ``number``."""


def box_customer(centrex: Centrex, box: str) -> str | None:
    """The customer of the box ``box``: its subscriber's group's (None: no subscriber's)."""
    subscriber = centrex.subscriber(box) if box.isdigit() else None
    group = centrex.groups.get(subscriber.group) if subscriber is not None else None
    return group.customer if group is not None else None


def message_view(box: str, customer: str | None, message: Message) -> dict[str, object]:
    """The JSON of one message of ``box``."""
    return {
        "id": f"{box}-{message.name}",
        "box": box,
        "customer": customer,
        "caller": message.caller,
        "received": iso_utc(message.time, timespec="seconds"),
        "duration": round(message.duration, 3),
        "new": message.folder == "new",
        "call_id": message.call_id or None,
    }


class VoicemailApi:
    """The handlers of ``/api/voicemail`` and ``/api/voicemail/{id}``."""

    def __init__(
        self,
        voicemail: VoicemailView,
        root: Callable[[], Path],
        customer_of: Callable[[str], str | None],
    ) -> None:
        """``root``: ``<data_dir>/voicemail`` in force; ``customer_of``: a box's customer."""
        self._voicemail = voicemail
        self._root = root
        self._customer_of = customer_of

    def add_routes(self, router: web.UrlDispatcher) -> None:
        """GET the list; GET (the WAV) and DELETE one message."""
        router.add_get("/api/voicemail", self.list_messages)
        router.add_get("/api/voicemail/{id}", self.download)
        router.add_delete("/api/voicemail/{id}", self.delete)

    async def list_messages(self, request: web.Request) -> web.Response:
        """``{"messages": [...], "total": n, "offset": n}``: ``limit`` messages from
        ``offset`` of ``box`` (else of every box the token sees), newest first."""
        check_known(request, ("box", "limit", "offset"))
        wanted = query_text(request, "box")
        if wanted is not None and not _BOX.fullmatch(wanted):
            raise bad("box", f"{wanted!r} is not a box: its number (+38733100201) or name")
        boxes = [wanted.lstrip("+")] if wanted is not None else None
        if boxes is not None and not self._visible(boxes[0]):
            raise web.HTTPNotFound(text=f"no voicemail box {wanted}")
        offset, limit = page_of(request)
        views = await asyncio.to_thread(self._messages, request_token(), boxes)
        page = views[offset : offset + limit]
        return web.json_response({"messages": page, "total": len(views), "offset": offset})

    async def download(self, request: web.Request) -> web.FileResponse:
        """The message's WAV, streamed from disk."""
        check_known(request, ())
        _, message = await self._find(request)
        return wav_download(message.wav)

    async def delete(self, request: web.Request) -> web.Response:
        """Delete the message as the box's menu does, MWI following: 200 with it as it was."""
        box, message = await self._find(request)
        await asyncio.to_thread(self._voicemail.box(box).delete, message)
        customer = self._customer_of(box)
        if customer is not None:  # a subscriber's box: its phones' MWI
            self._voicemail.changed(box)
        return web.json_response({"deleted": message_view(box, customer, message)})

    async def _find(self, request: web.Request) -> tuple[str, Message]:
        wanted = request.match_info["id"]
        match = _ID.fullmatch(wanted)
        if match is None or not self._visible(match["box"]):
            raise web.HTTPNotFound(text=f"no voicemail message with id {wanted}")
        box, name = match["box"], match["name"]
        messages = await asyncio.to_thread(self._voicemail.box(box).messages)
        for message in messages:
            if message.name == name:
                return box, message
        raise web.HTTPNotFound(text=f"no voicemail message with id {wanted}")

    def _visible(self, box: str) -> bool:
        return sees_customer(request_token(), self._customer_of(box))

    def _messages(self, token: AdminToken, boxes: list[str] | None) -> list[dict[str, object]]:
        """Every message of ``boxes`` (None: every box) the token sees, newest first."""
        if boxes is None:
            root = self._root()
            folders = sorted(root.iterdir()) if root.is_dir() else []
            boxes = [f.name for f in folders if f.is_dir() and _BOX.fullmatch(f.name)]
        found: list[tuple[str, str | None, Message]] = []
        for box in boxes:
            customer = self._customer_of(box)
            if not sees_customer(token, customer):
                continue
            found += [(box, customer, m) for m in self._voicemail.box(box).messages()]
        found.sort(key=lambda seen: (-seen[2].time.timestamp(), seen[0], seen[2].name))
        return [message_view(box, customer, message) for box, customer, message in found]
