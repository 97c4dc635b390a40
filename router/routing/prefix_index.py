"""Which conversation prefixes each worker probably holds in its KV cache, as prefix keys (core.prefix_keys).

Two sources feed it: the router's own routing (the keys of every chat request it sends to a worker, an
estimate: the engine may have evicted them since), and, from workers that report them, their engine's
cache events (blocks stored and removed, the whole cache cleared), which follow the real cache.

Memory is bounded: at most `max_keys_per_worker` keys per (worker, model) and `max_keys` in all, the
least recently used going first, and none older than `max_age_s` (an engine under any load has evicted
a prefix untouched that long). A worker that leaves or comes back restarted starts empty: its engine's
cache went with its process.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Sequence

from router.config.settings import PrefixConfig

Owner = tuple[str, str]  # worker id, model: each model on a worker has its own engine and cache

# Measured with tracemalloc on CPython 3.11 (tests/router/test_prefix_index.py holds it to this): a 64-bit
# int, its OrderedDict entry and link; the timestamps are shared by every key stored in the same call.
BYTES_PER_KEY = 240


class PrefixIndex:
    def __init__(
        self, limits: PrefixConfig | None = None, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.limits = limits or PrefixConfig()
        self._clock = clock
        # Per owner, key -> when last stored or routed, oldest first.
        self._owners: dict[Owner, OrderedDict[int, float]] = {}
        self._size = 0

    def __len__(self) -> int:
        return self._size

    def keys_held(self, worker_id: str) -> int:
        return sum(len(keys) for (worker, _), keys in self._owners.items() if worker == worker_id)

    def match(self, worker_id: str, model: str, keys: Sequence[int]) -> int:
        """How many of `keys`, from the first, this worker holds for this model: the cached prefix."""
        held = self._owners.get((worker_id, model))
        if not held:
            return 0
        oldest = self._clock() - self.limits.max_age_s
        count = 0
        for key in keys:
            seen = held.get(key)
            if seen is None or seen < oldest:
                break
            count += 1
        return count

    def store(self, worker_id: str, model: str, keys: Iterable[int]) -> None:
        """The worker holds these keys now (routed there, or its engine reported them stored)."""
        owner = (worker_id, model)
        held = self._owners.get(owner)
        if held is None:
            held = self._owners[owner] = OrderedDict()
        now = self._clock()
        for key in keys:
            if key in held:
                held.move_to_end(key)
            else:
                self._size += 1
            held[key] = now
        self._evict(held, now)

    def remove(self, worker_id: str, model: str, keys: Iterable[int]) -> None:
        """The worker's engine evicted these keys."""
        held = self._owners.get((worker_id, model))
        if held is None:
            return
        for key in keys:
            if held.pop(key, None) is not None:
                self._size -= 1

    def clear(self, worker_id: str, model: str | None = None) -> None:
        """Forget the worker (one model, or all): it left, restarted, or its engine cleared its cache."""
        for owner in [o for o in self._owners if o[0] == worker_id and model in (None, o[1])]:
            self._size -= len(self._owners.pop(owner))

    def _evict(self, held: OrderedDict[int, float], now: float) -> None:
        while len(held) > self.limits.max_keys_per_worker:
            held.popitem(last=False)
            self._size -= 1
        oldest = now - self.limits.max_age_s
        for key in list(self._owners):  # a few owners per worker: cheap next to hashing the request
            keys = self._owners[key]
            while keys and next(iter(keys.values())) < oldest:
                keys.popitem(last=False)
                self._size -= 1
        while self._size > self.limits.max_keys:
            self._evict_oldest()
        for key in [o for o, keys in self._owners.items() if not keys]:
            del self._owners[key]

    def _evict_oldest(self) -> None:
        """Drop the least recently used key of all owners (the one whose oldest key is oldest)."""
        victim = min(
            (o for o, keys in self._owners.items() if keys),
            key=lambda o: next(iter(self._owners[o].values())),
        )
        self._owners[victim].popitem(last=False)
        self._size -= 1
