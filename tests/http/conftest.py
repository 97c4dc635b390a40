"""A real router with its HTTP door on 127.0.0.1:0, API keys on, echo workers behind it, and the official
openai SDK as the client."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable

import pytest
from openai import AsyncOpenAI

from router.accounting.auth import hash_key
from router.config.accounting import ApiKey
from router.config.settings import RetryPolicy, RouterConfig
from router.server import RouterServer
from tests.http.tool_worker import ToolWorker
from tests.support.polling import wait_until

KEY = "sk-modelyard-test-key"


def door_config(**overrides: object) -> RouterConfig:
    config = RouterConfig(
        listen="127.0.0.1:0",
        http_listen="127.0.0.1:0",
        router_id="http-test",
        report_interval_ms=100,
        retry=RetryPolicy(max_attempts=2, backoff_base_s=0.01, backoff_max_s=0.02),
        keys=[ApiKey(tenant="acme", key_sha256=hash_key(KEY))],
        usage_db="off",
    )
    for name, value in overrides.items():
        setattr(config, name, value)
    return config


@pytest.fixture
async def router() -> AsyncIterator[RouterServer]:
    server = RouterServer(door_config())
    await server.start()
    yield server
    await server.stop(0)


@pytest.fixture
async def client(router: RouterServer) -> AsyncIterator[AsyncOpenAI]:
    assert router.http is not None
    # No retries: each test sees the first answer, error statuses included.
    async with AsyncOpenAI(api_key=KEY, base_url=router.http.base_url, max_retries=0) as client:
        yield client


WorkerFactory = Callable[..., Awaitable[ToolWorker]]


@pytest.fixture
async def workers(router: RouterServer) -> AsyncIterator[WorkerFactory]:
    started: list[ToolWorker] = []

    async def start(worker_id: str = "w1", **kwargs: object) -> ToolWorker:
        worker = ToolWorker(worker_id, **kwargs)  # type: ignore[arg-type]
        await worker.start()
        await worker.register(router.address)
        started.append(worker)
        await wait_until(lambda: router.registry.get(worker_id) is not None)
        return worker

    yield start
    for worker in started:
        await worker.stop()
