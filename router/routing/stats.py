"""What the router has seen of each backend: success rate and latency as EWMAs, counts, last error."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

# Weight of the newest observation. 0.2 forgets a bad spell within ~10 requests.
ALPHA = 0.2


def ewma(previous: float | None, value: float, alpha: float = ALPHA) -> float:
    return value if previous is None else alpha * value + (1 - alpha) * previous


@dataclass
class BackendStats:
    success_rate: float = 1.0  # optimistic start: a new backend gets traffic to be measured
    ttft_ms: float | None = None
    # The same, each observation divided by the load factor the latency scorer gave the backend when the
    # request was sent (router.routing.scoring.latency): the TTFT it would show idle. The scorer multiplies
    # by the load factor now; learning from raw TTFTs, which hold the queue already, counted a queue twice
    # and made a busy fast worker look slower than an idle slow one.
    idle_ttft_ms: float | None = None
    latency_ms: float | None = None
    requests: int = 0
    failures: int = 0
    last_error: str = ""
    last_score: float = 0.0
    # What the last score was made of (scorer names, their values): `score_components` pairs them when read.
    last_terms: tuple[str, ...] = field(default=(), repr=False)
    last_values: tuple[float, ...] = field(default=(), repr=False)
    last_success_at: float | None = None  # time.monotonic() of the last request it answered
    rate_limited_at: float | None = None  # time.monotonic() of its last RESOURCE_EXHAUSTED (HTTP 429)
    # Attempts sent there whose first item has not come yet: a token each -> when sent (time.perf_counter()),
    # oldest first (sent in order). The oldest one's wait is a lower bound on the TTFT the backend has now.
    _awaiting: dict[object, float] = field(default_factory=dict, repr=False)
    # Score inputs, kept as the observations above change rather than worked out for every candidate of
    # every request (router.routing.scoring): the success rate within [0, 1], and the TTFT the latency
    # scorer starts from (as if idle where known, else as measured; None before any).
    success_score: float = field(init=False, repr=False)
    measured_ttft_ms: float | None = field(init=False, repr=False)
    # When the oldest attempt still waiting for its first item was sent (time.perf_counter()); None when none
    # waits. Kept as attempts start and get their first item, read by the latency scorer per candidate.
    awaiting_since: float | None = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        self._inputs_changed()

    def _inputs_changed(self) -> None:
        self.success_score = min(1.0, max(0.0, self.success_rate))
        self.measured_ttft_ms = self.idle_ttft_ms if self.idle_ttft_ms is not None else self.ttft_ms

    @property
    def score_components(self) -> dict[str, float]:
        """Each scorer's value behind `last_score` (status shows them), paired up only when read."""
        return dict(zip(self.last_terms, self.last_values, strict=True))

    def scored(self, score: float, terms: tuple[str, ...], values: tuple[float, ...]) -> None:
        """The scheduler ranked the backend with this score, made of these scorers' values."""
        self.last_score, self.last_terms, self.last_values = score, terms, values

    def awaiting_first(self, token: object, sent_at: float) -> None:
        awaiting = self._awaiting
        awaiting[token] = sent_at
        self.awaiting_since = next(iter(awaiting.values()))  # the oldest: the first in the dict

    def first_done(self, token: object) -> None:
        """Its first item came, or the attempt ended without one."""
        if token in self._awaiting:
            del self._awaiting[token]
            # The oldest left is the first in the dict (sent in order).
            self.awaiting_since = next(iter(self._awaiting.values()), None)

    def waiting_ms(self, now: float) -> float:
        """How long the oldest attempt there has waited for its first item (`now`: time.perf_counter());
        0 when none waits. A backend that has just slowed down shows it here before any TTFT is measured."""
        since = self.awaiting_since
        return 0.0 if since is None else (now - since) * 1000

    def record_ttft(self, ttft_ms: float, load_factor: float = 1.0) -> None:
        """A first item arrived after `ttft_ms`: counted as it comes, not when the answer ends, so a backend
        slowing down shows in its latency score while its answers are still running."""
        self.ttft_ms = ewma(self.ttft_ms, ttft_ms)
        self.idle_ttft_ms = ewma(self.idle_ttft_ms, ttft_ms / load_factor)
        self._inputs_changed()

    def record_success(self, ttft_ms: float | None, latency_ms: float) -> None:
        """An answer ended well; `ttft_ms` when its first item was not already recorded (record_ttft)."""
        self.requests += 1
        self.last_success_at = time.monotonic()
        self.success_rate = ewma(self.success_rate, 1.0)
        self._inputs_changed()
        if ttft_ms is not None:
            self.record_ttft(ttft_ms)
        self.latency_ms = ewma(self.latency_ms, latency_ms)

    def record_failure(self, error: str, ttft_ms: float | None = None, load_factor: float = 1.0) -> None:
        self.requests += 1
        self.failures += 1
        self.success_rate = ewma(self.success_rate, 0.0)
        self._inputs_changed()
        self.last_error = error
        if ttft_ms is not None:
            # A stall that timed out is a latency observation too: it should make the backend look slow.
            self.record_ttft(ttft_ms, load_factor)


class StatsBook:
    """Stats by backend id; a worker's are kept while it holds its id and dropped when it leaves."""

    def __init__(self) -> None:
        self._stats: dict[str, BackendStats] = {}
        # The stats kept for a backend id, None for none yet (then index the book): the dict's own get, as
        # the scheduler reads it for every candidate of every request.
        self.find: Callable[[str], BackendStats | None] = self._stats.get

    def __getitem__(self, backend_id: str) -> BackendStats:
        stats = self._stats.get(backend_id)
        if stats is None:
            stats = self._stats[backend_id] = BackendStats()
        return stats

    def forget(self, backend_id: str) -> None:
        self._stats.pop(backend_id, None)

    def __contains__(self, backend_id: object) -> bool:
        return backend_id in self._stats
