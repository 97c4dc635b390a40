"""Table-driven tests of each scorer, each strategy and the circuit breaker."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import pytest
from modelyard.v1 import backend_pb2
from modelyard.v1 import inference_pb2 as pb

from core.errors import InvalidArgument
from router.backends.base import Backend, ModelSpec
from router.backends.factory import create_backend
from router.backends.worker import WorkerBackend
from router.config.settings import ProviderConfig
from router.routing.circuit import CircuitBreaker
from router.routing.scoring.base import Candidate, spread_score
from router.routing.scoring.strategies import SCORERS, Strategies, rank
from router.routing.stats import BackendStats


def worker(
    name: str, running: int = 0, capacity: int = 4, kv: float = 0.0, in_flight: int = 0
) -> WorkerBackend:
    backend = WorkerBackend(
        id=name,
        kind="worker",
        models=[ModelSpec("m", frozenset({pb.CAPABILITY_CHAT}))],
        max_concurrency=capacity,
    )
    backend.load = backend_pb2.LoadReport(running=running, kv_cache_usage=kv)
    backend.in_flight = in_flight
    return backend


def candidate(
    name: str,
    *,
    success: float = 1.0,
    ttft: float | None = None,
    cost: float = 0.0,
    priority: int = 100,
    running: int = 0,
    kv: float = 0.0,
) -> Candidate:
    stats = BackendStats(success_rate=success, ttft_ms=ttft)
    return Candidate(worker(name, running=running, kv=kv), "m", stats, cost, priority)


def cloud(name: str, *, limit: int, in_flight: int, kind: str = "openai") -> Backend:
    """A real cloud backend (its SDK client is made, nothing is sent) with `in_flight` requests open."""
    backend = create_backend(
        ProviderConfig(name=name, kind=kind, api_key="sk-test", chat_models=["m"], max_concurrency=limit)
    )
    backend.in_flight = in_flight
    return backend


def scores(scorer: str, candidates: Sequence[Candidate]) -> list[float]:
    return [round(v, 3) for v in SCORERS[scorer].score(candidates)]


@pytest.mark.parametrize(
    ("scorer", "candidates", "expected"),
    [
        ("success_rate", [candidate("a", success=1.0), candidate("b", success=0.25)], [1.0, 0.25]),
        ("latency", [candidate("a", ttft=100), candidate("b", ttft=400)], [1.0, 0.25]),
        ("latency", [candidate("a", ttft=100), candidate("b")], [1.0, 1.0]),  # unmeasured: give it a chance
        ("latency", [candidate("a"), candidate("b")], [1.0, 1.0]),
        # the faster one is full (its TTFT will grow before it is measured): the idle one is expected sooner
        ("latency", [candidate("a", ttft=100, running=4), candidate("b", ttft=200)], [0.182, 1.0]),
        ("latency", [candidate("a", ttft=100, running=1), candidate("b", ttft=100)], [0.286, 1.0]),
        (
            "load",
            [candidate("a", running=0), candidate("b", running=2), candidate("c", running=4)],
            [1.0, 0.5, 0.0],
        ),
        ("load", [candidate("a", kv=0.9), candidate("b", running=1)], [0.1, 0.75]),
        (
            "cost",
            [candidate("a", cost=1.0), candidate("b", cost=3.0), candidate("c", cost=2.0)],
            [1.0, 0.0, 0.5],
        ),
        ("cost", [candidate("a", cost=2.0), candidate("b", cost=2.0)], [1.0, 1.0]),
        ("priority", [candidate("a", priority=1), candidate("b", priority=3)], [1.0, 0.0]),
    ],
)
def test_scorer(scorer: str, candidates: list[Candidate], expected: list[float]) -> None:
    assert scores(scorer, candidates) == expected


@pytest.mark.parametrize(
    ("make", "utilisation", "available"),
    [
        (lambda: cloud("openai", limit=8, in_flight=0), 0.0, True),
        (lambda: cloud("openai", limit=8, in_flight=4), 0.5, True),  # was 0.0625: the limit guessed as 64
        (lambda: cloud("anthropic", limit=8, in_flight=6, kind="anthropic"), 0.75, True),
        (lambda: cloud("openai", limit=8, in_flight=8), 1.0, False),
        (lambda: cloud("openai", limit=2, in_flight=1), 0.5, True),
        (lambda: worker("w", running=2, capacity=4), 0.5, True),
        (lambda: worker("w", kv=0.8), 0.8, True),
        (lambda: worker("w", in_flight=4, capacity=4), 1.0, False),
    ],
)
async def test_utilisation_load_score_and_availability_of_each_kind_of_backend(
    make: Callable[[], Backend], utilisation: float, available: bool
) -> None:
    backend = make()
    try:
        assert backend.utilisation() == pytest.approx(utilisation)
        assert scores("load", [Candidate(backend, "m", BackendStats(), 0.0, 100)]) == [
            round(1 - utilisation, 3)
        ]
        assert backend.available is available
    finally:
        await backend.close()


def test_spread_score_higher_is_better() -> None:
    assert spread_score([1.0, 3.0], lower_is_better=False) == [0.0, 1.0]


def pool() -> list[Candidate]:
    """cheap-but-flaky, fast-but-dear, idle-but-slow, first-in-priority-but-busy."""
    return [
        candidate("cheap", success=0.5, ttft=300, cost=0.001, priority=3, running=1),
        candidate("fast", success=1.0, ttft=50, cost=0.010, priority=2, running=1),
        candidate("idle", success=1.0, ttft=600, cost=0.005, priority=4, running=0),
        candidate("first", success=1.0, ttft=200, cost=0.008, priority=1, running=3),
    ]


@pytest.mark.parametrize(
    ("strategy", "best"),
    [
        ("composite", "fast"),
        ("fallback", "first"),
        ("priority", "first"),
        ("cost_optimized", "cheap"),
        ("latency", "fast"),
        ("least_loaded", "idle"),
    ],
)
def test_strategy_picks(strategy: str, best: str) -> None:
    ranked = rank(pool(), Strategies().weights(strategy))
    assert ranked[0].backend.id == best
    assert all(0.0 <= v <= 1.0 for c in ranked for v in c.components.values())


def test_fallback_is_strict_priority_order() -> None:
    ranked = rank(pool(), Strategies().weights("fallback"))
    assert [c.backend.id for c in ranked] == ["first", "fast", "cheap", "idle"]


def test_weights_change_at_runtime_and_are_checked() -> None:
    strategies = Strategies()
    strategies.set_weights("composite", {"cost": 1})
    assert rank(pool(), strategies.weights())[0].backend.id == "cheap"
    with pytest.raises(InvalidArgument, match="unknown scorer"):
        strategies.set_weights("composite", {"vibes": 1})
    with pytest.raises(InvalidArgument, match="unknown strategy"):
        strategies.check("random")


def state(breaker: CircuitBreaker) -> str:
    return breaker.state.value  # through a call, so mypy does not narrow across assertions


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_circuit_opens_after_threshold_and_one_probe_closes_it() -> None:
    clock = Clock()
    breaker = CircuitBreaker(failure_threshold=3, cooldown_s=10, clock=clock)
    for _ in range(2):
        breaker.record_failure()
    assert state(breaker) == "closed"
    breaker.record_failure()
    assert state(breaker) == "open"
    assert not breaker.allows()
    clock.now = 10
    assert state(breaker) == "half_open"
    assert breaker.allows()
    breaker.on_attempt()
    assert not breaker.allows()  # one probe at a time
    breaker.record_success()
    assert state(breaker) == "closed"


def test_failed_probe_reopens_and_retry_after_is_honoured() -> None:
    clock = Clock()
    breaker = CircuitBreaker(failure_threshold=3, cooldown_s=10, clock=clock)
    breaker.record_failure(retry_after_s=42)  # a 429 opens at once, for as long as it says
    assert state(breaker) == "open"
    clock.now = 41
    assert not breaker.allows()
    clock.now = 42
    breaker.on_attempt()
    breaker.record_failure()
    assert state(breaker) == "open"
    clock.now = 52
    assert breaker.allows()
