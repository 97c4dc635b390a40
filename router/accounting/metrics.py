"""Prometheus metrics, on their own HTTP port, from a registry owned by one router.

Request metrics are counted as requests end. Worker load, circuit states and ledger health are read
from the router's state when scraped, so nothing on the request or lease path updates them.
Each router has its own CollectorRegistry: several routers in one process (tests) never mix.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from typing import Any
from wsgiref.simple_server import WSGIServer

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from core.addresses import bind_host_port
from router.accounting.ledger.writer import LedgerWriter
from router.routing.circuit import CircuitState
from router.routing.state import RoutingState

_LATENCY_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120)
_OVERHEAD_BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25)


class RouterMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = Counter(
            "modelyard_requests",
            "Requests ended, by outcome",
            ["kind", "backend", "model", "status"],
            registry=r,
        )
        self.tokens = Counter(
            "modelyard_tokens", "Tokens processed", ["backend", "model", "direction"], registry=r
        )
        self.cost = Counter(
            "modelyard_cost_usd", "Estimated spend in US dollars", ["backend", "model"], registry=r
        )
        # Tenants come from the configured keys ("local" when open), so the label stays bounded.
        self.tenant_cost = Counter(
            "modelyard_tenant_cost_usd", "Estimated spend in US dollars, by tenant", ["tenant"], registry=r
        )
        self.ttft = Histogram(
            "modelyard_ttft_seconds",
            "Time to first token",
            ["backend", "model"],
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.latency = Histogram(
            "modelyard_request_latency_seconds",
            "Total request time",
            ["kind", "backend", "model"],
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.overhead = Histogram(
            "modelyard_router_overhead_seconds",
            "Time spent in the router itself: total latency minus time waiting on the upstream backend",
            ["kind"],
            buckets=_OVERHEAD_BUCKETS,
            registry=r,
        )
        self.in_flight = Gauge("modelyard_in_flight_requests", "Requests being served", ["kind"], registry=r)
        self.cache = Counter("modelyard_cache_lookups", "Response cache lookups", ["result"], registry=r)
        self.refused = Counter(
            "modelyard_refused_requests", "Requests refused before routing", ["reason"], registry=r
        )
        # Reasons: stall, no_usage (the stream ended early) or the failure's gRPC status in lower case.
        self.migrations = Counter(
            "modelyard_stream_migrations",
            "Chat answers moved to another backend mid-stream, by why the stream broke",
            ["reason"],
            registry=r,
        )

        # Label children by metric and values: looking them up with labels() costs more than the update
        # itself, ten times per request. Never pruned, as the metrics' own children are not: the label values
        # are bounded (configured backends, models, keys).
        self._children: dict[tuple[object, ...], Any] = {}
        self._served: dict[tuple[str, str, str], _Served] = {}

    def child(self, metric: Counter | Gauge | Histogram, *values: str) -> Any:
        """`metric.labels(*values)`, looked up once."""
        key = (metric, *values)
        found = self._children.get(key)
        if found is None:
            found = self._children[key] = metric.labels(*values)
        return found

    def served(self, kind: str, backend: str, model: str) -> _Served:
        """The token, cost and timing metrics' children for a request (backend, model) answered."""
        key = (kind, backend, model)
        served = self._served.get(key)
        if served is None:
            served = self._served[key] = _Served(self, *key)
        return served

    def watch(self, state: RoutingState, writer: LedgerWriter | None) -> None:
        """Expose worker load, circuits and ledger health, read at scrape time."""
        self.registry.register(_StateCollector(state, writer))


class _Served:
    def __init__(self, metrics: RouterMetrics, kind: str, backend: str, model: str) -> None:
        self.prompt_tokens = metrics.tokens.labels(backend, model, "prompt")
        self.completion_tokens = metrics.tokens.labels(backend, model, "completion")
        self.cost = metrics.cost.labels(backend, model)
        self.ttft = metrics.ttft.labels(backend, model)
        self.latency = metrics.latency.labels(kind, backend, model)
        self.overhead = metrics.overhead.labels(kind)


class _StateCollector(Collector):
    def __init__(self, state: RoutingState, writer: LedgerWriter | None) -> None:
        self._state = state
        self._writer = writer

    def collect(self) -> Iterator[Metric]:
        running = GaugeMetricFamily(
            "modelyard_worker_running", "Requests running on the worker", labels=["worker"]
        )
        waiting = GaugeMetricFamily(
            "modelyard_worker_waiting", "Requests queued on the worker", labels=["worker"]
        )
        kv = GaugeMetricFamily("modelyard_worker_kv_cache_usage", "KV-cache use, 0..1", labels=["worker"])
        circuit = GaugeMetricFamily(
            "modelyard_circuit_state",
            "1 for the backend's current circuit state",
            labels=["backend", "state"],
        )
        for backend in self._state.registry:
            if (load := backend.load_report()) is not None:
                running.add_metric([backend.id], load.running)
                waiting.add_metric([backend.id], load.waiting)
                kv.add_metric([backend.id], load.kv_cache_usage)
            current = self._state.circuits[backend.id].state
            for state in CircuitState:
                circuit.add_metric([backend.id, state.value], 1.0 if state is current else 0.0)
        yield from (running, waiting, kv, circuit)
        events = self._state.events
        yield CounterMetricFamily(
            "modelyard_panic_routed_requests",
            "Requests tried on unhealthy or open-circuit backends because no candidate was healthy",
            value=events.panic_routed,
        )
        refused = CounterMetricFamily(
            "modelyard_worker_registrations_refused",
            "Worker registrations refused (a full pool, a bad hello, a taken id), by reason",
            labels=["reason"],
        )
        for reason, count in sorted(events.refused_registrations.items()):
            refused.add_metric([reason], count)
        out = GaugeMetricFamily(
            "modelyard_backends_out_of_rotation",
            "Backends no request is sent to now (disabled, draining, load reports stopped), by reason",
            labels=["reason"],
        )
        for reason, count in sorted(self._state.registry.index.reasons().items()):
            out.add_metric([reason], count)
        yield from (refused, out)
        if self._writer is not None:
            yield CounterMetricFamily(
                "modelyard_ledger_dropped_records",
                "Usage records dropped: queue full",
                value=self._writer.dropped,
            )
            yield CounterMetricFamily(
                "modelyard_ledger_written_records", "Usage records written", value=self._writer.written
            )
            yield GaugeMetricFamily(
                "modelyard_ledger_queued_records",
                "Usage records waiting to be written",
                value=self._writer.queued,
            )


class MetricsServer:
    """The /metrics HTTP endpoint (prometheus_client's server, on a thread of its own)."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self._registry = registry
        self._httpd: WSGIServer | None = None
        self._thread: threading.Thread | None = None
        self.port = 0

    def start(self, listen: str) -> int:
        host, port = bind_host_port(listen)
        self._httpd, self._thread = start_http_server(port, host, self._registry)
        self.port = int(self._httpd.server_port)
        return self.port

    async def stop(self) -> None:
        if self._httpd is not None:
            httpd, self._httpd = self._httpd, None
            await asyncio.to_thread(httpd.shutdown)  # waits for the serving loop's next poll
            httpd.server_close()
