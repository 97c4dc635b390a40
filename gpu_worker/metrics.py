"""The worker's Prometheus /metrics: its own admission and engine figures, and vLLM's (`vllm:*`).

vLLM registers its metrics in prometheus_client's default registry as its engines start; the endpoint serves that
registry alongside the worker's own figures, which are read from the live worker at scrape time (the same
figures it reports to routers). They are named modelyard_gpu_worker_*, apart from the routers' view of each
worker (modelyard_worker_*{worker}), and carry no worker label: Prometheus adds the pod's.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import TYPE_CHECKING
from wsgiref.simple_server import WSGIServer

from prometheus_client import REGISTRY, CollectorRegistry, start_http_server
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, InfoMetricFamily, Metric
from prometheus_client.registry import Collector

from core.addresses import bind_host_port
from gpu_worker import __version__

if TYPE_CHECKING:
    from gpu_worker.app import WorkerApp


# What the worker exports of its own (the dashboard's test checks its queries against these).
WORKER_METRIC_NAMES = frozenset(
    {
        "modelyard_gpu_worker_info",
        *(
            f"modelyard_gpu_worker_{name}"
            for name in (
                "running",
                "waiting",
                "max_concurrency",
                "max_queue",
                "draining",
                "kv_cache_usage",
                "tokens_per_second",
                "queued_audio_seconds",
                "gpu_memory_used_bytes",
                "gpu_utilization",
            )
        ),
        "modelyard_gpu_worker_aborted_requests_total",
    }
)


class WorkerMetrics:
    def __init__(self, app: WorkerApp) -> None:
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(_WorkerCollector(app))
        self.registry.register(_Forward(REGISTRY))  # vLLM's, and the process's own (CPU, memory, fds)
        self._httpd: WSGIServer | None = None
        self._thread: threading.Thread | None = None
        self.port = 0

    def start(self, listen: str) -> int:
        host, port = bind_host_port(listen)
        self._httpd, self._thread = start_http_server(port, host, self.registry)
        self.port = int(self._httpd.server_port)
        return self.port

    def stop(self) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None


class _Forward(Collector):
    def __init__(self, source: CollectorRegistry) -> None:
        self._source = source

    def collect(self) -> Iterator[Metric]:
        yield from self._source.collect()


class _WorkerCollector(Collector):
    def __init__(self, app: WorkerApp) -> None:
        self._app = app

    def collect(self) -> Iterator[Metric]:
        app = self._app
        load = app.load_report()
        yield InfoMetricFamily(
            "modelyard_gpu_worker",
            "This worker",
            value={"worker_id": app.options.worker_id, "version": __version__},
        )
        yield _gauge("running", "Requests running in the engines", load.running)
        yield _gauge("waiting", "Requests admitted or queued, not yet scheduled by an engine", load.waiting)
        yield _gauge("max_concurrency", "Requests run at once", app.admission.max_concurrency)
        yield _gauge("max_queue", "Requests that may wait beyond max_concurrency", app.admission.max_queue)
        yield _gauge("draining", "1 while draining", 1.0 if load.draining else 0.0)
        yield _gauge("kv_cache_usage", "vLLM KV-cache use, 0..1", load.kv_cache_usage)
        yield _gauge(
            "tokens_per_second", "Tokens generated per second, recent window", load.tokens_per_second
        )
        yield _gauge("queued_audio_seconds", "Audio waiting for speech-to-text", load.queued_audio_seconds)
        yield CounterMetricFamily(
            "modelyard_gpu_worker_aborted_requests",
            "Engine requests aborted (cancel, deadline)",
            load.aborted_total,
        )
        memory = GaugeMetricFamily(
            "modelyard_gpu_worker_gpu_memory_used_bytes", "GPU memory in use", labels=["gpu"]
        )
        utilisation = GaugeMetricFamily(
            "modelyard_gpu_worker_gpu_utilization", "GPU busy, 0..1", labels=["gpu"]
        )
        for gpu in load.gpus:
            memory.add_metric([str(gpu.index)], gpu.memory_used_bytes)
            utilisation.add_metric([str(gpu.index)], gpu.utilization)
        yield memory
        yield utilisation


def _gauge(name: str, documentation: str, value: float) -> GaugeMetricFamily:
    return GaugeMetricFamily(f"modelyard_gpu_worker_{name}", documentation, value=value)
