"""Right answers and codes for what an operator's users send wrong (issue 23), on both doors of a real router."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import anthropic
import grpc
import openai
import pytest
from anthropic import AsyncAnthropic
from modelyard.v1 import inference_pb2 as pb
from modelyard.v1 import router_pb2_grpc
from openai import AsyncOpenAI

from router.server import RouterServer
from tests.http.conftest import KEY, WorkerFactory
from tests.support.rich_errors import details

NONSENSE: Any = {"type": "nonsense"}
PIXEL = base64.b64encode(bytes.fromhex("89504e470d0a1a0a")).decode()


@pytest.fixture
async def stub(router: RouterServer) -> AsyncIterator[router_pb2_grpc.RouterServiceStub]:
    async with grpc.aio.insecure_channel(router.address) as channel:
        yield router_pb2_grpc.RouterServiceStub(channel)


def grpc_chat(**fields: Any) -> pb.ChatRequest:
    message = pb.Message(role=pb.ROLE_USER, content=[pb.ContentPart(text="weather in Paris?")])
    return pb.ChatRequest(model="echo", messages=[message], **fields)


METADATA = (("authorization", f"Bearer {KEY}"),)


@pytest.mark.parametrize("choice", [None, pb.ToolChoice(mode=pb.TOOL_CHOICE_MODE_REQUIRED)])
async def test_a_bad_tool_schema_is_refused_at_the_grpc_door(
    stub: router_pb2_grpc.RouterServiceStub, workers: WorkerFactory, choice: pb.ToolChoice | None
) -> None:
    worker = await workers("w1")
    request = grpc_chat(tools=[pb.Tool(name="get_weather", parameters='{"type": "nonsense"}')])
    if choice is not None:
        request.tool_choice.CopyFrom(choice)
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        async for _ in stub.Chat(request, metadata=METADATA):
            pass
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert details(refused.value).fields == ["tools[0].parameters"]
    assert "not a valid JSON Schema" in (refused.value.details() or "")
    assert not worker.received  # nothing reached the worker


async def test_a_bad_tool_schema_is_refused_at_the_http_door(
    client: AsyncOpenAI, workers: WorkerFactory
) -> None:
    worker = await workers("w1")
    tools: Any = [{"type": "function", "function": {"name": "get_weather", "parameters": NONSENSE}}]
    with pytest.raises(openai.BadRequestError) as refused:
        await client.chat.completions.create(
            model="echo", messages=[{"role": "user", "content": "weather?"}], tools=tools
        )
    assert isinstance(refused.value.body, dict)
    assert "tools[0].parameters" in (refused.value.body.get("param") or "")
    assert not worker.received


async def test_a_bad_response_schema_is_refused(client: AsyncOpenAI, workers: WorkerFactory) -> None:
    await workers("w1")
    with pytest.raises(openai.BadRequestError, match="not a valid JSON Schema"):
        await client.chat.completions.create(
            model="echo",
            messages=[{"role": "user", "content": "hi"}],
            response_format={"type": "json_schema", "json_schema": {"name": "answer", "schema": NONSENSE}},
        )


async def test_an_image_to_a_text_only_pool_is_invalid_argument(
    stub: router_pb2_grpc.RouterServiceStub, client: AsyncOpenAI, workers: WorkerFactory
) -> None:
    await workers("w1")  # echo workers serve no vision model
    request = grpc_chat()
    request.messages[0].content.append(pb.ContentPart(image=pb.Image(data=b"\x89PNG", mime_type="image/png")))
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        async for _ in stub.Chat(request, metadata=METADATA):
            pass
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert details(refused.value).info.reason == "CAPABILITY_NOT_SERVED"
    assert details(refused.value).retry_after_s is None
    image: Any = {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PIXEL}"}}
    with pytest.raises(openai.BadRequestError) as http_refused:
        await client.chat.completions.create(
            model="echo", messages=[{"role": "user", "content": [{"type": "text", "text": "what?"}, image]}]
        )
    assert http_refused.value.status_code == 400
    assert "retry-after" not in {name.lower() for name in http_refused.value.response.headers}


async def test_embeddings_with_nothing_serving_them_do_not_offer_auto(
    stub: router_pb2_grpc.RouterServiceStub, workers: WorkerFactory
) -> None:
    await workers("w1", capabilities=(pb.CAPABILITY_CHAT,))
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await stub.Embed(pb.EmbedRequest(model="all-minilm-l6-v2", inputs=["a"]), metadata=METADATA)
    assert refused.value.code() == grpc.StatusCode.NOT_FOUND
    message = refused.value.details() or ""
    assert "auto" not in message
    assert "nothing serves embeddings now" in message


async def test_anthropic_streaming_reports_the_model_and_input_tokens(
    router: RouterServer, workers: WorkerFactory
) -> None:
    await workers("w1")
    assert router.http is not None
    base = router.http.base_url.removesuffix("/v1")
    hello: Any = [{"role": "user", "content": "one two three"}]
    async with (
        AsyncAnthropic(api_key=KEY, base_url=base, max_retries=0) as claude,
        claude.messages.stream(model="auto", max_tokens=64, messages=hello) as stream,
    ):
        events = [event async for event in stream]
        final = await stream.get_final_message()
    start = next(event for event in events if event.type == "message_start")
    assert isinstance(start, anthropic.types.RawMessageStartEvent)
    assert start.message.model == "echo"  # the model that ran, not the alias asked for
    assert start.message.usage.input_tokens > 0  # the router's estimate, before the backend counted
    assert final.usage.input_tokens == 3  # corrected to the backend's count by message_delta
    assert final.usage.output_tokens == 3


async def test_a_missing_key_over_http_is_not_told_about_grpc_metadata(router: RouterServer) -> None:
    assert router.http is not None
    async with aiohttp.ClientSession() as session, session.get(f"{router.http.base_url}/models") as response:
        assert response.status == 401
        message = (await response.json())["error"]["message"]
    assert "authorization: Bearer <key>" in message
    assert "metadata" not in message


async def test_models_offer_auto_only_while_something_is_served(
    client: AsyncOpenAI, workers: WorkerFactory
) -> None:
    assert [m.id async for m in client.models.list()] == []
    await workers("w1")
    assert [m.id async for m in client.models.list()] == ["echo", "auto"]
