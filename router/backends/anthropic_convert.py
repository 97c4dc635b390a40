"""Our chat messages in the Anthropic Messages format: system text apart, images as image blocks.

Conversions raise ValueError for input the API cannot take; the backend turns that into
INVALID_ARGUMENT with its own name on it.
"""

from __future__ import annotations

import base64
from collections.abc import Sequence
from typing import Any, Literal

from anthropic.types import ImageBlockParam, MessageParam, TextBlockParam, ToolResultBlockParam
from modelyard.v1 import inference_pb2 as pb

from core.chat_options import call_arguments
from router.backends.cloud import parse_data_url

MediaType = Literal["image/jpeg", "image/png", "image/gif", "image/webp"]
_MEDIA_TYPES: dict[str, MediaType] = {
    "image/jpeg": "image/jpeg",
    "image/jpg": "image/jpeg",
    "image/png": "image/png",
    "image/gif": "image/gif",
    "image/webp": "image/webp",
}

# Anthropic's stop reasons as the API's finish reasons.
FINISH_REASONS: dict[str, pb.FinishReason] = {
    "end_turn": pb.FINISH_REASON_STOP,
    "stop_sequence": pb.FINISH_REASON_STOP,
    "max_tokens": pb.FINISH_REASON_LENGTH,
    "model_context_window_exceeded": pb.FINISH_REASON_LENGTH,
    "tool_use": pb.FINISH_REASON_TOOL_CALLS,
    "pause_turn": pb.FINISH_REASON_STOP,
    "refusal": pb.FINISH_REASON_CONTENT_FILTER,
}


def split_system(messages: Sequence[pb.Message]) -> tuple[str, list[MessageParam]]:
    """(system prompt, conversation): Anthropic takes system text as its own parameter, not a turn."""
    system: list[str] = []
    conversation: list[MessageParam] = []
    for index, message in enumerate(messages):
        if message.role == pb.ROLE_SYSTEM:
            if any(part.HasField("image") for part in message.content):
                raise ValueError(f"messages[{index}]: a system message cannot carry images")
            system.append("".join(part.text for part in message.content))
            continue
        if message.role == pb.ROLE_USER:
            conversation.append({"role": "user", "content": _content(index, message)})
        elif message.role == pb.ROLE_ASSISTANT:
            if any(part.HasField("image") for part in message.content):
                raise ValueError(f"messages[{index}]: only user messages may carry images")
            conversation.append({"role": "assistant", "content": _assistant_content(index, message)})
        elif message.role == pb.ROLE_TOOL:
            result = _tool_result(index, message)
            previous = conversation[-1] if conversation else None
            # Every result answering one assistant turn goes back in the same user turn, as the API wants.
            if previous is not None and previous["role"] == "user" and _all_tool_results(previous["content"]):
                assert isinstance(previous["content"], list)
                previous["content"].append(result)
            else:
                conversation.append({"role": "user", "content": [result]})
        else:
            raise ValueError(f"messages[{index}].role: {message.role} is not a role this API knows")
    return "\n\n".join(system), conversation


def _content(index: int, message: pb.Message) -> str | list[TextBlockParam | ImageBlockParam]:
    if not any(part.HasField("image") for part in message.content):
        return "".join(part.text for part in message.content)
    blocks: list[TextBlockParam | ImageBlockParam] = []
    for part in message.content:
        if part.HasField("image"):
            blocks.append(image_block(index, part.image))
        elif part.text:  # the API rejects empty text blocks
            blocks.append({"type": "text", "text": part.text})
    return blocks


def _assistant_content(index: int, message: pb.Message) -> str | list[Any]:
    thinking = _thinking_blocks(message)
    if not message.tool_calls and not thinking:
        return _content(index, message)
    blocks: list[Any] = thinking
    text = "".join(part.text for part in message.content)
    if text:
        blocks.append({"type": "text", "text": text})
    for k, call in enumerate(message.tool_calls):
        arguments = call_arguments(call, f"messages[{index}].tool_calls[{k}].arguments")
        blocks.append({"type": "tool_use", "id": call.id, "name": call.name, "input": arguments})
    return blocks


def _thinking_blocks(message: pb.Message) -> list[Any]:
    """Earlier thinking, first in the turn as the API wants it; only signed blocks (the API refuses others)."""
    blocks: list[Any] = []
    for block in message.reasoning:
        if block.redacted_data:
            blocks.append({"type": "redacted_thinking", "data": block.redacted_data})
        elif block.signature:
            blocks.append({"type": "thinking", "thinking": block.text, "signature": block.signature})
    return blocks


def _tool_result(index: int, message: pb.Message) -> ToolResultBlockParam:
    if any(part.HasField("image") for part in message.content):
        raise ValueError(f"messages[{index}]: a tool result here carries text only")
    text = "".join(part.text for part in message.content)
    return {"type": "tool_result", "tool_use_id": message.tool_call_id, "content": text}


def _all_tool_results(content: Any) -> bool:
    return isinstance(content, list) and all(block.get("type") == "tool_result" for block in content)


def image_block(index: int, image: pb.Image) -> ImageBlockParam:
    if image.HasField("url"):
        inline = parse_data_url(image.url)
        if inline is None:
            # An http(s) URL: Anthropic fetches it itself.
            return {"type": "image", "source": {"type": "url", "url": image.url}}
        mime_type, data = inline
    else:
        mime_type, data = image.mime_type, base64.b64encode(image.data).decode("ascii")
    media_type = _MEDIA_TYPES.get(mime_type.lower())
    if media_type is None:
        raise ValueError(
            f"messages[{index}]: image type {mime_type or '(none)'!r} is not one of "
            f"{', '.join(sorted(set(_MEDIA_TYPES.values())))}"
        )
    return {"type": "image", "source": {"type": "base64", "media_type": media_type, "data": data}}
