from __future__ import annotations

from collections.abc import Sequence

from router.routing.scoring.base import Candidate, Scorer


class LatencyScorer(Scorer):
    """Time to first token (EWMA) relative to the fastest candidate: fastest 1, twice as slow 0.5.

    A backend not yet measured scores as the fastest, so it gets traffic and a measurement.
    """

    name = "latency"

    def score(self, candidates: Sequence[Candidate]) -> list[float]:
        measured = [c.stats.ttft_ms for c in candidates if c.stats.ttft_ms is not None]
        if not measured:
            return [1.0] * len(candidates)
        fastest = max(min(measured), 1.0)
        return [
            1.0 if c.stats.ttft_ms is None else min(1.0, fastest / max(c.stats.ttft_ms, 1.0))
            for c in candidates
        ]
