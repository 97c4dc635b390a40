"""What made the scheduling step cheaper decides as before: score inputs kept as outcomes and load reports
arrive, cached weight sets, and a `_plan` that does not suspend when it need not."""

from __future__ import annotations

import asyncio
import random

import pytest
from modelyard.v1 import backend_pb2
from modelyard.v1 import inference_pb2 as pb

from core import tracing
from core.errors import InvalidArgument
from router.accounting.estimates import estimate_chat
from router.backends.base import ModelSpec
from router.backends.worker import WorkerBackend
from router.config.accounting import DEFAULT_TENANT_BUDGET, Budget
from router.config.settings import RouterConfig
from router.routing.scoring.base import Candidate
from router.routing.scoring.strategies import DEFAULT_STRATEGIES, Strategies, WeightSet, rank
from router.routing.stats import BackendStats
from router.server import RouterServer
from tests.support.scoring import candidates_of, plain_rank

CHAT = frozenset({pb.CAPABILITY_CHAT})


def _worker(
    name: str, running: int = 0, waiting: int = 0, kv: float = 0.0, in_flight: int = 0
) -> WorkerBackend:
    backend = WorkerBackend(
        id=name, kind="worker", models=[ModelSpec("m", CHAT)], max_concurrency=4, max_queue=4
    )
    backend.load = backend_pb2.LoadReport(running=running, waiting=waiting, kv_cache_usage=kv)
    backend.in_flight = in_flight
    return backend


def test_success_and_ttft_inputs_follow_outcomes() -> None:
    stats = BackendStats()
    assert (stats.success_score, stats.measured_ttft_ms) == (1.0, None)
    stats.record_success(ttft_ms=40.0, latency_ms=100.0)
    assert stats.measured_ttft_ms == stats.idle_ttft_ms == 40.0
    stats.record_failure("boom", ttft_ms=90.0, load_factor=3.0)
    assert stats.success_score == stats.success_rate < 1.0
    assert stats.measured_ttft_ms == stats.idle_ttft_ms == pytest.approx(0.2 * 30.0 + 0.8 * 40.0)
    assert BackendStats(success_rate=1.5, ttft_ms=70.0).success_score == 1.0  # kept within [0, 1]
    assert BackendStats(success_rate=-0.5, ttft_ms=70.0).measured_ttft_ms == 70.0  # no idle figure yet
    assert BackendStats(success_rate=-0.5).success_score == 0.0


def test_a_failing_backend_loses_its_place_as_failures_arrive() -> None:
    steady, failing = BackendStats(), BackendStats()
    a, b = _worker("a"), _worker("b")

    def first() -> str:
        ranked = rank(
            [Candidate(a, "m", steady, 0.0, 100), Candidate(b, "m", failing, 0.0, 100)], {"success_rate": 1}
        )
        return ranked[0].backend.id

    assert first() == "a"  # a tie: the id decides
    for _ in range(3):
        failing.record_failure("boom")
    steady.record_failure("once")
    assert first() == "a"
    for _ in range(10):
        failing.record_success(None, 10.0)
    assert first() == "b"  # b recovered past a, whose one failure still shows


@pytest.mark.parametrize(
    ("running", "waiting", "kv", "in_flight"),
    [(0, 0, 0.0, 0), (3, 2, 0.1, 1), (1, 0, 0.9, 6), (9, 9, 0.0, 2), (0, 0, 1.7, 0), (2, 0, 0.0, 20)],
)
def test_worker_utilisation_follows_its_load_report_and_our_requests(
    running: int, waiting: int, kv: float, in_flight: int
) -> None:
    backend = _worker("w", running, waiting, kv, in_flight)
    busy = max(in_flight, running + waiting)
    reported_kv = backend.load.kv_cache_usage  # a float32 on the wire
    expected = max(min(1.0, busy / 8), min(1.0, reported_kv))  # the queue against capacity, or the KV cache
    assert backend.utilisation() == expected
    backend.load = backend_pb2.LoadReport()  # the next report: idle
    backend.in_flight = 0
    assert backend.utilisation() == 0.0


@pytest.mark.parametrize("strategy", sorted(DEFAULT_STRATEGIES))
def test_rank_orders_and_scores_exactly_as_the_plain_weighted_sum(strategy: str) -> None:
    rng = random.Random(strategy)
    for _ in range(50):
        pool = []
        for i in range(rng.randint(1, 12)):
            stats = BackendStats(success_rate=rng.random(), ttft_ms=rng.choice([None, rng.uniform(5, 500)]))
            backend = _worker(f"w{i}", rng.randint(0, 8), rng.randint(0, 4), rng.random(), rng.randint(0, 3))
            pool.append((backend, stats, rng.choice([0.0, rng.random()]), rng.randint(0, 3), rng.random()))

        weights = Strategies().weights(strategy)
        expected = plain_rank(candidates_of(pool), weights)
        got = rank(candidates_of(pool), Strategies().weight_set(strategy))
        assert [c.backend.id for c in got] == [c.backend.id for c in expected]
        assert [c.score for c in got] == [c.score for c in expected]  # the same sums, added in the same order
        assert [c.components for c in got] == [c.components for c in expected]
        assert [c.backend.id for c in rank(candidates_of(pool), weights)] == [
            c.backend.id for c in expected
        ]  # a mapping too


def test_weight_sets_follow_weight_changes_and_refuse_unknown_names() -> None:
    strategies = Strategies()
    assert strategies.weight_set() is strategies.weight_set("composite")  # built once
    assert strategies.weight_set().prefix
    strategies.update_weights("composite", {"prefix": 0.0})
    changed = strategies.weight_set()
    assert not changed.prefix
    assert "prefix" not in [name for name, _ in changed.terms]
    assert changed == WeightSet.of(strategies.weights("composite"))
    strategies.update_weights("composite", {}, reset=True)
    assert strategies.weight_set().prefix
    strategies.default = "latency"
    assert strategies.weight_set().terms[0][0] == "latency"
    with pytest.raises(InvalidArgument, match="unknown strategy"):
        strategies.weight_set("nope")


async def _plan_once(server: RouterServer) -> tuple[list[Candidate], bool, bool]:
    """One `_plan` as the pipeline's chat calls it: its candidates, whether the loop ran anything else
    before it returned (it suspended), and whether a budget reservation is held."""
    pipeline = server.pipeline
    request = pb.ChatRequest(
        model="m", messages=[pb.Message(role=pb.ROLE_USER, content=[pb.ContentPart(text="hi")])]
    )
    with (
        tracing.request_span("test", ()) as trace,
        pipeline._accounting.ticket("chat", (), request) as ticket,
        pipeline.placement.hold() as hold,
    ):
        ticket.authenticate()
        ran: list[bool] = []
        asyncio.get_running_loop().call_soon(ran.append, True)
        candidates = await pipeline._plan(
            trace, ticket, request, pb.CAPABILITY_CHAT, estimate_chat(request), hold=hold
        )
        return candidates, bool(ran), ticket.holds_budget


def _server(config: RouterConfig) -> RouterServer:
    server = RouterServer(config)
    for name in ("a", "b", "c"):
        server.registry.add(_worker(name))
    return server


async def test_plan_does_not_suspend_without_a_budget() -> None:
    server = _server(RouterConfig(listen="127.0.0.1:0"))
    for _ in range(3):
        candidates, suspended, held = await _plan_once(server)
        assert {c.backend.id for c in candidates} == {"a", "b", "c"}
        assert not suspended  # nothing else ran on the loop inside the scheduling step
        assert not held


async def test_plan_reserves_the_budget_where_one_applies() -> None:
    config = RouterConfig(listen="127.0.0.1:0")
    config.budgets = {DEFAULT_TENANT_BUDGET: Budget(daily_tokens=1_000_000)}
    server = _server(config)
    candidates, _suspended, held = await _plan_once(server)
    assert held
    assert candidates
