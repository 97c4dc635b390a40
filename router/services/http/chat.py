"""POST /v1/chat/completions: streamed as server-sent events, or one whole JSON answer.

A client that hangs up cancels this handler (aiohttp's handler cancellation); closing the pipeline's
generator then cancels the upstream call, as a cancelled gRPC call does. A failure before the first event
is an HTTP error status; after it, the stream has said 200, so the error goes out as an `error` event
(which the openai SDKs raise as APIError) and the stream ends without `[DONE]`.
"""

from __future__ import annotations

import contextlib
import logging
import uuid
from collections.abc import AsyncGenerator, AsyncIterator
from typing import cast

from aiohttp import web
from modelyard.v1 import inference_pb2 as pb

from core.errors import StatusError
from router.pipeline import Call, RequestPipeline
from router.services.http.call import call_of, json_body, within_deadline
from router.services.http.chat_choices import choices_asked, streamed_choices, whole_choices
from router.services.http.chat_request import chat_request
from router.services.http.chat_response import (
    SSE_DONE,
    AnswerCollector,
    ChunkEncoder,
    answer_body,
)
from router.services.http.errors import http_error
from router.services.http.fields import Json, opt_bool, opt_obj
from router.services.http.routing_hints import request_id, routing_hints

log = logging.getLogger(__name__)
_SSE_HEADERS = {"Content-Type": "text/event-stream", "Cache-Control": "no-cache", "X-Accel-Buffering": "no"}


class ChatHandler:
    def __init__(self, pipeline: RequestPipeline, max_choices: int = 8) -> None:
        self._pipeline = pipeline
        self._max_choices = max_choices

    async def handle(self, http: web.Request) -> web.StreamResponse:
        call = call_of(http)
        body = await json_body(http)
        request = chat_request(body)
        request.routing.CopyFrom(routing_hints(http.headers, body))
        request.request_id = request_id(http.headers, body)
        if (n := choices_asked(body, self._max_choices)) > 1:
            return await self._several(http, body, request, call, n)
        if not opt_bool(body, "stream"):
            request.whole_answer = True  # an upstream that can may answer whole, not as events to rebuild
            return await self._whole(http, request, call)
        options = opt_obj(body, "stream_options") or {}
        include_usage = opt_bool(options, "include_usage", "stream_options.include_usage")
        encoder = ChunkEncoder(request, include_usage=bool(include_usage))
        return await self._stream(http, request, call, encoder)

    async def _several(
        self, http: web.Request, body: Json, request: pb.ChatRequest, call: Call, n: int
    ) -> web.StreamResponse:
        request.request_id = (
            request.request_id or uuid.uuid4().hex
        )  # one id for the answer; -0, -1... per choice
        async with within_deadline(call):
            if not opt_bool(body, "stream"):
                return await whole_choices(self._pipeline, request, call, n)
            options = opt_obj(body, "stream_options") or {}
            include_usage = bool(opt_bool(options, "include_usage", "stream_options.include_usage"))
            return await streamed_choices(http, self._pipeline, request, call, n, include_usage, _SSE_HEADERS)

    async def _stream(
        self, http: web.Request, request: pb.ChatRequest, call: Call, encoder: ChunkEncoder
    ) -> web.StreamResponse:
        response: web.StreamResponse | None = None
        async with contextlib.aclosing(_generator(self._pipeline.chat(request, call))) as events:
            try:
                async with within_deadline(call):
                    async for event in events:
                        if (
                            response is None
                        ):  # headers wait for the first event: an early error keeps its status
                            response = _EventStream(headers=_SSE_HEADERS)
                            await response.prepare(http)
                        if event.WhichOneof("event") == "usage":  # the last event: the body ends with it
                            await response.write_eof(encoder.event(event) + SSE_DONE)
                            await _settle(events)
                            return response
                        await response.write(encoder.event(event))
            except StatusError as e:
                if response is None:
                    raise
                await response.write_eof(http_error(e).sse_event())
                return response
        # The pipeline always ends with usage: a stream without it would be a bug.
        raise AssertionError("chat stream ended without usage")

    async def _whole(self, http: web.Request, request: pb.ChatRequest, call: Call) -> web.StreamResponse:
        collector = AnswerCollector(request)
        async with contextlib.aclosing(_generator(self._pipeline.chat(request, call))) as events:
            async with within_deadline(call):
                async for event in events:
                    collector.add(event)
                    if event.WhichOneof("event") == "usage":  # the last event: the answer is whole
                        break
            response = web.Response(body=answer_body(collector.answer()), content_type="application/json")
            await response.prepare(http)
            await response.write_eof()
            await _settle(events)
        return response


class _EventStream(web.StreamResponse):
    """Its headers go out with the first event, in one send (a StreamResponse sends them at prepare)."""

    _send_headers_immediately = False


async def _settle(events: AsyncGenerator[pb.ChatResponse, None]) -> None:
    """The answer has gone out whole (usage is the pipeline's last event): now let the pipeline end, which
    settles the ticket (ledger record, spend, limits, metrics, cache), releases the placement hold and
    records the backend's success. Sending first takes that work off the time the client waits; none of it
    suspends, so it runs before the loop reads the client's next request or hears it hang up. Whatever
    it raises now is recorded by the ticket as the request's outcome; the client already has its answer,
    and a second response on the connection would corrupt it."""
    try:
        async for event in events:
            log.error("chat: an event after usage (%s), dropped", event.WhichOneof("event"))
    except StatusError as e:
        log.warning("chat: the pipeline failed after the answer was sent: %s", e)
    except Exception:
        log.exception("chat: the pipeline failed after the answer was sent")


def _generator(events: AsyncIterator[pb.ChatResponse]) -> AsyncGenerator[pb.ChatResponse, None]:
    """The pipeline's chat is an async generator; aclosing needs to know it can be closed."""
    return cast(AsyncGenerator[pb.ChatResponse, None], events)
