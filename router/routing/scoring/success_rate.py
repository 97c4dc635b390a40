from __future__ import annotations

from collections.abc import Sequence

from router.routing.scoring.base import Candidate, Scorer


class SuccessRateScorer(Scorer):
    """The EWMA of successes: a backend failing now loses traffic quickly and wins it back as it recovers."""

    name = "success_rate"

    def score(self, candidates: Sequence[Candidate]) -> list[float]:
        return [c.stats.success_score for c in candidates]  # the rate within [0, 1], kept by the stats
