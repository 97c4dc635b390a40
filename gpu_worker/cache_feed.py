"""Prefix-cache events from the worker's engines to every router it registers with.

Each registration stream subscribes for as long as it is open. A subscription starts with a snapshot
(per model: cleared, then every key held), because the router forgets a worker's cache when it says
hello; after that it gets every event in order. A stream that falls behind by `max_pending` batches
(a slow router) is not allowed to grow the worker's memory: its backlog is dropped and replaced by a
fresh snapshot, which says the same in fewer messages.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from modelyard.worker.v1 import worker_pb2

from gpu_worker.prefix_cache import PrefixCacheTracker

_KEYS_PER_EVENT = 10_000  # a snapshot of a large cache goes in events of this many keys


class CacheSubscription:
    def __init__(self, feed: CacheFeed, max_pending: int) -> None:
        self._feed = feed
        self._queue: asyncio.Queue[worker_pb2.CacheEvents] = asyncio.Queue(max_pending)
        self._resync()

    async def next(self) -> worker_pb2.CacheEvents:
        return await self._queue.get()

    def offer(self, batch: worker_pb2.CacheEvents) -> None:
        try:
            self._queue.put_nowait(batch)
        except asyncio.QueueFull:
            self._resync()

    def _resync(self) -> None:
        while not self._queue.empty():
            self._queue.get_nowait()
        for batch in self._feed.snapshot():
            self._queue.put_nowait(batch)

    def close(self) -> None:
        self._feed.unsubscribe(self)


class CacheFeed:
    def __init__(self, trackers: dict[str, PrefixCacheTracker], max_pending: int = 1000) -> None:
        """`trackers`: model id -> the tracker of the engine serving it; all key with one block size."""
        sizes = {tracker.block_bytes for tracker in trackers.values()}
        if len(sizes) > 1:
            raise ValueError(f"prefix trackers key with different block sizes: {sorted(sizes)}")
        self.block_bytes = sizes.pop() if sizes else 0
        self._trackers = trackers
        self._max_pending = max(len(trackers) + 1, max_pending)
        self._subscriptions: list[CacheSubscription] = []

    def subscribe(self) -> CacheSubscription:
        subscription = CacheSubscription(self, self._max_pending)
        self._subscriptions.append(subscription)
        return subscription

    def unsubscribe(self, subscription: CacheSubscription) -> None:
        if subscription in self._subscriptions:
            self._subscriptions.remove(subscription)

    def publish(self, model: str, events: Sequence[worker_pb2.CacheEvent]) -> None:
        if not events:
            return
        batch = worker_pb2.CacheEvents(model=model, events=events)
        for subscription in self._subscriptions:
            subscription.offer(batch)

    def snapshot(self) -> list[worker_pb2.CacheEvents]:
        batches = []
        for model, tracker in self._trackers.items():
            held = tracker.held()
            events = [worker_pb2.CacheEvent(cleared=worker_pb2.CacheCleared())]
            for start in range(0, len(held), _KEYS_PER_EVENT):
                keys = held[start : start + _KEYS_PER_EVENT]
                events.append(worker_pb2.CacheEvent(stored=worker_pb2.PrefixStored(keys=keys)))
            batches.append(worker_pb2.CacheEvents(model=model, events=events))
        return batches
