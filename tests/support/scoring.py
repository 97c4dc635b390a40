"""The scheduler's ranking as defined, for tests that check the faster one gives the same: candidates made
afresh from one pool description, and each scorer on its own summed in the strategy's order."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from router.backends.base import Backend
from router.routing.scoring.base import Candidate
from router.routing.scoring.strategies import SCORERS
from router.routing.stats import BackendStats

# backend, its stats, estimated cost, priority, prefix match
PoolEntry = tuple[Backend, BackendStats, float, int, float]


def candidates_of(pool: Sequence[PoolEntry]) -> list[Candidate]:
    """New candidates for the pool (a ranking writes its scores into them, so each ranking gets its own)."""
    out = []
    for backend, stats, cost, priority, match in pool:
        candidate = Candidate(backend, "m", stats, cost, priority)
        candidate.prefix_match = match
        out.append(candidate)
    return out


def plain_rank(candidates: Sequence[Candidate], weights: Mapping[str, float]) -> list[Candidate]:
    """The definition: each scorer on its own, a weighted sum per candidate in the strategy's order, best first."""
    for name, weight in weights.items():
        if not weight:
            continue
        for candidate, value in zip(candidates, SCORERS[name].score(candidates), strict=True):
            candidate.components[name] = value
            candidate.score += weight * value
    return sorted(candidates, key=lambda c: (-c.score, c.priority, c.backend.in_flight, c.backend.id))
