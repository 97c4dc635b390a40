"""Counters in this router's memory: exact for one router, per router when there are several."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

from router.accounting.counters.store import AddResult, Counter, CounterStore

_PRUNE_EVERY = 1024  # changes between sweeps of expired counters


class MemoryCounters(CounterStore):
    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._values: dict[str, tuple[int, float]] = {}  # key -> (value, expires at)
        self._changes = 0

    def describe(self) -> str:
        return "this router's memory"

    def value(self, key: str) -> int:
        value, expires = self._values.get(key, (0, 0.0))
        return value if expires > self._clock() else 0

    async def read(self, keys: Sequence[str]) -> tuple[int, ...]:
        return tuple(self.value(key) for key in keys)

    async def try_add(self, counters: Sequence[Counter]) -> AddResult:
        current = [self.value(c.key) for c in counters]
        for i, (counter, value) in enumerate(zip(counters, current, strict=True)):
            if counter.limit is not None and value + counter.amount > counter.limit:
                return AddResult(i, tuple(current))
        self.adjust(counters)
        return AddResult(None, tuple(v + c.amount for v, c in zip(current, counters, strict=True)))

    def adjust(self, changes: Sequence[Counter]) -> None:
        now = self._clock()
        for change in changes:
            self._values[change.key] = (self.value(change.key) + change.amount, now + change.ttl_s)
        self._changes += 1
        if self._changes % _PRUNE_EVERY == 0:
            self._values = {k: v for k, v in self._values.items() if v[1] > now}

    async def seed(self, key: str, value: int, ttl_s: float) -> None:
        if self.value(key) == 0:
            self._values[key] = (value, self._clock() + ttl_s)
