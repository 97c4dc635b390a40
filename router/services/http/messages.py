"""POST /v1/messages: Anthropic's Messages API in front of the same pipeline, streamed (Anthropic's SSE events)
or whole. Text, tool_use (arguments as input_json_delta pieces) and thinking blocks; errors in Anthropic's shape.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncGenerator, AsyncIterator
from typing import Any, cast

from aiohttp import web
from modelyard.v1 import inference_pb2 as pb

from core import logs
from core.errors import StatusError
from router.accounting.estimates import estimate_chat
from router.pipeline import Call, RequestPipeline
from router.services.http.call import call_of, json_body, within_deadline
from router.services.http.errors import http_error
from router.services.http.fields import opt_bool
from router.services.http.messages_request import messages_request
from router.services.http.routing_hints import request_id, routing_hints

_STOP = {
    pb.FINISH_REASON_STOP: "end_turn",
    pb.FINISH_REASON_LENGTH: "max_tokens",
    pb.FINISH_REASON_TOOL_CALLS: "tool_use",
    pb.FINISH_REASON_CONTENT_FILTER: "refusal",
}
_SSE_HEADERS = {"Content-Type": "text/event-stream", "Cache-Control": "no-cache"}


def _event(kind: str, payload: dict[str, Any]) -> bytes:
    data = json.dumps({"type": kind, **payload}, separators=(",", ":"), ensure_ascii=False)
    return f"event: {kind}\ndata: {data}\n\n".encode()


_ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    503: "overloaded_error",
}


def anthropic_error(error: StatusError) -> web.Response:
    """Anthropic's error body, with the same HTTP status (and Retry-After) as the OpenAI door."""
    mapped = http_error(error)
    kind = _ERROR_TYPES.get(mapped.status, "api_error")
    body = {"type": "error", "error": {"type": kind, "message": error.message}}
    return web.json_response(body, status=mapped.status, headers=mapped.headers)


class _Blocks:
    """Turns pipeline events into content blocks: a new block whenever the kind (or the tool call) changes."""

    def __init__(self, request: pb.ChatRequest) -> None:
        self.request = request
        self.index = -1
        self.open: tuple[str, int] | None = None  # (kind, tool call index)
        self.usage = pb.Usage()

    def events(self, response: pb.ChatResponse) -> bytes:
        kind = response.WhichOneof("event")
        out = b""
        if kind == "delta":
            out += self._switch(("text", -1), {"type": "text", "text": ""})
            out += self._delta({"type": "text_delta", "text": response.delta.text})
        elif kind == "reasoning":
            out += self._switch(("thinking", -1), {"type": "thinking", "thinking": "", "signature": ""})
            if response.reasoning.text:
                out += self._delta({"type": "thinking_delta", "thinking": response.reasoning.text})
            if response.reasoning.signature:
                out += self._delta({"type": "signature_delta", "signature": response.reasoning.signature})
        elif kind == "tool_call":
            call = response.tool_call
            start = {"type": "tool_use", "id": call.id, "name": call.name, "input": {}}
            out += self._switch(("tool_use", call.index), start)
            if call.arguments:
                out += self._delta({"type": "input_json_delta", "partial_json": call.arguments})
        elif kind == "usage":
            self.usage = response.usage
            out += self._close()
            stop = {"stop_reason": _STOP.get(self.usage.finish_reason, "end_turn"), "stop_sequence": None}
            out += _event(
                "message_delta",
                {
                    "delta": stop,
                    # The prompt's real count corrects message_start's estimate (the SDKs take it from here).
                    "usage": {
                        "input_tokens": self.usage.prompt_tokens,
                        "output_tokens": self.usage.completion_tokens,
                    },
                },
            )
            out += _event("message_stop", {})
        return out

    def _switch(self, block: tuple[str, int], start: dict[str, Any]) -> bytes:
        if self.open == block:
            return b""
        out = self._close()
        self.index += 1
        self.open = block
        return out + _event("content_block_start", {"index": self.index, "content_block": start})

    def _delta(self, delta: dict[str, Any]) -> bytes:
        return _event("content_block_delta", {"index": self.index, "delta": delta})

    def _close(self) -> bytes:
        if self.open is None:
            return b""
        self.open = None
        return _event("content_block_stop", {"index": self.index})


def _stream_start(request: pb.ChatRequest) -> dict[str, Any]:
    """message_start, sent with the first event: the model that is answering (the pipeline binds it to the
    request's log fields as the attempt starts; a cached answer has none bound) and the prompt's estimated
    tokens, which message_delta corrects once the backend has counted them."""
    start = _message(request, [], pb.Usage())
    start["model"] = logs.request_fields().get("model") or request.model
    start["usage"]["input_tokens"] = estimate_chat(request).prompt_tokens
    return start


def _message(request: pb.ChatRequest, content: list[dict[str, Any]], usage: pb.Usage) -> dict[str, Any]:
    return {
        "id": "msg_" + request.request_id,
        "type": "message",
        "role": "assistant",
        "model": usage.model or request.model,
        "content": content,
        "stop_reason": _STOP.get(usage.finish_reason, "end_turn") if usage.ByteSize() else None,
        "stop_sequence": None,
        "usage": {"input_tokens": usage.prompt_tokens, "output_tokens": usage.completion_tokens},
    }


class MessagesHandler:
    def __init__(self, pipeline: RequestPipeline) -> None:
        self._pipeline = pipeline

    async def handle(self, http: web.Request) -> web.StreamResponse:
        call = call_of(http)
        body = await json_body(http)
        request = messages_request(body)
        request.routing.CopyFrom(routing_hints(http.headers, body))
        request.request_id = request_id(http.headers, body)
        if opt_bool(body, "stream"):
            return await self._stream(http, request, call)
        request.whole_answer = True  # an upstream that can may answer whole, not as events to rebuild
        content: list[dict[str, Any]] = []
        usage = pb.Usage()
        calls: dict[int, dict[str, Any]] = {}
        async with within_deadline(call), contextlib.aclosing(self._chat(request, call)) as events:
            async for event in events:
                kind = event.WhichOneof("event")
                if kind == "delta":
                    if not content or content[-1]["type"] != "text":
                        content.append({"type": "text", "text": ""})
                    content[-1]["text"] += event.delta.text
                elif kind == "reasoning":
                    if not content or content[-1]["type"] != "thinking" or content[-1]["signature"]:
                        content.append({"type": "thinking", "thinking": "", "signature": ""})
                    content[-1]["thinking"] += event.reasoning.text
                    content[-1]["signature"] = event.reasoning.signature
                elif kind == "tool_call":
                    piece = event.tool_call
                    if piece.index not in calls:
                        calls[piece.index] = {
                            "type": "tool_use",
                            "id": piece.id,
                            "name": piece.name,
                            "input": "",
                        }
                        content.append(calls[piece.index])
                    calls[piece.index]["input"] += piece.arguments
                elif kind == "usage":
                    usage = event.usage
        for block in calls.values():
            block["input"] = json.loads(block["input"] or "{}")
        return web.json_response(_message(request, content, usage))

    def _chat(self, request: pb.ChatRequest, call: Call) -> AsyncGenerator[pb.ChatResponse, None]:
        events: AsyncIterator[pb.ChatResponse] = self._pipeline.chat(request, call)
        return cast(AsyncGenerator[pb.ChatResponse, None], events)

    async def _stream(self, http: web.Request, request: pb.ChatRequest, call: Call) -> web.StreamResponse:
        response: web.StreamResponse | None = None
        blocks = _Blocks(request)
        async with contextlib.aclosing(self._chat(request, call)) as events:
            try:
                async with within_deadline(call):
                    async for event in events:
                        if response is None:
                            response = web.StreamResponse(headers=_SSE_HEADERS)
                            await response.prepare(http)
                            start = _stream_start(request)
                            await response.write(_event("message_start", {"message": start}))
                        await response.write(blocks.events(event))
            except StatusError as e:
                if response is None:
                    raise
                error = {"type": "api_error", "message": e.message}
                await response.write(_event("error", {"error": error}))
        if response is None:
            raise AssertionError("chat stream ended without an event")
        await response.write_eof()
        return response
