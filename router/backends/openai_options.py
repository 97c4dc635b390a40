"""A ChatRequest's tools, tool choice, response format, logprobs, penalties and reasoning as OpenAI Chat
Completions parameters, and a streamed chunk's choice as our events (text with logprobs, tool-call fragments,
DeepSeek-style `reasoning_content`).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from modelyard.v1 import inference_pb2 as pb

from core.chat_options import json_object, tool_parameters
from router.backends.cloud import proto_float

_TOOL_CHOICE_MODES = {
    pb.TOOL_CHOICE_MODE_AUTO: "auto",
    pb.TOOL_CHOICE_MODE_NONE: "none",
    pb.TOOL_CHOICE_MODE_REQUIRED: "required",
}
_EFFORT = {
    pb.REASONING_EFFORT_LOW: "low",
    pb.REASONING_EFFORT_MEDIUM: "medium",
    pb.REASONING_EFFORT_HIGH: "high",
}


def chat_options(request: pb.ChatRequest) -> dict[str, Any]:
    """Keyword arguments for chat.completions.create beyond model, messages and the basic sampling."""
    options: dict[str, Any] = {}
    if request.tools:
        options["tools"] = [_tool(tool) for tool in request.tools]
        choice = request.tool_choice
        if choice.WhichOneof("choice") == "function":
            options["tool_choice"] = {"type": "function", "function": {"name": choice.function}}
        elif choice.mode in _TOOL_CHOICE_MODES:
            options["tool_choice"] = _TOOL_CHOICE_MODES[choice.mode]
        if request.HasField("parallel_tool_calls"):
            options["parallel_tool_calls"] = request.parallel_tool_calls
    response_format = _response_format(request.response_format)
    if response_format is not None:
        options["response_format"] = response_format
    if request.logprobs:
        options["logprobs"] = True
        if request.top_logprobs:
            options["top_logprobs"] = request.top_logprobs
    sampling = request.sampling
    if sampling.HasField("presence_penalty"):
        options["presence_penalty"] = proto_float(sampling.presence_penalty)
    if sampling.HasField("frequency_penalty"):
        options["frequency_penalty"] = proto_float(sampling.frequency_penalty)
    if request.reasoning.effort in _EFFORT:
        options["reasoning_effort"] = _EFFORT[request.reasoning.effort]
    return options


def _tool(tool: pb.Tool) -> dict[str, Any]:
    function: dict[str, Any] = {"name": tool.name, "parameters": tool_parameters(tool)}
    if tool.description:
        function["description"] = tool.description
    if tool.strict:
        function["strict"] = True
    return {"type": "function", "function": function}


def _response_format(response_format: pb.ResponseFormat) -> dict[str, Any] | None:
    kind = response_format.type
    if kind == pb.RESPONSE_FORMAT_TYPE_TEXT:
        return {"type": "text"}
    if kind == pb.RESPONSE_FORMAT_TYPE_JSON_OBJECT:
        return {"type": "json_object"}
    if kind == pb.RESPONSE_FORMAT_TYPE_JSON_SCHEMA:
        given = response_format.json_schema
        schema: dict[str, Any] = {
            "name": given.name or "response",
            "schema": json_object(given.schema, "response_format.json_schema.schema"),
        }
        if given.description:
            schema["description"] = given.description
        if given.strict:
            schema["strict"] = True
        return {"type": "json_schema", "json_schema": schema}
    return None


def plain_text(choice: dict[str, Any]) -> str | None:
    """The text of a streamed choice that carries text alone ("" for none), which is most of a stream's
    chunks; None when it carries anything else (reasoning, logprobs, tool calls): choice_events says what."""
    delta = choice.get("delta") or {}
    if (
        choice.get("logprobs")
        or delta.get("tool_calls")
        or delta.get("reasoning_content")
        or delta.get("reasoning")
    ):
        return None
    content = delta.get("content")
    if content is None:
        return ""
    return content if isinstance(content, str) else None


def choice_events(choice: dict[str, Any]) -> Iterator[pb.ChatResponse]:
    """One streamed choice (the chunk's JSON, as decoded) as our events: reasoning first, then text (with its
    logprobs), then tool calls."""
    delta = choice.get("delta") or {}
    # DeepSeek (and vLLM's reasoning parsers) stream thinking as `reasoning_content`; some servers say
    # `reasoning`.
    reasoning = delta.get("reasoning_content") or delta.get("reasoning")
    if isinstance(reasoning, str) and reasoning:
        yield pb.ChatResponse(reasoning=pb.ReasoningDelta(text=reasoning))
    content = delta.get("content")
    logprobs = _logprobs(choice.get("logprobs"))
    if content or logprobs:
        yield pb.ChatResponse(delta=pb.ChatDelta(text=content or "", logprobs=logprobs))
    for call in delta.get("tool_calls") or ():
        function = call.get("function") or {}
        yield pb.ChatResponse(
            tool_call=pb.ToolCallDelta(
                index=call.get("index") or 0,
                id=call.get("id") or "",
                name=function.get("name") or "",
                arguments=function.get("arguments") or "",
            )
        )


def _logprobs(logprobs: dict[str, Any] | None) -> list[pb.TokenLogprob]:
    if not logprobs or not logprobs.get("content"):
        return []
    return [
        pb.TokenLogprob(
            token=item["token"],
            logprob=item["logprob"],
            top_logprobs=[
                pb.TopLogprob(token=top["token"], logprob=top["logprob"])
                for top in item.get("top_logprobs") or ()
            ],
        )
        for item in logprobs["content"]
    ]
