"""ChatResponse events -> OpenAI's chat-completion JSON: SSE chunks as they come, or one whole answer.

Text deltas become `content`, tool-call fragments `tool_calls` (same index, id and name first), reasoning
`reasoning_content` (the name vLLM and DeepSeek use), and the closing Usage the finish chunk, the usage
chunk (with stream_options.include_usage) and a `modelyard` object: backend, cost, cache hit, request id.
"""

from __future__ import annotations

import time
from typing import Any

from modelyard.v1 import inference_pb2 as pb

from core import fast_json, wire

_FINISH = {
    pb.FINISH_REASON_STOP: "stop",
    pb.FINISH_REASON_LENGTH: "length",
    pb.FINISH_REASON_TOOL_CALLS: "tool_calls",
    pb.FINISH_REASON_CONTENT_FILTER: "content_filter",
    pb.FINISH_REASON_ABORT: "abort",  # not an OpenAI value; vLLM's server says the same
}


def _dumps(payload: dict[str, Any]) -> bytes:
    return fast_json.dumps(payload)


def sse(payload: dict[str, Any]) -> bytes:
    return b"data: " + _dumps(payload) + b"\n\n"


SSE_DONE = b"data: [DONE]\n\n"


def finish_reason(usage: pb.Usage) -> str:
    return _FINISH.get(usage.finish_reason, "stop")


def usage_json(usage: pb.Usage) -> dict[str, Any]:
    out: dict[str, Any] = {
        "prompt_tokens": usage.prompt_tokens,
        "completion_tokens": usage.completion_tokens,
        "total_tokens": usage.prompt_tokens + usage.completion_tokens,
    }
    if usage.reasoning_tokens:
        out["completion_tokens_details"] = {"reasoning_tokens": usage.reasoning_tokens}
    return out


def modelyard_json(usage: pb.Usage) -> dict[str, Any]:
    """What the router adds: who served, what it cost, how long it took."""
    return {
        "request_id": usage.request_id,
        "backend": usage.backend,
        "model": usage.model,
        "cost_usd": usage.cost_usd,
        "cache_hit": usage.cache_hit,
        "ttft_ms": round(wire.ms_of(usage.ttft), 3),
        "latency_ms": round(wire.ms_of(usage.latency), 3),
    }


def logprobs_json(tokens: Any) -> dict[str, Any]:
    return {
        "content": [
            {
                "token": t.token,
                "logprob": t.logprob,
                "bytes": list(t.token.encode()),
                "top_logprobs": [
                    {"token": top.token, "logprob": top.logprob, "bytes": list(top.token.encode())}
                    for top in t.top_logprobs
                ],
            }
            for t in tokens
        ]
    }


class ChunkEncoder:
    """Encodes one streamed answer; `event` returns the SSE frames for one ChatResponse."""

    def __init__(self, request: pb.ChatRequest, include_usage: bool, index: int = 0) -> None:
        self._request = request
        self._include_usage = include_usage
        self._index = index  # the choice this answer is, with n > 1
        self._created = int(time.time())
        self._started = False
        self._text_head = self._text_tail = b""

    def _chunk(self, delta: dict[str, Any], finish: str | None = None, **extra: Any) -> dict[str, Any]:
        choice: dict[str, Any] = {"index": self._index, "delta": delta, "finish_reason": finish}
        choice.update(extra)
        return {
            "id": "chatcmpl-" + self._request.request_id,
            "object": "chat.completion.chunk",
            "created": self._created,
            "model": self._request.model,
            "choices": [choice],
        }

    def event(self, response: pb.ChatResponse) -> bytes:
        frames = b""
        if not self._started:
            self._started = True
            frames = sse(self._chunk({"role": "assistant", "content": ""}))
            # Text deltas are most of a stream: their frame around the text, encoded once (the request id is
            # known by the first event). Nothing follows the empty content that could read `""`.
            empty = sse(self._chunk({"content": ""}, logprobs=None))
            self._text_head, self._text_tail = empty.rsplit(b'""', 1)
        kind = response.WhichOneof("event")
        if kind == "delta" and not response.delta.logprobs:
            text = fast_json.dumps(response.delta.text)
            return frames + self._text_head + text + self._text_tail
        if kind == "delta":
            logprobs = logprobs_json(response.delta.logprobs) if response.delta.logprobs else None
            return frames + sse(self._chunk({"content": response.delta.text}, logprobs=logprobs))
        if kind == "tool_call":
            call = response.tool_call
            fragment: dict[str, Any] = {"index": call.index, "function": {"arguments": call.arguments}}
            if call.id:
                fragment["id"] = call.id
                fragment["type"] = "function"
            if call.name:
                fragment["function"]["name"] = call.name
            return frames + sse(self._chunk({"tool_calls": [fragment]}))
        if kind == "reasoning":
            # A signature alone (Anthropic's, closing a thinking block) has no place in OpenAI's format.
            if not response.reasoning.text:
                return frames
            return frames + sse(self._chunk({"reasoning_content": response.reasoning.text}))
        if kind == "usage":
            return frames + self._finish(response.usage)
        return frames

    def _finish(self, usage: pb.Usage) -> bytes:
        model = usage.model or self._request.model
        last = self._chunk({}, finish_reason(usage)) | {"model": model}
        frames = sse(last)
        if self._include_usage:
            tail = {**last, "choices": [], "usage": usage_json(usage), "modelyard": modelyard_json(usage)}
            frames += sse(tail)
        return frames


class AnswerCollector:
    """Gathers a whole answer from the events, for a request without `stream`."""

    def __init__(self, request: pb.ChatRequest) -> None:
        self._request = request
        self._text: list[str] = []
        self._reasoning: list[str] = []
        self._logprobs: list[pb.TokenLogprob] = []
        self._calls: dict[int, dict[str, Any]] = {}
        self.usage = pb.Usage()

    def add(self, response: pb.ChatResponse) -> None:
        kind = response.WhichOneof("event")
        if kind == "delta":
            self._text.append(response.delta.text)
            self._logprobs.extend(response.delta.logprobs)
        elif kind == "tool_call":
            fragment = response.tool_call
            call = self._calls.setdefault(
                fragment.index, {"id": "", "type": "function", "function": {"name": "", "arguments": ""}}
            )
            call["id"] = call["id"] or fragment.id
            call["function"]["name"] = call["function"]["name"] or fragment.name
            call["function"]["arguments"] += fragment.arguments
        elif kind == "reasoning":
            self._reasoning.append(response.reasoning.text)
        elif kind == "usage":
            self.usage = response.usage

    def answer(self) -> dict[str, Any]:
        text = "".join(self._text)
        message: dict[str, Any] = {"role": "assistant", "content": text or None, "refusal": None}
        if self._calls:
            message["tool_calls"] = [self._calls[i] for i in sorted(self._calls)]
        if self._reasoning:
            message["reasoning_content"] = "".join(self._reasoning)
        choice = {
            "index": 0,
            "message": message,
            "finish_reason": finish_reason(self.usage),
            "logprobs": logprobs_json(self._logprobs) if self._request.logprobs else None,
        }
        return {
            "id": "chatcmpl-" + self._request.request_id,
            "object": "chat.completion",
            "created": int(time.time()),
            "model": self.usage.model or self._request.model,
            "choices": [choice],
            "usage": usage_json(self.usage),
            "modelyard": modelyard_json(self.usage),
        }


def answer_body(answer: dict[str, Any]) -> bytes:
    return _dumps(answer)
