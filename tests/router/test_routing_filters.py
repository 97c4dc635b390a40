"""The scheduler's filters the README lists, each provoked through a real router: an unhealthy backend (the
health checker's verdict), a model that cannot take images, and an estimate over the request's max_cost_usd.

The backends are OpenAI-compatible providers on local OpenAI wire-format doubles, one double per provider, so
each test can tell which provider a chat reached. Every request uses the fallback strategy: the preferred
provider (priority 1) would win unless the filter takes it out.
"""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from dataclasses import dataclass

import grpc
import pytest
from modelyard.v1 import inference_pb2 as pb
from modelyard.v1 import router_pb2_grpc

from router.accounting.estimates import estimate_chat
from router.config.settings import ProviderConfig, RouterConfig
from router.server import RouterServer
from tests.router.test_status_codes import reason_of
from tests.support.fake_http import Fault
from tests.support.fake_openai import FakeOpenAI
from tests.support.polling import wait_until

PNG = bytes.fromhex("89504e470d0a1a0a")  # a PNG signature: the scheduler only sees that an image is there


@dataclass
class Pool:
    router: RouterServer
    stub: router_pb2_grpc.RouterServiceStub
    first: FakeOpenAI  # priority 1
    second: FakeOpenAI  # priority 2


def provider(
    name: str, fake: FakeOpenAI, priority: int, models: list[str], vision: list[str]
) -> ProviderConfig:
    return ProviderConfig(
        name=name,
        kind="openai_compatible",
        api_key=fake.api_key,
        base_url=fake.base_url,
        chat_models=models,
        vision_models=vision,
        priority=priority,
    )


@pytest.fixture
async def pool(request: pytest.FixtureRequest) -> AsyncIterator[Pool]:
    """Two providers; the test's parameters say what each serves: (first models, first vision, second...)."""
    first_models, first_vision, second_models, second_vision = request.param
    async with FakeOpenAI() as first, FakeOpenAI() as second:
        config = RouterConfig(
            listen="127.0.0.1:0",
            usage_db="off",
            health_interval_s=0.05,
            providers=[
                provider("first", first, 1, first_models, first_vision),
                provider("second", second, 2, second_models, second_vision),
            ],
        )
        router = RouterServer(config)
        await router.start()
        try:
            async with grpc.aio.insecure_channel(router.address) as channel:
                yield Pool(router, router_pb2_grpc.RouterServiceStub(channel), first, second)
        finally:
            await router.stop(0)


def ask(model: str, image: bool = False, provider_name: str = "") -> pb.ChatRequest:
    content = [pb.ContentPart(text="what is this?")]
    if image:
        content.append(pb.ContentPart(image=pb.Image(data=PNG, mime_type="image/png")))
    request = pb.ChatRequest(model=model, messages=[pb.Message(role=pb.ROLE_USER, content=content)])
    request.routing.strategy = pb.STRATEGY_FALLBACK
    request.routing.provider = provider_name
    return request


async def answered_by(stub: router_pb2_grpc.RouterServiceStub, request: pb.ChatRequest) -> str:
    backend = ""
    async for response in stub.Chat(request):
        if response.HasField("usage"):
            backend = response.usage.backend
    return backend


async def refusal(stub: router_pb2_grpc.RouterServiceStub, request: pb.ChatRequest) -> grpc.aio.AioRpcError:
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        async for _ in stub.Chat(request):
            pass
    return refused.value


def chats(fake: FakeOpenAI) -> int:
    return sum(r.path == "/v1/chat/completions" for r in fake.requests)


SAME_MODEL: tuple[list[str], ...] = (["gpt-4o"], [], ["gpt-4o"], [])


@pytest.mark.parametrize("pool", [SAME_MODEL], indirect=True)
async def test_an_unhealthy_backend_is_skipped_until_it_recovers(pool: Pool) -> None:
    health = pool.router.state.health
    assert await answered_by(pool.stub, ask("gpt-4o")) == "first"
    # The first provider's model list (its health check) starts failing; its chat endpoint would still answer.
    pool.first.inject(*[Fault(status=500, path="/v1/models")] * 100_000)
    await wait_until(lambda: not health.is_healthy("first"))
    sent = chats(pool.first)
    assert await answered_by(pool.stub, ask("gpt-4o")) == "second"
    assert chats(pool.first) == sent  # not tried and failed over: never tried
    # Pinned to it, it is the only candidate and unhealthy: with panic routing off the request is refused,
    # saying why...
    config = pool.router.state.config
    config.pool = dataclasses.replace(config.pool, panic_routing=False)
    refused = await refusal(pool.stub, ask("gpt-4o", provider_name="first"))
    assert refused.code() == grpc.StatusCode.UNAVAILABLE
    assert reason_of(refused) == "NO_BACKEND_AVAILABLE"
    assert "unhealthy: first" in (refused.details() or "")
    # ...and with it on (the default) it is tried anyway, and answers.
    config.pool = dataclasses.replace(config.pool, panic_routing=True)
    assert await answered_by(pool.stub, ask("gpt-4o", provider_name="first")) == "first"
    assert pool.router.state.events.panic_routed == 1

    pool.first.clear_faults()
    await wait_until(lambda: health.is_healthy("first"))
    assert await answered_by(pool.stub, ask("gpt-4o")) == "first"


@pytest.mark.parametrize("pool", [(["gpt-4o", "text-only"], [], ["gpt-4o"], ["gpt-4o"])], indirect=True)
async def test_an_image_goes_only_to_a_model_that_takes_images(pool: Pool) -> None:
    assert await answered_by(pool.stub, ask("gpt-4o")) == "first"
    sent = chats(pool.first)
    assert await answered_by(pool.stub, ask("gpt-4o", image=True)) == "second"
    assert chats(pool.first) == sent
    last = pool.second.requests[-1].json
    assert any(part.get("type") == "image_url" for part in last["messages"][-1]["content"])
    # No candidate for this model takes images: refused before anything is sent, saying why.
    refused = await refusal(pool.stub, ask("text-only", image=True))
    # Waiting will not make it take images: INVALID_ARGUMENT, so no SDK retries it.
    assert refused.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert reason_of(refused) == "CAPABILITY_NOT_SERVED"
    assert "no backend that accepts images (first)" in (refused.details() or "")
    assert chats(pool.first) == sent


@pytest.mark.parametrize("pool", [(["gpt-4o"], [], ["gpt-4o-mini"], [])], indirect=True)
async def test_a_backend_over_max_cost_is_skipped_and_none_left_is_cost_limit(pool: Pool) -> None:
    request = ask("auto")  # each provider's first chat model: gpt-4o first, gpt-4o-mini second
    estimate = estimate_chat(request)
    pricey = estimate.cost(pool.router.state.prices, "gpt-4o")
    cheap = estimate.cost(pool.router.state.prices, "gpt-4o-mini")
    assert 0 < cheap < pricey
    assert await answered_by(pool.stub, request) == "first"

    request.routing.max_cost_usd = (cheap + pricey) / 2  # the cheap one fits, the preferred one does not
    sent = chats(pool.first)
    assert await answered_by(pool.stub, request) == "second"
    assert chats(pool.first) == sent

    request.routing.max_cost_usd = cheap / 2  # neither fits: waiting will not lower the price
    refused = await refusal(pool.stub, request)
    assert refused.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert reason_of(refused) == "COST_LIMIT"
    assert "max_cost_usd" in (refused.details() or "")
