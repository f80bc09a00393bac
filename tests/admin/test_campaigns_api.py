"""/api/campaigns over a real port: a campaign file in the data dir's campaigns started as
`callserver campaign start` starts it, run by the server's runner, listed with its status,
stopped; scoped by customer; a bad file is 422 with its errors."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from callserver.admin.campaigns_api import CampaignsApi
from callserver.calls.originated import OriginatedRequest, OriginatedResult
from callserver.campaigns.file import Campaign, load_in_force
from callserver.campaigns.runner import CampaignRunner
from callserver.campaigns.store import STATE_FILE, CampaignFolder
from callserver.config.trunks import TrunksFile
from tests.admin.serving import Client, serving
from tests.admin.tokens import ACME, GLOBEX, OPERATOR
from tests.campaigns.test_runner import CAMPAIGN, NUMBERS, PIN

TRUNKS = TrunksFile.model_validate({"customers": {"acme": {"channels": 2}, "globex": {}}})


def _clock() -> Callable[[], datetime]:
    """The pinned Wednesday morning, running on the loop's time."""
    loop = asyncio.get_running_loop()
    start = loop.time()
    return lambda: PIN + timedelta(seconds=loop.time() - start)


@dataclass
class Api:
    client: Client
    root: Path
    placed: list[OriginatedRequest]
    release: asyncio.Event

    async def request(
        self, method: str, path: str, token: str = OPERATOR, body: object = None
    ) -> tuple[int, Any]:
        return await self.client.json(method, path, token, body)


@pytest.fixture
async def api(tmp_path: Path) -> AsyncIterator[Api]:
    """acme's campaign file spring.yaml (six numbers, plan 38733100500) in the data dir's
    campaigns; its calls ring until ``release`` is set, then are answered."""
    root = tmp_path / "var" / "campaigns"
    root.mkdir(parents=True)
    (root / "spring.yaml").write_text(CAMPAIGN)
    rows = "".join(f"{number},Name{n}\n" for n, number in enumerate(NUMBERS))
    (root / "numbers.csv").write_text("number,first_name\n" + rows)
    plans = tmp_path / "dialplans"
    plans.mkdir()
    (plans / "38733100500.yaml").write_text("steps: {a: {hangup: }}\n")
    placed: list[OriginatedRequest] = []
    release = asyncio.Event()

    async def originate(request: OriginatedRequest) -> OriginatedResult:
        placed.append(request)
        await release.wait()
        return OriginatedResult(result="answered")

    def load(folder: CampaignFolder) -> Campaign:
        return load_in_force(folder.campaign_file, TRUNKS, plans, folder.numbers_file)

    runner = CampaignRunner(
        root,
        load=load,
        originate=originate,
        channels_free=lambda customer: 2,
        clock=_clock(),
    )
    resource = CampaignsApi(
        runner,
        data_dir=lambda: tmp_path / "var",
        trunks=lambda: TRUNKS,
        dialplans=lambda: plans,
    )
    try:
        async with serving(resource) as client:
            yield Api(client, root, placed, release)
    finally:
        release.set()
        await runner.close()


def _until(check: Callable[[], bool]) -> None:
    """Until ``check()`` holds, looked at every 20 ms (5 s at most); run in a thread."""
    deadline = time.monotonic() + 5.0
    while not check():
        assert time.monotonic() < deadline, "not so within 5 s"
        time.sleep(0.02)


def _progress(folder: CampaignFolder) -> dict[str, Any]:
    progress: dict[str, Any] = folder.read_state().get("progress") or {}
    return progress


async def test_a_started_campaign_runs_is_listed_and_stopped(api: Api) -> None:
    """POST starts spring (202), the runner places its calls at once; the list shows its
    progress for the operator and acme, not globex; a second start is 409; stop marks it."""
    status, started = await api.request("POST", "/api/campaigns", ACME, {"file": "spring.yaml"})
    assert status == 202
    assert (started["name"], started["customer"], started["numbers"]) == ("spring", "acme", 0)
    await asyncio.to_thread(_until, lambda: len(api.placed) == 2)  # max_in_progress 2
    assert api.placed[0].campaign == "spring"
    folder = CampaignFolder(api.root, "spring")
    await asyncio.to_thread(_until, lambda: _progress(folder).get("in_progress") == 2)
    _, listed = await api.request("GET", "/api/campaigns")
    (spring,) = listed["campaigns"]
    assert (spring["state"], spring["numbers"], spring["in_progress"]) == ("running", 6, 2)
    assert (await api.request("GET", "/api/campaigns", ACME))[1]["campaigns"][0]["name"] == (
        "spring"
    )
    assert (await api.request("GET", "/api/campaigns", GLOBEX))[1] == {"campaigns": []}
    again, data = await api.request("POST", "/api/campaigns", body={"file": "spring.yaml"})
    assert (again, data["error"]) == (409, "campaign spring is running; stop it first")
    assert (await api.request("POST", "/api/campaigns/spring/stop", GLOBEX))[0] == 404
    status, stopped = await api.request("POST", "/api/campaigns/spring/stop", ACME)
    assert (status, stopped["state"]) == (200, "stopped")
    assert CampaignFolder(api.root, "spring").stopped()


async def test_files_another_customer_and_bad_files_are_refused(api: Api) -> None:
    """globex cannot start acme's file (404); a path or a missing file is 400/404; a file
    with errors is 422 naming each; nothing is started."""
    assert (await api.request("POST", "/api/campaigns", GLOBEX, {"file": "spring.yaml"}))[0] == 404
    status, data = await api.request("POST", "/api/campaigns", body={"file": "../x.yaml"})
    assert status == 400 and data["error"].startswith("file:")
    assert (await api.request("POST", "/api/campaigns", body={"file": "autumn.yaml"}))[0] == 404
    (api.root / "bad.yaml").write_text(CAMPAIGN.replace("customer: acme", "customer: initech"))
    status, data = await api.request("POST", "/api/campaigns", body={"file": "bad.yaml"})
    assert status == 422
    assert any("initech" in error for error in data["errors"]), data
    assert (await api.request("GET", "/api/campaigns"))[1] == {"campaigns": []}
    assert api.placed == []


async def test_a_stop_names_a_folder_in_campaigns_only_and_reads_no_other(api: Api) -> None:
    """A name reaching out of the campaigns folder (``..%2F``: a decoded '/') is 404 before
    anything there is read: a folder beside it that looks started, with a damaged state, is
    neither read (no 500) nor stopped."""
    outside = CampaignFolder(api.root.parent, "outside")
    outside.path.mkdir()
    outside.campaign_file.write_text(CAMPAIGN)
    (outside.path / STATE_FILE).write_text("{damaged")
    for name in ("..%2Foutside", ".hidden"):
        status, data = await api.request("POST", f"/api/campaigns/{name}/stop")
        assert status == 404 and "was started" in data["error"], (name, data)
    assert not outside.stopped()
