"""Prefix-aware routing: score candidates by the conversation prefix they probably hold, record where it went.

A conversation's next turn, an agent loop's next step or a request with a long shared system prompt
resends a prefix the engine of the worker that served it still has cached; prefill there skips it.
The scheduler asks `annotate` for each candidate's share of the request's prefix keys (the prefix
scorer's input), then `record`s the keys on the worker the request goes to.

Balanced against load, as gateways do (SGLang's cache-aware policy falls back to the shortest queue when
the pool is imbalanced; llm-d weighs queue and KV use beside prefix): a worker gets no credit for its
cache when its utilisation is at or above `busy_threshold`, or more than `imbalance_margin` above the
least loaded candidate's, or when it holds `imbalance_ratio` times the requests of the least busy one
(plus one; SGLang's relative balance threshold), which catches piling in a pool that declares far more
capacity than it is using. The load scorer then decides, so a hot prefix (a shared system prompt) spreads
over the pool instead of piling onto its first holder, and every worker comes to hold it.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Sequence

from modelyard.v1 import inference_pb2 as pb
from modelyard.worker.v1 import worker_pb2

from core.prefix_keys import block_keys, render
from router.backends.base import Backend
from router.config.settings import PrefixConfig
from router.routing.prefix_index import PrefixIndex
from router.routing.scoring.base import Candidate


class PrefixRouting:
    def __init__(self, config: PrefixConfig, clock: Callable[[], float] = time.monotonic) -> None:
        self.config = config
        self.index = PrefixIndex(config, clock)

    def keys(self, request: pb.ChatRequest) -> list[int]:
        """The request's prefix keys, at most `max_keys_per_request` from its start: a longer prompt's tail
        is neither hashed nor stored (one huge prompt must not stall the loop or churn the index)."""
        block = self.config.block_bytes
        return block_keys(
            render(request)[: self.config.max_keys_per_request * block], block, request.cache_salt
        )

    def isolate(self, request: pb.ChatRequest, tenant: str) -> None:
        """With `isolate_tenants`, give the request its tenant's cache salt: its prefix keys here and its
        blocks in the worker's engine are then its tenant's alone (a hash: workers need not learn the name)."""
        if self.config.isolate_tenants:
            request.cache_salt = tenant_salt(tenant)

    def annotate(self, candidates: Sequence[Candidate], keys: Callable[[], Sequence[int]]) -> None:
        """Set each candidate's prefix_match; the keys are computed only if some candidate caches."""
        caching = [c for c in candidates if c.backend.keeps_prefix_cache]
        if not caching:
            return
        request_keys = tuple(keys())
        if not request_keys:
            return  # shorter than one block: nothing worth routing for
        loads = [c.utilisation for c in caching]
        requests = [_requests(c.backend) for c in caching]
        least, fewest = min(loads), min(requests)
        for candidate, load, held_requests in zip(caching, loads, requests, strict=True):
            candidate.prefix_keys = request_keys
            if (
                load >= self.config.busy_threshold
                or load > least + self.config.imbalance_margin
                or held_requests >= self.config.imbalance_ratio * (fewest + 1)
            ):
                continue  # too busy for its cache to pay; the load scorer decides
            held = self.index.match(candidate.backend.id, candidate.model, request_keys)
            candidate.prefix_match = held / len(request_keys)

    def record(self, candidate: Candidate) -> None:
        """The request goes to this candidate: its engine will hold the request's prefix next."""
        if candidate.prefix_keys:
            self.index.store(candidate.backend.id, candidate.model, candidate.prefix_keys)

    def apply(self, worker_id: str, cache: worker_pb2.CacheEvents) -> None:
        """A worker's engine reported changes to its prefix cache, in order: follow them exactly."""
        for event in cache.events:
            kind = event.WhichOneof("event")
            if kind == "stored":
                self.index.store(worker_id, cache.model, event.stored.keys)
            elif kind == "removed":
                self.index.remove(worker_id, cache.model, event.removed.keys)
            elif kind == "cleared":
                self.index.clear(worker_id, cache.model)

    def forget_worker(self, worker_id: str) -> None:
        """The worker left or (re)joined: whatever its engine held is gone or unknown."""
        self.index.clear(worker_id)


def tenant_salt(tenant: str) -> str:
    return hashlib.blake2b(b"modelyard-tenant\0" + tenant.encode(), digest_size=16).hexdigest()


def _requests(backend: Backend) -> int:
    """Requests on it: ours in flight, or all it reported (other routers' too), whichever is more."""
    report = backend.load_report()
    reported = report.running + report.waiting if report is not None else 0
    return max(backend.in_flight, reported)
