"""An OpenAI chat-completions body -> a ChatRequest: messages, images, sampling, tools, tool_choice,
response_format, logprobs and reasoning effort. Fields the router has no use for (user, metadata, store)
are ignored, as OpenAI-compatible servers do; fields it cannot honour (n > 1) are refused by name."""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any

from modelyard.v1 import inference_pb2 as pb

from core.errors import InvalidArgument
from router.services.http.fields import (
    INT64_MAX,
    Json,
    obj,
    opt_bool,
    opt_int,
    opt_list,
    opt_number,
    opt_obj,
    opt_str,
    req_str,
)

_ROLES = {
    "system": pb.ROLE_SYSTEM,
    "developer": pb.ROLE_SYSTEM,  # OpenAI's newer name for system instructions
    "user": pb.ROLE_USER,
    "assistant": pb.ROLE_ASSISTANT,
    "tool": pb.ROLE_TOOL,
}
_TOOL_MODES = {
    "auto": pb.TOOL_CHOICE_MODE_AUTO,
    "none": pb.TOOL_CHOICE_MODE_NONE,
    "required": pb.TOOL_CHOICE_MODE_REQUIRED,
}
_FORMATS = {
    "text": pb.RESPONSE_FORMAT_TYPE_TEXT,
    "json_object": pb.RESPONSE_FORMAT_TYPE_JSON_OBJECT,
    "json_schema": pb.RESPONSE_FORMAT_TYPE_JSON_SCHEMA,
}
_EFFORT = {
    "minimal": pb.REASONING_EFFORT_LOW,
    "low": pb.REASONING_EFFORT_LOW,
    "medium": pb.REASONING_EFFORT_MEDIUM,
    "high": pb.REASONING_EFFORT_HIGH,
}


def chat_request(body: Json) -> pb.ChatRequest:
    request = pb.ChatRequest(model=req_str(body, "model"))
    messages = opt_list(body, "messages")
    for i, message in enumerate(messages or []):
        request.messages.append(_message(obj(message, f"messages[{i}]"), f"messages[{i}]"))
    _sampling(body, request.sampling)
    opt_int(body, "n", minimum=1)  # n > 1: router.services.http.chat_choices
    for i, tool in enumerate(opt_list(body, "tools") or []):
        request.tools.append(_tool(obj(tool, f"tools[{i}]"), f"tools[{i}]"))
    if "tool_choice" in body and body["tool_choice"] is not None:
        request.tool_choice.CopyFrom(_tool_choice(body["tool_choice"]))
    if (parallel := opt_bool(body, "parallel_tool_calls")) is not None:
        request.parallel_tool_calls = parallel
    if (response_format := opt_obj(body, "response_format")) is not None:
        request.response_format.CopyFrom(_response_format(response_format))
    request.logprobs = bool(opt_bool(body, "logprobs"))
    top = opt_int(body, "top_logprobs")
    if top is not None:
        if top > 20:
            raise InvalidArgument("top_logprobs: at most 20")
        request.top_logprobs = top
    if (effort := opt_str(body, "reasoning_effort")) is not None:
        if effort not in _EFFORT:
            raise InvalidArgument(f"reasoning_effort: expected one of {', '.join(_EFFORT)}, got {effort!r}")
        request.reasoning.effort = _EFFORT[effort]
    return request


def _sampling(body: Json, sampling: pb.SamplingParams) -> None:
    if (temperature := opt_number(body, "temperature")) is not None:
        sampling.temperature = temperature
    if (top_p := opt_number(body, "top_p")) is not None:
        sampling.top_p = top_p
    # max_completion_tokens is the current name; max_tokens the older one, still sent by many clients.
    limit = opt_int(body, "max_completion_tokens", minimum=1)
    limit = limit if limit is not None else opt_int(body, "max_tokens", minimum=1)
    if limit is not None:
        sampling.max_tokens = limit
    stop = body.get("stop")
    if isinstance(stop, str):
        sampling.stop.append(stop)
    elif isinstance(stop, list) and all(isinstance(s, str) for s in stop):
        if len(stop) > 4:
            raise InvalidArgument("stop: at most 4 stop sequences")
        sampling.stop.extend(stop)
    elif stop is not None:
        raise InvalidArgument("stop: expected a string or an array of strings")
    if (seed := opt_int(body, "seed", minimum=-(2**63), maximum=INT64_MAX)) is not None:
        sampling.seed = seed
    for key in ("presence_penalty", "frequency_penalty"):
        value = opt_number(body, key)
        if value is not None:
            if not -2.0 <= value <= 2.0:
                raise InvalidArgument(f"{key}: {value} is outside [-2, 2]")
            setattr(sampling, key, value)


def _message(message: Json, field: str) -> pb.Message:
    role = req_str(message, "role", f"{field}.role")
    if role not in _ROLES:
        raise InvalidArgument(f"{field}.role: unknown role {role!r}; expected one of {', '.join(_ROLES)}")
    out = pb.Message(role=_ROLES[role], name=opt_str(message, "name", f"{field}.name") or "")
    out.content.extend(_content(message.get("content"), f"{field}.content"))
    for i, call in enumerate(opt_list(message, "tool_calls", f"{field}.tool_calls") or []):
        out.tool_calls.append(_tool_call(obj(call, f"{field}.tool_calls[{i}]"), f"{field}.tool_calls[{i}]"))
    if role == "tool":
        out.tool_call_id = req_str(message, "tool_call_id", f"{field}.tool_call_id")
    return out


def _content(content: Any, field: str) -> list[pb.ContentPart]:
    if content is None:
        return []
    if isinstance(content, str):
        return [pb.ContentPart(text=content)]
    if not isinstance(content, list):
        raise InvalidArgument(f"{field}: expected a string or an array of content parts")
    parts = []
    for i, raw in enumerate(content):
        part = obj(raw, f"{field}[{i}]")
        kind = req_str(part, "type", f"{field}[{i}].type")
        if kind == "text":
            parts.append(pb.ContentPart(text=opt_str(part, "text", f"{field}[{i}].text") or ""))
        elif kind == "image_url":
            image = obj(part.get("image_url"), f"{field}[{i}].image_url")
            parts.append(pb.ContentPart(image=_image(req_str(image, "url", f"{field}[{i}].image_url.url"))))
        else:
            raise InvalidArgument(f"{field}[{i}].type: {kind!r} is not supported; use text or image_url")
    return parts


def _image(url: str) -> pb.Image:
    """A data: URL becomes the image's bytes (workers decode them); any other URL is passed on as is."""
    if not url.startswith("data:"):
        return pb.Image(url=url)
    header, _, data = url[5:].partition(",")
    mime, _, encoding = header.partition(";")
    if encoding != "base64" or not mime.startswith("image/"):
        raise InvalidArgument("image_url.url: a data URL must look like data:image/png;base64,...")
    try:
        return pb.Image(data=base64.b64decode(data, validate=True), mime_type=mime)
    except (binascii.Error, ValueError):
        raise InvalidArgument("image_url.url: the data URL is not valid base64") from None


def _tool_call(call: Json, field: str) -> pb.ToolCall:
    function = obj(call.get("function"), f"{field}.function")
    return pb.ToolCall(
        id=req_str(call, "id", f"{field}.id"),
        name=req_str(function, "name", f"{field}.function.name"),
        arguments=opt_str(function, "arguments", f"{field}.function.arguments") or "",
    )


def _tool(tool: Json, field: str) -> pb.Tool:
    kind = opt_str(tool, "type", f"{field}.type") or "function"
    if kind != "function":
        raise InvalidArgument(f"{field}.type: {kind!r} is not supported; only function tools")
    function = obj(tool.get("function"), f"{field}.function")
    parameters = opt_obj(function, "parameters", f"{field}.function.parameters")
    return pb.Tool(
        name=req_str(function, "name", f"{field}.function.name"),
        description=opt_str(function, "description", f"{field}.function.description") or "",
        parameters=json.dumps(parameters) if parameters is not None else "",
        strict=bool(opt_bool(function, "strict", f"{field}.function.strict")),
    )


def _tool_choice(choice: Any) -> pb.ToolChoice:
    if isinstance(choice, str):
        if choice not in _TOOL_MODES:
            raise InvalidArgument(f"tool_choice: expected auto, none, required or an object, got {choice!r}")
        return pb.ToolChoice(mode=_TOOL_MODES[choice])
    function = obj(obj(choice, "tool_choice").get("function"), "tool_choice.function")
    return pb.ToolChoice(function=req_str(function, "name", "tool_choice.function.name"))


def _response_format(raw: Json) -> pb.ResponseFormat:
    kind = req_str(raw, "type", "response_format.type")
    if kind not in _FORMATS:
        raise InvalidArgument(f"response_format.type: expected one of {', '.join(_FORMATS)}, got {kind!r}")
    out = pb.ResponseFormat(type=_FORMATS[kind])
    if kind == "json_schema":
        spec = obj(raw.get("json_schema"), "response_format.json_schema")
        schema = opt_obj(spec, "schema", "response_format.json_schema.schema")
        out.json_schema.CopyFrom(
            pb.JsonSchema(
                name=req_str(spec, "name", "response_format.json_schema.name"),
                description=opt_str(spec, "description", "response_format.json_schema.description") or "",
                schema=json.dumps(schema) if schema is not None else "",
                strict=bool(opt_bool(spec, "strict", "response_format.json_schema.strict")),
            )
        )
    return out
