"""A local server speaking OpenAI's chat-completions wire format, answering at once (or, as a cloud double for
the spill bench, after `first_token_s`).

POST /v1/chat/completions answers `max_tokens` (or `max_completion_tokens`, default 1) tokens: as one
JSON body, or with "stream": true as server-sent events, one chunk per token, then a finish chunk,
a usage chunk when `stream_options.include_usage` asks for one, and `data: [DONE]`.
GET /v1/models lists the one model, for health checks.
"""

from __future__ import annotations

import asyncio
import json
import logging
import socket
from multiprocessing.connection import Connection
from typing import Any

from aiohttp import web

from bench.processes import next_command
from bench.tokens import TOKEN

MODEL = "bench"
FIRST_TOKEN_S = web.AppKey("first_token_s", float)
_SSE_HEADERS = {"Content-Type": "text/event-stream", "Cache-Control": "no-cache"}


def _event(payload: dict[str, Any]) -> bytes:
    return b"data: " + json.dumps(payload, separators=(",", ":")).encode() + b"\n\n"


def _chunk(model: str, delta: dict[str, str], finish: str | None) -> dict[str, Any]:
    return {
        "id": "chatcmpl-bench",
        "object": "chat.completion.chunk",
        "created": 1700000000,
        "model": model,
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
    }


def _usage(tokens: int) -> dict[str, int]:
    return {"prompt_tokens": 8, "completion_tokens": tokens, "total_tokens": 8 + tokens}


async def chat_completions(request: web.Request) -> web.StreamResponse:
    body = await request.json()
    model = str(body.get("model") or MODEL)
    tokens = int(body.get("max_tokens") or body.get("max_completion_tokens") or 1)
    if delay := request.app.get(FIRST_TOKEN_S, 0.0):
        await asyncio.sleep(delay)
    if not body.get("stream"):
        return web.json_response(
            {
                "id": "chatcmpl-bench",
                "object": "chat.completion",
                "created": 1700000000,
                "model": model,
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": TOKEN * tokens},
                        "finish_reason": "stop",
                    }
                ],
                "usage": _usage(tokens),
            }
        )
    response = web.StreamResponse(headers=_SSE_HEADERS)
    await response.prepare(request)
    token = _event(_chunk(model, {"content": TOKEN}, None))
    await response.write(_event(_chunk(model, {"role": "assistant", "content": TOKEN}, None)))
    for _ in range(tokens - 1):
        await response.write(token)
    await response.write(_event(_chunk(model, {}, "stop")))
    if (body.get("stream_options") or {}).get("include_usage"):
        await response.write(_event({**_chunk(model, {}, None), "choices": [], "usage": _usage(tokens)}))
    await response.write(b"data: [DONE]\n\n")
    await response.write_eof()
    return response


async def models(request: web.Request) -> web.Response:
    return web.json_response(
        {"object": "list", "data": [{"id": MODEL, "object": "model", "created": 0, "owned_by": "bench"}]}
    )


def make_app(first_token_s: float = 0.0) -> web.Application:
    app = web.Application()
    app[FIRST_TOKEN_S] = first_token_s
    app.router.add_post("/v1/chat/completions", chat_completions)
    app.router.add_get("/v1/models", models)
    return app


async def _serve(conn: Connection, first_token_s: float) -> None:
    app = make_app(first_token_s)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    site = web.SockSite(runner, listener, backlog=1024)
    await site.start()
    conn.send({"url": f"http://127.0.0.1:{port}/v1"})
    while await next_command(conn) != "stop":
        conn.send("ok")
    await runner.cleanup()
    conn.send("stopped")


def openai_child(conn: Connection, first_token_s: float = 0.0) -> None:
    """Process entry: serve the OpenAI-format endpoint until told to stop."""
    logging.basicConfig(level=logging.ERROR)
    asyncio.run(_serve(conn, first_token_s))
