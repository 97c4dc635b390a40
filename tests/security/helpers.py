"""What the security tests share: routers configured in code, raw registrations, and a worker app."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import grpc
from modelyard.worker.v1 import worker_pb2, worker_pb2_grpc
from modelyard_client._aio_status import FirstStatus

from core.worker_token import token_metadata
from gpu_worker.app import WorkerApp, WorkerOptions
from gpu_worker.engine_set import EngineSet
from gpu_worker.router_pool import parse_router_targets
from gpu_worker.security import WorkerSecurity
from router.config.security import WorkersConfig
from router.config.settings import RouterConfig
from router.server import RouterServer
from tests.worker.gated_engine import GatedChatEngine

TOKEN = "worker-token-for-tests-0123456789"


def config(**changes: Any) -> RouterConfig:
    workers = changes.pop("workers", WorkersConfig())
    base = RouterConfig(listen="127.0.0.1:0", router_id="sec", usage_db="off", report_interval_ms=200)
    return dataclasses.replace(base, workers=workers, **changes)


@asynccontextmanager
async def running_router(cfg: RouterConfig) -> AsyncIterator[RouterServer]:
    server = RouterServer(cfg)
    await server.start()
    try:
        yield server
    finally:
        await server.stop(0)


async def register_once(
    address: str,
    hello: worker_pb2.WorkerHello,
    token: str = "",
    channel_credentials: grpc.ChannelCredentials | None = None,
) -> grpc.StatusCode:
    """Open a Register stream, send `hello`, and return how the router answered: OK for an ack."""
    channel = (
        grpc.aio.secure_channel(address, channel_credentials)
        if channel_credentials
        else grpc.aio.insecure_channel(address)
    )
    async with channel:
        call = worker_pb2_grpc.WorkerRegistryServiceStub(channel).Register(metadata=token_metadata(token))
        # The router may refuse on the metadata alone, before our hello is written; grpc.aio then reports the
        # failed write as INTERNAL (grpc/grpc#36066), so keep the status the router really sent.
        first = FirstStatus(call)
        try:
            await call.write(worker_pb2.RegisterRequest(hello=hello))
            reply = await asyncio.wait_for(call.read(), 10)
        except grpc.aio.AioRpcError as e:
            corrected = first.correct(e)
            return corrected.code() if isinstance(corrected, grpc.aio.AioRpcError) else e.code()
        if reply is grpc.aio.EOF:
            code: grpc.StatusCode = await call.code()
            return code
        call.cancel()
        return grpc.StatusCode.OK


@asynccontextmanager
async def gated_worker(
    router_address: str, security: WorkerSecurity, worker_id: str = "gpu-1"
) -> AsyncIterator[tuple[WorkerApp, GatedChatEngine]]:
    """The real worker app (server, registration, drain) around an engine that answers when released."""
    engine = GatedChatEngine()
    engine.release.set()
    options = WorkerOptions(
        worker_id=worker_id,
        routers=parse_router_targets([router_address]),
        listen="127.0.0.1:0",
        grace_seconds=2.0,
        security=security,
    )
    app = WorkerApp(options, EngineSet(chat=[engine]))
    await app.start()
    run = asyncio.create_task(app.run_until_drained())
    try:
        yield app, engine
    finally:
        app.drain("test over")
        await asyncio.wait_for(run, 30)
