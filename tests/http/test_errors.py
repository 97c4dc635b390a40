"""Every StatusError reaches the openai SDK as its own exception class, with OpenAI's error body."""

from __future__ import annotations

import asyncio
import io
from typing import Any

import aiohttp
import grpc
import openai
import pytest
from openai import AsyncOpenAI

from router.config.accounting import Budget
from router.security.exposure import ExposureError
from router.server import RouterServer
from tests.http.conftest import KEY, WorkerFactory, door_config
from tests.support.echo_worker import Faults
from tests.support.polling import wait_until

HI: Any = [{"role": "user", "content": "hi"}]
WIZARD: Any = [{"role": "wizard", "content": "x"}]


async def test_wrong_key_is_authentication_error(router: RouterServer, workers: WorkerFactory) -> None:
    await workers("w1")
    assert router.http is not None
    async with AsyncOpenAI(api_key="sk-wrong", base_url=router.http.base_url, max_retries=0) as client:
        with pytest.raises(openai.AuthenticationError) as caught:
            await client.chat.completions.create(model="echo", messages=HI)
        with pytest.raises(openai.AuthenticationError):
            await client.models.list()
    body = caught.value.body
    assert isinstance(body, dict)
    assert body["code"] == "invalid_api_key"
    assert body["type"] == "authentication_error"


async def test_unknown_model_is_not_found(client: AsyncOpenAI, workers: WorkerFactory) -> None:
    await workers("w1")
    with pytest.raises(openai.NotFoundError) as caught:
        await client.chat.completions.create(model="gpt-9", messages=HI)
    assert "gpt-9" in caught.value.message
    assert isinstance(caught.value.body, dict)
    assert caught.value.body["code"] == "model_not_found"
    with pytest.raises(openai.NotFoundError):
        await client.models.retrieve("gpt-9")


async def test_bad_requests_name_the_field(client: AsyncOpenAI, workers: WorkerFactory) -> None:
    await workers("w1")
    with pytest.raises(openai.BadRequestError) as caught:
        await client.chat.completions.create(model="echo", messages=[])
    assert isinstance(caught.value.body, dict)
    assert caught.value.body["param"] == "messages"
    with pytest.raises(openai.BadRequestError) as caught:
        await client.chat.completions.create(model="echo", messages=HI, temperature=7)
    assert "temperature" in caught.value.message
    with pytest.raises(openai.BadRequestError) as caught:
        await client.chat.completions.create(
            model="echo",
            messages=WIZARD,
        )
    assert "messages[0].role" in caught.value.message
    with pytest.raises(openai.BadRequestError) as caught:
        await client.chat.completions.create(model="echo", messages=HI, n=100)  # n > 1 works up to 8
    assert "n:" in caught.value.message
    with pytest.raises(openai.BadRequestError) as caught:
        await client.chat.completions.create(
            model="echo",
            messages=HI,
            extra_headers={"x-modelyard-strategy": "fastest"},
        )
    assert "x-modelyard-strategy" in caught.value.message


async def test_upstream_statuses_map_to_http(client: AsyncOpenAI, workers: WorkerFactory) -> None:
    worker = await workers("w1")
    worker.faults = Faults(fail_before_first=grpc.StatusCode.RESOURCE_EXHAUSTED)
    with pytest.raises(openai.RateLimitError) as limited:
        await client.chat.completions.create(model="echo", messages=HI)
    assert limited.value.response.headers["Retry-After"] == "1"
    worker.faults = Faults(fail_before_first=grpc.StatusCode.UNAVAILABLE)
    with pytest.raises(openai.InternalServerError) as unavailable:
        await client.chat.completions.create(model="echo", messages=HI)
    assert unavailable.value.status_code == 503
    assert "Retry-After" in unavailable.value.response.headers
    worker.faults = Faults(stall=True)
    with pytest.raises(openai.InternalServerError) as late:
        await client.chat.completions.create(
            model="echo",
            messages=HI,
            extra_headers={"x-modelyard-timeout": "0.3"},
        )
    assert late.value.status_code == 504


async def test_budget_exceeded_is_429() -> None:
    server = RouterServer(door_config(budgets={"acme": Budget(daily_tokens=1)}))
    await server.start()
    try:
        assert server.http is not None
        async with AsyncOpenAI(api_key=KEY, base_url=server.http.base_url, max_retries=0) as client:
            with pytest.raises(openai.RateLimitError) as caught:
                await client.chat.completions.create(
                    model="echo", messages=[{"role": "user", "content": "many words in this prompt " * 20}]
                )
        assert isinstance(caught.value.body, dict)
        assert caught.value.body["code"] == "insufficient_quota"
    finally:
        await server.stop(0)


async def test_mid_stream_failure_is_an_error_event(client: AsyncOpenAI, workers: WorkerFactory) -> None:
    worker = await workers("w1")
    worker.faults = Faults(fail_after=2)
    stream = await client.chat.completions.create(
        model="echo", messages=[{"role": "user", "content": "a b c d"}], stream=True
    )
    seen = []
    with pytest.raises(openai.APIError) as caught:
        async for chunk in stream:
            seen.append(chunk)
    assert "after" in caught.value.message
    assert "".join(c.choices[0].delta.content or "" for c in seen) == "a b "


async def test_disconnect_cancels_the_upstream_call(client: AsyncOpenAI, workers: WorkerFactory) -> None:
    worker = await workers("w1", faults=Faults(hold=asyncio.Event()))
    stream = await client.chat.completions.create(
        model="echo", messages=[{"role": "user", "content": "a b c d"}], stream=True
    )
    async for chunk in stream:
        if chunk.choices and chunk.choices[0].delta.content:
            break
    assert worker.running == 1
    await stream.close()  # hang up mid-answer
    await wait_until(lambda: worker.cancelled == 1, message="the worker's call was not cancelled")
    assert worker.running == 0


async def test_http_layer_errors_keep_the_shape(router: RouterServer) -> None:
    assert router.http is not None
    headers = {"Authorization": f"Bearer {KEY}"}
    async with aiohttp.ClientSession() as session:
        url = router.http.base_url
        json_type = {**headers, "Content-Type": "application/json"}
        async with session.post(f"{url}/chat/completions", data=b"{not json", headers=json_type) as r:
            assert r.status == 400
            assert (await r.json())["error"]["param"] == "body"
        too_big = b"x" * (router.config.http_max_body_bytes + 1)
        async with session.post(f"{url}/chat/completions", data=io.BytesIO(too_big), headers=json_type) as r:
            assert r.status == 413
            assert "http_max_body_bytes" in (await r.json())["error"]["message"]
        async with session.get(f"{url}/nothing-here", headers=headers) as r:
            assert r.status == 404
            assert "error" in await r.json()
        async with session.post(f"{url}/chat/completions", data=io.BytesIO(too_big)) as r:
            assert r.status == 401  # the key is checked before the body is read
        root = url.removesuffix("/v1")
        async with session.get(f"{root}/health") as r:
            assert (r.status, await r.json()) == (200, {"status": "ok"})


async def test_stopping_router_refuses_new_calls(router: RouterServer, client: AsyncOpenAI) -> None:
    router.gate.close()
    with pytest.raises(openai.InternalServerError) as caught:
        await client.models.list()
    assert caught.value.status_code == 503
    assert isinstance(caught.value.body, dict)
    assert caught.value.body["code"] == "router_stopping"
    assert router.http is not None
    health = router.http.base_url.removesuffix("/v1") + "/health"
    async with aiohttp.ClientSession() as session, session.get(health) as r:
        assert r.status == 503


def test_open_door_off_loopback_is_refused() -> None:
    """The gRPC listener's rule: plaintext without keys only on loopback, unless allow_open says so."""
    with pytest.raises(ExposureError, match=r"HTTP door on 0\.0\.0\.0:0"):
        RouterServer(door_config(keys=[], http_listen="0.0.0.0:0"))
    RouterServer(door_config(keys=[], http_listen="0.0.0.0:0", allow_open=True))
    RouterServer(door_config(keys=[], http_listen="localhost:0"))
    RouterServer(door_config(http_listen="0.0.0.0:0"))  # keys configured
