"""A response cache in Redis, shared by several routers. Entries expire in Redis itself (PX)."""

from __future__ import annotations

import logging
from urllib.parse import urlsplit

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from router.accounting.cache.store import ResponseCache

log = logging.getLogger(__name__)
_PREFIX = "modelyard:"


class RedisCache(ResponseCache):
    def __init__(self, url: str, ttl_s: float, timeout_s: float = 0.5) -> None:
        self._url = url
        self.ttl_ms = max(1, int(ttl_s * 1000))
        # A short timeout: a slow cache must cost a request little more than a miss.
        self._redis = aioredis.Redis.from_url(url, socket_timeout=timeout_s, socket_connect_timeout=timeout_s)

    def describe(self) -> str:
        parts = urlsplit(self._url)
        return f"Redis {parts.hostname}:{parts.port or 6379}{parts.path}, TTL {self.ttl_ms / 1000:g} s"

    async def get(self, key: str) -> bytes | None:
        try:
            value = await self._redis.get(_PREFIX + key)
        except (RedisError, OSError) as e:
            log.warning("response cache: get failed, treated as a miss: %s", e)
            return None
        return value if isinstance(value, bytes) else None

    async def put(self, key: str, value: bytes) -> None:
        try:
            await self._redis.set(_PREFIX + key, value, px=self.ttl_ms)
        except (RedisError, OSError) as e:
            log.warning("response cache: put failed, answer not cached: %s", e)

    async def close(self) -> None:
        await self._redis.aclose()
