"""The running server's campaigns: each started one driven by its ``Schedule``.

Theory of operation
-------------------
``CampaignRunner.scan`` looks at ``<data_dir>/campaigns/``: it starts a task for each started
campaign not yet running, stopped or done, and wakes the ones ``stop`` marked so they end.
The server scans once it is ready and again on each SIGHUP (``callserver reload``, which
``callserver campaign start`` and ``stop`` send to a running server).

A campaign's task restores the scheduler from the folder (``campaigns.store``: results.csv,
then state.json), then loops: ask ``due`` for the call to place now, with the customer's free
channels; place it through ``originate`` (a task of its own); when a call ends, tell
``finished`` and write a final result to results.csv (fsync'd) before the state; sleep until
``next_wake`` or until a call ends. A call answered is told to the schedule (``answered``)
and the state written at once, and again with each survey answer, so a restart that cuts
the call gives the number its result, ``answered``, instead of calling it again. The files
are read and written from a thread, one write at a time, never on the event loop the calls'
media runs on. Time comes from ``clock`` (aware datetimes) and the sleeps from the event
loop, so a test pins the date and the clock runs on the loop's time.
A stopped campaign places no new call; its calls in progress end as they will. When the
server stops, the calls in progress get the drain time to end, then are cut.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from pathlib import Path

import structlog

from callserver.calls.admission import Admission
from callserver.calls.originated import Originate, OriginatedRequest
from callserver.campaigns.file import Campaign, load_in_force
from callserver.campaigns.schedule import Dial, Result, Rules, Schedule
from callserver.campaigns.store import CampaignFolder
from callserver.config.errors import OperatorFileError

__all__ = ["CampaignRunner", "rules_of", "server_runner"]

log = structlog.get_logger("callserver.campaigns")

Load = Callable[[CampaignFolder], Campaign]
"""Read and check a started campaign's copy (raises ``OperatorFileError``)."""


def rules_of(campaign: Campaign) -> Rules:
    """The scheduler's rules from a campaign file's ``pacing`` and ``retries``."""
    pacing, retries = campaign.settings.pacing, campaign.settings.retries
    return Rules(
        calls_per_second=pacing.calls_per_second,
        max_in_progress=pacing.max_in_progress,
        max_attempts=retries.max_attempts,
        delay=retries.delay,
        backoff=retries.backoff,
        retry_on=frozenset(retries.when),
    )


class CampaignRunner:
    """The campaigns of one data dir; see the module docstring.

    Args:
        root: ``<data_dir>/campaigns``.
        load: reads a started campaign's copy against the files in force.
        originate: places one call and returns how it ended (``calls.originated``).
        channels_free: a customer's free channels now (a large number when unlimited).
        clock: the time now, an aware datetime.
    """

    def __init__(
        self,
        root: Path,
        *,
        load: Load,
        originate: Originate,
        channels_free: Callable[[str], int],
        clock: Callable[[], datetime],
    ) -> None:
        self.root = root
        self._load = load
        self.originate = originate
        self.channels_free = channels_free
        self.clock = clock
        self._running: dict[str, tuple[asyncio.Task[None], asyncio.Event]] = {}
        self.closing = False  # the server stops: no new call

    def scan(self) -> None:
        """Start the campaigns started since the last scan; wake the stopped ones."""
        if not self.root.is_dir():
            return
        for path in sorted(self.root.iterdir()):
            folder = CampaignFolder(self.root, path.name)
            running = self._running.get(folder.name)
            if running is not None:
                running[1].set()  # a stop, or nothing: it looks again
            elif folder.in_force():
                self._start(folder)

    def _start(self, folder: CampaignFolder) -> None:
        wake = asyncio.Event()
        task = asyncio.get_running_loop().create_task(self._drive(folder, wake))
        self._running[folder.name] = (task, wake)
        task.add_done_callback(lambda _: self._running.pop(folder.name, None))

    async def wait_idle(self) -> None:
        """Return when no campaign is running (each done or stopped with no call left)."""
        while self._running:
            await asyncio.gather(*(task for task, _ in list(self._running.values())))

    async def close(self, grace: float = 0.0) -> None:
        """The server stops: no new call; the calls in progress have ``grace`` seconds to
        end, then they are cut (each counts as an attempt, tried again after the restart)."""
        self.closing = True
        tasks = [task for task, _ in self._running.values()]
        for _, wake in self._running.values():
            wake.set()
        if tasks and grace > 0:
            await asyncio.wait(tasks, timeout=grace)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def _drive(self, folder: CampaignFolder, wake: asyncio.Event) -> None:
        """Read the campaign (off the loop: its numbers may be many) and run it."""
        try:
            campaign = await asyncio.to_thread(self._load, folder)
        except OperatorFileError as exc:
            log.error("campaign.invalid", campaign=folder.name, errors=exc.errors)
            return
        campaign = dataclasses.replace(campaign, name=folder.name)
        await _Drive(self, folder, campaign, wake).run()


class _Drive:
    """One campaign's task: its schedule, its calls in progress, its writes (off the loop,
    one at a time, so a result row always precedes the state that counts it)."""

    def __init__(
        self,
        runner: CampaignRunner,
        folder: CampaignFolder,
        campaign: Campaign,
        wake: asyncio.Event,
    ) -> None:
        self.runner = runner
        self.folder = folder
        self.campaign = campaign
        self.wake = wake
        self.entries = {entry.number: entry for entry in campaign.entries}
        self.schedule = Schedule(list(self.entries), rules_of(campaign), campaign.window)
        self.calls: set[asyncio.Task[None]] = set()
        self.saving: set[asyncio.Task[None]] = set()  # the states written at an answer
        self._writing = asyncio.Lock()

    async def run(self) -> None:
        folder, schedule = self.folder, self.schedule
        saved = await asyncio.to_thread(folder.read_state)
        finals = await asyncio.to_thread(folder.read_results)
        for final in schedule.restore(saved.get("schedule", {}), finals, self.runner.clock()):
            await self._write(folder.append_result, final)
        log.info("campaign.started", campaign=self.campaign.name, numbers=len(self.entries))
        try:
            await self._loop()
        finally:
            for call in self.calls:
                call.cancel()  # the server stops: the state says they were in progress
        log.info("campaign.ended", campaign=self.campaign.name, stopped=folder.stopped())

    async def _loop(self) -> None:
        runner, schedule, customer = self.runner, self.schedule, self.campaign.settings.customer
        while not schedule.done:
            stopped = self.folder.stopped() or runner.closing
            now = runner.clock()
            free = runner.channels_free(customer)
            for dial in [] if stopped else schedule.due(now, channels_free=free):
                call = asyncio.get_running_loop().create_task(self._call(dial))
                self.calls.add(call)
                call.add_done_callback(self.calls.discard)
            if stopped:  # its calls in progress end as they will, then the campaign
                await asyncio.gather(*self.calls, return_exceptions=True)
                await self._save_last("stopped" if self.folder.stopped() else "server stopped")
                return
            await self._save("running")
            self.wake.clear()
            wake_at = schedule.next_wake(now)
            timeout = None if wake_at is None else (wake_at - runner.clock()).total_seconds()
            try:
                async with asyncio.timeout(None if timeout is None else max(timeout, 0)):
                    await self.wake.wait()
            except TimeoutError:
                pass
        await self._save_last("done")

    async def _call(self, dial: Dial) -> None:
        campaign, settings = self.campaign, self.campaign.settings
        request = OriginatedRequest(
            campaign=campaign.name,
            customer=settings.customer,
            caller_id=settings.caller_id,
            number=dial.number,
            plan=settings.plan,
            ring_timeout=settings.ring_timeout,
            variables=self.entries[dial.number].variables,
            answered=lambda answers: self._answered(dial.number, answers),
        )
        name, number = campaign.name, dial.number
        log.info("campaign.dialling", campaign=name, number=number, attempt=dial.attempt)
        try:
            outcome = await self.runner.originate(request)
        except Exception:
            log.exception("campaign.call_failed", campaign=name, number=number)
            result: Result = "failed"
            answers: dict[str, str] = {}
        else:
            result, answers = outcome.result, dict(outcome.answers)
        final = self.schedule.finished(number, result, self.runner.clock(), answers)
        if final is not None:
            await self._write(self.folder.append_result, final)
        log.info("campaign.call_ended", campaign=name, number=number, result=result)
        self.wake.set()

    def _answered(self, number: str, answers: Mapping[str, str]) -> None:
        """The call to ``number`` was answered, its survey has ``answers``: write it down."""
        self.schedule.answered(number, self.runner.clock(), answers)
        saving = asyncio.get_running_loop().create_task(self._save("running"))
        self.saving.add(saving)
        saving.add_done_callback(self.saving.discard)

    async def _save_last(self, status: str) -> None:
        """The last state, written after those an answer started (which say "running")."""
        await asyncio.gather(*self.saving)
        await self._save(status)

    async def _save(self, status: str) -> None:
        schedule = self.schedule
        snapshot, progress = schedule.snapshot(), schedule.progress()
        window = schedule.window_at(self.runner.clock())
        await self._write(self.folder.write_state, snapshot, progress, status, window)

    async def _write(self, write: Callable[..., None], *args: object) -> None:
        async with self._writing:
            writing = asyncio.ensure_future(asyncio.to_thread(write, *args))
            try:
                await asyncio.shield(writing)
            except asyncio.CancelledError:
                await writing  # cancelled (the server stops): the write under way ends first
                raise


def server_runner(
    data_dir: Path, admission: Admission, dialplans: Callable[[], Path], originate: Originate
) -> CampaignRunner:
    """The running server's runner: campaigns checked against the customers and plans in
    force, the customer's free channels from its pool, the time from the wall clock."""

    def load(folder: CampaignFolder) -> Campaign:
        trunks = admission.table.config
        return load_in_force(folder.campaign_file, trunks, dialplans(), folder.numbers_file)

    def channels_free(customer: str) -> int:
        pool = f"customer:{customer}"
        limit = admission.channels.limit(pool)
        return _UNLIMITED if limit is None else limit - admission.channels.in_use(pool)

    return CampaignRunner(
        data_dir / "campaigns",
        load=load,
        originate=originate,
        channels_free=channels_free,
        clock=lambda: datetime.now(UTC),
    )


_UNLIMITED = 1_000_000  # the free channels of a customer with no channel limit
