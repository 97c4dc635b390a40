"""A test double of the Anthropic API speaking its real wire format: Messages (streamed as SSE events
message_start, content_block_start, ping, content_block_delta..., content_block_stop, message_delta,
message_stop; or whole) and the model list. It answers every message with `reply`, one word per delta.
Given tools (and a tool_choice other than none) it calls them as Claude does: under auto a short text block
first, then tool_use blocks whose input streams as input_json_delta pieces, stop_reason "tool_use". With
thinking enabled a thinking block (thinking_delta, then signature_delta) comes first.

    async with FakeAnthropic(api_key="sk-ant-test") as fake:
        client = AsyncAnthropic(api_key="sk-ant-test", base_url=fake.base_url)
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from aiohttp import web

from tests.support.fake_http import FakeServer, Fault

# Error type names of the Anthropic API, by HTTP status.
_ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    500: "api_error",
    529: "overloaded_error",
}


class FakeAnthropic(FakeServer):
    def __init__(
        self,
        api_key: str = "sk-ant-test",
        *,
        models: Sequence[str] = ("claude-haiku-4-5", "claude-sonnet-4-6"),
        reply: str = "Hello from the fake Claude",
        input_tokens: int = 23,
        tool_input: str = '{"city": "Paris", "unit": "celsius"}',
        calls_per_answer: int = 1,
        thinking: str = "The user wants a greeting; I will greet back.",
    ) -> None:
        super().__init__(api_key)
        self.tool_input = tool_input
        self.calls_per_answer = calls_per_answer
        self.thinking = thinking
        self.models = list(models)
        self.reply = reply
        self.input_tokens = input_tokens

    @property
    def base_url(self) -> str:
        return self.root_url  # the SDK adds /v1 itself

    def routes(self) -> Sequence[web.RouteDef]:
        return [web.post("/v1/messages", self._messages), web.get("/v1/models", self._models)]

    def authorized(self, request: web.Request) -> bool:
        # The API takes the key as x-api-key or (what SDK 2.x sends) as a bearer token.
        presented = request.headers.get("x-api-key") or request.headers.get("Authorization", "").removeprefix(
            "Bearer "
        )
        return presented == self.api_key and "anthropic-version" in request.headers

    def unauthorized(self, request: web.Request) -> web.Response:
        return _error(401, "invalid x-api-key")

    def error_response(self, status: int, fault: Fault) -> web.Response:
        response = _error(status, fault.message, fault.code)
        if fault.retry_after is not None:
            response.headers["retry-after"] = fault.retry_after
        return response

    def error_event(self, fault: Fault) -> bytes:
        error = {"type": fault.code or "overloaded_error", "message": fault.message}
        return _event("error", {"type": "error", "error": error})

    def malformed_frame(self) -> bytes:
        return b'event: content_block_delta\ndata: {"type": "content_block_delta", "index": 0, "delta": {\n\n'

    async def _messages(self, request: web.Request) -> web.StreamResponse:
        recorded, fault, early = await self.begin(request)
        if early is not None:
            return early
        body = recorded.json
        if not isinstance(body.get("max_tokens"), int):
            return _error(400, "max_tokens: Field required")
        model = body["model"]
        if model not in self.models:
            return _error(404, f"model: {model}")
        if any(m.get("role") not in ("user", "assistant") for m in body["messages"]):
            return _error(400, "messages: roles must be user or assistant")
        words = _pieces(self.reply)
        stop_reason = "end_turn"
        if body["max_tokens"] < len(words):
            words, stop_reason = words[: body["max_tokens"]], "max_tokens"
        message: dict[str, Any] = {
            "id": "msg_fake",
            "type": "message",
            "role": "assistant",
            "model": model,
            "content": [],
            "stop_reason": None,
            "stop_sequence": None,
            "usage": {"input_tokens": self.input_tokens, "output_tokens": 1},
        }
        if not body.get("stream"):
            whole = message | {
                "content": [{"type": "text", "text": "".join(words)}],
                "stop_reason": stop_reason,
                "usage": {"input_tokens": self.input_tokens, "output_tokens": len(words)},
            }
            return web.json_response(whole)
        frames = [
            _event("message_start", {"type": "message_start", "message": message}),
            _event("ping", {"type": "ping"}),
        ]
        blocks: list[list[bytes]] = []
        if (body.get("thinking") or {}).get("type") == "enabled":
            blocks.append(self._thinking_block(len(blocks)))
        calls, choice = self._tools_to_call(body), body.get("tool_choice") or {"type": "auto"}
        if not calls or choice["type"] == "auto":
            preface = ["Let me check. "] if calls else words
            blocks.append(_text_block(len(blocks), preface))
        for name in calls:
            blocks.append(self._tool_block(len(blocks), name))
        if calls:
            stop_reason = "tool_use"
        frames += [frame for block in blocks for frame in block]
        frames += [
            _event(
                "message_delta",
                {
                    "type": "message_delta",
                    "delta": {"stop_reason": stop_reason, "stop_sequence": None},
                    "usage": {"output_tokens": len(words)},
                },
            ),
            _event("message_stop", {"type": "message_stop"}),
        ]
        return await self.stream(request, frames, fault)

    def _tools_to_call(self, body: dict[str, Any]) -> list[str]:
        tools = [t["name"] for t in body.get("tools") or ()]
        choice = body.get("tool_choice") or {"type": "auto"}
        if not tools or choice["type"] == "none":
            return []
        if choice["type"] == "tool":
            return [choice["name"]]
        return tools[: 1 if choice.get("disable_parallel_tool_use") else self.calls_per_answer]

    def _tool_block(self, index: int, name: str) -> list[bytes]:
        block = {"type": "tool_use", "id": f"toolu_{index}_{name}", "name": name, "input": {}}
        pieces = [""] + [self.tool_input[at : at + 6] for at in range(0, len(self.tool_input), 6)]
        return [
            _event(
                "content_block_start", {"type": "content_block_start", "index": index, "content_block": block}
            ),
            *(
                _delta(index, {"type": "input_json_delta", "partial_json": piece})
                for piece in (pieces if self.tool_input else [])
            ),
            _event("content_block_stop", {"type": "content_block_stop", "index": index}),
        ]

    def _thinking_block(self, index: int) -> list[bytes]:
        block = {"type": "thinking", "thinking": "", "signature": ""}
        return [
            _event(
                "content_block_start", {"type": "content_block_start", "index": index, "content_block": block}
            ),
            *(
                _delta(index, {"type": "thinking_delta", "thinking": piece})
                for piece in _pieces(self.thinking)
            ),
            _delta(index, {"type": "signature_delta", "signature": "c2lnbmVk"}),
            _event("content_block_stop", {"type": "content_block_stop", "index": index}),
        ]

    async def _models(self, request: web.Request) -> web.StreamResponse:
        _, _, early = await self.begin(request)
        if early is not None:
            return early
        data = [
            {"type": "model", "id": m, "display_name": m, "created_at": "2025-10-01T00:00:00Z"}
            for m in self.models
        ]
        return web.json_response(
            {"data": data, "has_more": False, "first_id": self.models[0], "last_id": self.models[-1]}
        )


def _text_block(index: int, words: list[str]) -> list[bytes]:
    start = {"type": "content_block_start", "index": index, "content_block": {"type": "text", "text": ""}}
    return [
        _event("content_block_start", start),
        *(_delta(index, {"type": "text_delta", "text": w}) for w in words),
        _event("content_block_stop", {"type": "content_block_stop", "index": index}),
    ]


def _delta(index: int, delta: dict[str, Any]) -> bytes:
    return _event("content_block_delta", {"type": "content_block_delta", "index": index, "delta": delta})


def _event(name: str, data: dict[str, Any]) -> bytes:
    return f"event: {name}\ndata: {json.dumps(data)}\n\n".encode()


def _pieces(text: str) -> list[str]:
    words = text.split(" ")
    return [word if i == len(words) - 1 else word + " " for i, word in enumerate(words)]


def _error(status: int, message: str, error_type: str | None = None) -> web.Response:
    kind = error_type or _ERROR_TYPES.get(status, "api_error")
    body = {"type": "error", "error": {"type": kind, "message": message}, "request_id": "req_fake"}
    return web.json_response(body, status=status, headers={"request-id": "req_fake"})
