"""The Lua scripts of the shared channel counters (``cluster.channels``), each atomic in Redis.

``cs:ch:<profile>`` is a hash: holder (``<node>/<incarnation>``) -> the channels that holder
holds in the profile. A holder counts only while its lease key ``cs:lease:<holder>`` exists;
every script that reads a hash deletes the entries of holders without one (a dead node, or the
previous run of a restarted node: freed, and never counted twice).

- :data:`ACQUIRE` a new call's channels: the trunk's call-rate bucket first (``cluster.rates``),
  then every profile's live count against its limit; all or nothing.
  KEYS: the n profile hashes, then the bucket if any. ARGV: holder, lease prefix, n, the n
  limits (-1: none), then rate and burst with a bucket. Answers ``{'nolease'}`` when the
  holder's own lease is gone (its entries may have been pruned: it must resync first),
  ``{'cps', seconds}``, or ``{'full'|'ok', i, total_1, own_1, ..., total_n, own_n}`` with the
  counts before the call (``i``: the first full profile, 0 when taken).
- :data:`ADJUST` channels taken or given back without a check (other legs, releases):
  KEYS: hashes; ARGV: holder, one delta each. An entry at 0 or below is deleted.
- :data:`REWRITE` the holder's entries as they are (after Redis was lost or restarted):
  KEYS: hashes; ARGV: holder, one count each (0: delete the entry).
- :data:`CENSUS` live totals and the holder's own: KEYS: hashes; ARGV: holder, lease prefix;
  answers ``{total_1, own_1, ...}``.

The scripts reach the other holders' lease keys by name (not through KEYS): they need one Redis
(with replicas if wanted), not Redis Cluster, whose slots would split them.
"""

from __future__ import annotations

from callserver.cluster.rates import BUCKET_LUA

__all__ = ["ACQUIRE", "ADJUST", "CENSUS", "REWRITE"]

_COUNT_LUA = """
local holder, prefix = ARGV[1], ARGV[2]
local alive = {}
local function live(h)
  local known = alive[h]
  if known == nil then
    known = h == holder or redis.call('EXISTS', prefix .. h) == 1
    alive[h] = known
  end
  return known
end
-- count(key): the channels of live holders in one hash and this holder's own; prunes the dead
local function count(key)
  local entries = redis.call('HGETALL', key)
  local total, own = 0, 0
  for j = 1, #entries, 2 do
    local h, c = entries[j], tonumber(entries[j + 1])
    if live(h) then
      total = total + c
      if h == holder then own = c end
    else
      redis.call('HDEL', key, h)
    end
  end
  return total, own
end
"""

ACQUIRE = (
    BUCKET_LUA
    + _COUNT_LUA
    + """
if redis.call('EXISTS', prefix .. holder) == 0 then return {'nolease'} end
local n = tonumber(ARGV[3])
if #KEYS > n then
  local wait = take_token(KEYS[n + 1], tonumber(ARGV[4 + n]), tonumber(ARGV[5 + n]))
  if wait > 0 then return {'cps', tostring(wait)} end
end
local counts, full = {}, 0
for i = 1, n do
  local total, own = count(KEYS[i])
  counts[2 * i - 1], counts[2 * i] = total, own
  local limit = tonumber(ARGV[3 + i])
  if full == 0 and limit >= 0 and total >= limit then full = i end
end
if full > 0 then return {'full', full, unpack(counts)} end
for i = 1, n do redis.call('HINCRBY', KEYS[i], holder, 1) end
return {'ok', 0, unpack(counts)}
"""
)

ADJUST = """
for i, key in ipairs(KEYS) do
  if redis.call('HINCRBY', key, ARGV[1], tonumber(ARGV[i + 1])) <= 0 then
    redis.call('HDEL', key, ARGV[1])
  end
end
return #KEYS
"""

REWRITE = """
for i, key in ipairs(KEYS) do
  local held = tonumber(ARGV[i + 1])
  if held > 0 then
    redis.call('HSET', key, ARGV[1], held)
  else
    redis.call('HDEL', key, ARGV[1])
  end
end
return #KEYS
"""

CENSUS = (
    _COUNT_LUA
    + """
local counts = {}
for i, key in ipairs(KEYS) do
  local total, own = count(key)
  counts[2 * i - 1], counts[2 * i] = total, own
end
return counts
"""
)
