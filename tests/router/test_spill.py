"""Local first on a real router: a worker of our own (slower than the cloud) and an OpenAI-format cloud double
serving the same model, with routes that prefer local, carry a TTFT target or are local only."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any, cast

import pytest
from modelyard.v1 import inference_pb2 as pb
from modelyard.v1 import router_pb2_grpc
from modelyard.worker.v1 import worker_pb2

from core import wire
from router.config.admission import AdmissionConfig, LocalFirstConfig, PlacementPolicy
from router.config.settings import ProviderConfig, RouterConfig
from router.server import RouterServer
from tests.support.echo_worker import EchoWorker, Faults
from tests.support.fake_openai import FakeOpenAI
from tests.support.polling import wait_until
from tests.support.pool import Pool, running_pool

TARGET_MS = 300.0


@dataclass
class QueueingWorker(EchoWorker):
    """An echo worker that declares a queue: the router may send it more than it runs at once."""

    def hello(self) -> worker_pb2.WorkerHello:
        hello = super().hello()
        hello.max_queue = 4
        return hello


@pytest.fixture
async def cloud() -> AsyncIterator[FakeOpenAI]:
    async with FakeOpenAI(models=("echo",), reply="from the cloud") as fake:
        yield fake


def cloud_provider(cloud: FakeOpenAI) -> ProviderConfig:
    return ProviderConfig(
        name="cloud",
        kind="openai_compatible",
        api_key=cloud.api_key,
        base_url=cloud.base_url,
        chat_models=["echo"],
    )


@pytest.fixture
async def pool(cloud: FakeOpenAI) -> AsyncIterator[Pool]:
    local_first = LocalFirstConfig(
        routes={
            "local": PlacementPolicy(prefer="local"),
            "fast": PlacementPolicy(ttft_slo_ms=TARGET_MS),
            "private": PlacementPolicy(ttft_slo_ms=TARGET_MS, local_only=True),
        }
    )
    config = RouterConfig(
        listen="127.0.0.1:0",
        router_id="spill",
        report_interval_ms=500,  # three missed (a busy machine) would end the worker's lease
        providers=[cloud_provider(cloud)],
        routes={"local": ["echo"], "fast": ["echo"], "private": ["echo"]},
        local_first=local_first,
    )
    worker = QueueingWorker("w1", max_concurrency=1, faults=Faults(delay_s=0.02))
    async with running_pool(config, worker) as started:
        yield started


@pytest.fixture
def router(pool: Pool) -> RouterServer:
    return pool.router


@pytest.fixture
def stub(pool: Pool) -> router_pb2_grpc.RouterServiceStub:
    return pool.stub


@pytest.fixture
def worker(pool: Pool) -> QueueingWorker:
    return cast(QueueingWorker, pool.workers["w1"])


def chat(model: str, **routing: Any) -> pb.ChatRequest:
    return pb.ChatRequest(
        model=model,
        messages=[pb.Message(role=pb.ROLE_USER, content=[pb.ContentPart(text="one two")])],
        routing=pb.RoutingHints(**routing),
    )


async def usage_of(stub: router_pb2_grpc.RouterServiceStub, request: pb.ChatRequest) -> pb.Usage:
    responses: list[pb.ChatResponse] = [r async for r in stub.Chat(request)]
    return responses[-1].usage


async def measure_both(stub: router_pb2_grpc.RouterServiceStub) -> None:
    """Answers from each, so the router has seen that the cloud answers sooner than the worker (its first
    answer pays for the connection)."""
    for _ in range(6):
        assert (await usage_of(stub, chat("echo", provider="cloud"))).backend == "cloud"
    assert (await usage_of(stub, chat("echo", provider="w1"))).backend == "w1"


async def hold_the_slot(stub: router_pb2_grpc.RouterServiceStub, worker: QueueingWorker) -> Any:
    worker.faults.hold = asyncio.Event()
    blocker = stub.Chat(chat("echo", provider="w1"))
    await blocker.read()  # the worker's one slot is taken until the hold is set
    return blocker


async def test_an_idle_worker_wins_over_a_faster_cloud_when_the_route_prefers_local(
    stub: router_pb2_grpc.RouterServiceStub, worker: QueueingWorker
) -> None:
    worker.faults.delay_s = 0.5  # much slower than the cloud (there is no target on these routes)
    await measure_both(stub)
    latency = pb.STRATEGY_LATENCY
    # Control: without the route's preference, the latency strategy sends to the faster cloud...
    assert (await usage_of(stub, chat("echo", strategy=latency))).backend == "cloud"
    # ...with prefer: local, the idle worker takes every request, however much faster the cloud is.
    for _ in range(3):
        usage = await usage_of(stub, chat("local", strategy=latency))
        assert usage.backend == "w1"
        assert not usage.spill_reason


async def test_a_saturated_worker_spills_to_the_cloud_and_usage_says_why(
    router: RouterServer, stub: router_pb2_grpc.RouterServiceStub, worker: QueueingWorker
) -> None:
    await measure_both(stub)
    worker.faults.delay_s = 0.2  # an answer now holds the slot about 0.4 s
    for _ in range(5):  # the fits (first token, time per token) follow it
        assert (await usage_of(stub, chat("echo", provider="w1"))).backend == "w1"
    assert (await usage_of(stub, chat("fast"))).backend == "w1"  # idle: the free worker meets the target
    blocker = await hold_the_slot(stub, worker)
    usage = await usage_of(stub, chat("fast"))
    assert usage.backend == "cloud"
    assert usage.spill_reason.startswith("predicted local TTFT ")
    assert usage.spill_reason.endswith(f"> target {TARGET_MS:.0f} ms")
    # The caller's own target works the same way, and a lax one keeps the request local (queued).
    lax = pb.RoutingHints(ttft_slo=wire.duration_ms(60_000))
    queued = asyncio.create_task(
        usage_of(stub, pb.ChatRequest(model="echo", messages=chat("").messages, routing=lax))
    )
    await wait_until(lambda: router.registry.get("w1").in_flight == 2)  # type: ignore[union-attr]
    assert worker.faults.hold is not None
    worker.faults.hold.set()
    assert (await queued).backend == "w1"
    blocker.cancel()
    metrics = router.accounting.metrics.registry
    assert metrics.get_sample_value("modelyard_spilled_requests_total") == 1
    assert metrics.get_sample_value("modelyard_placed_requests_total", {"where": "cloud"}) == 1


async def test_local_only_never_spills(
    router: RouterServer, stub: router_pb2_grpc.RouterServiceStub, worker: QueueingWorker
) -> None:
    await measure_both(stub)
    worker.faults.delay_s = 0.2
    blocker = await hold_the_slot(stub, worker)
    waiting = asyncio.create_task(usage_of(stub, chat("private")))
    # It waits on the busy worker although the cloud is idle, faster, and the target will be missed.
    await wait_until(lambda: router.registry.get("w1").in_flight == 2)  # type: ignore[union-attr]
    assert worker.faults.hold is not None
    worker.faults.hold.set()
    usage = await waiting
    assert usage.backend == "w1"
    assert not usage.spill_reason
    blocker.cancel()


async def test_the_prediction_follows_a_worker_that_slows_down(
    router: RouterServer, stub: router_pb2_grpc.RouterServiceStub, worker: QueueingWorker
) -> None:
    await measure_both(stub)
    model = router.pipeline.placement.ttft
    backend = router.registry.get("w1")
    assert backend is not None
    for _ in range(3):
        assert (await usage_of(stub, chat("fast"))).backend == "w1"
    before = model.predict(backend)
    assert before is not None
    assert before < TARGET_MS
    worker.faults.delay_s = 0.5  # ten times slower: its first token alone now takes longer than the target
    for _ in range(4):
        await usage_of(stub, chat("echo", provider="w1"))
    after = model.predict(backend)
    assert after is not None
    assert after > TARGET_MS > before
    # Idle but too slow for the target now: the request spills.
    usage = await usage_of(stub, chat("fast"))
    assert usage.backend == "cloud"
    assert "predicted local TTFT" in usage.spill_reason


async def test_with_the_admission_queue_a_target_spills_and_local_only_waits_in_the_router(
    cloud: FakeOpenAI,
) -> None:
    local_first = LocalFirstConfig(
        routes={"fast": PlacementPolicy(ttft_slo_ms=TARGET_MS), "private": PlacementPolicy(local_only=True)}
    )
    config = RouterConfig(
        listen="127.0.0.1:0",
        router_id="spill-admission",
        report_interval_ms=500,
        providers=[cloud_provider(cloud)],
        routes={"fast": ["echo"], "private": ["echo"]},
        local_first=local_first,
        # No dispatch lead: the held blocker would look about to end (its answers take 40 ms) and the
        # next request would be sent to wait behind it; this is about a worker at its limit.
        admission=AdmissionConfig(enabled=True, dispatch_lead_ms=0),
    )
    worker = QueueingWorker("w1", max_concurrency=1, faults=Faults(delay_s=0.02))
    async with running_pool(config, worker) as pool:
        router, stub = pool.router, pool.stub
        await measure_both(stub)
        blocker = await hold_the_slot(stub, worker)
        # The worker is saturated (its one slot, target_queue_depth 0): the cloud meets the target.
        assert (await usage_of(stub, chat("fast"))).backend == "cloud"
        # local_only: held in the router's queue, not piled onto the worker, until the slot frees.
        private = asyncio.create_task(usage_of(stub, chat("private")))
        queue = router.pipeline.placement.queue
        await wait_until(lambda: queue.waiting == 1)
        assert router.registry.get("w1").in_flight == 1  # type: ignore[union-attr]
        assert worker.faults.hold is not None
        worker.faults.hold.set()
        usage = await private
        assert usage.backend == "w1"
        assert wire.ms_of(usage.queue_wait) > 0
        blocker.cancel()


async def test_a_worker_that_leaves_takes_its_fit_and_progress_with_it(
    router: RouterServer, stub: router_pb2_grpc.RouterServiceStub, worker: QueueingWorker
) -> None:
    placement = router.pipeline.placement
    assert (await usage_of(stub, chat("fast"))).backend == "w1"
    assert placement.ttft.base_ms("w1") is not None
    await worker.stop()
    await wait_until(lambda: router.registry.get("w1") is None)
    assert placement.ttft.base_ms("w1") is None
    assert not placement.progress.on("w1")
