"""vLLM's KV-cache events, received in the worker and turned into prefix-key events for the routers.

vLLM publishes BlockStored / BlockRemoved / AllBlocksCleared batches with its ZeroMQ event publisher
(KVEventsConfig). This module binds a SUB socket on a free loopback port and has the publisher connect
to it ("tcp://host:port" without a wildcard makes vLLM's publisher connect rather than bind), so nothing
listens beyond this machine and no port needs to be configured. Batches are decoded with vLLM's own
msgspec types, translated by a PrefixCacheTracker, and handed to the worker's cache feed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence

import msgspec
import zmq
import zmq.asyncio
from vllm.config.kv_events import KVEventsConfig
from vllm.distributed.kv_events import AllBlocksCleared, BlockRemoved, BlockStored, KVEventBatch

from gpu_worker.prefix_cache import CacheSink, Cleared, EngineEvent, PrefixCacheTracker, Removed, Stored

logger = logging.getLogger(__name__)


class KvEventListener:
    def __init__(self, model_id: str, tracker: PrefixCacheTracker) -> None:
        self.model_id = model_id
        self.tracker = tracker
        self.sink: CacheSink | None = None  # the worker's CacheFeed.publish, once the worker has one
        self._context = zmq.asyncio.Context()
        self._socket = self._context.socket(zmq.SUB)
        self._socket.setsockopt(zmq.SUBSCRIBE, b"")
        self._socket.setsockopt(zmq.LINGER, 0)
        port = self._socket.bind_to_random_port("tcp://127.0.0.1")
        self.endpoint = f"tcp://127.0.0.1:{port}"
        self._decoder = msgspec.msgpack.Decoder(type=KVEventBatch)
        self._pump: asyncio.Task[None] | None = None

    def engine_config(self) -> KVEventsConfig:
        return KVEventsConfig(enable_kv_cache_events=True, publisher="zmq", endpoint=self.endpoint)

    def ensure_started(self) -> None:
        """Start receiving on the running loop (the engine is built before the worker's loop runs)."""
        if self._pump is None or self._pump.done():
            self._pump = asyncio.get_running_loop().create_task(self._receive(), name="kv-events")

    async def _receive(self) -> None:
        while True:
            frames = await self._socket.recv_multipart()
            if len(frames) != 3:
                continue  # topic, sequence number, payload; anything else is not vLLM's
            try:
                batch = self._decoder.decode(frames[2])
            except msgspec.DecodeError as e:
                logger.warning("undecodable KV event batch from vLLM: %s", e)
                continue
            events = self.tracker.translate(_engine_events(batch.events))
            if events and self.sink is not None:
                self.sink(self.model_id, events)

    async def close(self) -> None:
        if self._pump is not None:
            self._pump.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._pump
        self._socket.close(linger=0)
        self._context.term()


def _engine_events(events: Sequence[BlockStored | BlockRemoved | AllBlocksCleared]) -> list[EngineEvent]:
    out: list[EngineEvent] = []
    for event in events:
        if isinstance(event, BlockStored):
            if event.medium in (None, "GPU"):  # offloaded copies (CPU, storage) are not this engine's cache
                out.append(
                    Stored(event.block_hashes, event.parent_block_hash, event.block_size, event.session_id)
                )
        elif isinstance(event, BlockRemoved):
            if event.medium in (None, "GPU"):
                out.append(Removed(event.block_hashes))
        elif isinstance(event, AllBlocksCleared):
            out.append(Cleared())
    return out
