"""Registration, load reports, reconnects and drain, against a WorkerRegistry test double on real grpc.aio."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from modelyard.v1 import inference_pb2 as pb
from modelyard.worker.v1 import worker_pb2_grpc

from gpu_worker.app import WorkerApp, WorkerOptions
from gpu_worker.engine_set import EngineSet
from gpu_worker.registration import Backoff
from gpu_worker.router_pool import parse_router_targets
from tests.support.polling import wait_until
from tests.worker.gated_engine import GatedChatEngine
from tests.worker.registry_double import running_registry
from tests.worker.servers import read_rest


@asynccontextmanager
async def worker_app(
    routers: list[str], engines: EngineSet | None = None, worker_id: str = "w1", grace: float = 5.0
) -> AsyncIterator[tuple[WorkerApp, asyncio.Task[int]]]:
    options = WorkerOptions(
        worker_id=worker_id, routers=parse_router_targets(routers), listen="127.0.0.1:0", grace_seconds=grace
    )
    app = WorkerApp(options, engines or EngineSet(chat=[GatedChatEngine()]))
    await app.start()
    run = asyncio.create_task(app.run_until_drained())
    try:
        yield app, run
    finally:
        app.drain("test over")
        await asyncio.wait_for(run, 30)


async def test_hello_then_load_reports() -> None:
    async with running_registry() as router, worker_app([router.address]) as (app, _):
        await wait_until(lambda: len(router.registry.loads) >= 3, message="no load reports")
        hello = router.registry.hellos[0]
        assert hello.worker_id == "w1"
        assert hello.address == app.address
        assert hello.address.startswith("127.0.0.1:")
        assert [model.id for model in hello.models] == ["gated"]
        assert list(hello.models[0].capabilities) == [pb.CAPABILITY_CHAT]
        assert hello.max_concurrency == 16
        assert hello.version
        assert not router.registry.loads[-1].draining


async def test_reconnects_to_a_restarted_router_by_itself() -> None:
    async with running_registry() as router, worker_app([router.address]) as (app, _):
        await wait_until(lambda: len(router.registry.hellos) == 1)
        stream = app.pool.streams[router.address]
        await router.stop()
        await wait_until(lambda: not stream.connected, message="the worker did not notice the router left")
        await router.start()  # same port
        # The backoff is capped at 5 s (test_backoff_grows_with_jitter_and_is_capped); the wait is generous.
        await wait_until(
            lambda: len(router.registry.hellos) == 2 and stream.connected,
            timeout=60.0,
            message="worker did not come back",
        )
        assert stream.sessions == 2


async def test_registers_with_every_router() -> None:
    async with (
        running_registry() as first,
        running_registry() as second,
        worker_app([f"{first.address},{second.address}"]) as (app, _),
    ):
        await wait_until(lambda: bool(first.registry.hellos) and bool(second.registry.hellos))
        assert set(app.pool.streams) == {first.address, second.address}


async def test_drain_command_finishes_in_flight_work_then_exits() -> None:
    engine = GatedChatEngine()
    async with (
        running_registry() as router,
        worker_app([router.address], EngineSet(chat=[engine])) as (app, run),
    ):
        await wait_until(lambda: "w1" in router.registry.open_streams)
        async with grpc.aio.insecure_channel(app.address) as channel:
            stub = worker_pb2_grpc.WorkerServiceStub(channel)
            health = health_pb2_grpc.HealthStub(channel)
            request = pb.ChatRequest(
                model="gated", messages=[pb.Message(role=pb.ROLE_USER, content=[pb.ContentPart(text="hi")])]
            )
            in_flight = stub.Chat(request)
            assert (await in_flight.read()).delta.text == "held"

            await router.registry.drain("w1", "router rollout")
            await wait_until(
                lambda: any(load.draining for load in router.registry.loads),
                message="no draining",
            )
            reply = await health.Check(
                health_pb2.HealthCheckRequest(service="modelyard.worker.v1.WorkerService")
            )
            assert reply.status == health_pb2.HealthCheckResponse.NOT_SERVING
            with pytest.raises(grpc.aio.AioRpcError) as refused:
                await stub.Chat(request).read()
            assert refused.value.code() == grpc.StatusCode.UNAVAILABLE
            assert not run.done()  # still finishing the held request

            engine.release.set()
            rest = await read_rest(in_flight)
            assert rest[-1].usage.finish_reason == pb.FINISH_REASON_STOP
        assert await asyncio.wait_for(run, 10) == 0
        await wait_until(lambda: "w1" not in router.registry.open_streams, message="stream left open")


async def test_drain_gives_up_on_stuck_requests_after_the_grace_period() -> None:
    engine = GatedChatEngine()
    async with (
        running_registry() as router,
        worker_app([router.address], EngineSet(chat=[engine]), grace=0.5) as (app, run),
        grpc.aio.insecure_channel(app.address) as channel,
    ):
        stuck = worker_pb2_grpc.WorkerServiceStub(channel).Chat(
            pb.ChatRequest(
                model="gated",
                messages=[pb.Message(role=pb.ROLE_USER, content=[pb.ContentPart(text="x")])],
            )
        )
        await stuck.read()
        app.drain("test")
        # The engine never releases the request: only giving up after the grace lets the worker exit.
        assert await asyncio.wait_for(run, 60) == 0
        with pytest.raises(grpc.aio.AioRpcError):
            await read_rest(stuck)


def test_backoff_grows_with_jitter_and_is_capped() -> None:
    backoff = Backoff(initial=0.2, cap=5.0)
    delays = [backoff.next_delay() for _ in range(12)]
    assert 0.1 <= delays[0] <= 0.2
    assert all(delay <= 5.0 for delay in delays)
    assert delays[-1] >= 2.5
    backoff.reset()
    assert backoff.next_delay() <= 0.2
