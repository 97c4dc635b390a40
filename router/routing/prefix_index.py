"""Which conversation prefixes each worker probably holds in its KV cache, as prefix keys (core.prefix_keys).

Two sources feed it: the router's own routing (the keys of every chat request it sends to a worker, an
estimate: the engine may have evicted them since), and, from workers that report them, their engine's
cache events (blocks stored and removed, the whole cache cleared), which follow the real cache.

It answers both ways: how much of a request's prefix one worker holds (`match`, the prefix scorer's input),
and which workers hold the longest of it (`holders`, so a large pool scores them without walking the pool).

Memory is bounded: at most `max_keys_per_worker` keys per (worker, model) and `max_keys` in all, the
least recently used going first, and none older than `max_age_s` (an engine under any load has evicted
a prefix untouched that long). The pool-wide bound and the age sweep take the oldest key of all from one
heap of owners by their oldest key, so a store costs O(keys stored x log owners), never a walk over every
worker. A worker that leaves or comes back restarted starts empty: its engine's cache went with its process.
"""

from __future__ import annotations

import heapq
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Sequence

from router.config.settings import PrefixConfig

Owner = tuple[str, str]  # worker id, model: each model on a worker has its own engine and cache

# Measured with tracemalloc on CPython 3.11 (tests/router/test_prefix_index.py holds it to this): a 64-bit
# int, its OrderedDict entry and link, and its entry in the map from keys to their holders; the timestamps
# are shared by every key stored in the same call.
BYTES_PER_KEY = 280


class PrefixIndex:
    def __init__(
        self, limits: PrefixConfig | None = None, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.limits = limits or PrefixConfig()
        self._clock = clock
        # Per owner, key -> when last stored or routed, oldest first.
        self._owners: dict[Owner, OrderedDict[int, float]] = {}
        # Key -> the owners holding it: one owner alone (the usual case, no container), else a set.
        self._holders: dict[int, Owner | set[Owner]] = {}
        # (when the owner's oldest key was stored, owner), lazily: an entry is checked against the owner
        # when it comes to the top, and pushed again with the owner's current oldest if that moved on.
        self._heap: list[tuple[float, Owner]] = []
        self._queued: set[Owner] = set()  # owners with an entry in the heap: one each
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

    def holders(self, keys: Sequence[int], limit: int) -> list[Owner]:
        """Up to `limit` owners holding the deepest of `keys` that anyone holds: those with the longest prefix
        (a conversation's earlier turn went there). Binary search over the keys (a worker that holds key i
        was sent, or cached, the whole prefix up to it), so O(log keys) lookups."""
        low, high, found = 0, len(keys) - 1, -1
        while low <= high:
            middle = (low + high) // 2
            if self._live(keys[middle]):
                found, low = middle, middle + 1
            else:
                high = middle - 1
        if found < 0:
            return []
        return self._live(keys[found])[:limit]

    def _live(self, key: int) -> list[Owner]:
        entry = self._holders.get(key)
        if entry is None:
            return []
        oldest = self._clock() - self.limits.max_age_s
        owners = [entry] if isinstance(entry, tuple) else list(entry)
        return [o for o in owners if self._owners[o].get(key, oldest) >= oldest]

    def store(self, worker_id: str, model: str, keys: Iterable[int]) -> None:
        """The worker holds these keys now (routed there, or its engine reported them stored)."""
        owner = (worker_id, model)
        held = self._owners.get(owner)
        now = self._clock()
        if held is None:
            held = self._owners[owner] = OrderedDict()
            if owner not in self._queued:  # else its old entry stays, older than any key it will hold
                self._queued.add(owner)
                heapq.heappush(self._heap, (now, owner))
        for key in keys:
            if key in held:
                held.move_to_end(key)
            else:
                self._size += 1
                self._hold(key, owner)
            held[key] = now
        while len(held) > self.limits.max_keys_per_worker:
            self._pop_oldest(owner, held)
        self._sweep(now)

    def remove(self, worker_id: str, model: str, keys: Iterable[int]) -> None:
        """The worker's engine evicted these keys."""
        owner = (worker_id, model)
        held = self._owners.get(owner)
        if held is None:
            return
        for key in keys:
            if held.pop(key, None) is not None:
                self._size -= 1
                self._release(key, owner)

    def clear(self, worker_id: str, model: str | None = None) -> None:
        """Forget the worker (one model, or all): it left, restarted, or its engine cleared its cache."""
        for owner in [o for o in self._owners if o[0] == worker_id and model in (None, o[1])]:
            held = self._owners.pop(owner)
            self._size -= len(held)
            for key in held:
                self._release(key, owner)

    def _hold(self, key: int, owner: Owner) -> None:
        entry = self._holders.get(key)
        if entry is None:
            self._holders[key] = owner
        elif isinstance(entry, tuple):
            if entry != owner:
                self._holders[key] = {entry, owner}
        else:
            entry.add(owner)

    def _release(self, key: int, owner: Owner) -> None:
        entry = self._holders.get(key)
        if entry == owner:
            del self._holders[key]
        elif isinstance(entry, set):
            entry.discard(owner)
            if len(entry) == 1:
                self._holders[key] = next(iter(entry))

    def _pop_oldest(self, owner: Owner, held: OrderedDict[int, float]) -> None:
        key, _ = held.popitem(last=False)
        self._size -= 1
        self._release(key, owner)

    def _sweep(self, now: float) -> None:
        """Drop keys past their age, then the least recently used of all while over `max_keys`."""
        oldest_allowed = now - self.limits.max_age_s
        heap = self._heap
        while heap:
            stamp, owner = heap[0]
            held = self._owners.get(owner)
            if not held:  # cleared, or every key removed: forget the owner
                heapq.heappop(heap)
                self._queued.discard(owner)
                if held is not None:
                    del self._owners[owner]
                continue
            first = next(iter(held.values()))
            if first != stamp:  # its oldest key moved on since this entry was pushed: requeue
                heapq.heapreplace(heap, (first, owner))
                continue
            if stamp >= oldest_allowed and self._size <= self.limits.max_keys:
                return
            self._pop_oldest(owner, held)
