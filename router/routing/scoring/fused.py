"""The built-in scorers of a strategy in one pass over the candidates: their values and weighted sum.

Each scorer (one per module here) says what its value means and rates the candidates on its own; `rank`
runs on every request, where six list passes, six weighted-sum passes and a dict per candidate cost more
than the arithmetic. For a strategy made of the built-in scorers only, this computes the same values with
the same arithmetic, in one pass after the few request-wide figures (cheapest and dearest, priorities,
the latency scorer's floor and best): a candidate's score is still the weighted sum of its values, added in
the strategy's order. tests/router/test_plan_cost.py holds this and the scorers to identical results.

A strategy naming any other scorer is ranked one scorer at a time (`Plan.of` gives None).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import NamedTuple

from router.routing.scoring.base import Candidate
from router.routing.scoring.latency import expected_ms

# The scorers computed here, in the order of a candidate's value row below; index 6 is a zero that pads a
# strategy with fewer scorers to six (adding 0.0 * 0.0 leaves a sum of non-negative terms exactly as it was).
SCORERS = ("success_rate", "latency", "load", "cost", "priority", "prefix")
_WIDTH = len(SCORERS)
_ZERO = _WIDTH
_IN_ORDER = tuple(range(_WIDTH))


class Plan(NamedTuple):
    """A strategy's terms as the one pass reads them: for each of six places, which value (an index into
    the row, `_ZERO` for none) and its weight (0.0 for none), in the strategy's order."""

    picks: tuple[int, ...]
    weights: tuple[float, ...]
    size: int  # the strategy's scorers: a candidate keeps this many values
    latency: bool  # the latency scorer counts (its request-wide figures are worth working out)

    @classmethod
    def of(cls, terms: Sequence[tuple[str, float]]) -> Plan | None:
        if len(terms) > _WIDTH or any(name not in SCORERS for name, _ in terms):
            return None
        pad = _WIDTH - len(terms)
        return cls(
            tuple(SCORERS.index(name) for name, _ in terms) + (_ZERO,) * pad,
            tuple(weight for _, weight in terms) + (0.0,) * pad,
            len(terms),
            any(name == "latency" for name, _ in terms),
        )


def score(
    candidates: Sequence[Candidate], plan: Plan, names: tuple[str, ...], clock: Callable[[], float]
) -> list[tuple[float, int, int, str, int]]:
    """Set each candidate's score and values (`names`: the strategy's scorers, in order). Returns `rank`'s
    sort keys: (-score, priority, requests in flight, backend id, position). `clock`: the latency
    scorer's (a simulation passes its own)."""
    # The latency scorer's expected times and the best of them (all 1.0 where it does not count).
    expected, best = expected_ms(candidates, clock()) if plan.latency else ([1.0] * len(candidates), 1.0)
    costs = [c.estimated_cost_usd for c in candidates]
    cheapest, dearest = min(costs), max(costs)
    cost_span = dearest - cheapest
    priorities = [float(c.priority) for c in candidates]
    first, last = min(priorities), max(priorities)
    priority_span = last - first
    picks = plan.picks
    i0, i1, i2, i3, i4, i5 = picks
    w0, w1, w2, w3, w4, w5 = plan.weights
    in_order = picks == _IN_ORDER  # every scorer, in the row's order (composite): no reordering
    size = plan.size
    keys = []
    for i, (c, e, cost, priority) in enumerate(zip(candidates, expected, costs, priorities, strict=True)):
        match = c.prefix_match
        row = (
            c.stats.success_score,  # success_rate: the EWMA within [0, 1], kept by the stats
            best / e if e > best else 1.0,  # latency: min(1.0, best / expected)
            1.0 - c.utilisation,  # load
            1.0 if cost_span == 0 else 1.0 - (cost - cheapest) / cost_span,  # cost: spread_score
            1.0 if priority_span == 0 else 1.0 - (priority - first) / priority_span,  # priority: the same
            (1.0 if match > 1.0 else match) if match > 0.0 else 0.0,  # prefix, within [0, 1]
        )
        if not in_order:
            padded = (*row, 0.0)
            row = (padded[i0], padded[i1], padded[i2], padded[i3], padded[i4], padded[i5])
        total = 0.0 + w0 * row[0] + w1 * row[1] + w2 * row[2] + w3 * row[3] + w4 * row[4] + w5 * row[5]
        c.score, c.score_terms, c.score_values = total, names, row if size == _WIDTH else row[:size]
        keys.append((-total, c.priority, c.backend.in_flight, c.backend.id, i))
    return keys
