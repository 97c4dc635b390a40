"""What the latency scorer learns of a backend's time to first token, and when: the TTFT as the first item arrives
(not when the answer ends), as if idle (a TTFT seen under load is divided by the load factor the scorer gave it),
and the wait of a request still waiting for its first item as a lower bound on the TTFT now."""

from __future__ import annotations

import asyncio
import time

import grpc
import pytest
from modelyard.v1 import inference_pb2 as pb
from modelyard.v1 import router_pb2_grpc

from router.backends.base import ModelSpec
from router.backends.worker import WorkerBackend
from router.routing.scoring.base import Candidate
from router.routing.scoring.latency import load_factor
from router.routing.scoring.strategies import SCORERS
from router.routing.stats import BackendStats
from router.server import RouterServer
from tests.router.conftest import WorkerFactory
from tests.support.echo_worker import Faults
from tests.support.polling import wait_until


def candidate(name: str, stats: BackendStats, in_flight: int = 0) -> Candidate:
    backend = WorkerBackend(
        id=name, kind="worker", models=[ModelSpec("m", frozenset({pb.CAPABILITY_CHAT}))], max_concurrency=4
    )
    backend.in_flight = in_flight
    return Candidate(backend, "m", stats, 0.0, 100)


def latency(candidates: list[Candidate]) -> list[float]:
    return [round(v, 3) for v in SCORERS["latency"].score(candidates)]


async def test_ttft_is_recorded_when_the_first_item_arrives(
    router: RouterServer, stub: router_pb2_grpc.RouterServiceStub, echo_workers: WorkerFactory
) -> None:
    release = asyncio.Event()
    await echo_workers("w1", faults=Faults(hold=release))
    request = pb.ChatRequest(
        model="echo", messages=[pb.Message(role=pb.ROLE_USER, content=[pb.ContentPart(text="a b c")])]
    )
    call = stub.Chat(request)
    first = await call.read()
    assert first.delta.text
    stats = router.state.stats["w1"]
    # The answer is held open after its first item: its TTFT is known, the request not counted yet.
    await wait_until(lambda: stats.ttft_ms is not None)
    assert stats.idle_ttft_ms is not None
    assert stats.requests == 0
    release.set()
    while await call.read() is not grpc.aio.EOF:
        pass
    await wait_until(lambda: stats.requests == 1)
    assert stats.latency_ms is not None


def test_a_ttft_seen_under_load_is_learnt_as_if_idle() -> None:
    stats = BackendStats()
    stats.record_ttft(500.0, load_factor(0.4))  # a fast backend with a queue: its TTFT held the queue
    assert stats.ttft_ms == 500.0  # what it showed, for status
    assert stats.idle_ttft_ms == pytest.approx(100.0)
    # Idle again, it is expected as fast as it is: not five times slower than a backend that shows 200 idle.
    slower = BackendStats()
    slower.record_ttft(200.0)
    assert latency([candidate("fast", stats), candidate("slower", slower)]) == [1.0, 0.5]


def test_a_request_waiting_for_its_first_item_bounds_the_ttft_from_below() -> None:
    slowed = BackendStats()
    slowed.record_ttft(100.0)
    steady = BackendStats()
    steady.record_ttft(200.0)
    assert latency([candidate("slowed", slowed), candidate("steady", steady)]) == [1.0, 0.5]
    # It has just slowed down: a request there has waited 800 ms so far, and no TTFT says so yet.
    waiting = object()
    slowed.awaiting_first(waiting, time.perf_counter() - 0.8)
    assert slowed.waiting_ms(time.perf_counter()) >= 800.0
    assert latency([candidate("slowed", slowed), candidate("steady", steady)])[0] <= 0.25
    slowed.first_done(waiting)  # its first item came: the wait no longer counts
    assert slowed.waiting_ms(time.perf_counter()) == 0.0
    assert latency([candidate("slowed", slowed), candidate("steady", steady)]) == [1.0, 0.5]
