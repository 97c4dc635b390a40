"""Counters that limits and budgets are kept in: in this router's memory, or in Redis for a whole fleet.

One operation does the work: `try_add` adds to several counters at once, all or none, and only when no
counter would pass its limit. It is atomic (a Lua script in Redis), so parallel requests, on one router or
on many, can never all pass a check that only one of them should pass. Corrections after the fact
(`adjust`: what a request really used, a slot given back) are not limited and never wait.
"""

from __future__ import annotations

import abc
from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Counter:
    key: str
    amount: int
    limit: int | None  # None: add without a check
    ttl_s: float  # the counter is forgotten this long after its last change


@dataclass(frozen=True)
class AddResult:
    """`failed`: the index of the first counter that would have passed its limit (nothing was added), or None.
    `values`: each counter's value after the add, or as it stood when refused."""

    failed: int | None
    values: tuple[int, ...]


class CounterStore(abc.ABC):
    @abc.abstractmethod
    async def try_add(self, counters: Sequence[Counter]) -> AddResult: ...

    @abc.abstractmethod
    async def read(self, keys: Sequence[str]) -> tuple[int, ...]: ...

    @abc.abstractmethod
    def adjust(self, changes: Sequence[Counter]) -> None:
        """Add (or subtract) without a limit; may complete in the background."""

    @abc.abstractmethod
    async def seed(self, key: str, value: int, ttl_s: float) -> None:
        """Set a counter only if it does not exist yet (a router starting beside others already counting)."""

    @abc.abstractmethod
    def describe(self) -> str: ...

    async def close(self) -> None:
        """Finish background corrections and release connections."""


def open_counters(url: str) -> CounterStore:
    """ "" or "memory": this router's memory; redis://... or rediss://...: shared."""
    if url in ("", "memory"):
        from router.accounting.counters.memory import MemoryCounters

        return MemoryCounters()
    if url.startswith(("redis://", "rediss://", "unix://")):
        from router.accounting.counters.redis_counters import RedisCounters

        return RedisCounters(url)
    raise ValueError(f"limits.store: expected redis://... or 'memory', got {url.split(':', 1)[0]}:...")
