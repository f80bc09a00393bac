"""``/api/voicemail`` on a real port over real boxes: list, download, delete with MWI, scope."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import MappingProxyType
from typing import Any
from urllib.parse import quote

import pytest

from callserver.admin.voicemail_api import VoicemailApi, box_customer
from callserver.config.centrex import Centrex, Group, Subscriber
from callserver.config.voicemail import VoicemailSettings
from callserver.voicemail.box import Mailbox
from callserver.voicemail.mwi import Mwi
from callserver.voicemail.service import Voicemail
from callserver.voicemail.subscription_store import SubscriptionStore
from tests.admin.serving import Client, serving
from tests.admin.tokens import ACME, GLOBEX
from tests.calls.fakes import PinnedLoop
from tests.registrar.support import AOR, registrar
from tests.voicemail.messages import write_message
from tests.voicemail.test_mwi import PHONE, WALL, Endpoint, credentials, deliver, subscribe

T0 = datetime(2026, 11, 22, 10, 15, tzinfo=UTC)
ACME_BOX, GLOBEX_BOX = AOR.lstrip("+"), "38733200300"


def _group(name: str, customer: str) -> Group:
    return Group(id=name, customer=customer, blocks=(), channels=None, barring=(), realm="r")


def _centrex() -> Centrex:
    """acme's phone (the registrar's 201, group g) and globex's phone."""
    globex = Subscriber(
        number="+" + GLOBEX_BOX,
        group="h",
        extension="300",
        name=None,
        username="300",
        realm="r",
        ha1=MappingProxyType({}),
        barring=(),
        clir=False,
        max_contacts=None,
    )
    return Centrex(
        groups=MappingProxyType({"g": _group("g", "acme"), "h": _group("h", "globex")}),
        by_number=MappingProxyType({AOR: PHONE, globex.number: globex}),
    )


@dataclass
class WatchedEndpoint(Endpoint):
    """The notifier's endpoint, with an event set at each request it sends."""

    arrived: asyncio.Event = field(default_factory=asyncio.Event)

    def request(self, method: str, uri: object, **rest: Any) -> str:
        """Keep the request and say one arrived."""
        key = super().request(method, uri, **rest)
        self.arrived.set()
        return key


async def _notified(endpoint: WatchedEndpoint, count: int) -> None:
    """Wait (2 s at most) until the notifier has sent ``count`` NOTIFYs: each reads its box's
    summary in a worker thread first."""
    async with asyncio.timeout(2.0):
        while len(endpoint.sent) < count:
            endpoint.arrived.clear()
            await endpoint.arrived.wait()


@dataclass
class Boxes:
    """The API's client, the boxes' root, the phone's view of MWI, the boxes' facade."""

    api: Client
    root: Path
    endpoint: WatchedEndpoint
    voicemail: Voicemail


async def _subscribed(tmp_path: Path, voicemail: Voicemail) -> tuple[Mwi, WatchedEndpoint]:
    """The MWI notifier, its box summaries read from the real boxes, phone 201 subscribed
    (401, then 200 and a first NOTIFY), wired to the boxes as the server wires it."""
    loop, endpoint = PinnedLoop(), WatchedEndpoint()
    mwi = Mwi(
        endpoint=endpoint,  # type: ignore[arg-type]
        store=SubscriptionStore(tmp_path / "mwi.sqlite", wall=lambda: WALL),
        authorize=registrar().digest.authorize,
        respond=endpoint.respond,
        subscriber=lambda user: PHONE if user.lstrip("+") in ("201", ACME_BOX) else None,
        contacts=lambda aor, now: [],
        summary=voicemail.summary,
        expires=lambda: 3600,
        loop=loop,  # type: ignore[arg-type]
        wake=lambda: None,
    )
    deliver(mwi, loop, subscribe(), "k1")
    deliver(mwi, loop, subscribe(cseq=2, extra=(credentials(endpoint),)), "k2")
    assert endpoint.responses[-1].status == 200
    await _notified(endpoint, 1)
    voicemail.changed = mwi.box_changed  # as Mwi.open wires the server's boxes
    return mwi, endpoint


@pytest.fixture
async def boxes(tmp_path: Path) -> AsyncIterator[Boxes]:
    """acme's box (a new and a saved message), globex's (one new), a dialplan's mailbox."""
    root = tmp_path / "voicemail"
    write_message(root / ACME_BOX, T0, caller="38761555111", call_id="a1", seconds=0.5)
    saved = write_message(root / ACME_BOX, T0 - timedelta(days=1), call_id="a0", seconds=0.25)
    Mailbox(root / ACME_BOX).save(
        next(m for m in Mailbox(root / ACME_BOX).messages() if m.wav == saved)
    )
    write_message(root / GLOBEX_BOX, T0, call_id="g1")
    write_message(root / "office", T0, call_id="o1")
    centrex = _centrex()
    voicemail = Voicemail(
        root=lambda: root,
        settings=VoicemailSettings,
        subscriber=centrex.subscriber,
        default_language=lambda: "en",
        clock=lambda: T0,
    )
    mwi, endpoint = await _subscribed(tmp_path, voicemail)
    api = VoicemailApi(voicemail, lambda: root, lambda box: box_customer(centrex, box))
    try:
        async with serving(api) as client:
            yield Boxes(client, root, endpoint, voicemail)
    finally:
        await mwi.close()


def _ids(data: dict[str, list[dict[str, object]]]) -> list[str]:
    return [str(m["id"]) for m in data["messages"]]


async def test_the_operator_lists_every_box_newest_first(boxes: Boxes) -> None:
    """Every box's messages, newest first (those received together by box); ``total``
    counts them."""
    data = (await boxes.api.get("/api/voicemail")).json
    messages = data["messages"]
    assert [(m["box"], m["customer"], m["new"]) for m in messages] == [
        (ACME_BOX, "acme", True),
        (GLOBEX_BOX, "globex", True),
        ("office", None, True),
        (ACME_BOX, "acme", False),
    ]
    assert (data["total"], data["offset"]) == (4, 0)
    first = messages[0]
    assert first["id"] == f"{ACME_BOX}-{first['id'].split('-', 1)[1]}"
    assert (first["caller"], first["received"], first["duration"]) == (
        "38761555111",
        "2026-11-22T10:15:00Z",
        0.5,
    )
    assert first["call_id"] == "a1"


async def test_the_list_is_paged_with_the_total(boxes: Boxes) -> None:
    """``limit`` (1 to 1000) messages from ``offset`` of every box, or of one box; the
    total counts them all; a bad limit or offset is 400 naming it."""
    every = _ids((await boxes.api.get("/api/voicemail")).json)
    page = (await boxes.api.get("/api/voicemail?limit=2&offset=1")).json
    assert (_ids(page), page["total"], page["offset"]) == (every[1:3], 4, 1)
    acme = (await boxes.api.get(f"/api/voicemail?box={ACME_BOX}&offset=1", ACME)).json
    assert (acme["total"], [m["new"] for m in acme["messages"]]) == (2, [False])
    for query in ("limit=0", "limit=1001", "offset=-1"):
        answer = await boxes.api.get(f"/api/voicemail?{query}")
        name = query.split("=")[0]
        assert (answer.status, answer.json["error"].split(":")[0]) == (
            400,
            f"query parameter {name}",
        )


async def test_a_customer_sees_only_its_boxes(boxes: Boxes) -> None:
    """acme lists its box only; globex's box and the dialplan's mailbox are 404 to it."""
    acme = (await boxes.api.get("/api/voicemail", ACME)).json["messages"]
    assert {m["box"] for m in acme} == {ACME_BOX}
    mine = (await boxes.api.get(f"/api/voicemail?box={quote(AOR)}", ACME)).json
    assert _ids(mine) == [m["id"] for m in acme]
    for box in (GLOBEX_BOX, "office"):
        answer = await boxes.api.get(f"/api/voicemail?box={box}", ACME)
        assert (answer.status, answer.json) == (404, {"error": f"no voicemail box {box}"})
    other = (await boxes.api.get(f"/api/voicemail?box={GLOBEX_BOX}", GLOBEX)).json
    assert len(other["messages"]) == 1


@pytest.mark.parametrize("query", ["box=../cdr", "box=.hidden", "folder=1", "box="])
async def test_a_bad_query_is_400_naming_the_parameter(boxes: Boxes, query: str) -> None:
    """A box that is no box's name, an unknown parameter, an empty one: 400 naming it."""
    answer = await boxes.api.get(f"/api/voicemail?{query}")
    name = query.split("=")[0]
    assert (answer.status, answer.json["error"].split(":")[0]) == (400, f"query parameter {name}")


async def test_a_message_downloads_as_its_wav_and_anothers_is_404(boxes: Boxes) -> None:
    """The WAV as on disk for the box's customer; 404 for another customer and odd ids."""
    message = (await boxes.api.get("/api/voicemail", ACME)).json["messages"][0]
    answer = await boxes.api.get(f"/api/voicemail/{message['id']}", ACME)
    assert (answer.status, answer.headers["Content-Type"]) == (200, "audio/wav")
    wav = boxes.root / ACME_BOX / (message["id"].split("-", 1)[1] + ".wav")
    assert answer.body == wav.read_bytes()
    assert (await boxes.api.get(f"/api/voicemail/{message['id']}", GLOBEX)).status == 404
    name = message["id"].split("-", 1)[1]
    for wanted in (f"..-{name}", f"{ACME_BOX}-{name}.json", "x", f"../{ACME_BOX}-{name}"):
        answer = await boxes.api.get("/api/voicemail/" + quote(wanted, safe=""))
        assert answer.status == 404, wanted


async def test_a_delete_is_the_menus_and_mwi_follows(boxes: Boxes) -> None:
    """DELETE removes the message's files and the subscribed phone gets a NOTIFY of the box
    as it is now; another customer's delete is 404 and changes nothing."""
    new = (await boxes.api.get("/api/voicemail", ACME)).json["messages"][0]
    assert (await boxes.api.request("DELETE", f"/api/voicemail/{new['id']}", GLOBEX)).status == 404
    before = len(boxes.endpoint.sent)
    answer = await boxes.api.request("DELETE", f"/api/voicemail/{new['id']}", ACME)
    assert (answer.status, answer.json) == (200, {"deleted": new})
    assert not list((boxes.root / ACME_BOX).glob(new["id"].split("-", 1)[1] + ".*"))
    await _notified(boxes.endpoint, before + 1)
    notify = boxes.endpoint.sent[-1]
    assert b"Messages-Waiting: no" in notify.body and b"Voice-Message: 0/1" in notify.body
    assert (await boxes.api.request("DELETE", f"/api/voicemail/{new['id']}")).status == 404


async def test_a_dialplan_mailbox_message_is_deleted_without_mwi(boxes: Boxes) -> None:
    """The operator deletes a message of a dialplan's mailbox; no phone is notified."""
    office = (await boxes.api.get("/api/voicemail?box=office")).json["messages"][0]
    before = len(boxes.endpoint.sent)
    assert (await boxes.api.request("DELETE", f"/api/voicemail/{office['id']}")).status == 200
    await asyncio.sleep(0.1)  # a NOTIFY asked for would be sent by now (see _notified)
    assert len(boxes.endpoint.sent) == before
    empty = {"messages": [], "total": 0, "offset": 0}
    assert (await boxes.api.get("/api/voicemail?box=office")).json == empty
