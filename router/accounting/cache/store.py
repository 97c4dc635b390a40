"""The interface of a response cache (in memory or Redis), and the choice between them."""

from __future__ import annotations

import abc

from router.config.accounting import CacheConfig


class ResponseCache(abc.ABC):
    """Bytes by key with a time to live. A cache failure is a miss, never a failed request."""

    @abc.abstractmethod
    async def get(self, key: str) -> bytes | None: ...

    @abc.abstractmethod
    async def put(self, key: str, value: bytes) -> None: ...

    async def close(self) -> None:
        """Release connections."""

    @abc.abstractmethod
    def describe(self) -> str: ...


def open_cache(config: CacheConfig) -> ResponseCache | None:
    if not config.enabled:
        return None
    if config.redis_url:
        from router.accounting.cache.redis_cache import RedisCache

        return RedisCache(config.redis_url, config.ttl_s)
    from router.accounting.cache.memory import MemoryCache

    return MemoryCache(config.max_bytes, config.ttl_s)
