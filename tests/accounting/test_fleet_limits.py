"""Several routers, one limit: rate limits and budgets counted in a real redis-server shared by the fleet."""

from __future__ import annotations

import asyncio
import logging
import uuid

import grpc
import pytest
from modelyard.v1 import inference_pb2 as pb

from router.accounting.auth import hash_key
from router.accounting.counters.redis_counters import RedisCounters
from router.accounting.counters.store import Counter
from router.config.accounting import ApiKey, Budget
from router.config.limits import LimitsConfig, TenantLimits
from tests.accounting.conftest import RouterFactory, chat, chat_request
from tests.accounting.test_tenant_limits import slow_worker


def fresh_tenant() -> tuple[str, str, list[ApiKey]]:
    """A tenant no other test used: the Redis server lives for the whole session."""
    tenant = f"t-{uuid.uuid4().hex[:8]}"
    key = f"k-{tenant}"
    return tenant, key, [ApiKey(tenant, hash_key(key))]


async def test_requests_per_minute_hold_for_the_whole_fleet(
    start_router: RouterFactory, redis_url: str
) -> None:
    tenant, key, keys = fresh_tenant()
    limits = LimitsConfig(tenants={tenant: TenantLimits(requests_per_minute=4)}, store=redis_url)
    routers = [await start_router(keys=keys, limits=limits, router_id=f"r{i}") for i in range(2)]
    workers = [await slow_worker(r, f"w{i}", delay_s=0.0) for i, r in enumerate(routers)]
    try:
        for i in range(4):
            await chat(routers[i % 2], chat_request(), key=key)
        for router in routers:  # per router, each has served only 2 of 4
            with pytest.raises(grpc.aio.AioRpcError) as refused:
                await chat(router, chat_request(), key=key)
            assert refused.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
            assert f"tenant {tenant}: requests_per_minute limit 4 reached" in (refused.value.details() or "")
    finally:
        for worker in workers:
            await worker.stop()


async def test_parallel_chats_through_two_routers_share_one_budget(
    start_router: RouterFactory, redis_url: str
) -> None:
    tenant, key, keys = fresh_tenant()
    settings = {
        "keys": keys,
        "budgets": {tenant: Budget(daily_tokens=50)},
        "limits": LimitsConfig(store=redis_url),
    }
    routers = [await start_router(**settings, router_id=f"r{i}") for i in range(2)]
    workers = [await slow_worker(r, f"w{i}") for i, r in enumerate(routers)]

    async def one(i: int) -> pb.Usage | grpc.StatusCode:
        try:
            return (await chat(routers[i % 2], chat_request(), key=key))[1]
        except grpc.aio.AioRpcError as e:
            return e.code()

    try:
        results = await asyncio.gather(*(one(i) for i in range(20)))
        granted = [u for u in results if isinstance(u, pb.Usage)]
        assert {r for r in results if not isinstance(r, pb.Usage)} == {grpc.StatusCode.RESOURCE_EXHAUSTED}
        used = sum(u.prompt_tokens + u.completion_tokens for u in granted)
        assert granted
        assert used <= 50 + granted[0].prompt_tokens + granted[0].completion_tokens
    finally:
        for worker in workers:
            await worker.stop()


async def test_redis_counters_add_all_or_nothing(redis_url: str) -> None:
    counters = RedisCounters(redis_url)
    prefix = uuid.uuid4().hex
    try:
        first = await counters.try_add(
            [Counter(f"{prefix}:a", 3, 5, 60), Counter(f"{prefix}:b", 3, None, 60)]
        )
        assert first.failed is None
        assert first.values == (3, 3)
        refused = await counters.try_add(
            [Counter(f"{prefix}:b", 1, None, 60), Counter(f"{prefix}:a", 3, 5, 60)]
        )
        assert refused.failed == 1
        assert refused.values == (3, 3)
        counters.adjust([Counter(f"{prefix}:a", -3, None, 60)])
        await counters.close()  # waits for the correction
        counters = RedisCounters(redis_url)
        assert await counters.read([f"{prefix}:a", f"{prefix}:b", f"{prefix}:none"]) == (0, 3, 0)
        await counters.seed(f"{prefix}:b", 100, 60)  # exists: left alone
        await counters.seed(f"{prefix}:c", 100, 60)
        assert await counters.read([f"{prefix}:b", f"{prefix}:c"]) == (3, 100)
    finally:
        await counters.close()


async def test_an_unreachable_redis_lets_requests_through(
    start_router: RouterFactory, caplog: pytest.LogCaptureFixture
) -> None:
    limits = LimitsConfig(default=TenantLimits(requests_per_minute=1), store="redis://127.0.0.1:1/0")
    router = await start_router(limits=limits)
    worker = await slow_worker(router, delay_s=0.0)
    caplog.set_level(logging.WARNING, logger="router.accounting.counters.redis_counters")
    try:
        for _ in range(2):  # a limit of 1 per minute: the second passes only because nothing counted it
            await chat(router, chat_request())
    finally:
        await worker.stop()
    unchecked = [r for r in caplog.records if "request let through unchecked" in r.getMessage()]
    assert len(unchecked) >= 2  # each request let through is logged, naming why
    assert all(r.levelno == logging.WARNING and "Redis unreachable" in r.getMessage() for r in unchecked)
