"""The Router service: validate, schedule, relay with failover, account."""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import AsyncIterator, Sequence
from typing import Any

import grpc
from modelyard.v1 import inference_pb2 as pb
from modelyard.v1 import router_pb2, router_pb2_grpc

from core import wire
from core.errors import InvalidArgument, StatusError
from core.validation import validate_chat, validate_embed, validate_transcribe_config
from router.accounting.accountant import Accounting
from router.accounting.budgets import estimate_chat_tokens, estimate_text_tokens
from router.accounting.ticket import Ticket
from router.routing.backend_status import backend_status
from router.routing.failover import Attempt, MidStreamFailure, stream_with_failover
from router.routing.request_facts import for_model, has_images
from router.routing.scheduler import Scheduler
from router.routing.state import RoutingState

log = logging.getLogger(__name__)
Context = grpc.aio.ServicerContext[Any, Any]


class RouterServicer(router_pb2_grpc.RouterServiceServicer):  # type: ignore[misc]
    def __init__(self, state: RoutingState, scheduler: Scheduler, accounting: Accounting) -> None:
        self._state = state
        self._scheduler = scheduler
        self._accounting = accounting
        self._config = state.config
        self._started = time.monotonic()

    async def Chat(self, request: pb.ChatRequest, context: Context) -> AsyncIterator[pb.ChatResponse]:
        with self._accounting.ticket("chat", context, request) as ticket:
            try:
                ticket.authenticate()
                validate_chat(request)
                if not request.request_id:
                    request.request_id = uuid.uuid4().hex
                cached = await ticket.cached_answer()
                if cached is not None:
                    for response in cached:
                        yield response
                    return
                ticket.check_budget(estimate_chat_tokens(request))
                prices = self._state.prices
                candidates = self._scheduler.plan(
                    request.model,
                    pb.CAPABILITY_CHAT,
                    request.routing,
                    estimate_cost=lambda model: prices.estimate_chat_cost(model, request),
                    needs_vision=has_images(request),
                    prefix_keys=lambda: self._state.prefixes.keys(request),
                )
                ticket.check_budget(estimate_chat_tokens(request), candidates[0].estimated_cost_usd)
                attempt = Attempt()
                stream = stream_with_failover(
                    candidates,
                    lambda c, timeout: ticket.upstream(
                        c, c.backend.chat(for_model(request, c.model), timeout)
                    ),
                    self._state,
                    _deadline(context),
                    attempt,
                )
                async for response in stream:
                    if response.HasField("usage"):
                        self._finish_usage(response.usage, request.request_id, attempt)
                    ticket.observe(response)
                    yield response
            except StatusError as e:
                await _abort(context, e, ticket)

    async def Embed(self, request: pb.EmbedRequest, context: Context) -> pb.EmbedResponse:
        with self._accounting.ticket("embed", context, request) as ticket:
            try:
                ticket.authenticate()
                validate_embed(request)
                if not request.request_id:
                    request.request_id = uuid.uuid4().hex
                tokens = estimate_text_tokens(request.inputs)
                ticket.check_budget(tokens)
                prices = self._state.prices
                candidates = self._scheduler.plan(
                    request.model,
                    pb.CAPABILITY_EMBED,
                    request.routing,
                    estimate_cost=lambda model: prices.cost(model, tokens, 0, 0.0),
                )
                ticket.check_budget(tokens, candidates[0].estimated_cost_usd)
                attempt = Attempt()
                async for response in stream_with_failover(
                    candidates,
                    lambda c, timeout: ticket.upstream(
                        c, _single(c.backend.embed(for_model(request, c.model), timeout))
                    ),
                    self._state,
                    _deadline(context),
                    attempt,
                ):
                    self._finish_usage(response.usage, request.request_id, attempt)
                    ticket.observe(response)
                    return response
            except StatusError as e:
                await _abort(context, e, ticket)
        raise AssertionError("unreachable: failover yields or raises")

    async def Transcribe(
        self, request_iterator: AsyncIterator[pb.TranscribeRequest], context: Context
    ) -> AsyncIterator[pb.TranscribeResponse]:
        with self._accounting.ticket("transcribe", context, pb.TranscribeConfig()) as ticket:
            try:
                ticket.authenticate()
                config, audio = await self._read_transcription(request_iterator)
                ticket.request = config
                if not config.request_id:
                    config.request_id = uuid.uuid4().hex
                ticket.check_budget(0)
                candidates = self._scheduler.plan(config.model, pb.CAPABILITY_TRANSCRIBE, config.routing)
                attempt = Attempt()
                async for response in stream_with_failover(
                    candidates,
                    lambda c, timeout: ticket.upstream(
                        c, c.backend.transcribe(for_model(config, c.model), audio, timeout)
                    ),
                    self._state,
                    _deadline(context),
                    attempt,
                ):
                    if response.HasField("usage"):
                        self._finish_usage(response.usage, config.request_id, attempt)
                    ticket.observe(response)
                    yield response
            except StatusError as e:
                await _abort(context, e, ticket)

    def _finish_usage(self, usage: pb.Usage, request_id: str, attempt: Attempt) -> None:
        """The router's view wins for who served, what it cost and how long it took, retries included."""
        usage.request_id = request_id
        if attempt.chosen is not None:
            usage.backend = attempt.chosen.backend.id
            usage.model = usage.model or attempt.chosen.model
        usage.cost_usd = self._state.prices.cost(
            attempt.chosen.model if attempt.chosen else usage.model,
            usage.prompt_tokens,
            usage.completion_tokens,
            usage.audio_seconds,
        )
        if attempt.ttft_ms is not None:
            usage.ttft.CopyFrom(wire.duration_ms(attempt.ttft_ms))
        usage.latency.CopyFrom(wire.duration_ms((time.perf_counter() - attempt.started_at) * 1000))

    async def _read_transcription(
        self, requests: AsyncIterator[pb.TranscribeRequest]
    ) -> tuple[pb.TranscribeConfig, Sequence[bytes]]:
        """Hold the whole upload: the decoder needs all of it, and a retry on another worker needs it too.

        A bad request is answered only after the client has finished sending (within the size limit):
        grpc.aio clients that are still writing when the server ends the call see INTERNAL instead of
        our status (grpc/grpc#36066), and every caller deserves the real reason.
        """
        config: pb.TranscribeConfig | None = None
        problem: InvalidArgument | None = None
        chunks: list[bytes] = []
        size = 0
        async for message in requests:
            if message.HasField("config"):
                if config is not None:
                    problem = problem or InvalidArgument("config: sent twice; send it once, first")
                    continue
                config = message.config
                try:
                    validate_transcribe_config(config)
                except InvalidArgument as e:
                    problem = problem or e
            elif config is None:
                problem = problem or InvalidArgument("config: the first message must be the TranscribeConfig")
            size += len(message.audio)
            if size > self._config.max_audio_bytes:
                raise InvalidArgument(f"audio: larger than the {self._config.max_audio_bytes} byte limit")
            if problem is None and message.audio:
                chunks.append(message.audio)
        if problem is not None:
            raise problem
        if config is None:
            raise InvalidArgument("config: no TranscribeConfig was sent")
        if size == 0:
            raise InvalidArgument("audio: no audio bytes were sent")
        return config, chunks

    async def ListModels(
        self, request: router_pb2.ListModelsRequest, context: Context
    ) -> router_pb2.ListModelsResponse:
        registry = self._state.registry
        models = [
            router_pb2.ModelInfo(
                id=model,
                capabilities=sorted(by_capability),
                backends=sorted({b for ids in by_capability.values() for b in ids}),
            )
            for model, by_capability in sorted(registry.models().items())
        ]
        return router_pb2.ListModelsResponse(models=models)

    async def GetStatus(
        self, request: router_pb2.GetStatusRequest, context: Context
    ) -> router_pb2.GetStatusResponse:
        registry = self._state.registry
        return router_pb2.GetStatusResponse(
            router_id=self._config.router_id,
            version=_version(),
            uptime=wire.duration_s(time.monotonic() - self._started),
            backends=[backend_status(b, self._state) for b in sorted(registry, key=lambda b: b.id)],
            strategy=wire.strategy(self._state.strategies.default),
            weights=self._state.strategies.weights(),
        )


def _deadline(context: Context) -> float | None:
    remaining = context.time_remaining()
    return None if remaining is None else time.monotonic() + remaining


async def _single(awaitable: object) -> AsyncIterator[pb.EmbedResponse]:
    yield await awaitable  # type: ignore[misc]


async def _abort(context: Context, error: StatusError, ticket: Ticket) -> None:
    ticket.fail(error)
    if isinstance(error, MidStreamFailure):
        context.set_trailing_metadata((("modelyard-messages-sent", str(error.items_sent)),))
    await context.abort(error.code, error.message)


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("modelyard")
    except PackageNotFoundError:
        return "dev"
