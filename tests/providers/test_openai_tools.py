"""OpenAIBackend's tools, structured output, logprobs and reasoning, through the real openai SDK against a
local server that streams them in OpenAI's wire format."""

from __future__ import annotations

import json

from modelyard.v1 import inference_pb2 as pb

from router.backends.openai_backend import OpenAIBackend
from tests.providers.conftest import chat_request, text
from tests.support.chat_events import WEATHER_SCHEMA, collect_answer, weather_tool
from tests.support.fake_openai import FakeOpenAI


def tool_request(*tools: pb.Tool, choice: pb.ToolChoice | None = None) -> pb.ChatRequest:
    request = chat_request("gpt-4o-mini")
    request.tools.extend(tools or (weather_tool(),))
    if choice is not None:
        request.tool_choice.CopyFrom(choice)
    return request


async def test_a_streamed_tool_call_arrives_as_fragments_that_assemble_to_the_call(
    openai_backend: OpenAIBackend, fake_openai: FakeOpenAI
) -> None:
    answer = await collect_answer(openai_backend.chat(tool_request(), timeout=5.0))
    assert list(answer.calls) == [0]
    call = answer.calls[0]
    assert (call.id, call.name) == ("call_0_get_weather", "get_weather")
    assert call.parsed() == {"city": "Paris", "unit": "celsius"}
    assert answer.order.count("tool_call") > 2  # fragments, not one buffered event
    assert answer.usage is not None
    assert answer.usage.finish_reason == pb.FINISH_REASON_TOOL_CALLS
    sent = fake_openai.requests[-1].json
    assert sent["tools"] == [
        {
            "type": "function",
            "function": {
                "name": "get_weather",
                "parameters": WEATHER_SCHEMA,
                "description": "Current weather in a city",
            },
        }
    ]
    assert "tool_choice" not in sent  # unspecified: the API's own default (auto)


async def test_tool_choice_modes_and_a_named_function_are_sent_as_the_api_spells_them(
    openai_backend: OpenAIBackend, fake_openai: FakeOpenAI
) -> None:
    tools = (weather_tool(), weather_tool("get_time"))
    named = pb.ToolChoice(function="get_time")
    answer = await collect_answer(openai_backend.chat(tool_request(*tools, choice=named), timeout=5.0))
    assert [c.name for c in answer.calls.values()] == ["get_time"]
    assert fake_openai.requests[-1].json["tool_choice"] == {
        "type": "function",
        "function": {"name": "get_time"},
    }
    for mode, spelled in ((pb.TOOL_CHOICE_MODE_REQUIRED, "required"), (pb.TOOL_CHOICE_MODE_NONE, "none")):
        answer = await collect_answer(
            openai_backend.chat(tool_request(*tools, choice=pb.ToolChoice(mode=mode)), timeout=5.0)
        )
        assert fake_openai.requests[-1].json["tool_choice"] == spelled
    assert answer.text == "Hello from the fake model"
    assert not answer.calls


async def test_parallel_calls_keep_their_indexes_and_can_be_turned_off(
    openai_backend: OpenAIBackend, fake_openai: FakeOpenAI
) -> None:
    fake_openai.calls_per_answer = 2
    tools = (weather_tool(), weather_tool("get_time"))
    answer = await collect_answer(openai_backend.chat(tool_request(*tools), timeout=5.0))
    assert {i: c.name for i, c in answer.calls.items()} == {0: "get_weather", 1: "get_time"}
    assert all(c.parsed()["city"] == "Paris" for c in answer.calls.values())
    request = tool_request(*tools)
    request.parallel_tool_calls = False
    answer = await collect_answer(openai_backend.chat(request, timeout=5.0))
    assert fake_openai.requests[-1].json["parallel_tool_calls"] is False
    assert list(answer.calls) == [0]


async def test_tool_calls_and_tool_results_go_back_in_the_conversation(
    openai_backend: OpenAIBackend, fake_openai: FakeOpenAI
) -> None:
    request = tool_request()
    request.messages.extend(
        [
            pb.Message(
                role=pb.ROLE_ASSISTANT,
                tool_calls=[pb.ToolCall(id="call_1", name="get_weather", arguments='{"city": "Paris"}')],
            ),
            pb.Message(role=pb.ROLE_TOOL, tool_call_id="call_1", content=[text('{"temp": 21}')]),
        ]
    )
    await collect_answer(openai_backend.chat(request, timeout=5.0))
    sent = fake_openai.requests[-1].json["messages"]
    assert sent[1] == {
        "role": "assistant",
        "content": None,
        "tool_calls": [
            {
                "id": "call_1",
                "type": "function",
                "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'},
            }
        ],
    }
    assert sent[2] == {"role": "tool", "tool_call_id": "call_1", "content": '{"temp": 21}'}


async def test_response_format_is_native(openai_backend: OpenAIBackend, fake_openai: FakeOpenAI) -> None:
    request = chat_request("gpt-4o-mini")
    request.response_format.type = pb.RESPONSE_FORMAT_TYPE_JSON_SCHEMA
    request.response_format.json_schema.CopyFrom(
        pb.JsonSchema(name="weather", schema=json.dumps(WEATHER_SCHEMA), strict=True)
    )
    await collect_answer(openai_backend.chat(request, timeout=5.0))
    assert fake_openai.requests[-1].json["response_format"] == {
        "type": "json_schema",
        "json_schema": {"name": "weather", "schema": WEATHER_SCHEMA, "strict": True},
    }
    request = chat_request("gpt-4o-mini")
    request.response_format.type = pb.RESPONSE_FORMAT_TYPE_JSON_OBJECT
    await collect_answer(openai_backend.chat(request, timeout=5.0))
    assert fake_openai.requests[-1].json["response_format"] == {"type": "json_object"}


async def test_logprobs_ride_on_the_text_deltas(
    openai_backend: OpenAIBackend, fake_openai: FakeOpenAI
) -> None:
    request = chat_request("gpt-4o-mini")
    request.logprobs, request.top_logprobs = True, 3
    answer = await collect_answer(openai_backend.chat(request, timeout=5.0))
    sent = fake_openai.requests[-1].json
    assert (sent["logprobs"], sent["top_logprobs"]) == (True, 3)
    assert [lp.token for lp in answer.logprobs] == ["Hello ", "from ", "the ", "fake ", "model"]
    first = answer.logprobs[0]
    assert first.logprob == -0.25
    assert [t.token for t in first.top_logprobs] == ["Hello ", "alt1", "alt2"]


async def test_reasoning_content_streams_as_reasoning_events_before_the_answer(
    openai_backend: OpenAIBackend, fake_openai: FakeOpenAI
) -> None:
    fake_openai.reasoning = "The user greets me, so I greet back."
    request = chat_request("gpt-4o-mini", presence_penalty=0.5, frequency_penalty=-0.25)
    request.reasoning.effort = pb.REASONING_EFFORT_HIGH
    answer = await collect_answer(openai_backend.chat(request, timeout=5.0))
    assert answer.reasoning == "The user greets me, so I greet back."
    assert answer.text == "Hello from the fake model"
    assert answer.order.index("delta") > max(i for i, k in enumerate(answer.order) if k == "reasoning")
    sent = fake_openai.requests[-1].json
    assert (sent["presence_penalty"], sent["frequency_penalty"]) == (0.5, -0.25)
    assert sent["reasoning_effort"] == "high"
