"""What the ledger stores and what it answers, as plain typed values shared by every store."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

# Column order for inserts; both stores use it, so a record is written the same way everywhere.
COLUMNS = (
    "ts",
    "router_id",
    "request_id",
    "tenant",
    "kind",
    "backend",
    "model",
    "prompt_tokens",
    "completion_tokens",
    "audio_seconds",
    "cost_usd",
    "ttft_ms",
    "latency_ms",
    "status",
    "error_class",
    "cache_hit",
    "queue_wait_ms",
    "spill_reason",
)


@dataclass(frozen=True)
class UsageRecord:
    """One request, whatever its outcome. `status` is the gRPC code name (OK, UNAVAILABLE, ...)."""

    ts: float  # unix seconds at the end of the request
    tenant: str
    kind: str  # chat | embed | transcribe
    backend: str  # "" when no backend was reached
    model: str
    status: str
    request_id: str = ""
    router_id: str = ""
    prompt_tokens: int = 0
    completion_tokens: int = 0
    audio_seconds: float = 0.0
    cost_usd: float = 0.0
    ttft_ms: float | None = None
    latency_ms: float = 0.0
    error_class: str = ""  # the router's error type, e.g. UpstreamFailed, BudgetExceeded
    cache_hit: bool = False
    queue_wait_ms: float = 0.0  # held in the admission queue (router.routing.admission)
    spill_reason: str = ""  # why it went to a cloud although a worker was a candidate (router.routing.spill)

    @property
    def tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    def values(self) -> tuple[object, ...]:
        return tuple(getattr(self, name) for name in COLUMNS)


@dataclass(frozen=True)
class TenantSpend:
    """Tokens and cost one tenant spent on one UTC day (YYYY-MM-DD), cache hits excluded."""

    tenant: str
    day: str
    tokens: int
    cost_usd: float


@dataclass
class UsageRow:
    """Totals for one backend and model over a window; latencies in milliseconds."""

    backend: str
    model: str
    calls: int = 0
    ok: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    audio_seconds: float = 0.0
    cost_usd: float = 0.0
    cache_hits: int = 0
    latency_p50_ms: float = 0.0
    latency_p95_ms: float = 0.0
    latency_p99_ms: float = 0.0
    ttft_p50_ms: float = 0.0

    @property
    def success_rate(self) -> float:
        return self.ok / self.calls if self.calls else 0.0


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100) of unsorted values; 0 for none."""
    if not values:
        return 0.0
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[rank - 1]
