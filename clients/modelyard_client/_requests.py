"""Request messages built from plain Python values; bad input fails here, before any call is made."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from modelyard.v1 import accounting_pb2
from modelyard.v1 import inference_pb2 as pb

from core import wire
from modelyard_client import _chat_options as chat_options
from modelyard_client._errors import InvalidArgument
from modelyard_client._tools import Tool
from modelyard_client._types import Image

# A part of a message's content: text, encoded image bytes (type sniffed), an Image, or an
# OpenAI-style dict ({"type": "text", "text": ...} / {"type": "image_url", "image_url": {"url": ...}}).
Part = str | bytes | Image | Mapping[str, Any]
Content = str | Sequence[Part]
# A message: a (role, content) pair or a {"role": ..., "content": ..., "name": ...} dict.
MessageLike = tuple[str, Content] | Mapping[str, Any]
Messages = str | Sequence[MessageLike]

_ROLES = {"system": pb.ROLE_SYSTEM, "user": pb.ROLE_USER, "assistant": pb.ROLE_ASSISTANT}
_MAGIC = (
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"GIF87a", "image/gif"),
    (b"GIF89a", "image/gif"),
)


def messages(prompt_or_messages: Messages, system: str | None = None) -> list[pb.Message]:
    items: Sequence[MessageLike] = (
        [("user", prompt_or_messages)] if isinstance(prompt_or_messages, str) else prompt_or_messages
    )
    out = [_message(item) for item in items]
    if system is not None:
        out.insert(0, pb.Message(role=pb.ROLE_SYSTEM, content=[pb.ContentPart(text=system)]))
    return out


def _message(item: MessageLike) -> pb.Message:
    if isinstance(item, Mapping):
        role, content, name = item.get("role"), item.get("content"), item.get("name") or ""
    elif isinstance(item, tuple) and len(item) == 2:
        (role, content), name = item, ""
    else:
        raise TypeError(f"a message is a (role, content) pair or a dict, not {item!r}")
    if role not in _ROLES:
        raise ValueError(f"message role must be one of {', '.join(_ROLES)}, not {role!r}")
    if content is None:
        raise ValueError("message has no content")
    parts = [content] if isinstance(content, str) else list(content)
    return pb.Message(role=_ROLES[role], content=[_part(p) for p in parts], name=name)


def _part(part: Part) -> pb.ContentPart:
    if isinstance(part, str):
        return pb.ContentPart(text=part)
    if isinstance(part, bytes):
        return pb.ContentPart(image=pb.Image(data=part, mime_type=_sniff_image(part)))
    if isinstance(part, Image):
        if part.data is not None:
            return pb.ContentPart(image=pb.Image(data=part.data, mime_type=part.mime_type))
        return pb.ContentPart(image=pb.Image(url=part.url or "", mime_type=part.mime_type))
    if isinstance(part, Mapping):
        if part.get("type") == "text":
            return pb.ContentPart(text=str(part["text"]))
        if part.get("type") == "image_url":
            ref = part["image_url"]
            url = ref["url"] if isinstance(ref, Mapping) else ref
            return pb.ContentPart(image=pb.Image(url=str(url)))
    raise TypeError(f"a content part is text, image bytes, an Image or a text/image_url dict, not {part!r}")


def _sniff_image(data: bytes) -> str:
    for magic, mime_type in _MAGIC:
        if data.startswith(magic):
            return mime_type
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    raise ValueError("image bytes are not PNG, JPEG, GIF or WebP; pass Image(data=..., mime_type=...)")


def sampling(
    temperature: float | None,
    top_p: float | None,
    max_tokens: int | None,
    stop: str | Sequence[str] | None,
    seed: int | None,
) -> pb.SamplingParams:
    params = pb.SamplingParams(stop=[stop] if isinstance(stop, str) else list(stop or ()))
    # Optional fields: only set what the caller gave, so unset ones take the backend's defaults.
    if temperature is not None:
        params.temperature = temperature
    if top_p is not None:
        params.top_p = top_p
    if max_tokens is not None:
        params.max_tokens = max_tokens
    if seed is not None:
        params.seed = seed
    return params


def routing(
    provider: str | None, strategy: str | None, max_cost_usd: float | None, task: str | None
) -> pb.RoutingHints:
    hints = pb.RoutingHints(provider=provider or "", strategy=strategy_value(strategy), task=task or "")
    if max_cost_usd is not None:
        hints.max_cost_usd = max_cost_usd
    return hints


def chat_request(
    prompt_or_messages: Messages,
    *,
    model: str = "auto",
    system: str | None = None,
    temperature: float | None = None,
    top_p: float | None = None,
    max_tokens: int | None = None,
    stop: str | Sequence[str] | None = None,
    seed: int | None = None,
    provider: str | None = None,
    strategy: str | None = None,
    max_cost_usd: float | None = None,
    task: str | None = None,
    request_id: str | None = None,
    tools: Sequence[Tool | Mapping[str, Any]] | None = None,
    tool_choice: str | None = None,
    parallel_tool_calls: bool | None = None,
    response_format: str | Mapping[str, Any] | None = None,
    logprobs: int | None = None,
    presence_penalty: float | None = None,
    frequency_penalty: float | None = None,
    reasoning_effort: str | None = None,
) -> pb.ChatRequest:
    """The one place chat's parameters are written: `Client.chat`, `chat_text` and `AsyncClient`'s take
    exactly these (see `_parameters.parameters_of`), defaults included."""
    request = pb.ChatRequest(
        request_id=request_id or "",
        model=model,
        messages=messages(prompt_or_messages, system),
        sampling=sampling(temperature, top_p, max_tokens, stop, seed),
        routing=routing(provider, strategy, max_cost_usd, task),
    )
    if presence_penalty is not None:
        request.sampling.presence_penalty = presence_penalty
    if frequency_penalty is not None:
        request.sampling.frequency_penalty = frequency_penalty
    chat_options.apply(
        request,
        tools=tools,
        tool_choice=tool_choice,
        parallel_tool_calls=parallel_tool_calls,
        response_format=response_format,
        logprobs=logprobs,
        reasoning_effort=reasoning_effort,
    )
    return request


def embed_request(texts: str | Sequence[str], model: str, request_id: str | None) -> pb.EmbedRequest:
    inputs = [texts] if isinstance(texts, str) else list(texts)
    return pb.EmbedRequest(request_id=request_id or "", model=model, inputs=inputs)


def usage_request(days: int, tenant: str | None) -> accounting_pb2.GetUsageRequest:
    return accounting_pb2.GetUsageRequest(days=days, tenant=tenant or "")


def strategy_value(name: str | None) -> pb.Strategy:
    """A strategy's name ("least_loaded") as the API's enum; None or "" leaves the router's default."""
    try:
        return wire.strategy(name or "")
    except ValueError:
        known = ", ".join(wire.enum_names(pb.Strategy))
        raise InvalidArgument(f"strategy: unknown strategy {name!r}; known: {known}") from None
