"""The shared mirror: one kind of this node's state written to Redis, other nodes' changes in.

Theory of operation
-------------------
The in-memory objects stay where they are (the registrar's bindings, the phones' service
settings, later the call centre's agents); a :class:`Mirror` of one *kind* keeps them in step
across nodes through the :class:`callserver.cluster.link.RedisLink` (records and script:
:mod:`callserver.cluster.records`):

* **Writes.** :meth:`Mirror.write` stamps each change with the wall clock (strictly increasing
  on this node) and this node's name, keeps it as *own*, and returns at once: one writer task
  sends what is pending in order, a pipeline of the put script per batch (whatever gathered
  while the previous batch was in flight), each written unless a later change of the entry is
  in force. A change another node made later comes back from the script and is applied here.
* **Changes of other nodes.** The script PUBLISHes every write on ``cs:<kind>``; the mirror's
  subscription (its own connection, ``link.client.pubsub()``: a subscribed connection can do
  nothing else) hands each change of another holder to the *sink*, the callback that applies
  it to this node's memory. Pub/sub delivers in the order Redis ran the scripts, so the latest
  arrives last. A change older than one of this node's own still in flight is ignored (it
  loses in Redis too).
* **Start.** :meth:`Mirror.start` subscribes (and waits for Redis to confirm it), then reads
  every entry (SCAN, HGETALL): the snapshot the owner seeds its memory with. Changes published
  meanwhile are held and given to the sink by :meth:`Mirror.attach`, after the snapshot, so
  the latest wins. Entries this node wrote in an earlier run are its own again.
* **Outage.** While the link is down writes stay own and pending, and the writer waits. Before
  the link is up again (``link.reconnected``) the mirror subscribes anew, writes back every
  own entry (last writer wins: a change another node made later stays, and reaches the sink),
  then reads everything and gives the sink what other nodes changed meanwhile. A Redis that
  restarted empty gets this node's own entries back the same way. A subscription lost while
  the link looked up (Redis restarted) calls ``link.resync()``, which does all of that.
  Entries missing from Redis after an outage are kept in memory: with no tombstone they were
  not deleted but lost, and bindings expire on their own.

Own entries (the latest change of each entry this node made) stay until another node's later
change of the entry arrives, until their expiry, or until :meth:`Mirror.forget` (the owner
expired them itself).
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import redis.asyncio as aioredis
import redis.exceptions
import structlog
from redis.asyncio.client import PubSub

from callserver.cluster.link import RedisLink
from callserver.cluster.records import (
    PUT_SCRIPT,
    Change,
    Entry,
    channel,
    decode,
    decoded,
    parse_message,
    put_all,
    read_all,
)

__all__ = ["Mirror", "MirrorStatistics", "Sink"]

log = structlog.get_logger("callserver.cluster")

Sink = Callable[[Entry], None]
Slot = tuple[str, str]  # (key, field)

BATCH = 500  # entries a pipeline, and applied between turns of the loop
_LOST = (  # the connection failed (as the link counts it), not an answer of Redis
    redis.exceptions.ConnectionError,
    redis.exceptions.TimeoutError,
    ConnectionError,
    TimeoutError,
    OSError,
)


@dataclass(frozen=True, slots=True)
class MirrorStatistics:
    """One kind's mirror: subscribed and the link up; changes of other nodes applied here;
    own changes written; own changes not yet written (the link down); re-reads after one."""

    kind: str
    up: bool
    received: int
    written: int
    unsent: int
    resyncs: int


class Mirror:
    """One kind of state shared through Redis; see the module docstring.

    Args:
        link: the node's Redis link (every access goes through it or its callbacks).
        kind: the name of the state (``bindings``): its keys and channel.
        node: this node's name (``cluster.node``), kept in each record.
        holder: this process's id, ``node/incarnation``: its own messages are skipped.
        wall: the wall clock, seconds (tests pin it).
        poll: seconds a read of the subscription waits before it is asked again.
        confirm: seconds Redis has to confirm a subscription.
    """

    def __init__(
        self,
        link: RedisLink,
        kind: str,
        *,
        node: str,
        holder: str,
        wall: Callable[[], float] = time.time,
        poll: float = 5.0,
        confirm: float = 1.0,
    ) -> None:
        self.kind, self.node, self.holder = kind, node, holder
        self._link, self._wall, self._poll, self._confirm = link, wall, poll, confirm
        self._channel = channel(kind)
        self._mine = f"{holder}\n".encode()
        self._sha = ""  # the put script's SHA1 once loaded
        self._sink: Sink | None = None
        self._held: list[Entry] | None = []  # changes held until attach(), or a re-read
        self._backlog: list[Entry] = []  # re-read before attach()
        self._own: dict[Slot, Entry] = {}
        self._dirty: dict[Slot, Entry] = {}  # own changes not yet written
        self._expiring: list[tuple[float, str, str]] = []  # own expiries, lazy
        self._last = 0.0
        self._pubsub: PubSub | None = None
        self._subscribed = False  # the subscription answers (lost: a re-read is due)
        self._resyncing = False
        self._listener: asyncio.Task[None] | None = None
        self._writer: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()
        self._drained = asyncio.Event()  # set while nothing own is left to write
        self._drained.set()
        self._received = self._written = self._resyncs = 0

    async def start(self) -> list[Entry]:
        """Subscribe and read every entry of the kind (none while Redis is unreachable: they
        come when it answers); later changes are held until :meth:`attach`."""
        self._link.reconnected.append(self._resync)
        self._writer = asyncio.get_running_loop().create_task(self._write_loop())
        snapshot = await self._link.run(self._open, None)
        if snapshot is None:
            return []
        log.info("cluster.mirror_loaded", kind=self.kind, entries=len(snapshot))
        return snapshot

    def attach(self, sink: Sink) -> None:
        """From now on, other nodes' changes go to ``sink``, those held first."""
        self._sink = sink
        backlog, self._backlog = self._backlog, []
        for entry in backlog:
            sink(entry)
        if not self._resyncing:  # else its end gives them, after what it read
            self._release()

    def write(self, changes: Iterable[Change]) -> None:
        """Write ``changes`` (made now, on this node) to Redis, in order, without waiting."""
        now = self._wall()
        self._prune(now)
        for change in changes:
            self._last = max(now, self._last + 1e-6)
            entry = Entry(
                key=change.key,
                field=change.field,
                stamp=self._last,
                node=self.node,
                value=change.value,
                gone=change.gone,
                expires=change.expires,
            )
            self._keep(entry)
            self._dirty[entry.key, entry.field] = entry
        self._drained.clear()
        self._wake.set()

    def forget(self, slots: Iterable[Slot]) -> None:
        """The owner dropped these entries itself (expired): no longer this node's to write."""
        for slot in slots:
            self._own.pop(slot, None)
            self._dirty.pop(slot, None)

    async def wait_written(self) -> None:
        """Until every own change made so far is written (for as long as Redis is away)."""
        await self._drained.wait()

    def statistics(self) -> MirrorStatistics:
        """Whether changes flow now, and how many did."""
        up = self._link.up and self._subscribed and self._held is None
        return MirrorStatistics(
            self.kind, up, self._received, self._written, len(self._dirty), self._resyncs
        )

    async def close(self, grace: float = 1.0) -> None:
        """Send what is pending (``grace`` seconds at most, while Redis answers), then stop."""
        with contextlib.suppress(ValueError):
            self._link.reconnected.remove(self._resync)
        if self._dirty and self._link.up:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._drained.wait(), grace)
        await _cancel(self._writer)
        await self._unsubscribe()

    # -- Redis side ---------------------------------------------------------------------------

    async def _open(self, client: aioredis.Redis) -> list[Entry]:
        await self._subscribe(client)
        entries = await read_all(client, self.kind, self._wall())
        for entry in entries:
            if entry.node == self.node:
                self._keep(entry)  # written by an earlier run of this node
        return [entry for entry in entries if not entry.gone]

    async def _resync(self, client: aioredis.Redis) -> None:
        """``link.reconnected``: subscribe, own entries back, other nodes' changes in."""
        self._resyncing = True
        try:
            await self._reread(client)
        finally:
            self._resyncing = False
        if self._sink is not None:
            self._release()
        self._wake.set()

    async def _reread(self, client: aioredis.Redis) -> None:
        await self._unsubscribe()
        self._held = [] if self._held is None else self._held
        await self._subscribe(client)
        self._prune(self._wall())
        own = list(self._own.values())
        for start in range(0, len(own), BATCH):
            batch = own[start : start + BATCH]
            try:
                await self._put(client, batch)
            except redis.exceptions.ResponseError as exc:  # refused: the writer tries again
                log.error("cluster.mirror_write_failed", kind=self.kind, error=repr(exc))
                self._dirty.update(((e.key, e.field), e) for e in batch)
        entries = await read_all(client, self.kind, self._wall())
        for n, entry in enumerate(entries, start=1):
            self._apply(entry, snapshot=True)
            if n % BATCH == 0:
                await asyncio.sleep(0)  # a large re-read leaves the calls their turns
        self._resyncs += 1
        log.info("cluster.mirror_resynced", kind=self.kind, entries=len(entries), own=len(own))

    async def _subscribe(self, client: aioredis.Redis) -> None:
        """Subscribe on a connection of its own, and wait until Redis says it did: a change
        published after that is not missed by a read that follows."""
        pubsub = client.pubsub()
        self._pubsub = pubsub
        await pubsub.subscribe(self._channel)
        while True:
            confirmed = await pubsub.get_message(timeout=self._confirm)
            if confirmed is None:
                raise TimeoutError(f"Redis did not confirm the subscription to {self._channel}")
            if confirmed["type"] == "subscribe":
                break
        self._subscribed = True
        self._listener = asyncio.get_running_loop().create_task(self._listen(pubsub))

    async def _unsubscribe(self) -> None:
        await _cancel(self._listener)
        self._listener, self._subscribed = None, False
        pubsub, self._pubsub = self._pubsub, None
        if pubsub is not None:
            with contextlib.suppress(*_LOST):
                await pubsub.aclose()  # type: ignore[no-untyped-call]  # redis-py: untyped

    async def _listen(self, pubsub: PubSub) -> None:
        try:
            while True:
                got = await pubsub.get_message(ignore_subscribe_messages=True, timeout=self._poll)
                if got is not None and got["type"] == "message":
                    self._message(got["data"])
        except (*_LOST, redis.exceptions.RedisError) as exc:
            log.warning("cluster.mirror_subscription_lost", kind=self.kind, error=repr(exc))
            self._subscribed = False
            self._link.resync()  # changes may have been missed: read everything again

    async def _put(self, client: aioredis.Redis, batch: list[Entry]) -> None:
        """One pipeline of the put script; a later change in force comes back and is applied."""
        if not self._sha:
            self._sha = await client.script_load(PUT_SCRIPT)
        answers = await put_all(client, self._sha, self.kind, self.holder, batch, self._wall())
        if any(isinstance(a, redis.exceptions.NoScriptError) for a in answers):
            self._sha = ""  # Redis restarted and lost it: load it, write the batch again
            await self._put(client, batch)
            return
        for entry, answer in zip(batch, answers, strict=True):
            if isinstance(answer, Exception):
                raise answer
            if self._dirty.get((entry.key, entry.field)) is entry:
                del self._dirty[entry.key, entry.field]
            if isinstance(answer, bytes):  # the later record in force
                later = decoded(entry.key, entry.field, answer)
                if later is not None:
                    self._apply(later)
        self._written += len(batch)

    async def _write_loop(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            while self._dirty:
                if not self._link.up:
                    await asyncio.sleep(self._link.retry)  # the re-read writes them back
                    continue
                batch = list(self._dirty.values())[:BATCH]

                async def put(client: aioredis.Redis, batch: list[Entry] = batch) -> None:
                    await self._put(client, batch)

                try:
                    await self._link.run(put, None)
                except redis.exceptions.RedisError as exc:  # refused (OOM, read-only): later
                    log.error("cluster.mirror_write_failed", kind=self.kind, error=repr(exc))
                    await asyncio.sleep(self._link.retry)
            self._drained.set()

    # -- this node's side ---------------------------------------------------------------------

    def _message(self, data: bytes) -> None:
        if data.startswith(self._mine):
            return  # our own write, already in memory
        try:
            _, key, field, record = parse_message(data)
            entry = decode(key, field, record)
        except ValueError as exc:
            log.warning("cluster.mirror_message_dropped", kind=self.kind, error=str(exc))
            return
        if self._held is not None:
            self._held.append(entry)
        else:
            self._apply(entry)

    def _apply(self, entry: Entry, *, snapshot: bool = False) -> None:
        """A change read or received: into memory unless an own change of it is as late."""
        slot = (entry.key, entry.field)
        own = self._own.get(slot)
        if own is not None:
            if own.order >= entry.order:
                return  # ours is in force (or on its way)
            self.forget([slot])
        elif snapshot and entry.node == self.node:
            self._keep(entry)  # ours from an earlier run, found on a re-read
        if entry.node != self.node:
            self._received += 1
        if self._sink is None:
            self._backlog.append(entry)
            return
        try:
            self._sink(entry)
        except Exception:  # a bug of the owner's: logged, and the next changes still come
            log.exception("cluster.mirror_change_failed", kind=self.kind, key=entry.key)

    def _release(self) -> None:
        held, self._held = self._held or [], None
        for entry in held:
            self._apply(entry)

    def _keep(self, entry: Entry) -> None:
        self._own[entry.key, entry.field] = entry
        if entry.expires is not None:
            heapq.heappush(self._expiring, (entry.expires, entry.key, entry.field))

    def _prune(self, now: float) -> None:
        """Own entries whose expiry passed: Redis dropped them, no one writes them back."""
        while self._expiring and self._expiring[0][0] <= now:
            expires, key, field = heapq.heappop(self._expiring)
            own = self._own.get((key, field))
            if own is not None and own.expires == expires:
                self.forget([(key, field)])


async def _cancel(task: asyncio.Task[None] | None) -> None:
    if task is not None and not task.done():
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
