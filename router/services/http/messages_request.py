"""An Anthropic Messages body (POST /v1/messages) -> a ChatRequest, for Claude SDK users.

System text, user and assistant turns with text, image, tool_use and tool_result blocks (a tool_result becomes
a ROLE_TOOL message), max_tokens, stop_sequences, temperature, top_p, tools with input_schema, tool_choice
(auto, any, tool, none) and thinking budgets. top_k and metadata are ignored.
"""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any

from modelyard.v1 import inference_pb2 as pb

from core.errors import InvalidArgument
from router.services.http.fields import Json, obj, opt_int, opt_list, opt_number, opt_obj, opt_str, req_str

_ROLES = {"user": pb.ROLE_USER, "assistant": pb.ROLE_ASSISTANT}
_TOOL_MODES = {
    "auto": pb.TOOL_CHOICE_MODE_AUTO,
    "any": pb.TOOL_CHOICE_MODE_REQUIRED,
    "none": pb.TOOL_CHOICE_MODE_NONE,
}


def messages_request(body: Json) -> pb.ChatRequest:
    request = pb.ChatRequest(model=req_str(body, "model"))
    max_tokens = opt_int(body, "max_tokens", minimum=1)
    if max_tokens is None:
        raise InvalidArgument("max_tokens: required")
    request.sampling.max_tokens = max_tokens
    if (temperature := opt_number(body, "temperature")) is not None:
        request.sampling.temperature = temperature
    if (top_p := opt_number(body, "top_p")) is not None:
        request.sampling.top_p = top_p
    for i, stop in enumerate(opt_list(body, "stop_sequences") or []):
        if not isinstance(stop, str):
            raise InvalidArgument(f"stop_sequences[{i}]: expected a string")
        request.sampling.stop.append(stop)
    system = _system(body.get("system"))
    if system:
        request.messages.append(pb.Message(role=pb.ROLE_SYSTEM, content=[pb.ContentPart(text=system)]))
    for i, message in enumerate(opt_list(body, "messages") or []):
        request.messages.extend(_turn(obj(message, f"messages[{i}]"), f"messages[{i}]"))
    for i, tool in enumerate(opt_list(body, "tools") or []):
        request.tools.append(_tool(obj(tool, f"tools[{i}]"), f"tools[{i}]"))
    if (choice := opt_obj(body, "tool_choice")) is not None:
        request.tool_choice.CopyFrom(_tool_choice(choice))
    if (thinking := opt_obj(body, "thinking")) is not None and opt_str(
        thinking, "type", "thinking.type"
    ) == "enabled":
        budget = opt_int(thinking, "budget_tokens", "thinking.budget_tokens", minimum=1)
        request.reasoning.budget_tokens = budget or 0
        request.reasoning.effort = pb.REASONING_EFFORT_MEDIUM
    return request


def _system(system: Any) -> str:
    if system is None or isinstance(system, str):
        return system or ""
    if isinstance(system, list):
        return "\n".join(
            req_str(obj(b, f"system[{i}]"), "text", f"system[{i}].text") for i, b in enumerate(system)
        )
    raise InvalidArgument("system: expected a string or an array of text blocks")


def _turn(message: Json, field: str) -> list[pb.Message]:
    """One Anthropic turn; a user turn's tool_result blocks become ROLE_TOOL messages of their own."""
    role = req_str(message, "role", f"{field}.role")
    if role not in _ROLES:
        raise InvalidArgument(f"{field}.role: expected user or assistant, got {role!r}")
    content = message.get("content")
    if isinstance(content, str):
        return [pb.Message(role=_ROLES[role], content=[pb.ContentPart(text=content)])]
    if not isinstance(content, list):
        raise InvalidArgument(f"{field}.content: expected a string or an array of content blocks")
    out = pb.Message(role=_ROLES[role])
    results: list[pb.Message] = []
    for j, raw in enumerate(content):
        block, where = obj(raw, f"{field}.content[{j}]"), f"{field}.content[{j}]"
        kind = req_str(block, "type", f"{where}.type")
        if kind == "text":
            out.content.append(pb.ContentPart(text=opt_str(block, "text", f"{where}.text") or ""))
        elif kind == "image":
            out.content.append(
                pb.ContentPart(image=_image(obj(block.get("source"), f"{where}.source"), where))
            )
        elif kind == "tool_use":
            arguments = json.dumps(block.get("input") or {})
            out.tool_calls.append(
                pb.ToolCall(
                    id=req_str(block, "id", f"{where}.id"),
                    name=req_str(block, "name", f"{where}.name"),
                    arguments=arguments,
                )
            )
        elif kind == "tool_result":
            results.append(_tool_result(block, where))
        elif kind == "thinking" and role == "assistant":  # sent back to backends that need it (Anthropic)
            out.reasoning.append(
                pb.ReasoningBlock(
                    text=opt_str(block, "thinking", f"{where}.thinking") or "",
                    signature=opt_str(block, "signature", f"{where}.signature") or "",
                )
            )
        elif kind == "redacted_thinking" and role == "assistant":
            out.reasoning.append(
                pb.ReasoningBlock(redacted_data=opt_str(block, "data", f"{where}.data") or "")
            )
        elif kind not in ("thinking", "redacted_thinking"):
            raise InvalidArgument(f"{where}.type: {kind!r} is not supported")
    return results + ([out] if out.content or out.tool_calls or out.reasoning else [])


def _tool_result(block: Json, where: str) -> pb.Message:
    content = block.get("content")
    if isinstance(content, list):
        text = "".join(str(obj(c, f"{where}.content").get("text", "")) for c in content)
    else:
        text = "" if content is None else str(content)
    return pb.Message(
        role=pb.ROLE_TOOL,
        tool_call_id=req_str(block, "tool_use_id", f"{where}.tool_use_id"),
        content=[pb.ContentPart(text=text)],
    )


def _image(source: Json, where: str) -> pb.Image:
    kind = req_str(source, "type", f"{where}.source.type")
    if kind == "url":
        return pb.Image(url=req_str(source, "url", f"{where}.source.url"))
    if kind != "base64":
        raise InvalidArgument(f"{where}.source.type: expected base64 or url")
    try:
        data = base64.b64decode(req_str(source, "data", f"{where}.source.data"), validate=True)
    except (binascii.Error, ValueError):
        raise InvalidArgument(f"{where}.source.data: not valid base64") from None
    return pb.Image(data=data, mime_type=req_str(source, "media_type", f"{where}.source.media_type"))


def _tool(tool: Json, field: str) -> pb.Tool:
    schema = opt_obj(tool, "input_schema", f"{field}.input_schema")
    return pb.Tool(
        name=req_str(tool, "name", f"{field}.name"),
        description=opt_str(tool, "description", f"{field}.description") or "",
        parameters=json.dumps(schema) if schema is not None else "",
    )


def _tool_choice(choice: Json) -> pb.ToolChoice:
    kind = req_str(choice, "type", "tool_choice.type")
    if kind == "tool":
        return pb.ToolChoice(function=req_str(choice, "name", "tool_choice.name"))
    if kind not in _TOOL_MODES:
        raise InvalidArgument(f"tool_choice.type: expected auto, any, tool or none, got {kind!r}")
    return pb.ToolChoice(mode=_TOOL_MODES[kind])
