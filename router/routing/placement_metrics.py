"""Prometheus metrics of admission and local-first placement, on the router's own registry.

The queue length per tenant and each backend's predicted TTFT are read at scrape time; waits, refusals,
placements and prediction errors are counted as they happen. Label values are bounded: tenants come from the
configured keys, backends from the registry.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from router.backends.base import Backend
from router.routing.admission import AdmissionQueue
from router.routing.backend_registry import BackendRegistry

Predict = Callable[[Backend], float | None]
_WAIT_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)
_ERROR_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5)


class PlacementMetrics:
    def __init__(self, registry: CollectorRegistry | None) -> None:
        r = registry or CollectorRegistry()
        self.wait = Histogram(
            "modelyard_admission_wait_seconds",
            "Time held in the admission queue before dispatch, by tenant",
            ["tenant"],
            buckets=_WAIT_BUCKETS,
            registry=r,
        )
        self.refused = Counter(
            "modelyard_admission_refused",
            "Requests the admission queue refused (queue_full, tenant_queue_full, deadline, max_wait)",
            ["tenant", "reason"],
            registry=r,
        )
        self.placed = Counter(
            "modelyard_placed_requests",
            "Requests with a TTFT target or a local-first route, by where they went first (local or cloud)",
            ["where"],
            registry=r,
        )
        self.spilled = Counter(
            "modelyard_spilled_requests",
            "Requests sent to a cloud although a local worker was a candidate (spill rate: over placed)",
            registry=r,
        )
        self.prediction_error = Histogram(
            "modelyard_ttft_prediction_error_seconds",
            "Absolute difference between a backend's predicted and observed time to first token",
            ["backend"],
            buckets=_ERROR_BUCKETS,
            registry=r,
        )
        self._registry = r
        self._children: dict[tuple[object, ...], Any] = {}

    def child(self, metric: Counter | Histogram, *values: str) -> Any:
        key = (metric, *values)
        found = self._children.get(key)
        if found is None:
            found = self._children[key] = metric.labels(*values)
        return found

    def watch(self, queue: AdmissionQueue, predict: Predict, registry: BackendRegistry) -> None:
        self._registry.register(_Collector(queue, lambda: list(registry), predict))


class _Collector(Collector):
    def __init__(
        self, queue: AdmissionQueue, backends: Callable[[], list[Backend]], predict: Predict
    ) -> None:
        self._queue = queue
        self._backends = backends
        self._predict = predict

    def collect(self) -> Iterator[Metric]:
        queued = GaugeMetricFamily(
            "modelyard_admission_queued", "Requests waiting in the admission queue", labels=["tenant"]
        )
        for stats in self._queue.snapshot():
            queued.add_metric([stats.tenant], stats.queued)
        predicted = GaugeMetricFamily(
            "modelyard_ttft_predicted_seconds",
            "Predicted time to first token of a request sent now",
            labels=["backend"],
        )
        for backend in self._backends():
            value = self._predict(backend)
            if value is not None:
                predicted.add_metric([backend.id], value / 1000)
        yield from (queued, predicted)
