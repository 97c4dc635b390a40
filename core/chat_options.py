"""Validation of a chat's tools, tool choice, response format, logprobs, penalties and reasoning options.

Every rejection names the field, as INVALID_ARGUMENT. The JSON texts the API carries (tool parameters,
tool-call arguments, a response schema) are parsed here once; `json_object()` gives callers the parsed value.
"""

from __future__ import annotations

import json
import re
from typing import Any

from modelyard.v1 import inference_pb2 as pb

from core.errors import InvalidArgument
from core.json_schemas import check_json_schema

# The names OpenAI and Anthropic both accept for functions and schemas.
_NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
MAX_TOOLS = 128  # OpenAI's limit; more would be refused upstream anyway
MAX_TOP_LOGPROBS = 20  # OpenAI's limit, and vLLM's default max_logprobs
_EMPTY_SCHEMA: dict[str, Any] = {"type": "object", "properties": {}}


def json_object(text: str, field: str, *, empty: dict[str, Any] | None = None) -> dict[str, Any]:
    """Parse JSON text that must be an object; `empty` (when given) stands for the empty string."""
    if not text and empty is not None:
        return dict(empty)
    try:
        value = json.loads(text)
    except ValueError as e:
        raise InvalidArgument(f"{field}: not valid JSON ({e})") from None
    if not isinstance(value, dict):
        raise InvalidArgument(f"{field}: must be a JSON object, got {type(value).__name__}")
    return value


def tool_parameters(tool: pb.Tool, field: str = "tools[].parameters") -> dict[str, Any]:
    """A tool's parameter schema; no parameters is an object schema without properties."""
    return json_object(tool.parameters, field, empty=_EMPTY_SCHEMA)


def call_arguments(call: pb.ToolCall, field: str = "tool_calls[].arguments") -> dict[str, Any]:
    return json_object(call.arguments, field, empty={})


def forced_tool(request: pb.ChatRequest) -> pb.Tool | None:
    """The tool the model must call: a named function, or the only tool under REQUIRED."""
    choice = request.tool_choice
    if choice.WhichOneof("choice") == "function":
        return next(t for t in request.tools if t.name == choice.function)
    if choice.mode == pb.TOOL_CHOICE_MODE_REQUIRED and len(request.tools) == 1:
        return request.tools[0]
    return None


def tools_enabled(request: pb.ChatRequest) -> bool:
    return bool(request.tools) and request.tool_choice.mode != pb.TOOL_CHOICE_MODE_NONE


def validate_chat_options(request: pb.ChatRequest) -> None:
    _validate_tools(request)
    _validate_response_format(request.response_format)
    if request.top_logprobs > MAX_TOP_LOGPROBS:
        raise InvalidArgument(f"top_logprobs: {request.top_logprobs} is above {MAX_TOP_LOGPROBS}")
    if request.top_logprobs and not request.logprobs:
        raise InvalidArgument("top_logprobs: needs logprobs set to true")
    sampling = request.sampling
    for name in ("presence_penalty", "frequency_penalty"):
        if sampling.HasField(name) and not -2.0 <= getattr(sampling, name) <= 2.0:
            raise InvalidArgument(f"sampling.{name}: {getattr(sampling, name)} is outside [-2, 2]")
    if request.reasoning.effort not in pb.ReasoningEffort.values():
        raise InvalidArgument(f"reasoning.effort: unknown value {request.reasoning.effort}")


def validate_message_tools(message: pb.Message, field: str) -> None:
    """ROLE_TOOL answers a call by id; tool calls ride only on assistant messages."""
    if message.role == pb.ROLE_TOOL and not message.tool_call_id:
        raise InvalidArgument(f"{field}.tool_call_id: required on a ROLE_TOOL message")
    if message.tool_calls and message.role != pb.ROLE_ASSISTANT:
        raise InvalidArgument(f"{field}.tool_calls: only assistant messages carry tool calls")
    if message.reasoning and message.role != pb.ROLE_ASSISTANT:
        raise InvalidArgument(f"{field}.reasoning: only assistant messages carry earlier reasoning")
    for k, call in enumerate(message.tool_calls):
        where = f"{field}.tool_calls[{k}]"
        if not call.id:
            raise InvalidArgument(f"{where}.id: required")
        if not _NAME.match(call.name):
            raise InvalidArgument(f"{where}.name: {call.name!r} must match [A-Za-z0-9_-]{{1,64}}")
        call_arguments(call, f"{where}.arguments")


def _validate_tools(request: pb.ChatRequest) -> None:
    if len(request.tools) > MAX_TOOLS:
        raise InvalidArgument(f"tools: {len(request.tools)} tools; at most {MAX_TOOLS}")
    seen: set[str] = set()
    for i, tool in enumerate(request.tools):
        if not _NAME.match(tool.name):
            raise InvalidArgument(f"tools[{i}].name: {tool.name!r} must match [A-Za-z0-9_-]{{1,64}}")
        if tool.name in seen:
            raise InvalidArgument(f"tools[{i}].name: {tool.name!r} is defined twice")
        seen.add(tool.name)
        tool_parameters(tool, f"tools[{i}].parameters")
        check_json_schema(tool.parameters, f"tools[{i}].parameters")
    choice = request.tool_choice
    kind = choice.WhichOneof("choice")
    if kind == "function":
        if choice.function not in seen:
            raise InvalidArgument(f"tool_choice.function: {choice.function!r} is not one of the tools")
    elif kind == "mode":
        if choice.mode not in pb.ToolChoiceMode.values():
            raise InvalidArgument(f"tool_choice.mode: unknown value {choice.mode}")
        if choice.mode == pb.TOOL_CHOICE_MODE_REQUIRED and not request.tools:
            raise InvalidArgument("tool_choice.mode: REQUIRED needs at least one tool in tools")


def _validate_response_format(response_format: pb.ResponseFormat) -> None:
    kind = response_format.type
    if kind not in pb.ResponseFormatType.values():
        raise InvalidArgument(f"response_format.type: unknown value {kind}")
    if kind == pb.RESPONSE_FORMAT_TYPE_JSON_SCHEMA:
        schema = response_format.json_schema
        if not schema.schema:
            raise InvalidArgument("response_format.json_schema.schema: required with JSON_SCHEMA")
        json_object(schema.schema, "response_format.json_schema.schema")
        check_json_schema(schema.schema, "response_format.json_schema.schema")
        if schema.name and not _NAME.match(schema.name):
            raise InvalidArgument(
                f"response_format.json_schema.name: {schema.name!r} must match [A-Za-z0-9_-]{{1,64}}"
            )
    elif response_format.HasField("json_schema"):
        raise InvalidArgument("response_format.json_schema: set only with type JSON_SCHEMA")
