"""AnthropicBackend's tools, structured output and thinking, through the real anthropic SDK against a local
server that streams tool_use blocks (input_json_delta) and thinking blocks in Anthropic's wire format."""

from __future__ import annotations

import json

from modelyard.v1 import inference_pb2 as pb

from router.backends.anthropic_backend import AnthropicBackend
from tests.providers.conftest import chat_request, text
from tests.support.chat_events import WEATHER_SCHEMA, collect_answer, weather_tool
from tests.support.fake_anthropic import FakeAnthropic


def tool_request(*tools: pb.Tool, choice: pb.ToolChoice | None = None) -> pb.ChatRequest:
    request = chat_request("claude-haiku-4-5")
    request.tools.extend(tools or (weather_tool(),))
    if choice is not None:
        request.tool_choice.CopyFrom(choice)
    return request


async def test_tool_use_blocks_stream_as_tool_call_fragments(
    anthropic_backend: AnthropicBackend, fake_anthropic: FakeAnthropic
) -> None:
    answer = await collect_answer(anthropic_backend.chat(tool_request(), timeout=5.0))
    assert answer.text == "Let me check. "
    assert list(answer.calls) == [0]  # numbered among tool calls, though it is the API's block 1
    call = answer.calls[0]
    assert (call.id, call.name) == ("toolu_1_get_weather", "get_weather")
    assert call.parsed() == {"city": "Paris", "unit": "celsius"}
    assert answer.order.count("tool_call") > 2
    assert answer.usage is not None
    assert answer.usage.finish_reason == pb.FINISH_REASON_TOOL_CALLS
    sent = fake_anthropic.requests[-1].json
    assert sent["tools"] == [
        {"name": "get_weather", "input_schema": WEATHER_SCHEMA, "description": "Current weather in a city"}
    ]
    assert "tool_choice" not in sent


async def test_tool_choice_maps_to_any_tool_and_none(
    anthropic_backend: AnthropicBackend, fake_anthropic: FakeAnthropic
) -> None:
    tools = (weather_tool(), weather_tool("get_time"))
    answer = await collect_answer(
        anthropic_backend.chat(tool_request(*tools, choice=pb.ToolChoice(function="get_time")), timeout=5.0)
    )
    assert fake_anthropic.requests[-1].json["tool_choice"] == {"type": "tool", "name": "get_time"}
    assert [c.name for c in answer.calls.values()] == ["get_time"]
    assert answer.text == ""
    required = tool_request(*tools, choice=pb.ToolChoice(mode=pb.TOOL_CHOICE_MODE_REQUIRED))
    required.parallel_tool_calls = False
    await collect_answer(anthropic_backend.chat(required, timeout=5.0))
    assert fake_anthropic.requests[-1].json["tool_choice"] == {
        "type": "any",
        "disable_parallel_tool_use": True,
    }
    answer = await collect_answer(
        anthropic_backend.chat(
            tool_request(*tools, choice=pb.ToolChoice(mode=pb.TOOL_CHOICE_MODE_NONE)), timeout=5.0
        )
    )
    assert fake_anthropic.requests[-1].json["tool_choice"] == {"type": "none"}
    assert answer.text == "Hello from the fake Claude"
    assert not answer.calls


async def test_parallel_calls_and_a_call_without_arguments(
    anthropic_backend: AnthropicBackend, fake_anthropic: FakeAnthropic
) -> None:
    fake_anthropic.calls_per_answer = 2
    answer = await collect_answer(
        anthropic_backend.chat(tool_request(weather_tool(), weather_tool("get_time")), timeout=5.0)
    )
    assert {i: c.name for i, c in answer.calls.items()} == {0: "get_weather", 1: "get_time"}
    fake_anthropic.tool_input = ""  # no input_json_delta at all
    answer = await collect_answer(anthropic_backend.chat(tool_request(), timeout=5.0))
    assert answer.calls[0].arguments == "{}"


async def test_tool_calls_and_results_go_back_as_tool_use_and_tool_result_blocks(
    anthropic_backend: AnthropicBackend, fake_anthropic: FakeAnthropic
) -> None:
    request = tool_request()
    request.messages.extend(
        [
            pb.Message(
                role=pb.ROLE_ASSISTANT,
                content=[text("Checking both.")],
                tool_calls=[
                    pb.ToolCall(id="toolu_a", name="get_weather", arguments='{"city": "Paris"}'),
                    pb.ToolCall(id="toolu_b", name="get_weather", arguments='{"city": "Rome"}'),
                ],
            ),
            pb.Message(role=pb.ROLE_TOOL, tool_call_id="toolu_a", content=[text("21 C")]),
            pb.Message(role=pb.ROLE_TOOL, tool_call_id="toolu_b", content=[text("25 C")]),
        ]
    )
    await collect_answer(anthropic_backend.chat(request, timeout=5.0))
    sent = fake_anthropic.requests[-1].json["messages"]
    assert sent[1] == {
        "role": "assistant",
        "content": [
            {"type": "text", "text": "Checking both."},
            {"type": "tool_use", "id": "toolu_a", "name": "get_weather", "input": {"city": "Paris"}},
            {"type": "tool_use", "id": "toolu_b", "name": "get_weather", "input": {"city": "Rome"}},
        ],
    }
    assert sent[2] == {
        "role": "user",
        "content": [
            {"type": "tool_result", "tool_use_id": "toolu_a", "content": "21 C"},
            {"type": "tool_result", "tool_use_id": "toolu_b", "content": "25 C"},
        ],
    }


async def test_json_schema_output_is_a_forced_tool_relayed_as_text(
    anthropic_backend: AnthropicBackend, fake_anthropic: FakeAnthropic
) -> None:
    request = chat_request("claude-haiku-4-5")
    request.response_format.type = pb.RESPONSE_FORMAT_TYPE_JSON_SCHEMA
    request.response_format.json_schema.CopyFrom(
        pb.JsonSchema(name="weather", schema=json.dumps(WEATHER_SCHEMA))
    )
    answer = await collect_answer(anthropic_backend.chat(request, timeout=5.0))
    assert json.loads(answer.text) == {"city": "Paris", "unit": "celsius"}
    assert not answer.calls
    assert answer.usage is not None
    assert answer.usage.finish_reason == pb.FINISH_REASON_STOP
    sent = fake_anthropic.requests[-1].json
    assert sent["tool_choice"] == {"type": "tool", "name": "weather"}
    assert sent["tools"][0]["input_schema"] == WEATHER_SCHEMA


async def test_thinking_streams_as_reasoning_and_its_budget_is_added_to_max_tokens(
    anthropic_backend: AnthropicBackend, fake_anthropic: FakeAnthropic
) -> None:
    request = chat_request("claude-haiku-4-5", max_tokens=100)
    request.reasoning.budget_tokens = 2000
    answer = await collect_answer(anthropic_backend.chat(request, timeout=5.0))
    assert answer.reasoning == "The user wants a greeting; I will greet back."
    assert answer.text == "Hello from the fake Claude"
    assert answer.order.index("delta") > answer.order.index("reasoning")
    sent = fake_anthropic.requests[-1].json
    assert sent["thinking"] == {"type": "enabled", "budget_tokens": 2000}
    assert sent["max_tokens"] == 2100
