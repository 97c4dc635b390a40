from __future__ import annotations

from collections.abc import Sequence

from router.routing.scoring.base import Candidate, Scorer


class LoadScorer(Scorer):
    """Room left: 1 minus the backend's utilisation (a worker's queue and KV cache, a cloud API's requests
    in flight against its concurrency limit)."""

    name = "load"

    def score(self, candidates: Sequence[Candidate]) -> list[float]:
        return [1.0 - c.utilisation for c in candidates]
