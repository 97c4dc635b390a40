"""Local first: the order candidates are tried in when a request has a TTFT target or its route prefers local.

With a target, the candidates predicted to meet it come first, cheapest first: workers cost nothing, so
they win while they can (the one with the fewest requests ahead first); a cloud comes first only when no worker is predicted to meet the target (the
request "spills"). When none is predicted to meet it, the best prediction comes first. Without a target
the scheduler's ranking stands, except that with `prefer: local` a worker that can start the request now
(nothing queued ahead) comes before any cloud: a cloud must not win over an idle worker on speed alone.
`local_only` drops every cloud candidate (privacy), whatever the load.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from core.errors import NoBackendAvailable
from router.backends.base import Backend
from router.routing.scoring.base import Candidate

Predict = Callable[[Candidate], float | None]
Ahead = Callable[[Backend], int]


@dataclass(frozen=True)
class Policy:
    """What one request asks of placement: its target (ms; None for none), local_only, prefer local."""

    ttft_slo_ms: float | None = None
    local_only: bool = False
    prefer_local: bool = False
    headroom: float = 1.0  # a predicted queue wait counts 1 / headroom times against the target (ttft_model)

    @property
    def active(self) -> bool:
        return self.ttft_slo_ms is not None or self.local_only or self.prefer_local


def order(
    ranked: Sequence[Candidate], policy: Policy, predict: Predict, ahead: Ahead
) -> tuple[list[Candidate], str]:
    """The candidates in the order to try them, and why the first is a cloud when a worker was a candidate
    ("" when it is not, or when no worker was). `ahead`: requests ahead of one sent to a backend now."""
    candidates = list(ranked)
    if policy.local_only:
        candidates = [c for c in candidates if c.backend.local]
        if not candidates:
            clouds = ", ".join(c.backend.id for c in ranked)
            raise NoBackendAvailable(
                f"this request may run on local workers only (local_only) and none can take it now; "
                f"cloud candidates left out: {clouds}",
                reason="LOCAL_ONLY",
            )
    if policy.ttft_slo_ms is None:
        if not policy.prefer_local:
            return candidates, ""
        idle = [c for c in candidates if c.backend.local and ahead(c.backend) == 0]
        return idle + [c for c in candidates if c not in idle], ""
    target = policy.ttft_slo_ms
    predicted = {id(c): _expected(c, predict, ahead) for c in candidates}
    meets = [c for c in candidates if predicted[id(c)] <= target]
    # Workers first (free, private), the one with the fewest requests ahead first: the wait behind a queue
    # varies most, so a worker that can start the request now beats one predicted to just make the target
    # (the scheduler's ranking, which weighs other things, sent requests behind a queue while a worker
    # stood idle, and those waits were the tail). Then clouds by price; a cloud with no known price is
    # still not free. Stable sorts: among equals the scheduler's ranking decides.
    meets.sort(key=lambda c: (0, ahead(c.backend)) if c.backend.local else (1, c.estimated_cost_usd))
    rest = sorted((c for c in candidates if predicted[id(c)] > target), key=lambda c: predicted[id(c)])
    ordered = meets + rest
    locals_ = [predicted[id(c)] for c in candidates if c.backend.local]
    if not ordered or ordered[0].backend.local or not locals_:
        return ordered, ""
    best_local = min(locals_)
    shown = "unknown" if best_local == float("inf") else f"{best_local:.0f} ms"
    return ordered, f"predicted local TTFT {shown} > target {target:.0f} ms"


def _expected(candidate: Candidate, predict: Predict, ahead: Ahead) -> float:
    """The prediction; a backend not yet measured is taken to meet any target while nothing is queued
    ahead there (so it gets traffic and a measurement), and to miss it otherwise."""
    value = predict(candidate)
    if value is not None:
        return value
    return 0.0 if ahead(candidate.backend) == 0 else float("inf")
