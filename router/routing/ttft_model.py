"""Predicted time to first token per backend, from its live state and what it has shown, fit online.

A worker runs `max_concurrency` requests at once and queues the rest in order, so a request sent now
starts once the requests ahead of it have finished:

    ahead     = max(0, busy - max_concurrency + 1)      busy: running + queued (router.routing.load_view)
    predicted = base + per_ahead * ahead

`base` is the TTFT it shows with nothing ahead (prefill, and the slowdown of a full batch), an EWMA of the
TTFTs observed with ahead = 0. `per_ahead` is how much each request ahead adds: an EWMA of
(ttft - base) / ahead over observations with some ahead; until there are any, the time a request holds a
slot (its latency with nothing ahead: prefill plus decode) over the slots, since a queue of n moves by one
every service / slots. That pace stays a floor under the fitted figure: a wait is a noisy sample, and an
optimistic dip would send requests deep into a queue. A cloud API is the same with its concurrency limit. EWMAs follow a backend that
slows down within a few requests (ALPHA 0.3: about 90 % of a step change after 6 observations).
"""

from __future__ import annotations

from dataclasses import dataclass

from router.backends.base import Backend
from router.routing.stats import ewma

ALPHA = 0.3


@dataclass
class _Fit:
    base_ms: float | None = None
    per_ahead_ms: float | None = None
    service_ms: float | None = None
    observations: int = 0


class TtftModel:
    def __init__(self, alpha: float = ALPHA) -> None:
        self._alpha = alpha
        self._fits: dict[str, _Fit] = {}

    def predict(self, backend: Backend, queued_ahead: int, wait_factor: float = 1.0) -> float | None:
        """Milliseconds to the first token of a request sent there with `queued_ahead` requests ahead of
        it (router.routing.load_view); None until the backend has answered once. `wait_factor` scales the
        wait for those ahead: the prediction is a mean, and the wait in a queue varies most (it depends on
        how far along the running requests are), so weighing it against a tail target counts it more."""
        fit = self._fits.get(backend.id)
        if fit is None or fit.base_ms is None:
            return None
        return fit.base_ms + self.per_ahead_ms(backend) * queued_ahead * wait_factor

    def per_ahead_ms(self, backend: Backend) -> float:
        fit = self._fits.get(backend.id)
        if fit is None:
            return 0.0
        service = fit.service_ms if fit.service_ms is not None else fit.base_ms or 0.0
        pace = service / max(1, backend.max_concurrency)
        if fit.per_ahead_ms is None:
            return pace
        # The queue's pace is a floor under the fit: one wait is a noisy sample (it depends on how far along
        # the running requests happen to be), and a run of short ones pulls the EWMA well under the real
        # pace, just when placement then queues requests deepest (seen in bench.spill: a fit of 40 ms per
        # request ahead against a pace of 100, three deep, and those waits were the tail). A worker that
        # slows down raises both.
        return max(fit.per_ahead_ms, pace)

    def service_ms(self, backend_id: str) -> float | None:
        """How long a request holds a slot there (latency with nothing ahead); None until seen."""
        fit = self._fits.get(backend_id)
        return None if fit is None else fit.service_ms

    def observe(self, backend_id: str, queued_ahead: int, ttft_ms: float, latency_ms: float | None) -> None:
        """A request sent with `queued_ahead` ahead of it showed its first token after `ttft_ms`."""
        fit = self._fits.setdefault(backend_id, _Fit())
        fit.observations += 1
        if queued_ahead <= 0 or fit.base_ms is None:
            fit.base_ms = ewma(fit.base_ms, ttft_ms, self._alpha)
            if latency_ms is not None and queued_ahead <= 0:
                fit.service_ms = ewma(fit.service_ms, latency_ms, self._alpha)
            return
        sample = max(0.0, ttft_ms - fit.base_ms) / queued_ahead
        fit.per_ahead_ms = ewma(fit.per_ahead_ms, sample, self._alpha)

    def forget(self, backend_id: str) -> None:
        self._fits.pop(backend_id, None)
