"""Chat through the HTTP door with the official openai SDK: streamed and whole, tools, options, hints."""

from __future__ import annotations

import base64
import json
from typing import Any

from modelyard.v1 import inference_pb2 as pb
from openai import AsyncOpenAI
from openai.types.chat import ChatCompletionMessageFunctionToolCall

from router.services.http.chat_request import chat_request
from tests.http.conftest import WorkerFactory
from tests.http.tool_worker import ARGUMENTS

TOOLS: Any = [
    {
        "type": "function",
        "function": {
            "name": "get_weather",
            "description": "The weather in a city",
            "parameters": {
                "type": "object",
                "properties": {"city": {"type": "string"}, "unit": {"type": "string"}},
                "required": ["city"],
            },
        },
    }
]


async def test_streamed_chat_with_usage(client: AsyncOpenAI, workers: WorkerFactory) -> None:
    await workers("w1")
    stream = await client.chat.completions.create(
        model="echo",
        messages=[{"role": "user", "content": "one two three"}],
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = [chunk async for chunk in stream]
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "one two three "
    finishes = [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason]
    assert finishes == ["stop"]
    last = chunks[-1]
    assert last.choices == []
    assert last.usage is not None
    assert (last.usage.prompt_tokens, last.usage.completion_tokens, last.usage.total_tokens) == (3, 3, 6)
    assert last.model_extra is not None
    assert last.model_extra["modelyard"]["backend"] == "w1"
    assert len({c.id for c in chunks}) == 1


async def test_streamed_chat_without_usage_ends_with_the_finish_chunk(
    client: AsyncOpenAI, workers: WorkerFactory
) -> None:
    await workers("w1")
    stream = await client.chat.completions.create(
        model="echo", messages=[{"role": "user", "content": "a b"}], stream=True
    )
    chunks = [chunk async for chunk in stream]
    assert chunks[-1].choices[0].finish_reason == "stop"
    assert all(c.usage is None for c in chunks)


async def test_whole_answer(client: AsyncOpenAI, workers: WorkerFactory) -> None:
    await workers("w1")
    answer = await client.chat.completions.create(
        model="echo", messages=[{"role": "user", "content": "hello door"}]
    )
    assert answer.object == "chat.completion"
    assert answer.choices[0].message.content == "hello door "
    assert answer.choices[0].message.role == "assistant"
    assert answer.choices[0].finish_reason == "stop"
    assert answer.usage is not None
    assert answer.usage.completion_tokens == 2
    assert answer.model == "echo"
    assert answer.id.startswith("chatcmpl-")


async def test_tool_call_streamed_and_whole(client: AsyncOpenAI, workers: WorkerFactory) -> None:
    worker = await workers("w1")
    messages: Any = [{"role": "user", "content": "weather in Paris?"}]
    answer = await client.chat.completions.create(
        model="echo",
        messages=messages,
        tools=TOOLS,
        tool_choice="required",
    )
    calls = answer.choices[0].message.tool_calls
    assert answer.choices[0].finish_reason == "tool_calls"
    assert calls is not None
    assert len(calls) == 1
    call = calls[0]
    assert isinstance(call, ChatCompletionMessageFunctionToolCall)
    assert call.id == "call_1"
    assert call.function.name == "get_weather"
    assert json.loads(call.function.arguments) == ARGUMENTS
    sent = worker.received[-1]
    assert sent.tools[0].name == "get_weather"
    assert json.loads(sent.tools[0].parameters)["required"] == ["city"]
    assert sent.tool_choice.mode == pb.TOOL_CHOICE_MODE_REQUIRED

    stream = await client.chat.completions.create(
        model="echo",
        messages=messages,
        tools=TOOLS,
        tool_choice={"type": "function", "function": {"name": "get_weather"}},
        stream=True,
    )
    fragments = [
        c.choices[0].delta.tool_calls async for c in stream if c.choices and c.choices[0].delta.tool_calls
    ]
    assert fragments[0] is not None
    assert fragments[0][0].id == "call_1"
    arguments = "".join((f[0].function.arguments or "") for f in fragments if f and f[0].function)
    assert json.loads(arguments) == ARGUMENTS
    assert worker.received[-1].tool_choice.function == "get_weather"


def test_tool_turns_convert_to_tool_calls_and_tool_messages() -> None:
    call = {"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": "{}"}}
    request = chat_request(
        {
            "model": "echo",
            "messages": [
                {"role": "user", "content": "weather?"},
                {"role": "assistant", "content": None, "tool_calls": [call]},
                {"role": "tool", "tool_call_id": "call_1", "content": "sunny"},
            ],
            "parallel_tool_calls": False,
        }
    )
    assistant, tool = request.messages[1], request.messages[2]
    assert (assistant.role, len(assistant.content)) == (pb.ROLE_ASSISTANT, 0)
    assert assistant.tool_calls[0] == pb.ToolCall(id="call_1", name="get_weather", arguments="{}")
    assert (tool.role, tool.tool_call_id, tool.content[0].text) == (pb.ROLE_TOOL, "call_1", "sunny")
    assert request.HasField("parallel_tool_calls")
    assert not request.parallel_tool_calls


async def test_options_reach_the_backend(client: AsyncOpenAI, workers: WorkerFactory) -> None:
    worker = await workers("w1")
    answer = await client.chat.completions.create(
        model="echo",
        messages=[
            {"role": "developer", "content": "be brief"},
            {
                "role": "user",
                "content": [{"type": "text", "text": "what is this"}],
            },
        ],
        temperature=0.5,
        top_p=0.9,
        max_completion_tokens=7,
        stop=["END", "STOP"],
        seed=42,
        presence_penalty=0.5,
        frequency_penalty=-0.5,
        response_format={
            "type": "json_schema",
            "json_schema": {"name": "answer", "schema": {"type": "object"}, "strict": True},
        },
        logprobs=True,
        top_logprobs=1,
        reasoning_effort="low",
        extra_body={"modelyard": {"strategy": "least_loaded", "task": "vision"}},
        extra_headers={"x-modelyard-provider": "w1", "x-request-id": "req-42"},
    )
    sent = worker.received[-1]
    assert [m.role for m in sent.messages] == [pb.ROLE_SYSTEM, pb.ROLE_USER]
    sampling = sent.sampling
    assert (round(sampling.temperature, 3), round(sampling.top_p, 3), sampling.max_tokens) == (0.5, 0.9, 7)
    assert (list(sampling.stop), sampling.seed) == (["END", "STOP"], 42)
    assert (sampling.presence_penalty, sampling.frequency_penalty) == (0.5, -0.5)
    assert sent.response_format.type == pb.RESPONSE_FORMAT_TYPE_JSON_SCHEMA
    assert sent.response_format.json_schema.name == "answer"
    assert json.loads(sent.response_format.json_schema.schema) == {"type": "object"}
    assert (sent.logprobs, sent.top_logprobs) == (True, 1)
    assert sent.reasoning.effort == pb.REASONING_EFFORT_LOW
    assert (sent.routing.strategy, sent.routing.task, sent.routing.provider) == (
        pb.STRATEGY_LEAST_LOADED,
        "vision",
        "w1",
    )
    assert sent.request_id == "req-42"
    assert answer.id == "chatcmpl-req-42"
    logprobs = answer.choices[0].logprobs
    assert logprobs is not None
    assert logprobs.content is not None
    assert [t.token for t in logprobs.content] == ["what ", "is ", "this "]
    assert logprobs.content[0].top_logprobs[0].logprob == -0.5


def test_images_convert_to_bytes_or_urls() -> None:
    png = base64.b64encode(b"\x89PNG\r\n\x1a\n fake image").decode()
    content = [
        {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{png}"}},
        {"type": "image_url", "image_url": {"url": "https://example.com/cat.jpg", "detail": "low"}},
        {"type": "text", "text": "what is this"},
    ]
    request = chat_request({"model": "m", "messages": [{"role": "user", "content": content}]})
    parts = request.messages[0].content
    assert (parts[0].image.mime_type, parts[0].image.data) == ("image/png", b"\x89PNG\r\n\x1a\n fake image")
    assert parts[1].image.url == "https://example.com/cat.jpg"
    assert parts[2].text == "what is this"


async def test_models_list_and_retrieve(client: AsyncOpenAI, workers: WorkerFactory) -> None:
    await workers("w1")
    ids = [m.id async for m in client.models.list()]
    assert "echo" in ids
    assert "auto" in ids
    model = await client.models.retrieve("echo")
    assert model.owned_by == "modelyard"


async def test_auto_model_is_routed(client: AsyncOpenAI, workers: WorkerFactory) -> None:
    await workers("w1")
    answer = await client.chat.completions.create(model="auto", messages=[{"role": "user", "content": "x"}])
    assert answer.model == "echo"


async def test_a_tool_result_turn_reaches_the_backend(client: AsyncOpenAI, workers: WorkerFactory) -> None:
    worker = await workers("w1")
    call = {"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": "{}"}}
    messages: Any = [
        {"role": "user", "content": "weather?"},
        {"role": "assistant", "content": None, "tool_calls": [call]},
        {"role": "tool", "tool_call_id": "call_1", "content": "sunny"},
    ]
    answer = await client.chat.completions.create(model="echo", messages=messages)
    assert answer.choices[0].message.content == "sunny "  # the echo worker repeats the last turn
    sent = worker.received[-1]
    assert [m.role for m in sent.messages] == [pb.ROLE_USER, pb.ROLE_ASSISTANT, pb.ROLE_TOOL]
    assert sent.messages[1].tool_calls[0].name == "get_weather"
    assert sent.messages[2].tool_call_id == "call_1"
