"""Tenant limits and input caps through the HTTP door: the same pipeline, so the same refusals, as OpenAI
statuses (429 with Retry-After, 400 naming the param)."""

from __future__ import annotations

import openai
import pytest
from openai import AsyncOpenAI

from router.config.limits import LimitsConfig, TenantLimits
from router.server import RouterServer
from tests.http.conftest import KEY, door_config
from tests.http.tool_worker import ToolWorker
from tests.support.polling import wait_until

HI = [{"role": "user", "content": "hi"}]


async def test_a_rate_limited_tenant_gets_429_with_retry_after() -> None:
    server = RouterServer(door_config(limits=LimitsConfig(default=TenantLimits(requests_per_minute=1))))
    await server.start()
    worker = ToolWorker("w1")
    try:
        await worker.start()
        await worker.register(server.address)
        await wait_until(lambda: server.registry.get("w1") is not None)
        assert server.http is not None
        async with AsyncOpenAI(api_key=KEY, base_url=server.http.base_url, max_retries=0) as client:
            await client.chat.completions.create(model="echo", messages=HI)  # type: ignore[arg-type]
            with pytest.raises(openai.RateLimitError) as caught:
                await client.chat.completions.create(model="echo", messages=HI)  # type: ignore[arg-type]
            assert "requests_per_minute limit 1 reached" in caught.value.message
            assert 1 <= int(caught.value.response.headers["Retry-After"]) <= 60
            with pytest.raises(openai.BadRequestError) as too_long:
                await client.chat.completions.create(model="echo", messages=HI * 3000)  # type: ignore[arg-type]
            assert "at most 2048" in too_long.value.message
    finally:
        await worker.stop()
        await server.stop(0)
