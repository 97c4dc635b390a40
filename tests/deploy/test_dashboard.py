"""The Grafana dashboard queries only metrics that the router and the workers export."""

from __future__ import annotations

import json
import re
from pathlib import Path

from gpu_worker.metrics import WORKER_METRIC_NAMES
from router.accounting.metrics import RouterMetrics
from router.config.settings import RouterConfig
from router.routing.state import RoutingState

DASHBOARD = Path(__file__).resolve().parents[2] / "deploy" / "grafana" / "modelyard-dashboard.json"
_SUFFIXES = {"counter": ("_total", "_created"), "histogram": ("_bucket", "_sum", "_count", "_created")}
_PROMQL_WORDS = {
    "sum",
    "max",
    "min",
    "avg",
    "by",
    "without",
    "rate",
    "irate",
    "increase",
    "histogram_quantile",
    "le",
}


def exported_names() -> set[str]:
    metrics = RouterMetrics()
    metrics.watch(RoutingState(RouterConfig()), None)
    names: set[str] = set(WORKER_METRIC_NAMES)
    for family in metrics.registry.collect():
        names.add(family.name)
        names.update(family.name + suffix for suffix in _SUFFIXES.get(family.type, ()))
    return names


def test_every_panel_queries_exported_metrics() -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    exprs = [target["expr"] for panel in dashboard["panels"] for target in panel["targets"]]
    assert len(exprs) >= 10
    known = exported_names()
    for expr in exprs:
        without_strings = re.sub(r'"[^"]*"|\[[^\]]*\]', "", expr)
        for name in set(re.findall(r"[a-zA-Z_:][a-zA-Z0-9_:]*", without_strings)) - _PROMQL_WORDS:
            if name.startswith("vllm:") or not name.startswith("modelyard_"):
                continue  # vLLM's own names, and label names inside by (...)
            assert name in known, f"{expr}: {name} is not exported"


def test_worker_queues_are_never_summed_across_routers() -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    for panel in dashboard["panels"]:
        for target in panel["targets"]:
            if "modelyard_worker_" in target["expr"]:
                assert "max by (worker)" in target["expr"], target["expr"]
