from __future__ import annotations

from collections.abc import Sequence

from router.backends.base import Backend
from router.backends.worker import WorkerBackend
from router.routing.scoring.base import Candidate, Scorer


class LoadScorer(Scorer):
    """Room left: for a worker, its queue against declared capacity and its KV-cache use; for a cloud
    API, requests in flight against its concurrency limit."""

    name = "load"

    def score(self, candidates: Sequence[Candidate]) -> list[float]:
        return [1.0 - utilisation(c.backend) for c in candidates]


def utilisation(backend: Backend) -> float:
    if isinstance(backend, WorkerBackend):
        # The worker's report lags by up to one interval; our own in-flight count is current.
        busy = max(backend.in_flight, backend.load.running + backend.load.waiting)
        queue = min(1.0, busy / backend.capacity)
        return max(queue, min(1.0, backend.load.kv_cache_usage))
    limit = getattr(backend, "max_concurrency", 0) or 64
    return min(1.0, backend.in_flight / limit)
