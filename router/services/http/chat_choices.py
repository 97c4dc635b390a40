"""`n` > 1 on /v1/chat/completions: n answers to one prompt, each its own request through the pipeline.

Each choice is a request of its own (its own candidate, attempt, ledger record and cost: a backend is asked n
times), run at once; the answer carries them as choices 0..n-1 and usage summed over them. Streamed, the
choices' chunks interleave as they arrive, each with its index, then one usage chunk (with include_usage)
and [DONE]. A failure before anything was sent is the request's error; after, an error event ends the stream.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

from aiohttp import web
from modelyard.v1 import inference_pb2 as pb

from core.errors import InvalidArgument, StatusError
from router.pipeline import Call, RequestPipeline
from router.services.http.chat_response import (
    SSE_DONE,
    AnswerCollector,
    ChunkEncoder,
    answer_body,
    modelyard_json,
    sse,
    usage_json,
)
from router.services.http.errors import http_error
from router.services.http.fields import Json, opt_int


def choices_asked(body: Json, maximum: int) -> int:
    """`n` (1 when absent); at most `maximum` (http_max_choices: OpenAI allows 128, but each is a request)."""
    n = opt_int(body, "n", minimum=1) or 1
    if n > maximum:
        raise InvalidArgument(
            f"n: at most {maximum} choices (each is a request of its own; http_max_choices)"
        )
    return n


def _copies(request: pb.ChatRequest, n: int) -> list[pb.ChatRequest]:
    copies = []
    for i in range(n):
        copy = pb.ChatRequest()
        copy.CopyFrom(request)
        copy.request_id = f"{request.request_id}-{i}" if request.request_id else ""
        copies.append(copy)
    return copies


def _summed(usages: list[pb.Usage]) -> pb.Usage:
    total = pb.Usage()
    total.CopyFrom(usages[0])
    for usage in usages[1:]:
        total.prompt_tokens += usage.prompt_tokens
        total.completion_tokens += usage.completion_tokens
        total.reasoning_tokens += usage.reasoning_tokens
        total.cost_usd += usage.cost_usd
    return total


async def whole_choices(
    pipeline: RequestPipeline, request: pb.ChatRequest, call: Call, n: int
) -> web.Response:
    async def one(copy: pb.ChatRequest) -> AnswerCollector:
        collector = AnswerCollector(copy)
        async for event in pipeline.chat(copy, call):
            collector.add(event)
        return collector

    collectors = await asyncio.gather(*(one(copy) for copy in _copies(request, n)))
    answers = [collector.answer() for collector in collectors]
    body: dict[str, Any] = answers[0]
    body["choices"] = [answer["choices"][0] | {"index": i} for i, answer in enumerate(answers)]
    total = _summed([collector.usage for collector in collectors])
    body["usage"], body["modelyard"] = usage_json(total), modelyard_json(total)
    return web.Response(body=answer_body(body), content_type="application/json")


async def streamed_choices(
    http: web.Request,
    pipeline: RequestPipeline,
    request: pb.ChatRequest,
    call: Call,
    n: int,
    include_usage: bool,
    headers: dict[str, str],
) -> web.StreamResponse:
    queue: asyncio.Queue[tuple[int, pb.ChatResponse | StatusError | None]] = asyncio.Queue()

    async def relay(i: int, events: AsyncIterator[pb.ChatResponse]) -> None:
        try:
            async for event in events:
                await queue.put((i, event))
        except StatusError as error:
            await queue.put((i, error))
            return
        await queue.put((i, None))

    encoders = [ChunkEncoder(request, include_usage=False, index=i) for i in range(n)]
    tasks = [
        asyncio.create_task(relay(i, pipeline.chat(copy, call))) for i, copy in enumerate(_copies(request, n))
    ]
    response: web.StreamResponse | None = None
    usages: list[pb.Usage] = []
    try:
        for _ in range(n):
            while True:
                i, item = await queue.get()
                if item is None:
                    break
                if isinstance(item, StatusError):
                    if response is None:
                        raise item
                    await response.write_eof(http_error(item).sse_event())
                    return response
                if response is None:
                    response = web.StreamResponse(headers=headers)
                    await response.prepare(http)
                if item.HasField("usage"):
                    usages.append(item.usage)
                await response.write(encoders[i].event(item))
    finally:
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
    assert response is not None  # every choice ends with usage
    last = b""
    if include_usage:
        total = _summed(usages)
        last = sse(
            {
                "id": "chatcmpl-" + request.request_id,
                "object": "chat.completion.chunk",
                "model": total.model or request.model,
                "choices": [],
                "usage": usage_json(total),
                "modelyard": modelyard_json(total),
            }
        )
    await response.write_eof(last + SSE_DONE)
    return response
