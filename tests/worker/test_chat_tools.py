"""Tool calls, structured output and logprobs through a real Worker server on vLLM's CPU engine.

The tiny model has random weights: it knows nothing of tools or JSON. That is the point: structured outputs
(xgrammar) must hold whatever it samples to the schema, so the arguments and the answer still validate.
"""

from __future__ import annotations

import json
from typing import Any

import jsonschema
import pytest
from modelyard.v1 import inference_pb2 as pb

from gpu_worker.engine_set import EngineSet
from gpu_worker.engines.base import ChatInput, ChatMessage, TextDelta, ToolCallFragment, ToolSpec
from gpu_worker.engines.vllm_chat import VllmChatEngine
from tests.support.chat_events import WEATHER_SCHEMA, assemble, weather_tool
from tests.worker.servers import read_rest, serving

pytestmark = pytest.mark.engines

# Room for the whole JSON: the random model may ramble inside strings until max_tokens cuts it off.
_ROOM = 160


def _request(*tools: pb.Tool, choice: pb.ToolChoice | None = None) -> pb.ChatRequest:
    request = pb.ChatRequest(
        request_id="tools-1",
        model="tiny-random-llama",
        messages=[pb.Message(role=pb.ROLE_USER, content=[pb.ContentPart(text="Weather in Paris?")])],
        sampling=pb.SamplingParams(max_tokens=_ROOM, temperature=0.0),
        tools=tools,
    )
    if choice is not None:
        request.tool_choice.CopyFrom(choice)
    return request


def _tight(schema: dict[str, Any]) -> dict[str, Any]:
    """The schema with short strings, so a random model's JSON ends well within max_tokens."""
    tight: dict[str, Any] = json.loads(json.dumps(schema))
    tight["properties"]["city"]["maxLength"] = 12
    return tight


def _tight_tool(name: str = "get_weather") -> pb.Tool:
    tool = weather_tool(name)
    tool.parameters = json.dumps(_tight(WEATHER_SCHEMA))
    return tool


async def test_required_tool_choice_gives_schema_valid_arguments(chat_engine: VllmChatEngine) -> None:
    request = _request(_tight_tool(), choice=pb.ToolChoice(mode=pb.TOOL_CHOICE_MODE_REQUIRED))
    async with serving(EngineSet(chat=[chat_engine])) as stub:
        answer = assemble(await read_rest(stub.Chat(request)))
    assert list(answer.calls) == [0]
    call = answer.calls[0]
    assert call.name == "get_weather"
    assert call.id.startswith("call_")
    jsonschema.validate(call.parsed(), WEATHER_SCHEMA)
    assert answer.order.count("tool_call") >= 2  # streamed as fragments
    assert answer.usage is not None
    assert answer.usage.finish_reason == pb.FINISH_REASON_TOOL_CALLS


async def test_required_among_several_tools_names_one_of_them(chat_engine: VllmChatEngine) -> None:
    request = _request(
        _tight_tool(), _tight_tool("get_forecast"), choice=pb.ToolChoice(mode=pb.TOOL_CHOICE_MODE_REQUIRED)
    )
    request.parallel_tool_calls = False
    async with serving(EngineSet(chat=[chat_engine])) as stub:
        answer = assemble(await read_rest(stub.Chat(request)))
    assert list(answer.calls) == [0]
    assert answer.calls[0].name in ("get_weather", "get_forecast")
    jsonschema.validate(answer.calls[0].parsed(), WEATHER_SCHEMA)
    assert answer.usage is not None
    assert answer.usage.finish_reason == pb.FINISH_REASON_TOOL_CALLS


async def test_json_schema_response_format_gives_schema_valid_json(chat_engine: VllmChatEngine) -> None:
    request = _request()
    request.response_format.type = pb.RESPONSE_FORMAT_TYPE_JSON_SCHEMA
    request.response_format.json_schema.CopyFrom(
        pb.JsonSchema(name="weather", schema=json.dumps(_tight(WEATHER_SCHEMA)), strict=True)
    )
    async with serving(EngineSet(chat=[chat_engine])) as stub:
        answer = assemble(await read_rest(stub.Chat(request)))
    jsonschema.validate(json.loads(answer.text), WEATHER_SCHEMA)
    assert not answer.calls
    assert answer.usage is not None
    assert answer.usage.finish_reason == pb.FINISH_REASON_STOP


async def test_logprobs_come_with_each_token(chat_engine: VllmChatEngine) -> None:
    request = _request()
    request.sampling.max_tokens = 6
    request.logprobs, request.top_logprobs = True, 3
    async with serving(EngineSet(chat=[chat_engine])) as stub:
        answer = assemble(await read_rest(stub.Chat(request)))
    assert len(answer.logprobs) == 6
    assert "".join(lp.token for lp in answer.logprobs) == answer.text
    for lp in answer.logprobs:
        assert lp.logprob <= 0.0
        assert len(lp.top_logprobs) == 3
        assert lp.top_logprobs[0].logprob >= lp.top_logprobs[-1].logprob
    # temperature 0: the chosen token is the likeliest one
    assert all(lp.token == lp.top_logprobs[0].token for lp in answer.logprobs)


async def test_hermes_parser_splits_tool_call_syntax_from_text(chat_engine: VllmChatEngine) -> None:
    from gpu_worker.engines.vllm_tools import ToolOutput, make_tool_parser

    tokenizer = chat_engine._engine.get_tokenizer()
    request = ChatInput(
        request_id="p",
        messages=(ChatMessage("user", "Weather?"),),
        tools=(ToolSpec("get_weather", "", WEATHER_SCHEMA),),
    )
    parser, parser_request = make_tool_parser("hermes", tokenizer, request)
    output = ToolOutput(request, parser, parser_request)
    model_text = 'Sure. <tool_call>\n{"name": "get_weather", "arguments": {"city": "Paris", "unit": "celsius"}}\n</tool_call>'
    events = []
    for at in range(0, len(model_text), 5):  # as a model streams it, a few characters at a time
        piece = model_text[at : at + 5]
        events += list(output.feed(piece, tokenizer.encode(piece, add_special_tokens=False), ()))
    events += list(output.finish())
    text = "".join(e.text for e in events if isinstance(e, TextDelta))
    fragments = [e for e in events if isinstance(e, ToolCallFragment)]
    assert text.strip() == "Sure."
    assert output.called
    assert {f.name for f in fragments if f.name} == {"get_weather"}
    assert json.loads("".join(f.arguments for f in fragments)) == {"city": "Paris", "unit": "celsius"}
