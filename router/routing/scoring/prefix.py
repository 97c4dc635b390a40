from __future__ import annotations

from collections.abc import Sequence

from router.routing.scoring.base import Candidate, Scorer


class PrefixScorer(Scorer):
    """Share of the request's conversation prefix a candidate probably holds in its KV cache, 0 to 1.

    The scheduler fills `prefix_match` from the prefix index (router.routing.prefix_routing): 0 for a
    backend that keeps no prefix cache (cloud APIs, so they never rank apart on it), for a worker holding
    none of it, and for a worker too busy to be worth its cache.
    """

    name = "prefix"

    def score(self, candidates: Sequence[Candidate]) -> list[float]:
        # Within [0, 1], as min(1.0, max(0.0, m)) would put it; conditionals cost less per candidate.
        matches = [c.prefix_match for c in candidates]
        return [(1.0 if m > 1.0 else m) if m > 0.0 else 0.0 for m in matches]
