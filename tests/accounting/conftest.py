from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from modelyard.v1 import accounting_pb2, accounting_pb2_grpc, router_pb2_grpc
from modelyard.v1 import inference_pb2 as pb

from router.config.settings import RetryPolicy, RouterConfig
from router.server import RouterServer
from tests.support.echo_worker import EchoWorker
from tests.support.polling import wait_until
from tests.support.servers import postgres_server, redis_server
from tests.support.system_tools import require


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    require("initdb")
    with postgres_server() as url:
        yield url


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    require("redis-server")
    with redis_server() as url:
        yield url


RouterFactory = Callable[..., Awaitable[RouterServer]]
WorkerFactory = Callable[..., Awaitable[EchoWorker]]


@pytest.fixture
async def start_router(tmp_path: Path) -> AsyncIterator[RouterFactory]:
    """Start routers with config overrides; each gets a SQLite ledger in tmp_path unless told otherwise."""
    started: list[RouterServer] = []

    async def start(**overrides: Any) -> RouterServer:
        settings: dict[str, Any] = {
            "listen": "127.0.0.1:0",
            "router_id": f"test-router-{len(started)}",
            "report_interval_ms": 100,
            "retry": RetryPolicy(max_attempts=3, backoff_base_s=0.01, backoff_max_s=0.05),
            "usage_db": str(tmp_path / "usage.sqlite3"),
            "prices": {"echo": {"input_per_m": 1000.0, "output_per_m": 2000.0}},
        }
        settings.update(overrides)
        server = RouterServer(RouterConfig(**settings))
        await server.start()
        started.append(server)
        return server

    yield start
    for server in started:
        if server.port:
            await server.stop(0)


@pytest.fixture
async def start_worker() -> AsyncIterator[WorkerFactory]:
    started: list[EchoWorker] = []

    async def start(
        router: RouterServer, worker_id: str = "w1", models: tuple[str, ...] = ("echo",)
    ) -> EchoWorker:
        worker = EchoWorker(worker_id, models=models)
        await worker.start()
        await worker.register(router.address)
        started.append(worker)
        await wait_until(lambda: router.registry.get(worker_id) is not None)
        return worker

    yield start
    for worker in started:
        await worker.stop()


async def stop_router(router: RouterServer, *workers: EchoWorker) -> None:
    """Stop a router during a test: its workers first, as a router going away would end their leases."""
    for worker in workers:
        await worker.stop()
    await router.stop(0)


def chat_request(text: str = "one two three four five", temperature: float | None = None) -> pb.ChatRequest:
    request = pb.ChatRequest(
        model="echo", messages=[pb.Message(role=pb.ROLE_USER, content=[pb.ContentPart(text=text)])]
    )
    if temperature is not None:
        request.sampling.temperature = temperature
    return request


async def chat(router: RouterServer, request: pb.ChatRequest, key: str | None = None) -> tuple[str, pb.Usage]:
    metadata = (("authorization", f"Bearer {key}"),) if key else ()
    async with grpc.aio.insecure_channel(router.address) as channel:
        text, usage = "", pb.Usage()
        async for response in router_pb2_grpc.RouterServiceStub(channel).Chat(request, metadata=metadata):
            if response.HasField("usage"):
                usage = response.usage
            else:
                text += response.delta.text
        return text, usage


async def get_usage(
    router: RouterServer, key: str | None = None, **fields: Any
) -> accounting_pb2.GetUsageResponse:
    metadata = (("authorization", f"Bearer {key}"),) if key else ()
    async with grpc.aio.insecure_channel(router.address) as channel:
        stub = accounting_pb2_grpc.AccountingServiceStub(channel)
        response: accounting_pb2.GetUsageResponse = await stub.GetUsage(
            accounting_pb2.GetUsageRequest(**fields), metadata=metadata
        )
        return response
