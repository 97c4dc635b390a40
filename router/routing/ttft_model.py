"""Predicted time to first token per backend, from its live state and what it has shown, fit online.

A request sent now waits until a slot frees for it, then shows its first token after the backend's
`base` (prefill, and the slowdown of a full batch: an EWMA of the TTFTs observed with a slot free):

    predicted = base + wait
    wait      = when a slot frees for it (router.routing.slot_clock), from how far along the running
                requests are and how long each one queued ahead will hold a slot

How long a request holds a slot is fit online from the answers seen there:

    service(max_tokens) = base + (tokens - 1) * token_ms
    tokens              = length_ratio * max_tokens   (the share of its cap an answer uses)
                          or mean_tokens when the request sets no cap

`token_ms` is the time per output token after the first ((latency - ttft) / (tokens - 1)). A backend
that answers without tokens (embeddings, transcription) holds a slot its mean latency with nothing ahead.
The wait is then corrected by what the waits seen there were, against what was predicted for them
(`wait_bias`, an EWMA of observed - predicted over requests that waited; added when positive, fading with
each answer that did not wait): a busy machine's dispatch lag, say, that no fit of the backend itself shows. Other routers' requests on a worker (its load report) are
of unknown progress: half a service left when they fill a slot, a whole one when queued. EWMAs follow a
backend that slows down within a few requests (ALPHA 0.3: about 90 % of a step change after 6).
"""

from __future__ import annotations

import time
from collections.abc import Collection
from dataclasses import dataclass

from router.backends.base import Backend
from router.routing.slot_clock import Running, start_in
from router.routing.stats import ewma

ALPHA = 0.3


@dataclass
class _Fit:
    base_ms: float | None = None
    service_ms: float | None = None  # latency with a slot free
    token_ms: float | None = None
    length_ratio: float | None = None
    mean_tokens: float | None = None
    wait_bias_ms: float = 0.0
    observations: int = 0
    observed_at: float = 0.0  # time.monotonic() of the last answer seen there


@dataclass(frozen=True)
class Observed:
    """What one answer showed: its TTFT and latency (ms), tokens, the request's cap, and what placement
    expected (requests ahead by count, the predicted wait)."""

    ttft_ms: float
    latency_ms: float | None = None
    tokens: int = 0
    max_tokens: int = 0
    ahead: int = 0
    predicted_wait_ms: float | None = None


class TtftModel:
    def __init__(self, alpha: float = ALPHA) -> None:
        self._alpha = alpha
        self._fits: dict[str, _Fit] = {}

    def predict(
        self,
        backend: Backend,
        running: Collection[Running] = (),
        unsent: int = 0,
        now: float = 0.0,
        wait_factor: float = 1.0,
        stale_after_s: float | None = None,
    ) -> float | None:
        """Milliseconds to the first token of a request sent there at `now` (time.monotonic()), with this
        router's requests there `running` (router.routing.slot_clock) and `unsent` more on their way; None
        until the backend has answered once. `wait_factor` scales the wait: the prediction is a mean, a
        target is held at a tail, and the wait varies most. With `stale_after_s`, a backend with a slot free
        that has answered nothing for that long is unknown again (None): a fit left high by a slow spell
        would otherwise keep it out of traffic, and so itself from being corrected."""
        if self.base_ms(backend.id) is None:
            return None
        wait = self.wait_ms(backend, running, unsent, now)
        return self.predict_after(backend.id, wait, now, wait_factor, stale_after_s)

    def predict_after(
        self,
        backend_id: str,
        wait_ms: float,
        now: float = 0.0,
        wait_factor: float = 1.0,
        stale_after_s: float | None = None,
    ) -> float | None:
        """`predict`, given the wait `wait_ms` already worked out for that request (`wait_ms`)."""
        fit = self._fits.get(backend_id)
        if fit is None or fit.base_ms is None:
            return None
        if stale_after_s is not None and not wait_ms and now - fit.observed_at > stale_after_s:
            return None
        return fit.base_ms + wait_ms * wait_factor

    def wait_ms(
        self, backend: Backend, running: Collection[Running], unsent: int, now: float, corrected: bool = True
    ) -> float:
        """Milliseconds until a slot frees there for a request sent at `now` (0 while one is free);
        `corrected`: with the wait bias in (the TTFT it adds to), or when the slot itself frees."""
        fit = self._fits.get(backend.id)
        if fit is None or fit.base_ms is None:
            return 0.0
        slots = max(1, backend.max_concurrency)
        others = backend.others_in_flight()
        if len(running) + others + unsent < slots:
            return 0.0  # a slot is free: no need to play the clock
        base = fit.base_ms
        floor = fit.token_ms or 0.0
        remaining: list[float] = []
        queued: list[float] = []
        waiting: list[Running] = []
        for r in running:
            if r.first_at is None:
                waiting.append(r)
            else:  # it took a slot about `base` before its first item
                elapsed = (now - r.first_at) * 1000 + base
                remaining.append(max(floor, self._service(fit, r.max_tokens) - elapsed))
        typical = self._service(fit, 0)
        for _ in range(others):  # other routers' requests: progress unknown
            if len(remaining) < slots:
                remaining.append(typical / 2)
            else:
                queued.append(typical)
        for r in waiting:  # in the order sent: the first into free slots (prefill), the rest queued
            service = self._service(fit, r.max_tokens)
            if len(remaining) < slots:
                remaining.append(max(floor, service - (now - r.sent_at) * 1000))
            else:
                queued.append(service)
        queued.extend([typical] * unsent)
        wait = start_in(slots, remaining, queued)
        # Only ever added: an optimistic error costs the target, a pessimistic one only a spill.
        return wait + max(0.0, fit.wait_bias_ms) if wait > 0 and corrected else wait

    def _service(self, fit: _Fit, max_tokens: int) -> float:
        """How long a request with this cap holds a slot there (ms)."""
        base = fit.base_ms or 0.0
        if fit.token_ms is None:
            return fit.service_ms if fit.service_ms is not None else base
        if max_tokens > 0 and fit.length_ratio is not None:
            tokens = max(1.0, fit.length_ratio * max_tokens)
        else:
            tokens = max(1.0, fit.mean_tokens or 1.0)
        return base + (tokens - 1) * fit.token_ms

    def base_ms(self, backend_id: str) -> float | None:
        """Its TTFT with a slot free; None until seen."""
        fit = self._fits.get(backend_id)
        return None if fit is None else fit.base_ms

    def service_ms(self, backend_id: str) -> float | None:
        """How long a request holds a slot there (latency with nothing ahead); None until seen."""
        fit = self._fits.get(backend_id)
        return None if fit is None else fit.service_ms

    def observe(self, backend_id: str, seen: Observed) -> None:
        fit = self._fits.setdefault(backend_id, _Fit())
        fit.observations += 1
        fit.observed_at = time.monotonic()
        a = self._alpha
        if seen.tokens >= 2 and seen.latency_ms is not None and seen.latency_ms > seen.ttft_ms:
            fit.token_ms = ewma(fit.token_ms, (seen.latency_ms - seen.ttft_ms) / (seen.tokens - 1), a)
        if seen.tokens > 0:
            fit.mean_tokens = ewma(fit.mean_tokens, seen.tokens, a)
            if seen.max_tokens > 0:
                fit.length_ratio = ewma(fit.length_ratio, min(1.0, seen.tokens / seen.max_tokens), a)
        if seen.ahead <= 0 or fit.base_ms is None:
            fit.base_ms = ewma(fit.base_ms, seen.ttft_ms, a)
            # The bias fades while nothing waits there: it is learnt only from requests that waited, and
            # a high one would keep requests from waiting there, and so itself from being corrected.
            fit.wait_bias_ms *= 1 - a
            if seen.latency_ms is not None and seen.ahead <= 0:
                fit.service_ms = ewma(fit.service_ms, seen.latency_ms, a)
            return
        if seen.predicted_wait_ms is not None and seen.predicted_wait_ms > 0:
            # What the wait was, against what was predicted with the bias in: the bias learns the rest.
            error = seen.ttft_ms - fit.base_ms - seen.predicted_wait_ms
            fit.wait_bias_ms = ewma(fit.wait_bias_ms, max(0.0, fit.wait_bias_ms) + error, a)

    def forget(self, backend_id: str) -> None:
        self._fits.pop(backend_id, None)

    def known(self) -> int:
        """Backends with a fit (bounded by the registry: placement forgets one that leaves)."""
        return len(self._fits)
