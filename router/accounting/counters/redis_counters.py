"""Counters in Redis, shared by every router of a fleet: one Lua script checks and adds atomically.

A Redis failure lets the request through (and is logged): limits protect the fleet, they must not take
it down with the counter store. Keys carry a hash tag per tenant so a cluster keeps one request's
counters on one shard.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from urllib.parse import urlsplit

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from router.accounting.counters.store import AddResult, Counter, CounterStore

log = logging.getLogger(__name__)
_PREFIX = "modelyard:limits:"
_NO_LIMIT = -1

# KEYS: the counters. ARGV: per counter, amount, limit (-1: none) and TTL in ms.
# Returns {failed index (0: none), value of each counter}.
_TRY_ADD = """
local values = {}
for i, key in ipairs(KEYS) do
  values[i] = tonumber(redis.call('GET', key) or '0')
end
for i, key in ipairs(KEYS) do
  local limit = tonumber(ARGV[3 * i - 1])
  if limit >= 0 and values[i] + tonumber(ARGV[3 * i - 2]) > limit then
    return {i, unpack(values)}
  end
end
for i, key in ipairs(KEYS) do
  values[i] = redis.call('INCRBY', key, ARGV[3 * i - 2])
  redis.call('PEXPIRE', key, ARGV[3 * i])
end
return {0, unpack(values)}
"""
_ADJUST = """
for i, key in ipairs(KEYS) do
  redis.call('INCRBY', key, ARGV[2 * i - 1])
  redis.call('PEXPIRE', key, ARGV[2 * i])
end
return 0
"""


class RedisCounters(CounterStore):
    def __init__(self, url: str, timeout_s: float = 0.5) -> None:
        self._url = url
        self._redis = aioredis.Redis.from_url(url, socket_timeout=timeout_s, socket_connect_timeout=timeout_s)
        self._try_add = self._redis.register_script(_TRY_ADD)
        self._adjust = self._redis.register_script(_ADJUST)
        self._pending: set[asyncio.Task[None]] = set()

    def describe(self) -> str:
        parts = urlsplit(self._url)
        return f"Redis {parts.hostname}:{parts.port or 6379}{parts.path} (shared by every router)"

    async def try_add(self, counters: Sequence[Counter]) -> AddResult:
        args: list[int] = []
        for c in counters:
            args += [c.amount, _NO_LIMIT if c.limit is None else c.limit, _ms(c.ttl_s)]
        try:
            reply = await self._try_add(keys=[_PREFIX + c.key for c in counters], args=args)
        except (RedisError, OSError) as e:
            log.warning("limits: Redis unreachable, request let through unchecked: %s", e)
            return AddResult(None, tuple(0 for _ in counters))
        failed, *values = (int(v) for v in reply)
        return AddResult(failed - 1 if failed else None, tuple(values))

    async def read(self, keys: Sequence[str]) -> tuple[int, ...]:
        try:
            values = await self._redis.mget([_PREFIX + key for key in keys])
        except (RedisError, OSError) as e:
            log.warning("limits: Redis unreachable, counters read as 0: %s", e)
            return tuple(0 for _ in keys)
        return tuple(int(v) if v is not None else 0 for v in values)

    def adjust(self, changes: Sequence[Counter]) -> None:
        changes = [c for c in changes if c.amount]
        if not changes:
            return
        task = asyncio.create_task(self._apply(changes))
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    async def _apply(self, changes: Sequence[Counter]) -> None:
        args: list[int] = []
        for c in changes:
            args += [c.amount, _ms(c.ttl_s)]
        try:
            await self._adjust(keys=[_PREFIX + c.key for c in changes], args=args)
        except (RedisError, OSError) as e:
            log.warning("limits: Redis unreachable, a correction was lost: %s", e)

    async def seed(self, key: str, value: int, ttl_s: float) -> None:
        try:
            await self._redis.set(_PREFIX + key, value, px=_ms(ttl_s), nx=True)
        except (RedisError, OSError) as e:
            log.warning("limits: Redis unreachable, spend not seeded: %s", e)

    async def close(self) -> None:
        if self._pending:
            await asyncio.gather(*self._pending, return_exceptions=True)
        await self._redis.aclose()


def _ms(seconds: float) -> int:
    return max(1, int(seconds * 1000))
