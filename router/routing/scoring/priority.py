from __future__ import annotations

from collections.abc import Sequence

from router.routing.scoring.base import Candidate, Scorer, spread_score


class PriorityScorer(Scorer):
    """The configured order (route position or backend priority): first 1, last 0."""

    name = "priority"

    def score(self, candidates: Sequence[Candidate]) -> list[float]:
        return spread_score([float(c.priority) for c in candidates])
