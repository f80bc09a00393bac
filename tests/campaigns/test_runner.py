"""The campaign runner: calls placed through the callable given, results and state written,
a restart that does not call an answered number again, a stop."""

from __future__ import annotations

import asyncio
import csv
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

from callserver.calls.originated import OriginatedRequest, OriginatedResult
from callserver.campaigns.file import Campaign, load_campaign
from callserver.campaigns.runner import CampaignRunner
from callserver.campaigns.store import CampaignFolder

PIN = datetime(2026, 12, 30, 9, 0, tzinfo=UTC)  # a Wednesday, 10:00 in Sarajevo: open
NUMBERS = [f"+38761{n:06d}" for n in range(6)]
CAMPAIGN = """numbers: numbers.csv
customer: acme
caller_id: "+387 33 100 200"
plan: "+387 33 100 500"
window: {timezone: Europe/Sarajevo, holidays: BA, open: {mon-fri: "09:00-17:00"}}
pacing: {calls_per_second: 20, max_in_progress: 2}
retries: {max_attempts: 2, delay: 0.05, when: [busy]}
"""


def _started(tmp_path: Path) -> CampaignFolder:
    source = tmp_path / "spring.yaml"
    source.write_text(CAMPAIGN)
    rows = "".join(f"{number},Name{n}\n" for n, number in enumerate(NUMBERS))
    (tmp_path / "numbers.csv").write_text("number,first_name\n" + rows)
    folder = CampaignFolder(tmp_path / "data" / "campaigns", "spring")
    folder.start(source, tmp_path / "numbers.csv")
    return folder


def _load(folder: CampaignFolder) -> Campaign:
    return load_campaign(
        folder.campaign_file,
        customers={"acme": 2},
        plans={"+38733100500"},
        numbers=folder.numbers_file,
    )


def _clock() -> Callable[[], datetime]:
    loop = asyncio.get_running_loop()
    start = loop.time()
    return lambda: PIN + timedelta(seconds=loop.time() - start)


class _Peer:
    """Answers by the number's last digit: 0-1 answer (and say so before the end), 2 is busy
    once, 3 busy always, 4 rings out, 5 is barred; keeps the calls placed and the peak in
    progress."""

    def __init__(self) -> None:
        self.placed: list[OriginatedRequest] = []
        self.busy_once: set[str] = set()
        self.now = 0
        self.peak = 0
        self.changed = asyncio.Event()  # a call was placed or ended

    async def __call__(self, request: OriginatedRequest) -> OriginatedResult:
        self.placed.append(request)
        self.changed.set()
        self.now += 1
        self.peak = max(self.peak, self.now)
        try:
            await asyncio.sleep(0.2)
            last = request.number[-1]
            if last in "01":
                assert request.answered is not None
                request.answered({"q1": last})  # as the call's survey notes it
                return OriginatedResult(result="answered", answers={"q1": last})
            if last == "2" and request.number not in self.busy_once:
                self.busy_once.add(request.number)
                return OriginatedResult(result="busy", sip_code=486)
            kinds = {"2": "answered", "3": "busy", "4": "no_answer", "5": "barred"}
            return OriginatedResult(result=kinds[last])  # type: ignore[arg-type]
        finally:
            self.now -= 1
            self.changed.set()

    async def wait(self, done: Callable[[], bool]) -> None:
        """Until ``done()`` holds, looked at as calls are placed and end."""
        while not done():
            self.changed.clear()
            await self.changed.wait()


def _results(folder: CampaignFolder) -> dict[str, tuple[str, str, str]]:
    with folder.results_file.open(encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    return {r["number"]: (r["result"], r["attempts"], r["answers"]) for r in rows}


async def test_campaign_runs_to_the_end_and_writes_every_result(tmp_path: Path) -> None:
    """Every number gets one result row; busy is retried once; at most 2 calls at once."""
    folder = _started(tmp_path)
    peer = _Peer()
    runner = CampaignRunner(
        folder.path.parent, load=_load, originate=peer, channels_free=lambda c: 9, clock=_clock()
    )
    runner.scan()
    await asyncio.wait_for(runner.wait_idle(), 10)
    assert _results(folder) == {
        NUMBERS[0]: ("answered", "1", '{"q1": "0"}'),
        NUMBERS[1]: ("answered", "1", '{"q1": "1"}'),
        NUMBERS[2]: ("answered", "2", ""),
        NUMBERS[3]: ("busy", "2", ""),
        NUMBERS[4]: ("no_answer", "1", ""),
        NUMBERS[5]: ("barred", "1", ""),
    }
    assert peer.peak == 2
    assert peer.placed[0].variables == {"first_name": "Name0"}
    progress = folder.read_state()["progress"]
    assert progress["status"] == "done" and progress["dialled"] == 8
    runner.scan()  # a done campaign is not started again
    assert not runner._running


async def test_restart_does_not_call_an_answered_number_again(tmp_path: Path) -> None:
    """A runner closed mid-campaign leaves state; the next one calls only what is left."""
    folder = _started(tmp_path)
    first = _Peer()
    runner = CampaignRunner(
        folder.path.parent, load=_load, originate=first, channels_free=lambda c: 1, clock=_clock()
    )
    runner.scan()
    await first.wait(lambda: folder.results_file.exists() and len(_results(folder)) >= 2)
    await runner.close()
    answered = set(_results(folder))
    second = _Peer()
    again = CampaignRunner(
        folder.path.parent, load=_load, originate=second, channels_free=lambda c: 2, clock=_clock()
    )
    again.scan()
    await asyncio.wait_for(again.wait_idle(), 10)
    assert answered <= {NUMBERS[0], NUMBERS[1]}
    assert not answered & {request.number for request in second.placed}
    assert set(_results(folder)) == set(NUMBERS)


async def test_stop_places_no_new_call(tmp_path: Path) -> None:
    """A stop marked while the first call rings ends the campaign after that call."""
    folder = _started(tmp_path)
    peer = _Peer()
    runner = CampaignRunner(
        folder.path.parent, load=_load, originate=peer, channels_free=lambda c: 1, clock=_clock()
    )
    runner.scan()
    await peer.wait(lambda: bool(peer.placed))
    folder.stop()
    runner.scan()
    await asyncio.wait_for(runner.wait_idle(), 10)
    assert len(peer.placed) == 1
    assert folder.read_state()["progress"]["status"] == "stopped"


async def test_a_call_answered_when_the_server_stops_gets_its_result(tmp_path: Path) -> None:
    """The state file says a call was answered (and its survey so far) at once; a restart
    that cut it writes it answered with that answer and never calls the number again."""
    folder = _started(tmp_path)
    told = asyncio.Event()

    async def answers_then_talks(request: OriginatedRequest) -> OriginatedResult:
        assert request.answered is not None
        request.answered({})
        request.answered({"q1": "3"})
        told.set()
        await asyncio.Event().wait()  # the call goes on until the server stops
        raise AssertionError("never ends by itself")

    runner = CampaignRunner(
        folder.path.parent,
        load=_load,
        originate=answers_then_talks,
        channels_free=lambda c: 1,
        clock=_clock(),
    )
    runner.scan()
    await asyncio.wait_for(told.wait(), 10)
    for _ in range(500):  # until the state file written at the answer is on disk
        saved = folder.read_state().get("schedule", {}).get("numbers", {}).get(NUMBERS[0], {})
        if saved.get("answers") == {"q1": "3"}:
            break
        await asyncio.sleep(0.01)
    assert saved["in_progress"] and saved["answered_at"].startswith("2026-12-30T09:00")
    await runner.close()
    assert not folder.results_file.exists()  # nothing final yet: only the state says it
    second = _Peer()
    again = CampaignRunner(
        folder.path.parent, load=_load, originate=second, channels_free=lambda c: 2, clock=_clock()
    )
    again.scan()
    await asyncio.wait_for(again.wait_idle(), 10)
    assert NUMBERS[0] not in {request.number for request in second.placed}
    assert _results(folder)[NUMBERS[0]] == ("answered", "1", '{"q1": "3"}')
    assert set(_results(folder)) == set(NUMBERS)
