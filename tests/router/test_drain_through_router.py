"""Draining a worker through the router: Admin DrainWorker, the registry's drain command on the lease, the
worker's draining report, the scheduler skipping it, and the held request finishing there.

The workers are real gpu_worker WorkerApps (server, admission, registration, drain) on a held test engine,
registered with a real router.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import grpc
import pytest
from modelyard.v1 import admin_pb2, admin_pb2_grpc, router_pb2_grpc
from modelyard.v1 import inference_pb2 as pb

from gpu_worker.app import WorkerApp, WorkerOptions
from gpu_worker.engine_set import EngineSet
from gpu_worker.router_pool import parse_router_targets
from router.server import RouterServer
from tests.router.test_status_codes import reason_of
from tests.support.polling import wait_until
from tests.worker.gated_engine import GatedChatEngine
from tests.worker.servers import read_rest


def ask(text: str = "hi", provider: str = "") -> pb.ChatRequest:
    request = pb.ChatRequest(
        model="gated", messages=[pb.Message(role=pb.ROLE_USER, content=[pb.ContentPart(text=text)])]
    )
    request.routing.provider = provider
    return request


async def start_worker(router: RouterServer, worker_id: str) -> tuple[WorkerApp, GatedChatEngine]:
    engine = GatedChatEngine()
    options = WorkerOptions(
        worker_id=worker_id,
        routers=parse_router_targets([router.address]),
        listen="127.0.0.1:0",
        grace_seconds=60.0,
    )
    app = WorkerApp(options, EngineSet(chat=[engine]))
    await app.start()
    await wait_until(lambda: router.registry.get(worker_id) is not None)
    return app, engine


@pytest.fixture
async def admin(router: RouterServer) -> AsyncIterator[admin_pb2_grpc.AdminServiceStub]:
    async with grpc.aio.insecure_channel(router.address) as channel:
        yield admin_pb2_grpc.AdminServiceStub(channel)


async def test_drain_worker_moves_new_requests_away_and_lets_the_held_one_finish(
    router: RouterServer, stub: router_pb2_grpc.RouterServiceStub, admin: admin_pb2_grpc.AdminServiceStub
) -> None:
    # "a-leaves" is the worker ties pick (by id), so only the drain can send a request past it.
    leaving, leaving_engine = await start_worker(router, "a-leaves")
    staying, staying_engine = await start_worker(router, "b-stays")
    run = asyncio.create_task(leaving.run_until_drained())
    try:
        held = stub.Chat(ask("held"))
        assert (await held.read()).delta.text == "held"
        assert leaving_engine.started == 1

        reply = await admin.DrainWorker(admin_pb2.DrainWorkerRequest(worker_id="a-leaves", reason="rollout"))
        assert reply.draining
        backend = router.registry.get("a-leaves")
        assert backend is not None
        # The command reached the worker over its lease; its next report says it is draining.
        await wait_until(lambda: leaving.draining and backend.draining)

        # A new request goes to the other worker, without a failed attempt on the draining one.
        staying_engine.release.set()
        rest = await read_rest(stub.Chat(ask("next")))
        assert rest[-1].usage.backend == "b-stays"
        assert leaving_engine.started == 1
        assert router.state.stats["a-leaves"].failures == 0

        # Asked for by name, the draining worker is not a candidate: the router says so, naming it.
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await read_rest(stub.Chat(ask("pinned", provider="a-leaves")))
        assert refused.value.code() == grpc.StatusCode.UNAVAILABLE
        assert reason_of(refused.value) == "NO_BACKEND_AVAILABLE"
        assert "draining: a-leaves" in (refused.value.details() or "")

        # The request it held finishes there; then the worker exits 0 and leaves the pool.
        assert not run.done()
        leaving_engine.release.set()
        finished = await read_rest(held)
        assert finished[-1].usage.backend == "a-leaves"
        assert finished[-1].usage.finish_reason == pb.FINISH_REASON_STOP
        assert await asyncio.wait_for(run, 60) == 0
        await wait_until(lambda: router.registry.get("a-leaves") is None)
    finally:
        for app in (leaving, staying):
            app.drain("test over")
        staying_run = asyncio.create_task(staying.run_until_drained())
        await asyncio.wait_for(asyncio.gather(run, staying_run, return_exceptions=True), 60)


async def test_drain_worker_names_an_unknown_worker(admin: admin_pb2_grpc.AdminServiceStub) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await admin.DrainWorker(admin_pb2.DrainWorkerRequest(worker_id="nobody"))
    assert refused.value.code() == grpc.StatusCode.NOT_FOUND
    assert reason_of(refused.value) == "NOT_FOUND"
    assert "'nobody'" in (refused.value.details() or "")
