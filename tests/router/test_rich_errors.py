"""Every error from a real router carries google.rpc details, read with grpcio-status and by the client."""

from __future__ import annotations

import asyncio
import dataclasses
import os

import grpc
import pytest
from modelyard.v1 import inference_pb2 as pb
from modelyard.v1 import router_pb2_grpc
from modelyard_client import AsyncClient, InvalidArgument, NotFound, Unavailable

from router.config.loader import load_config
from router.server import RouterServer
from tests.router.conftest import WorkerFactory
from tests.support.echo_worker import Faults
from tests.support.fake_http import Fault
from tests.support.fake_openai import FakeOpenAI
from tests.support.polling import wait_until
from tests.support.rich_errors import details


def chat_request(text: str = "a b c d", model: str = "echo") -> pb.ChatRequest:
    return pb.ChatRequest(
        model=model, messages=[pb.Message(role=pb.ROLE_USER, content=[pb.ContentPart(text=text)])]
    )


async def refused(stub: router_pb2_grpc.RouterServiceStub, request: pb.ChatRequest) -> grpc.aio.AioRpcError:
    with pytest.raises(grpc.aio.AioRpcError) as error:
        async for _ in stub.Chat(request):
            pass
    return error.value


async def test_invalid_argument_names_the_field_in_bad_request(
    stub: router_pb2_grpc.RouterServiceStub, echo_workers: WorkerFactory
) -> None:
    await echo_workers("w1")
    request = chat_request()
    request.tools.add(name="get_weather", parameters="{not json")
    error = await refused(stub, request)
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    found = details(error)
    assert found.info.reason == "INVALID_ARGUMENT"
    assert found.fields == ["tools[0].parameters"]
    assert found.bad_request is not None
    assert found.bad_request.field_violations[0].description.startswith("not valid JSON")
    assert found.retry is None


async def test_unknown_model_has_its_own_reason(
    stub: router_pb2_grpc.RouterServiceStub, echo_workers: WorkerFactory
) -> None:
    await echo_workers("w1")
    found = details(await refused(stub, chat_request(model="nope")))
    assert found.info.reason == "MODEL_NOT_FOUND"
    assert found.bad_request is None


async def test_capacity_says_when_to_retry(
    router: RouterServer, stub: router_pb2_grpc.RouterServiceStub, echo_workers: WorkerFactory
) -> None:
    hold = asyncio.Event()
    await echo_workers("w1", max_concurrency=1, faults=Faults(hold=hold))
    first = stub.Chat(chat_request())
    await first.read()  # the one slot is taken until `hold` is set
    try:
        error = await refused(stub, chat_request())
    finally:
        hold.set()
        first.cancel()
    assert error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    found = details(error)
    assert found.info.reason == "CAPACITY_EXHAUSTED"
    assert found.retry_after_s == 1.0


async def test_open_circuits_say_when_they_reopen(
    router: RouterServer, stub: router_pb2_grpc.RouterServiceStub, echo_workers: WorkerFactory
) -> None:
    # With panic routing (the default) they would be tried anyway; tests/router/test_pool.py covers that.
    router.state.config.pool = dataclasses.replace(router.state.config.pool, panic_routing=False)
    await echo_workers("flaky", faults=Faults(fail_before_first=grpc.StatusCode.UNAVAILABLE))
    request = chat_request()
    request.routing.provider = "flaky"
    for _ in range(5):  # the default threshold
        await refused(stub, request)
    await wait_until(lambda: not router.state.circuits["flaky"].allows())
    error = await refused(stub, chat_request())
    assert error.code() == grpc.StatusCode.UNAVAILABLE
    found = details(error)
    assert found.info.reason == "CIRCUITS_OPEN"
    assert found.retry_after_s is not None
    assert 0 < found.retry_after_s <= 30.0  # the default cool-down
    assert found.info.metadata["retry_after_s"]


async def test_the_client_library_surfaces_the_details(
    router: RouterServer, echo_workers: WorkerFactory
) -> None:
    await echo_workers("w1", faults=Faults(fail_after=2))
    async with AsyncClient(router.address) as client:
        with pytest.raises(NotFound) as missing:
            await client.chat_text("hi", model="nope")
        assert missing.value.reason == "MODEL_NOT_FOUND"

        received = []
        with pytest.raises(Unavailable) as broken:
            async for event in client.chat("a b c d", model="echo"):
                received.append(event)
        assert broken.value.reason == "STREAM_BROKEN"
        assert broken.value.messages_sent == len(received) == 2

        with pytest.raises(InvalidArgument) as invalid:
            await client.chat_text("hi", model="echo", temperature=3.0)
        assert invalid.value.field == "sampling.temperature"
        assert invalid.value.field_violations[0].description == "3.0 is outside [0, 2]"


async def test_an_upstream_rate_limit_passes_its_retry_after_on(monkeypatch: pytest.MonkeyPatch) -> None:
    async with FakeOpenAI() as openai:
        monkeypatch.setenv("OPENAI_API_KEY", openai.api_key)
        monkeypatch.setenv("OPENAI_BASE_URL", openai.base_url)
        openai.inject(*[Fault(status=429, retry_after="11", path="/v1/chat/completions")] * 5)
        config = load_config(env=os.environ)
        config.listen = "127.0.0.1:0"
        server = RouterServer(config)
        await server.start()
        try:
            async with grpc.aio.insecure_channel(server.address) as channel:
                error = await refused(
                    router_pb2_grpc.RouterServiceStub(channel), chat_request(model="gpt-4o-mini")
                )
        finally:
            await server.stop(0)
    assert error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    found = details(error)
    assert found.info.reason == "UPSTREAM_FAILED"
    assert found.retry_after_s == 11.0
