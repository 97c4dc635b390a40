from __future__ import annotations

from collections.abc import Sequence

from router.routing.scoring.base import Candidate, Scorer

# How much slower a full backend is expected to answer than an idle one: at utilisation 1 its measured time
# to first token counts 1 + LOAD_WEIGHT times (a worker with 4 slots and 16 queue places whose slots are all
# taken, utilisation 0.2, counts 3x: a queued request waits for a whole answer, several TTFTs). In the bench
# simulation 4 left `latency` at 2.6x composite's p99 TTFT, 10 at 1.1x. The measurement lags (it is taken when a request ends), so
# without this the fastest backend kept every new request until its queue showed in its TTFT: in the bench
# simulation `latency` had 11x composite's p99 TTFT.
LOAD_WEIGHT = 10.0


class LatencyScorer(Scorer):
    """Expected time to first token relative to the best candidate: best 1, twice as slow 0.5.

    Expected = the measured TTFT (EWMA) scaled up by how busy the backend is now (its queue, KV cache, or
    requests in flight against its limit), so a backend whose queue grows stops getting traffic before its
    measurements catch up. A backend not yet measured counts as the fastest measured one, so it gets
    traffic and a measurement.
    """

    name = "latency"

    def score(self, candidates: Sequence[Candidate]) -> list[float]:
        measured = [c.stats.ttft_ms for c in candidates if c.stats.ttft_ms is not None]
        floor = max(min(measured), 1.0) if measured else 1.0
        expected = [
            max(c.stats.ttft_ms if c.stats.ttft_ms is not None else floor, 1.0)
            * (1.0 + LOAD_WEIGHT * c.utilisation)
            for c in candidates
        ]
        best = min(expected)
        return [min(1.0, best / e) for e in expected]
