from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable

import grpc
import pytest
from modelyard.v1 import router_pb2_grpc

from router.config.settings import RetryPolicy, RouterConfig
from router.server import RouterServer
from tests.support.clouds import clouds_in_environment
from tests.support.echo_worker import EchoWorker
from tests.support.fake_anthropic import FakeAnthropic
from tests.support.fake_openai import FakeOpenAI
from tests.support.polling import wait_until


@pytest.fixture
async def router() -> AsyncIterator[RouterServer]:
    config = RouterConfig(
        listen="127.0.0.1:0",
        router_id="test-router",
        report_interval_ms=100,
        heartbeat_interval_ms=200,  # a silent worker is out after three: 0.6 s
        retry=RetryPolicy(max_attempts=3, backoff_base_s=0.01, backoff_max_s=0.05),
        startup_wait_s=0,  # some tests want the refusal with no worker; warm start has its own tests
    )
    server = RouterServer(config)
    await server.start()
    yield server
    await server.stop(0)


@pytest.fixture
async def stub(router: RouterServer) -> AsyncIterator[router_pb2_grpc.RouterServiceStub]:
    async with grpc.aio.insecure_channel(router.address) as channel:
        yield router_pb2_grpc.RouterServiceStub(channel)


WorkerFactory = Callable[..., Awaitable[EchoWorker]]


@pytest.fixture
async def echo_workers(router: RouterServer) -> AsyncIterator[WorkerFactory]:
    started: list[EchoWorker] = []

    async def start(worker_id: str, **kwargs: object) -> EchoWorker:
        worker = EchoWorker(worker_id, **kwargs)  # type: ignore[arg-type]
        await worker.start()
        await worker.register(router.address)
        started.append(worker)
        await wait_until(lambda: router.registry.get(worker_id) is not None)
        return worker

    yield start
    for worker in started:
        await worker.stop()


@pytest.fixture
async def clouds(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[tuple[FakeOpenAI, FakeAnthropic]]:
    """The fake OpenAI and Anthropic APIs, configured through the environment as users configure the real ones."""
    async with clouds_in_environment(monkeypatch) as started:
        yield started
