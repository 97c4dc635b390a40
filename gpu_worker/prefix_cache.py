"""The engine's prefix cache as the router sees it: vLLM block events translated into prefix keys.

vLLM reports the blocks it caches as hashes of token blocks; the router keys conversations by chained
hashes of byte blocks of the message sequence (core.prefix_keys), having no tokenizer. The worker has
both sides of each request: before it submits one it registers the request's prefix keys under the
request's vLLM session id; vLLM's BlockStored events carry that session id, and each stored block's
place in the sequence follows from its parent block. A prefix key is taken as stored with the engine
block that holds the token where its bytes end (byte offsets map to token positions in proportion,
close enough for blocks of tens of tokens), and as removed when vLLM evicts that block.

Everything here is bounded: at most `max_blocks` engine blocks are tracked (the oldest forgotten
first; vLLM then may hold a few blocks the router does not hear about) and `max_requests` requests.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from modelyard.worker.v1 import worker_pb2

CacheSink = Callable[[str, Sequence[worker_pb2.CacheEvent]], None]  # model id, events in order


class CacheEventSource(Protocol):
    """An engine's prefix-cache reporting: its tracker, and where its translated events go."""

    tracker: PrefixCacheTracker
    sink: CacheSink | None


@dataclass(frozen=True)
class PromptPrefix:
    """A request's prefix keys, the length of the bytes they were cut from, and its prompt tokens."""

    keys: tuple[int, ...]
    rendered_bytes: int
    prompt_tokens: int

    def key_ends(self, block_bytes: int) -> list[int]:
        """For each key, the token position (exclusive) where its bytes end."""
        if not self.rendered_bytes or not self.prompt_tokens:
            return []
        scale = self.prompt_tokens / self.rendered_bytes
        return [
            min(self.prompt_tokens, math.ceil((i + 1) * block_bytes * scale)) for i in range(len(self.keys))
        ]


BlockHash = int | bytes  # vLLM's external block hash: a 64-bit int by default, bytes if configured so


@dataclass(frozen=True)
class Stored:
    block_hashes: Sequence[BlockHash]
    parent_block_hash: BlockHash | None
    block_size: int
    session_id: str | None


@dataclass(frozen=True)
class Removed:
    block_hashes: Sequence[BlockHash]


@dataclass(frozen=True)
class Cleared:
    pass


EngineEvent = Stored | Removed | Cleared


@dataclass
class _Block:
    index: int  # place in its sequence: block i holds tokens [i * size, (i + 1) * size)
    keys: list[int] = field(default_factory=list)  # prefix keys whose bytes end in this block


class PrefixCacheTracker:
    def __init__(self, block_bytes: int, max_blocks: int = 200_000, max_requests: int = 10_000) -> None:
        self.block_bytes = block_bytes
        self._max_blocks = max_blocks
        self._max_requests = max_requests
        self._requests: OrderedDict[str, PromptPrefix] = OrderedDict()
        self._blocks: OrderedDict[BlockHash, _Block] = OrderedDict()  # engine block hash -> where and what
        self._key_block: dict[int, BlockHash] = {}  # prefix key -> the engine block that holds it

    def begin(self, session_id: str, prefix: PromptPrefix) -> None:
        """A request is about to be submitted to the engine under this session id."""
        if not prefix.keys:
            return
        self._requests[session_id] = prefix
        while len(self._requests) > self._max_requests:
            self._requests.popitem(last=False)

    def held(self) -> list[int]:
        return list(self._key_block)

    def translate(self, events: Iterable[EngineEvent]) -> list[worker_pb2.CacheEvent]:
        """Engine events, in order, as the prefix-key events the router understands."""
        out: list[worker_pb2.CacheEvent] = []
        for event in events:
            if isinstance(event, Stored):
                keys = self._stored(event)
                if keys:
                    out.append(worker_pb2.CacheEvent(stored=worker_pb2.PrefixStored(keys=keys)))
            elif isinstance(event, Removed):
                keys = self._removed(event.block_hashes)
                if keys:
                    out.append(worker_pb2.CacheEvent(removed=worker_pb2.PrefixRemoved(keys=keys)))
            else:
                self._blocks.clear()
                self._key_block.clear()
                out.append(worker_pb2.CacheEvent(cleared=worker_pb2.CacheCleared()))
        return out

    def _stored(self, event: Stored) -> list[int]:
        if event.parent_block_hash is None:
            first = 0
        else:
            parent = self._blocks.get(event.parent_block_hash)
            if parent is None:
                return []  # a sequence whose start we never saw (forgotten, or before we listened)
            first = parent.index + 1
        prefix = self._requests.get(event.session_id or "")
        ends = prefix.key_ends(self.block_bytes) if prefix is not None else []
        stored: list[int] = []
        for offset, block_hash in enumerate(event.block_hashes):
            index = first + offset
            block = self._blocks.get(block_hash)
            if block is None:
                block = self._blocks[block_hash] = _Block(index)
            self._blocks.move_to_end(block_hash)
            if prefix is not None:
                low, high = index * event.block_size, (index + 1) * event.block_size
                for key, end in zip(prefix.keys, ends, strict=True):
                    if low < end <= high and self._key_block.get(key) != block_hash:
                        self._key_block[key] = block_hash
                        block.keys.append(key)
                        stored.append(key)
                    elif self._key_block.get(key) == block_hash:
                        stored.append(key)  # reused: vLLM reports cache hits as stored again
        while len(self._blocks) > self._max_blocks:
            evicted, block = self._blocks.popitem(last=False)
            self._forget_keys(block, evicted)
        return stored

    def _removed(self, block_hashes: Iterable[BlockHash]) -> list[int]:
        removed: list[int] = []
        for block_hash in block_hashes:
            block = self._blocks.pop(block_hash, None)
            if block is not None:
                removed += self._forget_keys(block, block_hash)
        return removed

    def _forget_keys(self, block: _Block, block_hash: BlockHash) -> list[int]:
        gone = []
        for key in block.keys:
            if self._key_block.get(key) == block_hash:  # not since stored again with another block
                self._key_block.pop(key, None)
                gone.append(key)
        return gone
