"""What the shared mirror keeps in Redis: entries, their JSON record, the write script.

Theory of operation
-------------------
A *kind* of shared state (``bindings``, ``services``, later the agents) is a set of
:class:`Entry` values, each addressed by a ``key`` (an address-of-record, a subscriber's
number) and a ``field`` within it (a contact URI, a setting). Redis keeps one hash per key,
``cs:<kind>:<key>``, whose fields hold each entry's record, a JSON object:

* ``t``: the change's wall-clock time (s), ``n``: the node that made it;
* ``x``: its wall-clock expiry (s), absent when the data has none;
* ``v``: the data (any JSON value); absent in a *tombstone*, the record of a deletion, kept
  until the expiry of what it deleted so that a late re-write of the older value loses.

:data:`PUT_SCRIPT` writes one entry atomically, last writer wins: a record whose ``(t, n)``
is not below the one in force replaces it and is PUBLISHed on ``cs:<kind>`` as
:func:`message` (the writer's holder id first, so a node skips its own without decoding);
otherwise nothing changes and the record in force is returned. The same script drops the
hash's expired fields and sets the key's expiry to the latest of them (PEXPIREAT; none when a
field has no expiry), since Redis 7.0 has no expiry per hash field. :func:`put_all` runs it
for a batch in one pipeline; :func:`read_all` reads every entry of a kind (SCAN, HGETALL).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass

import redis.asyncio as aioredis
import structlog

__all__ = [
    "PUT_SCRIPT",
    "Change",
    "Entry",
    "channel",
    "decode",
    "decoded",
    "encode",
    "hash_key",
    "message",
    "parse_message",
    "put_all",
    "read_all",
]

log = structlog.get_logger("callserver.cluster")

READ_BATCH = 500  # keys a SCAN step and a pipeline of HGETALLs

PUT_SCRIPT = """
local field, record = ARGV[1], ARGV[2]
local stamp, node, now = tonumber(ARGV[3]), ARGV[4], tonumber(ARGV[5])
local old = redis.call('HGET', KEYS[1], field)
if old then
  local o = cjson.decode(old)
  if o.t > stamp or (o.t == stamp and o.n > node) then return old end
end
redis.call('HSET', KEYS[1], field, record)
local latest, forever = 0, false
local all = redis.call('HGETALL', KEYS[1])
for i = 1, #all, 2 do
  local x = cjson.decode(all[i + 1]).x
  if x == nil then forever = true
  elseif x <= now then redis.call('HDEL', KEYS[1], all[i])
  elseif x > latest then latest = x end
end
if forever then redis.call('PERSIST', KEYS[1])
elseif latest > 0 then redis.call('PEXPIREAT', KEYS[1], math.ceil(latest * 1000)) end
redis.call('PUBLISH', ARGV[6], ARGV[7])
return false
"""
"""KEYS[1] the hash; ARGV field, record, t, n, now (wall s), channel, message. Returns nil
when written and published, else the record in force (a later change)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Change:
    """A change this node makes to one entry: ``value`` (JSON-able) or ``gone``, with the
    wall-clock ``expires`` of the data (None: it has none)."""

    key: str
    field: str
    value: object = None
    gone: bool = False
    expires: float | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Entry:
    """One entry as the mirror holds it: a change, its wall-clock ``stamp`` and the ``node``
    that made it. Entries are ordered by ``(stamp, node)``: the later one wins."""

    key: str
    field: str
    stamp: float
    node: str
    value: object = None
    gone: bool = False
    expires: float | None = None

    @property
    def order(self) -> tuple[float, str]:
        """Last writer wins: the greater order is in force."""
        return (self.stamp, self.node)


def channel(kind: str) -> str:
    """The channel changes of ``kind`` are published on."""
    return f"cs:{kind}"


def hash_key(kind: str, key: str) -> str:
    """The Redis hash of ``key`` of ``kind``."""
    return f"cs:{kind}:{key}"


def encode(entry: Entry) -> str:
    """The JSON record of ``entry`` (see the module docstring)."""
    record: dict[str, object] = {"t": entry.stamp, "n": entry.node}
    if entry.expires is not None:
        record["x"] = entry.expires
    if not entry.gone:
        record["v"] = entry.value
    return json.dumps(record, separators=(",", ":"))


def decode(key: str, field: str, record: str | bytes) -> Entry:
    """The entry a record holds.

    Raises:
        ValueError: not a record of ours (JSON without ``t`` and ``n``).
    """
    data = json.loads(record)
    if not isinstance(data, dict) or "t" not in data or "n" not in data:
        raise ValueError(f"{key} {field}: not a record: {record!r:.80}")
    expires = data.get("x")
    return Entry(
        key=key,
        field=field,
        stamp=float(data["t"]),
        node=str(data["n"]),
        value=data.get("v"),
        gone="v" not in data,
        expires=None if expires is None else float(expires),
    )


def message(holder: str, entry: Entry, record: str) -> str:
    """What is published for a written ``entry``: holder, key, field and record, a line each
    (none of them holds a line break: SIP URIs and numbers cannot)."""
    return f"{holder}\n{entry.key}\n{entry.field}\n{record}"


def parse_message(data: bytes) -> tuple[str, str, str, str]:
    """Holder, key, field and record of a published message.

    Raises:
        ValueError: not four parts.
    """
    holder, key, field, record = data.decode().split("\n", 3)
    return holder, key, field, record


def decoded(key: str, field: str, record: bytes | str) -> Entry | None:
    """The entry of a record, or None (logged) for one that is not a record of ours."""
    try:
        return decode(key, field, record)
    except ValueError as exc:
        log.warning("cluster.mirror_record_skipped", key=key, field=field, error=str(exc))
        return None


async def read_all(client: aioredis.Redis, kind: str, now: float) -> list[Entry]:
    """Every entry of ``kind`` unexpired at ``now`` (wall clock), tombstones included."""
    prefix = hash_key(kind, "")
    keys: list[str] = []
    entries: list[Entry] = []
    async for name in client.scan_iter(match=f"{prefix}*", count=READ_BATCH):
        keys.append(name.decode())
    for start in range(0, len(keys), READ_BATCH):
        batch = keys[start : start + READ_BATCH]
        async with client.pipeline(transaction=False) as pipe:
            for name in batch:
                pipe.hgetall(name)
            hashes = await pipe.execute()
        for name, fields in zip(batch, hashes, strict=True):
            for field, record in fields.items():
                entry = decoded(name[len(prefix) :], field.decode(), record)
                if entry is not None and (entry.expires is None or entry.expires > now):
                    entries.append(entry)
    return entries


async def put_all(
    client: aioredis.Redis,
    sha: str,
    kind: str,
    holder: str,
    batch: Sequence[Entry],
    now: float,
) -> list[object]:
    """:data:`PUT_SCRIPT` (loaded as ``sha``) for each entry of ``batch``, written by
    ``holder`` at ``now`` (wall clock), in one pipeline: each answer, an error included."""
    async with client.pipeline(transaction=False) as pipe:
        for entry in batch:
            record = encode(entry)
            pipe.evalsha(
                sha,
                1,
                hash_key(kind, entry.key),
                *(entry.field, record, repr(entry.stamp), entry.node, repr(now)),
                *(channel(kind), message(holder, entry, record)),
            )
        return list(await pipe.execute(raise_on_error=False))
