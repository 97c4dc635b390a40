"""Issue 24 item 2: image URLs cannot reach internal addresses, directly, by name or through a redirect.

The router fetches image URLs itself and sends the bytes on as data: URLs, so the upstream never dials one.
"""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator

import grpc
import pytest
from aiohttp import web
from modelyard.v1 import inference_pb2 as pb
from modelyard.v1 import router_pb2_grpc

from core.input_limits import InputLimits
from router.config.settings import ProviderConfig
from tests.security.helpers import config, running_router
from tests.support.fake_openai import FakeOpenAI

PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="
)


def _chat(url: str) -> pb.ChatRequest:
    part = pb.ContentPart(image=pb.Image(url=url))
    return pb.ChatRequest(model="gpt-4o", messages=[pb.Message(role=pb.ROLE_USER, content=[part])])


async def _ask(address: str, url: str) -> tuple[grpc.StatusCode, str]:
    async with grpc.aio.insecure_channel(address) as channel:
        call = router_pb2_grpc.RouterServiceStub(channel).Chat(_chat(url), timeout=30)
        try:
            async for _ in call:
                pass
        except grpc.aio.AioRpcError as e:
            return e.code(), e.details() or ""
        return grpc.StatusCode.OK, ""


def _provider(fake: FakeOpenAI) -> ProviderConfig:
    return ProviderConfig(
        name="local",
        kind="openai_compatible",
        api_key=fake.api_key,
        base_url=fake.base_url,
        chat_models=["gpt-4o"],
        vision_models=["gpt-4o"],
    )


@pytest.fixture
async def images() -> AsyncIterator[str]:
    """An image server on 127.0.0.1: /cat.png, and redirects to loopback and metadata addresses."""

    async def cat(_: web.Request) -> web.Response:
        return web.Response(body=PNG, content_type="image/png")

    def to(target: str) -> web.RouteDef:
        async def redirect(_: web.Request) -> web.Response:
            raise web.HTTPFound(target)

        return web.get(f"/to/{len(target)}", redirect)

    app = web.Application()
    targets = [
        "http://169.254.169.254/latest/meta-data/",
        "http://127.0.0.2/cat.png",
        "http://[::ffff:a9fe:a9fe]/",
    ]
    app.add_routes([web.get("/cat.png", cat), *(to(t) for t in targets)])
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    yield f"http://127.0.0.1:{port}"
    await runner.cleanup()


@pytest.mark.parametrize(
    "url",
    [
        "https://127.0.0.1/a.png",
        "https://10.0.0.1/a.png",
        "https://169.254.169.254/latest/meta-data/",
        "https://[::ffff:a9fe:a9fe]/a.png",
        "https://[::1]/a.png",
        "https://kubernetes.default.svc/api",
        "https://localhost/a.png",
        "https://127.1/a.png",  # not an IP literal to Python, but it resolves to 127.0.0.1
    ],
)
async def test_internal_image_urls_are_refused_by_default(url: str) -> None:
    async with FakeOpenAI() as fake, running_router(config(providers=[_provider(fake)])) as router:
        code, details = await _ask(router.address, url)
        assert code == grpc.StatusCode.INVALID_ARGUMENT, details
        assert "messages[0].content[0].image.url" in details
        assert not [r for r in fake.requests if r.path.endswith("/chat/completions")]


async def test_the_router_fetches_the_image_and_checks_every_redirect(images: str) -> None:
    limits = InputLimits(image_url_schemes=("http", "https", "data"), image_url_networks=("127.0.0.1/32",))
    async with (
        FakeOpenAI() as fake,
        running_router(config(providers=[_provider(fake)], input=limits)) as router,
    ):
        code, details = await _ask(router.address, f"{images}/cat.png")
        assert code == grpc.StatusCode.OK, details
        sent = fake.requests[-1].json["messages"][0]["content"][0]["image_url"]["url"]
        assert sent == "data:image/png;base64," + base64.b64encode(PNG).decode()
        before = len(fake.requests)
        for target in (
            "http://169.254.169.254/latest/meta-data/",
            "http://127.0.0.2/cat.png",
            "http://[::ffff:a9fe:a9fe]/",
        ):
            code, details = await _ask(router.address, f"{images}/to/{len(target)}")
            assert code == grpc.StatusCode.INVALID_ARGUMENT, target
            assert "image URLs must be public" in details
        assert len(fake.requests) == before
