from __future__ import annotations

from collections.abc import Sequence

from router.routing.scoring.base import Candidate, Scorer, spread_score


class CostScorer(Scorer):
    """Estimated cost of this request on each candidate: cheapest 1, dearest 0."""

    name = "cost"

    def score(self, candidates: Sequence[Candidate]) -> list[float]:
        return spread_score([c.estimated_cost_usd for c in candidates])
