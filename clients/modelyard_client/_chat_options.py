"""A chat's tools, tool choice, response format, logprobs and reasoning effort, from plain Python values.

Bad values raise InvalidArgument naming the parameter before any call is made.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from modelyard.v1 import inference_pb2 as pb

from modelyard_client._errors import InvalidArgument
from modelyard_client._tools import Tool

_MODES = {
    "auto": pb.TOOL_CHOICE_MODE_AUTO,
    "none": pb.TOOL_CHOICE_MODE_NONE,
    "required": pb.TOOL_CHOICE_MODE_REQUIRED,
}
_EFFORTS = {
    "low": pb.REASONING_EFFORT_LOW,
    "medium": pb.REASONING_EFFORT_MEDIUM,
    "high": pb.REASONING_EFFORT_HIGH,
}


def apply(
    request: pb.ChatRequest,
    *,
    tools: Sequence[Tool | Mapping[str, Any]] | None,
    tool_choice: str | None,
    parallel_tool_calls: bool | None,
    response_format: str | Mapping[str, Any] | None,
    logprobs: int | None,
    reasoning_effort: str | None,
) -> None:
    for spec in tools or ():
        request.tools.append(_tool(spec))
    if tool_choice is not None:
        if tool_choice in _MODES:
            request.tool_choice.mode = _MODES[tool_choice]
        else:
            request.tool_choice.function = tool_choice  # a tool's name
    if parallel_tool_calls is not None:
        request.parallel_tool_calls = parallel_tool_calls
    if response_format is not None:
        request.response_format.CopyFrom(_response_format(response_format))
    if logprobs is not None:
        if logprobs < 0:
            raise InvalidArgument("logprobs: must be 0 (the chosen token only) or more alternatives")
        request.logprobs, request.top_logprobs = True, logprobs
    if reasoning_effort is not None:
        if reasoning_effort not in _EFFORTS:
            raise InvalidArgument(f"reasoning_effort: one of {', '.join(_EFFORTS)}, not {reasoning_effort!r}")
        request.reasoning.effort = _EFFORTS[reasoning_effort]


def _tool(spec: Tool | Mapping[str, Any]) -> pb.Tool:
    try:
        tool = spec if isinstance(spec, Tool) else Tool.from_dict(spec)
    except ValueError as e:
        raise InvalidArgument(f"tools: {e}") from None
    parameters = json.dumps(dict(tool.parameters)) if tool.parameters is not None else ""
    return pb.Tool(name=tool.name, description=tool.description, parameters=parameters, strict=tool.strict)


def _response_format(value: str | Mapping[str, Any]) -> pb.ResponseFormat:
    """ "text", "json" (any JSON object), a JSON Schema, or OpenAI's {"type": "json_schema", ...} shape."""
    if isinstance(value, str):
        if value == "text":
            return pb.ResponseFormat(type=pb.RESPONSE_FORMAT_TYPE_TEXT)
        if value in ("json", "json_object"):
            return pb.ResponseFormat(type=pb.RESPONSE_FORMAT_TYPE_JSON_OBJECT)
        raise InvalidArgument(f"response_format: 'text', 'json' or a JSON Schema, not {value!r}")
    if value.get("type") == "json_schema" and isinstance(value.get("json_schema"), Mapping):
        given = value["json_schema"]
        schema = given.get("schema", {})
        name, strict = str(given.get("name", "")), bool(given.get("strict", False))
    else:
        schema, name, strict = value, "", True
    return pb.ResponseFormat(
        type=pb.RESPONSE_FORMAT_TYPE_JSON_SCHEMA,
        json_schema=pb.JsonSchema(name=name, schema=json.dumps(dict(schema)), strict=strict),
    )
