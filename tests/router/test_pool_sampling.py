"""The bounded set a large pool scores: a random draw of `pool.sample` workers plus the previous request's ranking
(the power of K choices with memory), so a good worker a lucky draw found stays in the running while a fresh
draw of K would rarely hold it again, and the set stays bounded whatever the pool."""

from __future__ import annotations

import random

import pytest
from modelyard.v1 import inference_pb2 as pb

from bench import pool_sim
from router.backends.base import ModelSpec
from router.backends.worker import WorkerBackend
from router.config.pool import PoolConfig
from router.config.settings import RouterConfig
from router.routing.scheduler import Scheduler
from router.routing.scoring.base import Candidate
from router.routing.state import RoutingState

CHAT = pb.CAPABILITY_CHAT
SAMPLE = 2


def busy_pool(workers: int, idle: str) -> tuple[RoutingState, Scheduler]:
    """Every worker three quarters full but `idle`, which has nothing running."""
    config = RouterConfig(router_id="t", pool=PoolConfig(exact_max=4, sample=SAMPLE))
    state = RoutingState(config)
    for i in range(workers):
        backend = WorkerBackend(
            id=f"w{i}", kind="worker", models=[ModelSpec("m", frozenset({CHAT}))], max_concurrency=4
        )
        backend.in_flight = 0 if backend.id == idle else 3
        state.registry.add(backend)
    return state, Scheduler(state, random.Random(7))


def first(scheduler: Scheduler) -> str:
    return scheduler.plan("m", CHAT, pb.RoutingHints())[0].backend.id


def until_drawn(scheduler: Scheduler, worker_id: str) -> None:
    for _ in range(5000):
        if first(scheduler) == worker_id:
            return
    raise AssertionError(f"{worker_id} was never drawn")


def test_the_best_worker_a_draw_found_stays_scored_while_it_is_best() -> None:
    state, scheduler = busy_pool(300, idle="w150")
    until_drawn(scheduler, "w150")
    # A fresh draw of 2 from 300 holds it one time in 150; remembered, it is scored and chosen every time.
    assert [first(scheduler) for _ in range(50)] == ["w150"] * 50
    # Once it is as busy as the rest, the others compete again and it is not chosen for ever.
    w150 = state.registry.get("w150")
    assert w150 is not None
    w150.in_flight = 4  # full: filtered out
    assert all(first(scheduler) != "w150" for _ in range(50))


def test_a_remembered_worker_that_drains_or_leaves_is_not_scored() -> None:
    state, scheduler = busy_pool(300, idle="w150")
    until_drawn(scheduler, "w150")
    w150 = state.registry.get("w150")
    assert isinstance(w150, WorkerBackend)
    w150.draining = True
    state.registry.refresh(w150)
    assert all(
        c.backend.id != "w150" for _ in range(50) for c in scheduler.plan("m", CHAT, pb.RoutingHints())
    )
    w150.draining = False
    state.registry.refresh(w150)
    until_drawn(scheduler, "w150")
    state.registry.remove(w150)
    assert all(
        c.backend.id != "w150" for _ in range(50) for c in scheduler.plan("m", CHAT, pb.RoutingHints())
    )


@pytest.mark.parametrize("size", [100, 3000])
def test_the_scored_set_stays_bounded_whatever_the_pool(size: int) -> None:
    state, scheduler = busy_pool(size, idle="w1")
    scored: list[int] = []

    def count(ranked: list[Candidate]) -> list[Candidate]:
        scored.append(len(ranked))  # the whole ranking, before it is cut to what failover tries
        return ranked

    for _ in range(200):
        scheduler.plan("m", CHAT, pb.RoutingHints(), order=count)
    # The draw, and the previous ranking (as many as failover tries): never more, whatever the pool.
    assert max(scored) <= SAMPLE + state.config.retry.max_attempts


def test_in_a_mixed_pool_the_bounded_set_sends_no_more_to_slow_workers_than_scoring_every_one() -> None:
    """50 workers of five speeds (bench/pool_sim.py: the real Scheduler on a simulated clock, deterministic):
    a slow worker has to be tried once to be known, so some requests wait for one either way, but the bounded
    set adds next to none to those (a draw of 8 without the previous ranking added 8, a third more)."""
    settings = pool_sim.PoolSimSettings(copies=10, rate=40.0, seconds=20.0)
    outcomes = pool_sim.run_all(settings, ("composite",))
    slow_ms = 900.0  # a slow worker's TTFT is 1,000 ms here
    waited = {name: sum(ttft >= slow_ms for ttft in o.ttft_ms) for name, o in outcomes.items()}
    assert waited["composite"] <= waited[pool_sim.EXACT] + 3
