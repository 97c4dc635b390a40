"""Tenant limits end to end: real routers and echo workers; budgets reserve under concurrency; requests and
tokens per minute and concurrent streams answer RESOURCE_EXHAUSTED with a retry delay; max_tokens is capped."""

from __future__ import annotations

import asyncio

import grpc
import pytest
from modelyard.v1 import inference_pb2 as pb

from router.accounting.auth import hash_key
from router.config.accounting import ApiKey, Budget
from router.config.limits import LimitsConfig, TenantLimits
from router.server import RouterServer
from tests.accounting.conftest import RouterFactory, WorkerFactory, chat, chat_request
from tests.support.echo_worker import EchoWorker, Faults
from tests.support.polling import wait_until
from tests.support.rich_errors import details

KEYS = [ApiKey("acme", hash_key("k-acme")), ApiKey("beta", hash_key("k-beta"))]


async def slow_worker(router: RouterServer, worker_id: str = "w1", delay_s: float = 0.05) -> EchoWorker:
    worker = EchoWorker(worker_id, max_concurrency=64, faults=Faults(delay_s=delay_s))
    await worker.start()
    await worker.register(router.address)
    await wait_until(lambda: router.registry.get(worker_id) is not None)
    return worker


async def parallel_chats(
    router: RouterServer, count: int, key: str = "k-acme"
) -> list[pb.Usage | grpc.aio.AioRpcError]:
    async def one() -> pb.Usage | grpc.aio.AioRpcError:
        try:
            return (await chat(router, chat_request(), key=key))[1]
        except grpc.aio.AioRpcError as e:
            return e

    return list(await asyncio.gather(*(one() for _ in range(count))))


def retry_after_s(error: grpc.aio.AioRpcError, limit: str) -> float:
    """RetryInfo's delay; ErrorInfo says RATE_LIMITED and names the setting."""
    found = details(error)
    assert (found.info.reason, found.info.metadata["limit"]) == ("RATE_LIMITED", limit)
    assert found.retry_after_s is not None
    return found.retry_after_s


async def test_parallel_chats_cannot_overrun_a_daily_budget(start_router: RouterFactory) -> None:
    """The finding: 20 parallel chats of a 50-token budget to a slow upstream were all admitted, 360 tokens."""
    router = await start_router(keys=KEYS, budgets={"acme": Budget(daily_tokens=50)})
    worker = await slow_worker(router)
    try:
        results = await parallel_chats(router, 20)
        granted = [r for r in results if isinstance(r, pb.Usage)]
        refused = [r for r in results if isinstance(r, grpc.aio.AioRpcError)]
        assert granted
        assert refused
        assert all(e.code() == grpc.StatusCode.RESOURCE_EXHAUSTED for e in refused)
        used = sum(u.prompt_tokens + u.completion_tokens for u in granted)
        one_request = granted[0].prompt_tokens + granted[0].completion_tokens
        assert used <= 50 + one_request
    finally:
        await worker.stop()


async def test_requests_per_minute_are_refused_with_a_retry_delay(start_router: RouterFactory) -> None:
    limits = LimitsConfig(tenants={"acme": TenantLimits(requests_per_minute=3)})
    router = await start_router(keys=KEYS, limits=limits)
    worker = await slow_worker(router, delay_s=0.0)
    try:
        for _ in range(3):
            await chat(router, chat_request(), key="k-acme")
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await chat(router, chat_request(), key="k-acme")
        assert refused.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert "tenant acme: requests_per_minute limit 3 reached; retry in" in (refused.value.details() or "")
        assert 0 < retry_after_s(refused.value, "requests_per_minute") <= 60
        await chat(router, chat_request(), key="k-beta")  # another tenant is not held back
    finally:
        await worker.stop()


async def test_tokens_per_minute_count_what_requests_used(start_router: RouterFactory) -> None:
    limits = LimitsConfig(default=TenantLimits(tokens_per_minute=60))
    router = await start_router(keys=KEYS, limits=limits)
    worker = await slow_worker(router, delay_s=0.0)
    try:
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            for _ in range(10):
                await chat(router, chat_request(), key="k-acme")  # 10 tokens used, ~26 estimated
        assert refused.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert "tokens_per_minute limit 60 reached" in (refused.value.details() or "")
        assert retry_after_s(refused.value, "tokens_per_minute") > 0
        huge = chat_request()
        huge.sampling.max_tokens = 1000
        with pytest.raises(grpc.aio.AioRpcError) as never:
            await chat(router, huge, key="k-beta")
        assert never.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert "this request alone needs about" in (never.value.details() or "")
    finally:
        await worker.stop()


async def test_concurrent_streams_per_tenant(start_router: RouterFactory) -> None:
    """The finding: one tenant could take every slot."""
    limits = LimitsConfig(tenants={"acme": TenantLimits(concurrent_streams=2)})
    router = await start_router(keys=KEYS, limits=limits)
    hold = asyncio.Event()
    worker = EchoWorker("w1", max_concurrency=64, faults=Faults(hold=hold))
    await worker.start()
    await worker.register(router.address)
    await wait_until(lambda: router.registry.get("w1") is not None)
    try:
        running = [asyncio.create_task(chat(router, chat_request(), key="k-acme")) for _ in range(2)]
        await wait_until(lambda: worker.running == 2)
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await chat(router, chat_request(), key="k-acme")
        assert refused.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert "2 concurrent streams already running" in (refused.value.details() or "")
        assert retry_after_s(refused.value, "concurrent_streams") == 1.0
        other = asyncio.create_task(chat(router, chat_request(), key="k-beta"))
        await wait_until(lambda: worker.running == 3)  # beta is not limited by acme's streams
        hold.set()
        await asyncio.gather(*running, other)
        await wait_until(lambda: router.accounting.limiter.streams("acme") == 0)
        await chat(router, chat_request(), key="k-acme")
    finally:
        await worker.stop()


async def test_max_tokens_is_capped_and_defaulted(
    start_router: RouterFactory, start_worker: WorkerFactory
) -> None:
    """The finding: max_tokens 10**9 passed upstream."""
    from core.input_limits import InputLimits

    router = await start_router(input=InputLimits(max_tokens=4096, default_max_tokens=512))
    worker = await start_worker(router)
    request = chat_request()
    request.sampling.max_tokens = 10**9
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await chat(router, request)
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert refused.value.details() == "sampling.max_tokens: 1000000000 is above this router's limit of 4096"
    assert worker.last_chat is None  # nothing reached the worker
    await chat(router, chat_request())
    assert worker.last_chat is not None
    assert worker.last_chat.sampling.max_tokens == 512
