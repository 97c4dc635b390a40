"""A test double of the Anthropic API speaking its real wire format: Messages (streamed as SSE events
message_start, content_block_start, ping, content_block_delta..., content_block_stop, message_delta,
message_stop; or whole) and the model list. It answers every message with `reply`, one word per delta.

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
    ) -> None:
        super().__init__(api_key)
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
            _event(
                "content_block_start",
                {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
            ),
            _event("ping", {"type": "ping"}),
        ]
        frames += [
            _event(
                "content_block_delta",
                {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": w}},
            )
            for w in words
        ]
        frames += [
            _event("content_block_stop", {"type": "content_block_stop", "index": 0}),
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


def _event(name: str, data: dict[str, Any]) -> bytes:
    return f"event: {name}\ndata: {json.dumps(data)}\n\n".encode()


def _pieces(text: str) -> list[str]:
    words = text.split(" ")
    return [word if i == len(words) - 1 else word + " " for i, word in enumerate(words)]


def _error(status: int, message: str, error_type: str | None = None) -> web.Response:
    kind = error_type or _ERROR_TYPES.get(status, "api_error")
    body = {"type": "error", "error": {"type": kind, "message": message}, "request_id": "req_fake"}
    return web.json_response(body, status=status, headers={"request-id": "req_fake"})
