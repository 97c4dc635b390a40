"""Probes that don't blackhole: an upstream that serves chat is served, whatever GET /models answers.

Real router, real OpenAI SDK, an OpenAI-format server on 127.0.0.1:0 (tests.support.fake_openai).
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import grpc
import pytest
from modelyard.v1 import router_pb2_grpc

from router.config.settings import ProviderConfig, RouterConfig
from router.server import RouterServer
from tests.router.test_routing import chat_request, collect
from tests.support.fake_http import Fault
from tests.support.fake_openai import FakeOpenAI

MODELS = "/v1/models"
# More than the router's probes in any test (each probe may try three times: the SDK retries a 5xx).
MANY = 100


@pytest.fixture
async def upstream() -> AsyncIterator[FakeOpenAI]:
    async with FakeOpenAI(models=("m1",), reply="served anyway") as fake:
        yield fake


async def start_router(upstream: FakeOpenAI) -> RouterServer:
    provider = ProviderConfig(
        name="up",
        kind="openai_compatible",
        api_key=upstream.api_key,
        base_url=upstream.base_url,
        chat_models=["m1"],
    )
    router = RouterServer(RouterConfig(listen="127.0.0.1:0", usage_db="off", providers=[provider]))
    await router.start()
    return router


async def chat(router: RouterServer) -> str:
    async with grpc.aio.insecure_channel(router.address) as channel:
        stub = router_pb2_grpc.RouterServiceStub(channel)
        text, _ = await collect(stub.Chat(chat_request("hello", model="m1")))
    return text


async def test_an_upstream_without_models_is_reachable_and_served(upstream: FakeOpenAI) -> None:
    upstream.inject(*[Fault(status=404, path=MODELS)] * MANY)
    router = await start_router(upstream)
    try:
        assert await router.state.health.check_all() == {"up": True}
        assert await chat(router) == "served anyway"
    finally:
        await router.stop(0)
    assert any(r.path == MODELS for r in upstream.requests)  # it was probed, and answered 404


async def test_a_backend_whose_requests_succeed_stays_healthy_when_its_probe_fails(
    upstream: FakeOpenAI,
) -> None:
    router = await start_router(upstream)
    try:
        assert await chat(router) == "served anyway"
        upstream.inject(*[Fault(status=503, path=MODELS)] * MANY)
        assert await router.state.health.check_all() == {"up": False}
        assert not router.state.health.probe_healthy("up")
        assert router.state.health.is_healthy("up")  # its last request was answered
        assert await chat(router) == "served anyway"
    finally:
        await router.stop(0)


async def test_a_refused_key_still_fails_the_probe(upstream: FakeOpenAI) -> None:
    upstream.inject(*[Fault(status=401, path=MODELS)] * MANY)
    router = await start_router(upstream)
    try:
        assert await router.state.health.check_all() == {"up": False}
    finally:
        await router.stop(0)


async def test_the_only_candidate_is_served_though_its_probe_failed_from_the_start(
    upstream: FakeOpenAI,
) -> None:
    upstream.inject(*[Fault(status=503, path=MODELS)] * MANY)
    router = await start_router(upstream)
    try:
        assert await router.state.health.check_all() == {"up": False}
        assert await chat(router) == "served anyway"
        assert router.state.health.is_healthy("up")  # and its answered request makes it healthy again
    finally:
        await router.stop(0)
