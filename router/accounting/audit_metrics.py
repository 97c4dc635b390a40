"""The audit trail's counts as Prometheus metrics, read at scrape time: refused Admin calls, every one of them,
whether recorded one by one or folded (router.accounting.refusal_folding), and calls with no valid key."""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client.core import CounterMetricFamily, Metric
from prometheus_client.registry import Collector

from router.accounting.audit import AuditTrail


class AuditCollector(Collector):
    def __init__(self, trail: AuditTrail) -> None:
        self._trail = trail

    def collect(self) -> Iterator[Metric]:
        refusals = self._trail.refusals
        # Tenants come from the configured keys, so the label stays bounded.
        refused = CounterMetricFamily(
            "modelyard_admin_calls_refused",
            "Admin calls refused to a tenant without an admin key, by tenant (recorded or folded)",
            labels=["tenant"],
        )
        for tenant, count in sorted(refusals.refused.items()):
            refused.add_metric([tenant], count)
        yield refused
        yield CounterMetricFamily(
            "modelyard_admin_calls_folded",
            "Refused Admin calls not recorded one by one: counted in their minute's folded record",
            value=refusals.folded,
        )
        yield CounterMetricFamily(
            "modelyard_admin_calls_unauthenticated",
            "Admin calls refused for no valid key (never recorded, only counted)",
            value=self._trail.unauthenticated,
        )
