"""The door sends a chat answer as soon as its usage (the pipeline's last event) is in, then lets the
pipeline settle the request: nothing of the settling may be lost or come late for the next request.

A real router with the SQLite ledger and a tenant allowed one request at a time, in front of a FakeOpenAI
upstream (OpenAI's wire format); the client is the official openai SDK, asking one request after another.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from openai import AsyncOpenAI
from openai.types.chat import ChatCompletionMessageParam

from router.config.limits import LimitsConfig, TenantLimits
from router.config.settings import ProviderConfig
from router.server import RouterServer
from tests.http.conftest import door_config
from tests.support.fake_openai import FakeOpenAI

MODEL = "gpt-4o-mini"
ROUNDS = 4
WORDS = 5  # the fake's answer, "Hello from the fake model"


@pytest.fixture
async def upstream() -> AsyncIterator[FakeOpenAI]:
    async with FakeOpenAI(reasoning="") as fake:
        yield fake


@pytest.fixture
async def router(upstream: FakeOpenAI, tmp_path: Path) -> AsyncIterator[RouterServer]:
    provider = ProviderConfig(
        name="first",
        kind="openai_compatible",
        api_key=upstream.api_key,
        base_url=upstream.base_url,
        chat_models=[MODEL],
    )
    config = door_config(
        providers=[provider],
        usage_db=str(tmp_path / "usage.db"),
        limits=LimitsConfig(default=TenantLimits(concurrent_streams=1)),
    )
    server = RouterServer(config)
    await server.start()
    yield server
    await server.stop(0)


def _requests_ok(router: RouterServer) -> float:
    metric = router.accounting.metrics.requests.labels("chat", "first", MODEL, "OK")
    return float(metric._value.get())


async def test_answers_settle_before_the_next_request_and_are_all_recorded(
    router: RouterServer, client: AsyncOpenAI
) -> None:
    messages: list[ChatCompletionMessageParam] = [{"role": "user", "content": "hi"}]
    for _ in range(ROUNDS):
        # One stream at a time for the tenant: had the last answer's slot not been given back by the time
        # its next request is read, that request would be refused (429).
        whole = await client.chat.completions.create(model=MODEL, messages=messages)
        assert whole.choices[0].message.content == "Hello from the fake model"
        stream = await client.chat.completions.create(
            model=MODEL,
            messages=messages,
            stream=True,
            stream_options={"include_usage": True},
        )
        chunks = [chunk async for chunk in stream]
        assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == (
            "Hello from the fake model"
        )
        assert chunks[-1].usage is not None
        assert chunks[-1].usage.completion_tokens == WORDS
    assert _requests_ok(router) == 2 * ROUNDS
    writer = router.accounting.writer
    assert writer is not None
    assert await writer.flush(timeout=10.0)
    (row,) = await writer.store.usage(0.0, None)
    assert (row.backend, row.model) == ("first", MODEL)
    assert (row.calls, row.ok) == (2 * ROUNDS, 2 * ROUNDS)
    assert row.completion_tokens == 2 * ROUNDS * WORDS
    in_flight = router.accounting.metrics.in_flight.labels("chat")
    assert in_flight._value.get() == 0
