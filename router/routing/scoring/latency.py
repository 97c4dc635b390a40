from __future__ import annotations

import time
from collections.abc import Callable, Sequence

from router.routing.scoring.base import Candidate, Scorer

# How much slower a full backend is expected to answer than an idle one: at utilisation 1 its measured time
# to first token counts 1 + LOAD_WEIGHT times (a worker with 4 slots and 16 queue places whose slots are all
# taken, utilisation 0.2, counts 3x: a queued request waits for a whole answer, several TTFTs). In the bench
# simulation 4 left `latency` at 2.6x composite's p99 TTFT, 10 at 1.1x. The measurement lags (a TTFT is
# known only once it has passed), so without this the fastest backend kept every new request until its
# queue showed in its TTFT: in the bench simulation `latency` had 11x composite's p99 TTFT.
LOAD_WEIGHT = 10.0


def load_factor(utilisation: float) -> float:
    """How many times its idle TTFT a backend this busy is expected to take."""
    return 1.0 + LOAD_WEIGHT * utilisation


class LatencyScorer(Scorer):
    """Expected time to first token relative to the best candidate: best 1, twice as slow 0.5.

    Expected = the measured TTFT as if idle (BackendStats.idle_ttft_ms), or the wait of the oldest request there still waiting for its first
    item if that is longer, scaled up by how busy the backend is now (its queue, KV cache, or requests in
    flight against its limit), so a backend whose queue grows, or that has just slowed down, stops getting
    traffic before its measurements catch up. A backend not yet measured counts as the fastest measured
    one, so it gets traffic and a measurement (and, while that first request waits, no more than its wait
    earns it).
    """

    name = "latency"

    def __init__(self, clock: Callable[[], float] = time.perf_counter) -> None:
        # The clock of the send times BackendStats.awaiting_first is given (a simulation passes its own).
        self.clock = clock

    def score(self, candidates: Sequence[Candidate]) -> list[float]:
        return latency_scores(candidates, self.clock())


def latency_scores(candidates: Sequence[Candidate], now: float) -> list[float]:
    """LatencyScorer's values at `now` (its clock's time)."""
    expected, best = expected_ms(candidates, now)
    return [best / e if e > best else 1.0 for e in expected]  # min(1.0, best / e): e >= best


def expected_ms(candidates: Sequence[Candidate], now: float) -> tuple[list[float], float]:
    """Each candidate's expected time to first token at `now`, and the best of them: the latency scorer
    rates each best / expected (`rank`'s one pass, scoring.fused, does so as it goes)."""
    idle = [c.stats.measured_ttft_ms for c in candidates]  # as if idle where known: kept by the stats
    floor = 1.0  # what an unmeasured one counts as (none is, almost always: no need to look for the fastest)
    if None in idle:
        measured = [ms for ms in idle if ms is not None]
        floor = max(min(measured), 1.0) if measured else 1.0
    # max(measured or floor, waiting_ms(now), 1.0) * load_factor(utilisation), spelt out: it runs for every
    # candidate of every request, where the calls cost more than the arithmetic.
    expected = []
    for c, ms in zip(candidates, idle, strict=True):
        base = floor if ms is None else ms
        since = c.stats.awaiting_since
        if since is not None and (now - since) * 1000 > base:
            base = (now - since) * 1000
        expected.append((base if base > 1.0 else 1.0) * (1.0 + LOAD_WEIGHT * c.utilisation))
    return expected, min(expected)
