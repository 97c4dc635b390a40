"""Counts of what the pool's scheduling and registration did, read by the metrics when scraped (nothing on the
request or lease path touches Prometheus)."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class PoolEvents:
    # Requests routed in panic: every candidate was unhealthy or behind an open circuit, so they were tried
    # anyway, best first, rather than refused untried.
    panic_routed: int = 0
    # Worker registrations refused, by the refusal's reason (CAPACITY_EXHAUSTED for a full pool, INVALID_ARGUMENT, ...).
    refused_registrations: dict[str, int] = field(default_factory=dict)

    def refused(self, reason: str) -> None:
        self.refused_registrations[reason] = self.refused_registrations.get(reason, 0) + 1
