"""Strategies are weight sets over the scorers, looked up by name; weights can change at run time."""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from types import MappingProxyType
from typing import NamedTuple

from modelyard.v1 import inference_pb2 as pb

from core import wire
from core.errors import InvalidArgument
from router.routing.scoring import fused
from router.routing.scoring.base import Candidate, Scorer
from router.routing.scoring.cost import CostScorer
from router.routing.scoring.latency import LatencyScorer
from router.routing.scoring.load import LoadScorer
from router.routing.scoring.prefix import PrefixScorer
from router.routing.scoring.priority import PriorityScorer
from router.routing.scoring.success_rate import SuccessRateScorer

_LATENCY = LatencyScorer()
# Read-only: `rank` computes these very scorers in one pass (scoring.fused), so none may be swapped out.
SCORERS: Mapping[str, Scorer] = MappingProxyType(
    {
        s.name: s
        for s in (SuccessRateScorer(), _LATENCY, LoadScorer(), CostScorer(), PriorityScorer(), PrefixScorer())
    }
)
assert set(SCORERS) == set(fused.SCORERS)

# A dominant weight makes a strategy strict: the rest only break its ties (each scorer is in [0, 1]).
DEFAULT_STRATEGIES: dict[str, dict[str, float]] = {
    # prefix 3 beside load 2, as llm-d's scheduler weighs them: a cached prefix is worth more than an
    # even spread, until the holder is busy (router.routing.prefix_routing withholds its credit then).
    "composite": {"success_rate": 3, "latency": 2, "load": 2, "cost": 1, "priority": 1, "prefix": 3},
    "fallback": {"priority": 100, "success_rate": 1, "load": 1},
    "priority": {"priority": 100, "success_rate": 1, "load": 1},
    "cost_optimized": {"cost": 100, "success_rate": 2, "latency": 1, "load": 1},
    "latency": {"latency": 100, "success_rate": 2, "load": 1},
    "least_loaded": {"load": 100, "success_rate": 2, "latency": 1},
}


class WeightSet(NamedTuple):
    """A strategy's weights as `rank` walks them: the scorers with a weight, in the strategy's order (the
    order fixes how the weighted sum adds up), built once per change of weights rather than per request."""

    terms: tuple[tuple[str, float], ...]  # (scorer name, weight); each scorer found in SCORERS as it ranks
    prefix: bool  # the prefix scorer counts: the request's prefix keys are worth computing
    names: tuple[str, ...]  # the scorers of `terms`, in order: what a candidate's score is made of
    fused: fused.Plan | None  # the terms for one pass over the candidates; None: one scorer at a time

    @classmethod
    def of(cls, weights: Mapping[str, float]) -> WeightSet:
        terms = tuple((name, weight) for name, weight in weights.items() if weight)
        names = tuple(name for name, _ in terms)
        return cls(terms, "prefix" in names, names, fused.Plan.of(terms))


def strategy_name(value: int) -> str | None:
    """The API's Strategy enum as the name the config uses; None for UNSPECIFIED (the default)."""
    if not value:
        return None
    name = wire.enum_name(pb.Strategy, value)
    if not name:
        raise InvalidArgument(
            f"strategy: unknown value {value}; known: {', '.join(wire.enum_names(pb.Strategy))}"
        )
    return name


class Strategies:
    def __init__(
        self, default: str = "composite", overrides: Mapping[str, Mapping[str, float]] | None = None
    ):
        self._weights = copy.deepcopy(DEFAULT_STRATEGIES)
        self._sets: dict[str, WeightSet] = {}  # by name, dropped whenever weights change
        for name, weights in (overrides or {}).items():
            self.set_weights(name, weights)
        self.default = self.check(default)

    def check(self, name: str) -> str:
        if name not in self._weights:
            raise InvalidArgument(
                f"strategy: unknown strategy {name!r}; known: {', '.join(sorted(self._weights))}"
            )
        return name

    def weights(self, name: str | None = None) -> dict[str, float]:
        return dict(self._weights[self.check(name or self.default)])

    def weight_set(self, name: str | None = None) -> WeightSet:
        """The named strategy's weights (the default's for None) as `rank` reads them; InvalidArgument for an
        unknown name, as `check` raises. A dict lookup per request once built."""
        found = self._sets.get(name or self.default)
        if found is None:
            key = self.check(name or self.default)
            found = self._sets[key] = WeightSet.of(self._weights[key])
        return found

    def update_weights(self, name: str, changes: Mapping[str, float], reset: bool = False) -> None:
        """Change the named scorers' weights and keep the others (after restoring the built-ins with `reset`)."""
        current = self._weights[self.check(name)]
        base = DEFAULT_STRATEGIES.get(name, current) if reset else current
        self.set_weights(name, {**base, **changes})

    def set_weights(self, name: str, weights: Mapping[str, float]) -> None:
        unknown = set(weights) - set(SCORERS)
        if unknown:
            raise InvalidArgument(
                f"weights: unknown scorer {sorted(unknown)}; known: {', '.join(sorted(SCORERS))}"
            )
        if any(w < 0 for w in weights.values()):
            raise InvalidArgument("weights: must not be negative")
        if not any(weights.values()):
            raise InvalidArgument("weights: at least one weight must be positive")
        self._weights[name] = {k: float(v) for k, v in weights.items()}
        self._sets.clear()


def rank(candidates: Sequence[Candidate], weights: Mapping[str, float] | WeightSet) -> list[Candidate]:
    """Score every candidate (weighted sum of scorers, added in the strategy's order) and return them best
    first. The built-in scorers are worked out in one pass (scoring.fused); any other one scorer at a time.
    Each candidate keeps its row of values for `Candidate.components`: no dict is built per candidate."""
    ws = weights if isinstance(weights, WeightSet) else WeightSet.of(weights)
    if not candidates:
        return []
    # Highest score first; ties to the preferred priority, then the fewest requests in flight, then the id
    # (then the order given: the position keeps equal keys stable, as a stable sort would).
    if ws.fused is not None:
        keys = fused.score(candidates, ws.fused, ws.names, _LATENCY.clock)
    else:
        totals = _one_at_a_time(candidates, ws)
        keys = [
            (-total, c.priority, c.backend.in_flight, c.backend.id, i)
            for i, (c, total) in enumerate(zip(candidates, totals, strict=True))
        ]
    keys.sort()
    return [candidates[key[4]] for key in keys]


def _one_at_a_time(candidates: Sequence[Candidate], ws: WeightSet) -> list[float]:
    columns = [SCORERS[name].score(candidates) for name in ws.names]
    totals = [0.0] * len(candidates)
    for (_, weight), column in zip(ws.terms, columns, strict=True):
        totals = [total + weight * value for total, value in zip(totals, column, strict=True)]
    for candidate, total, row in zip(candidates, totals, zip(*columns, strict=True), strict=True):
        candidate.score, candidate.score_terms, candidate.score_values = total, ws.names, row
    return totals
