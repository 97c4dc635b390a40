"""A ChatRequest's tools, tool choice, structured output and reasoning as Anthropic Messages parameters.

Structured output uses the equivalent Anthropic documents for JSON output: one extra tool whose input schema is
the wanted schema, forced with tool_choice; the tool's input (streamed as input_json_delta) is the answer, and
the backend relays it as text. Anthropic has no logprobs and no penalties; those options are not sent.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from modelyard.v1 import inference_pb2 as pb

from core.chat_options import json_object, tool_parameters, tools_enabled

# The structured-output tool's name when the schema has none.
RESPONSE_TOOL = "json_response"
MIN_THINKING_BUDGET = 1024  # the API's floor
_EFFORT_BUDGET = {
    pb.REASONING_EFFORT_LOW: MIN_THINKING_BUDGET,
    pb.REASONING_EFFORT_MEDIUM: 4096,
    pb.REASONING_EFFORT_HIGH: 16384,
}


@dataclass
class AnthropicOptions:
    params: dict[str, Any] = field(default_factory=dict)  # tools, tool_choice, thinking
    response_tool: str | None = None  # the forced tool whose input is the JSON answer
    thinking_budget: int = 0  # added to max_tokens: Anthropic counts thinking inside it


def anthropic_options(request: pb.ChatRequest) -> AnthropicOptions:
    """Raises ValueError for a combination this API cannot take."""
    options = AnthropicOptions()
    response_tool = _response_tool(request.response_format)
    if response_tool is not None:
        if tools_enabled(request):
            raise ValueError("response_format: JSON output together with tools is not supported on Anthropic")
        options.response_tool = response_tool["name"]
        options.params["tools"] = [response_tool]
        options.params["tool_choice"] = {"type": "tool", "name": response_tool["name"]}
    elif request.tools:
        options.params["tools"] = [_tool(tool) for tool in request.tools]
        choice = _tool_choice(request)
        if choice is not None:
            options.params["tool_choice"] = choice
    budget = request.reasoning.budget_tokens or _EFFORT_BUDGET.get(request.reasoning.effort, 0)
    if budget:
        options.thinking_budget = max(budget, MIN_THINKING_BUDGET)
        options.params["thinking"] = {"type": "enabled", "budget_tokens": options.thinking_budget}
    return options


def _tool(tool: pb.Tool) -> dict[str, Any]:
    spec: dict[str, Any] = {"name": tool.name, "input_schema": tool_parameters(tool)}
    if tool.description:
        spec["description"] = tool.description
    return spec


def _tool_choice(request: pb.ChatRequest) -> dict[str, Any] | None:
    choice = request.tool_choice
    parallel_off = request.HasField("parallel_tool_calls") and not request.parallel_tool_calls
    result: dict[str, Any]
    if choice.WhichOneof("choice") == "function":
        result = {"type": "tool", "name": choice.function}
    elif choice.mode == pb.TOOL_CHOICE_MODE_NONE:
        return {"type": "none"}
    elif choice.mode == pb.TOOL_CHOICE_MODE_REQUIRED:
        result = {"type": "any"}
    elif choice.mode == pb.TOOL_CHOICE_MODE_AUTO or parallel_off:
        result = {"type": "auto"}
    else:
        return None  # the API's default: auto
    if parallel_off:
        result["disable_parallel_tool_use"] = True
    return result


def _response_tool(response_format: pb.ResponseFormat) -> dict[str, Any] | None:
    if response_format.type == pb.RESPONSE_FORMAT_TYPE_JSON_OBJECT:
        return {
            "name": RESPONSE_TOOL,
            "description": "Give the answer as a JSON object.",
            "input_schema": {"type": "object"},
        }
    if response_format.type == pb.RESPONSE_FORMAT_TYPE_JSON_SCHEMA:
        given = response_format.json_schema
        return {
            "name": given.name or RESPONSE_TOOL,
            "description": given.description or "Give the answer in this JSON format.",
            "input_schema": json_object(given.schema, "response_format.json_schema.schema"),
        }
    return None
