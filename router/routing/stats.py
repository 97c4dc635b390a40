"""What the router has seen of each backend: success rate and latency as EWMAs, counts, last error."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

# Weight of the newest observation. 0.2 forgets a bad spell within ~10 requests.
ALPHA = 0.2


def ewma(previous: float | None, value: float, alpha: float = ALPHA) -> float:
    return value if previous is None else alpha * value + (1 - alpha) * previous


@dataclass
class BackendStats:
    success_rate: float = 1.0  # optimistic start: a new backend gets traffic to be measured
    ttft_ms: float | None = None
    latency_ms: float | None = None
    requests: int = 0
    failures: int = 0
    last_error: str = ""
    last_score: float = 0.0
    score_components: dict[str, float] = field(default_factory=dict)
    last_success_at: float | None = None  # time.monotonic() of the last request it answered

    def record_success(self, ttft_ms: float | None, latency_ms: float) -> None:
        self.requests += 1
        self.last_success_at = time.monotonic()
        self.success_rate = ewma(self.success_rate, 1.0)
        if ttft_ms is not None:
            self.ttft_ms = ewma(self.ttft_ms, ttft_ms)
        self.latency_ms = ewma(self.latency_ms, latency_ms)

    def record_failure(self, error: str, ttft_ms: float | None = None) -> None:
        self.requests += 1
        self.failures += 1
        self.success_rate = ewma(self.success_rate, 0.0)
        self.last_error = error
        if ttft_ms is not None:
            # A stall that timed out is a latency observation too: it should make the backend look slow.
            self.ttft_ms = ewma(self.ttft_ms, ttft_ms)


class StatsBook:
    """Stats by backend id; a worker's are kept while it holds its id and dropped when it leaves."""

    def __init__(self) -> None:
        self._stats: dict[str, BackendStats] = {}

    def __getitem__(self, backend_id: str) -> BackendStats:
        stats = self._stats.get(backend_id)
        if stats is None:
            stats = self._stats[backend_id] = BackendStats()
        return stats

    def forget(self, backend_id: str) -> None:
        self._stats.pop(backend_id, None)

    def __contains__(self, backend_id: object) -> bool:
        return backend_id in self._stats
