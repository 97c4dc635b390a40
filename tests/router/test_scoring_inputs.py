"""What makes the scheduling step cheap decides exactly as before: the strategy's scorers worked out in one pass
(scoring.fused) against each scorer on its own, score inputs kept on the worker and the stats as they change, the
filter's health and circuit shortcuts, the sample's draws, components built only when read."""

from __future__ import annotations

import random

import pytest
from modelyard.v1 import backend_pb2
from modelyard.v1 import inference_pb2 as pb
from prometheus_client import CollectorRegistry

from router.backends.base import ModelSpec
from router.backends.worker import WorkerBackend
from router.config.settings import RouterConfig
from router.routing.candidate_index import Bucket
from router.routing.circuit import CircuitBreaker
from router.routing.placement import Placement
from router.routing.scheduler import Scheduler
from router.routing.scoring.base import Candidate
from router.routing.scoring.strategies import SCORERS, WeightSet, rank
from router.routing.state import RoutingState
from router.routing.stats import BackendStats
from router.routing.ttft_model import Observed
from tests.support.scoring import candidates_of, plain_rank

CHAT = pb.CAPABILITY_CHAT
NAMES = sorted(SCORERS)


def _worker(name: str, rng: random.Random) -> WorkerBackend:
    backend = WorkerBackend(
        id=name, kind="worker", models=[ModelSpec("m", frozenset({CHAT}))], max_concurrency=4, max_queue=4
    )
    backend.load = backend_pb2.LoadReport(
        running=rng.randint(0, 8), waiting=rng.randint(0, 4), kv_cache_usage=rng.choice([0.0, rng.random()])
    )
    backend.in_flight = rng.randint(0, 3)
    return backend


@pytest.mark.parametrize("seed", range(40))
def test_one_pass_gives_each_scorers_values_and_sums_for_any_weights_in_any_order(
    seed: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    rng = random.Random(seed)
    now = 1000.0
    monkeypatch.setattr(SCORERS["latency"], "clock", lambda: now)  # one time for both ways of scoring
    names = rng.sample(NAMES, rng.randint(1, len(NAMES)))  # a subset, in any order
    weights = {name: rng.choice([1.0, 2.0, 3.0, 100.0, rng.uniform(0.1, 5.0)]) for name in names}
    pool = []
    for i in range(rng.randint(1, 12)):
        stats = BackendStats(success_rate=rng.random(), ttft_ms=rng.choice([None, rng.uniform(0.5, 500)]))
        if rng.random() < 0.3:  # a request there still waits for its first item
            stats.awaiting_first(object(), now - rng.uniform(0, 2))
        pool.append(
            (
                _worker(f"w{i}", rng),
                stats,
                rng.choice([0.0, 0.001, rng.random()]),
                rng.choice([0, 100, rng.randint(0, 3)]),
                rng.choice([0.0, rng.random(), 1.5]),
            )
        )

    expected, got = candidates_of(pool), candidates_of(pool)
    columns = {name: SCORERS[name].score(expected) for name in names}
    expected = plain_rank(expected, weights)
    ranked = rank(got, WeightSet.of(weights))
    assert [c.backend.id for c in ranked] == [c.backend.id for c in expected]
    assert [c.score for c in ranked] == [c.score for c in expected]  # bit for bit
    by_id = {c.backend.id: i for i, c in enumerate(candidates_of(pool))}
    for candidate in ranked:
        row = by_id[candidate.backend.id]
        assert candidate.components == {name: columns[name][row] for name in names}
        assert list(candidate.components) == names  # in the strategy's order


def test_components_are_built_when_read_and_follow_a_new_score() -> None:
    rng = random.Random(3)
    candidates = [Candidate(_worker(f"w{i}", rng), "m", BackendStats(), 0.0, 100) for i in range(3)]
    assert candidates[0].components == {}
    candidates[0].components["x"] = 1.0  # a plain dict until the candidate is scored
    assert candidates[0].components == {"x": 1.0}
    ranked = rank(candidates, {"load": 1.0, "success_rate": 2.0})
    first = ranked[0].components
    assert first is ranked[0].components  # built once
    assert set(first) == {"load", "success_rate"}
    rank(candidates, {"priority": 1.0})
    assert ranked[0].components == {"priority": 1.0}


def test_status_reads_the_last_scores_components_from_the_stats() -> None:
    state = RoutingState(RouterConfig(router_id="t"))
    rng = random.Random(5)
    for i in range(3):
        state.registry.add(_worker(f"w{i}", rng))
    ranked = Scheduler(state).plan("m", CHAT, pb.RoutingHints())
    for candidate in ranked:
        stats = state.stats[candidate.backend.id]
        assert stats.last_score == candidate.score
        assert stats.score_components == candidate.components
        assert set(stats.score_components) == {name for name, _ in state.strategies.weight_set().terms}


def test_a_workers_utilisation_is_kept_as_its_report_requests_and_capacity_change() -> None:
    backend = WorkerBackend(id="w", kind="worker", models=[], max_concurrency=4, max_queue=4)
    assert backend.utilisation() == 0.0
    backend.load = backend_pb2.LoadReport(running=2, waiting=2)
    assert backend.utilisation() == 0.5
    backend.in_flight = 6  # ours outnumber the (lagging) report
    assert backend.utilisation() == 0.75
    backend.max_queue = 12
    assert backend.utilisation() == 6 / 16
    backend.load = backend_pb2.LoadReport(kv_cache_usage=0.9)
    assert backend.utilisation() == pytest.approx(0.9)
    backend.in_flight = 40
    assert backend.utilisation() == 1.0
    built = WorkerBackend(
        id="b", kind="worker", models=[], max_concurrency=2, load=backend_pb2.LoadReport(running=1)
    )
    assert built.utilisation() == 0.5  # worked out once every field is set


def test_the_oldest_attempt_awaiting_its_first_item_is_kept() -> None:
    stats = BackendStats()
    first, second, third = object(), object(), object()
    assert stats.awaiting_since is None
    assert stats.waiting_ms(10.0) == 0.0
    stats.awaiting_first(first, 1.0)
    stats.awaiting_first(second, 2.0)
    stats.awaiting_first(third, 3.0)
    assert stats.awaiting_since == 1.0
    assert stats.waiting_ms(4.0) == 3000.0
    stats.first_done(second)
    assert stats.awaiting_since == 1.0
    stats.first_done(first)
    assert stats.awaiting_since == 3.0
    stats.first_done(first)  # already done: nothing changes
    stats.first_done(third)
    assert stats.awaiting_since is None
    assert stats.waiting_ms(9.0) == 0.0


def test_a_tripped_breaker_is_flagged_until_it_closes() -> None:
    now = [0.0]
    breaker = CircuitBreaker(failure_threshold=2, cooldown_s=10, clock=lambda: now[0])
    assert not breaker.tripped
    breaker.record_failure()
    breaker.record_failure()
    assert breaker.tripped
    assert not breaker.allows()
    now[0] = 11.0  # half-open: the flag stays, `allows` lets one probe through
    assert breaker.tripped
    assert breaker.allows()
    breaker.record_success()
    assert not breaker.tripped


def test_a_half_open_circuit_lets_the_scheduler_pick_the_backend_and_an_open_one_does_not() -> None:
    state = RoutingState(RouterConfig(router_id="t"))
    rng = random.Random(1)
    for name in ("a", "b"):
        backend = _worker(name, rng)
        backend.in_flight, backend.load = 0, backend_pb2.LoadReport()
        state.registry.add(backend)
    now = [0.0]
    state.circuits["a"].clock = lambda: now[0]
    for _ in range(state.config.circuit_failure_threshold):
        state.circuits["a"].record_failure()
    scheduler = Scheduler(state)
    assert [c.backend.id for c in scheduler.plan("m", CHAT, pb.RoutingHints())] == ["b"]
    now[0] = state.config.circuit_cooldown_s + 1  # half-open: one probe may go
    assert {c.backend.id for c in scheduler.plan("m", CHAT, pb.RoutingHints())} == {"a", "b"}


@pytest.mark.parametrize(("ready", "count", "first"), [(1000, 16, 8), (50, 16, 8), (20, 4, 8), (10, 16, 8)])
def test_the_draw_takes_the_same_slots_as_one_random_number_a_draw(
    ready: int, count: int, first: int
) -> None:
    bucket = Bucket()
    rng = random.Random(0)
    for i in range(ready):
        bucket.put((_worker(f"w{i}", rng), "m"), ready=True)
    slots = list(bucket.members.values())
    drawn = list(bucket.draw(count, first, random.Random(42)))
    if count >= ready:
        assert sorted(s[0].id for s in drawn) == sorted(s[0].id for s in slots)
        return
    reference = random.Random(42)
    assert drawn == [slots[int(reference.random() * ready)] for _ in range(count)]


async def test_the_first_choices_expectations_are_what_ahead_predict_and_wait_say() -> None:
    state = RoutingState(RouterConfig(router_id="t"))
    placement = Placement(state, Scheduler(state), CollectorRegistry())
    backend = WorkerBackend(id="w", kind="worker", models=[], max_concurrency=1, max_queue=4)
    backend.in_flight = 1
    assert placement.expect_now(backend) == (placement.ahead(backend), None, 0.0)
    placement.ttft.observe("w", Observed(ttft_ms=50.0, latency_ms=250.0, tokens=5))
    placement.progress.placed("w", 0.0, 0)
    ahead, predicted, wait = placement.expect_now(backend)
    assert ahead == placement.ahead(backend)
    assert wait == pytest.approx(placement.wait_now(backend))
    assert predicted == pytest.approx(placement.predict_now(backend))
    assert predicted is not None
    assert predicted > 50.0  # its one slot is taken: it waits
    await placement.close()
