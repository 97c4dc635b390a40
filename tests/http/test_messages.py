"""Anthropic's Messages API on the HTTP door, with the official anthropic SDK as the client."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import anthropic
import pytest
from anthropic import AsyncAnthropic
from modelyard.v1 import inference_pb2 as pb

from router.server import RouterServer
from tests.http.conftest import KEY, WorkerFactory
from tests.http.tool_worker import ARGUMENTS

TOOLS: Any = [
    {
        "name": "get_weather",
        "description": "The weather in a city",
        "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}},
    }
]


@pytest.fixture
async def claude(router: RouterServer) -> AsyncIterator[AsyncAnthropic]:
    assert router.http is not None
    base = router.http.base_url.removesuffix("/v1")
    async with AsyncAnthropic(api_key=KEY, base_url=base, max_retries=0) as client:
        yield client


async def test_whole_and_streamed_text(claude: AsyncAnthropic, workers: WorkerFactory) -> None:
    worker = await workers("w1")
    message = await claude.messages.create(
        model="echo",
        max_tokens=64,
        system="be brief",
        messages=[{"role": "user", "content": "hello claude"}],
        stop_sequences=["END"],
    )
    assert [b.type for b in message.content] == ["text"]
    assert message.content[0].text == "hello claude "  # type: ignore[union-attr]
    assert message.stop_reason == "end_turn"
    assert (message.usage.input_tokens, message.usage.output_tokens) == (2, 2)
    sent = worker.received[-1]
    assert [m.role for m in sent.messages] == [pb.ROLE_SYSTEM, pb.ROLE_USER]
    assert (sent.sampling.max_tokens, list(sent.sampling.stop)) == (64, ["END"])

    async with claude.messages.stream(
        model="echo", max_tokens=64, messages=[{"role": "user", "content": "one two three"}]
    ) as stream:
        pieces = [text async for text in stream.text_stream]
        final = await stream.get_final_message()
    assert "".join(pieces) == "one two three "
    assert final.stop_reason == "end_turn"
    assert final.usage.output_tokens == 3


async def test_tool_use_and_tool_result(claude: AsyncAnthropic, workers: WorkerFactory) -> None:
    worker = await workers("w1")
    messages: Any = [{"role": "user", "content": "weather in Paris?"}]
    message = await claude.messages.create(
        model="echo", max_tokens=64, messages=messages, tools=TOOLS, tool_choice={"type": "any"}
    )
    assert message.stop_reason == "tool_use"
    block = message.content[0]
    assert block.type == "tool_use"
    assert (block.id, block.name, block.input) == ("call_1", "get_weather", ARGUMENTS)
    assert worker.received[-1].tool_choice.mode == pb.TOOL_CHOICE_MODE_REQUIRED
    assert json.loads(worker.received[-1].tools[0].parameters)["type"] == "object"

    async with claude.messages.stream(model="echo", max_tokens=64, messages=messages, tools=TOOLS) as stream:
        final = await stream.get_final_message()
    assert final.content[0].type == "tool_use"
    assert final.content[0].input == ARGUMENTS

    turns: Any = [
        *messages,
        {
            "role": "assistant",
            "content": [{"type": "tool_use", "id": "call_1", "name": "get_weather", "input": {}}],
        },
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "call_1", "content": "sunny"}]},
    ]
    answer = await claude.messages.create(model="echo", max_tokens=64, messages=turns)
    assert answer.content[0].text == "sunny "  # type: ignore[union-attr]
    sent = worker.received[-1]
    assert [m.role for m in sent.messages] == [pb.ROLE_USER, pb.ROLE_ASSISTANT, pb.ROLE_TOOL]
    assert sent.messages[2].tool_call_id == "call_1"


async def test_errors_take_anthropic_shape(
    claude: AsyncAnthropic, router: RouterServer, workers: WorkerFactory
) -> None:
    await workers("w1")
    hi: Any = [{"role": "user", "content": "hi"}]
    with pytest.raises(anthropic.NotFoundError) as missing:
        await claude.messages.create(model="claude-9", max_tokens=8, messages=hi)
    assert isinstance(missing.value.body, dict)
    assert missing.value.body["error"]["type"] == "not_found_error"
    with pytest.raises(anthropic.BadRequestError):
        await claude.messages.create(model="echo", max_tokens=8, messages=[])
    assert router.http is not None
    base = router.http.base_url.removesuffix("/v1")
    async with AsyncAnthropic(api_key="sk-wrong", base_url=base, max_retries=0) as stranger:
        with pytest.raises(anthropic.AuthenticationError):
            await stranger.messages.create(model="echo", max_tokens=8, messages=hi)
