"""Table-driven tests of the local-first order (router.routing.spill) and the TTFT model it reads."""

from __future__ import annotations

import pytest
from modelyard.v1 import inference_pb2 as pb

from core.errors import NoBackendAvailable
from router.backends.base import Backend, ModelSpec
from router.backends.factory import create_backend
from router.backends.worker import WorkerBackend
from router.config.settings import ProviderConfig
from router.routing.load_view import ahead
from router.routing.scoring.base import Candidate
from router.routing.spill import Policy, order
from router.routing.stats import BackendStats
from router.routing.ttft_model import TtftModel

MODEL = ModelSpec("m", frozenset({pb.CAPABILITY_CHAT}))


def worker(name: str, in_flight: int = 0) -> WorkerBackend:
    backend = WorkerBackend(id=name, kind="worker", models=[MODEL], max_concurrency=4, max_queue=16)
    backend.in_flight = in_flight
    return backend


def cloud(name: str) -> Backend:
    return create_backend(
        ProviderConfig(name=name, kind="openai_compatible", base_url="http://127.0.0.1:9/v1")
    )


def candidates(*specs: tuple[Backend, float]) -> list[Candidate]:
    return [Candidate(b, "m", BackendStats(), cost, 0) for b, cost in specs]


PREDICTED = {"idle": 30.0, "queued": 200.0, "busy": 900.0, "cheap": 250.0, "dear": 200.0, "slow": 700.0}


def predict(c: Candidate) -> float | None:
    return PREDICTED.get(c.backend.id)


@pytest.mark.parametrize(
    ("specs", "policy", "first", "spilled"),
    [
        # Workers cost nothing: an idle one that meets the target goes first, however fast the clouds are.
        ([("dear", 0.02), ("idle", 0.0)], Policy(ttft_slo_ms=300), "idle", False),
        # Two workers meet it: the one that can start it now, whatever the scheduler's ranking (a wait
        # behind a queue varies most).
        ([("queued", 0.0), ("idle", 0.0)], Policy(ttft_slo_ms=300), "idle", False),
        # A saturated worker misses it: the cheapest cloud that meets it, not the fastest.
        ([("busy", 0.0), ("dear", 0.02), ("cheap", 0.01)], Policy(ttft_slo_ms=300), "cheap", True),
        # None meets it: the best prediction.
        ([("busy", 0.0), ("slow", 0.01)], Policy(ttft_slo_ms=100), "slow", True),
        # local_only: the busy worker rather than any cloud.
        ([("dear", 0.02), ("busy", 0.0)], Policy(ttft_slo_ms=300, local_only=True), "busy", False),
        # No target and no preference: the scheduler's ranking stands.
        ([("dear", 0.02), ("idle", 0.0)], Policy(), "dear", False),
        # prefer local: an idle worker before a cloud ranked above it.
        ([("dear", 0.02), ("idle", 0.0)], Policy(prefer_local=True), "idle", False),
        # prefer local, but the worker has requests queued ahead: the ranking stands.
        ([("dear", 0.02), ("busy", 0.0)], Policy(prefer_local=True), "dear", False),
    ],
)
def test_order(specs: list[tuple[str, float]], policy: Policy, first: str, spilled: bool) -> None:
    backends = {
        "idle": worker("idle"),
        "queued": worker("queued", in_flight=4),
        "busy": worker("busy", in_flight=6),
    }
    ranked = candidates(*((backends.get(name) or cloud(name), cost) for name, cost in specs))
    ordered, reason = order(ranked, policy, predict, ahead)
    assert ordered[0].backend.id == first
    assert sorted(c.backend.id for c in ordered) == sorted(
        name for name, _ in specs if not policy.local_only or name in backends
    )
    assert bool(reason) == spilled
    if spilled and policy.ttft_slo_ms is not None:
        assert reason == f"predicted local TTFT 900 ms > target {policy.ttft_slo_ms:.0f} ms"


def test_local_only_with_no_worker_is_refused_naming_the_rule() -> None:
    with pytest.raises(NoBackendAvailable) as raised:
        order(candidates((cloud("dear"), 0.02)), Policy(local_only=True), predict, ahead)
    assert raised.value.reason == "LOCAL_ONLY"
    assert "local_only" in raised.value.message


def test_the_model_fits_the_wait_per_request_ahead_and_follows_a_slowdown() -> None:
    model = TtftModel()
    backend = worker("w")
    assert model.predict(backend, 0) is None  # not measured yet
    model.observe("w", 0, ttft_ms=20.0, latency_ms=400.0)
    # Nothing has waited there yet: each request ahead adds a slot's service time over the slots.
    assert model.predict(backend, 2) == pytest.approx(20.0 + 2 * 400.0 / 4)
    for _ in range(20):
        model.observe("w", 2, ttft_ms=20.0 + 2 * 150.0, latency_ms=None)
    assert model.predict(backend, 2) == pytest.approx(320.0, rel=0.01)
    assert model.predict(backend, 2, wait_factor=2.0) == pytest.approx(20.0 + 2 * 2 * 150.0, rel=0.01)
    for _ in range(10):
        model.observe("w", 0, ttft_ms=200.0, latency_ms=600.0)
    slowed = model.predict(backend, 0)
    assert slowed is not None
    assert slowed > 190.0


def test_short_waits_do_not_pull_the_wait_per_request_ahead_under_the_queues_pace() -> None:
    """A run of waits that happened to be short (the running requests near their ends) leaves the
    prediction at the pace a queue moves, service / slots, so placement does not queue deep on luck."""
    model = TtftModel()
    backend = worker("w")
    model.observe("w", 0, ttft_ms=20.0, latency_ms=400.0)
    for _ in range(10):
        model.observe("w", 2, ttft_ms=20.0 + 2 * 30.0, latency_ms=None)
    assert model.predict(backend, 2) == pytest.approx(20.0 + 2 * 400.0 / 4)
