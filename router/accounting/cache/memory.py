"""A response cache in this router's memory, bounded in bytes, least recently used evicted first."""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable

from router.accounting.cache.store import ResponseCache

# Rough bookkeeping per entry (key string, tuple, dict slot), so many tiny entries still count.
_ENTRY_OVERHEAD = 200


class MemoryCache(ResponseCache):
    def __init__(self, max_bytes: int, ttl_s: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.max_bytes = max_bytes
        self.ttl_s = ttl_s
        self._clock = clock
        self._entries: OrderedDict[str, tuple[float, bytes]] = OrderedDict()  # key -> (expires, value)
        self.bytes = 0
        self.evictions = 0

    def describe(self) -> str:
        return f"in memory, {self.max_bytes} bytes, TTL {self.ttl_s:g} s"

    def __len__(self) -> int:
        return len(self._entries)

    async def get(self, key: str) -> bytes | None:
        entry = self._entries.get(key)
        if entry is None:
            return None
        expires, value = entry
        if self._clock() >= expires:
            self._remove(key)
            return None
        self._entries.move_to_end(key)
        return value

    async def put(self, key: str, value: bytes) -> None:
        size = _size(key, value)
        if size > self.max_bytes:
            return  # larger than the whole cache: keeping it would evict everything else
        if key in self._entries:
            self._remove(key)
        while self.bytes + size > self.max_bytes:
            oldest = next(iter(self._entries))
            self._remove(oldest)
            self.evictions += 1
        self._entries[key] = (self._clock() + self.ttl_s, value)
        self.bytes += size

    def _remove(self, key: str) -> None:
        _, value = self._entries.pop(key)
        self.bytes -= _size(key, value)


def _size(key: str, value: bytes) -> int:
    return len(key) + len(value) + _ENTRY_OVERHEAD
