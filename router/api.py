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

from router.config import RouterConfig
from router.errors import InvalidArgument, RouterError
from router.failover import Attempt, MidStreamFailure, stream_with_failover
from router.registry import BackendRegistry
from router.scheduler import Scheduler
from router.status import backend_status
from router.validation import validate_chat, validate_embed, validate_transcribe_config

log = logging.getLogger(__name__)
Context = grpc.aio.ServicerContext[Any, Any]


class RouterServicer(router_pb2_grpc.RouterServicer):  # type: ignore[misc]
    def __init__(self, registry: BackendRegistry, scheduler: Scheduler, config: RouterConfig) -> None:
        self._registry = registry
        self._scheduler = scheduler
        self._config = config
        self._started = time.monotonic()

    async def Chat(self, request: pb.ChatRequest, context: Context) -> AsyncIterator[pb.ChatResponse]:
        try:
            validate_chat(request)
            if not request.request_id:
                request.request_id = uuid.uuid4().hex
            candidates = self._scheduler.candidates(request.model, pb.CAPABILITY_CHAT, request.routing)
            attempt = Attempt()
            stream = stream_with_failover(
                candidates,
                lambda backend, timeout: backend.chat(request, timeout),
                self._config.retry,
                _deadline(context),
                attempt,
            )
            async for response in stream:
                if response.HasField("usage"):
                    _finish_usage(response.usage, request.request_id, attempt)
                yield response
        except RouterError as e:
            await _abort(context, e)

    async def Embed(self, request: pb.EmbedRequest, context: Context) -> pb.EmbedResponse:
        try:
            validate_embed(request)
            if not request.request_id:
                request.request_id = uuid.uuid4().hex
            candidates = self._scheduler.candidates(request.model, pb.CAPABILITY_EMBED, request.routing)
            attempt = Attempt()
            async for response in stream_with_failover(
                candidates,
                lambda backend, timeout: _single(backend.embed(request, timeout)),
                self._config.retry,
                _deadline(context),
                attempt,
            ):
                _finish_usage(response.usage, request.request_id, attempt)
                return response
        except RouterError as e:
            await _abort(context, e)
        raise AssertionError("unreachable: failover yields or raises")

    async def Transcribe(
        self, request_iterator: AsyncIterator[pb.TranscribeRequest], context: Context
    ) -> AsyncIterator[pb.TranscribeResponse]:
        try:
            config, audio = await self._read_transcription(request_iterator)
            if not config.request_id:
                config.request_id = uuid.uuid4().hex
            candidates = self._scheduler.candidates(config.model, pb.CAPABILITY_TRANSCRIBE, config.routing)
            attempt = Attempt()
            async for response in stream_with_failover(
                candidates,
                lambda backend, timeout: backend.transcribe(config, audio, timeout),
                self._config.retry,
                _deadline(context),
                attempt,
            ):
                if response.HasField("usage"):
                    _finish_usage(response.usage, config.request_id, attempt)
                yield response
        except RouterError as e:
            await _abort(context, e)

    async def _read_transcription(
        self, requests: AsyncIterator[pb.TranscribeRequest]
    ) -> tuple[pb.TranscribeConfig, Sequence[bytes]]:
        """Hold the whole upload: the decoder needs all of it, and a retry on another worker needs it too."""
        config: pb.TranscribeConfig | None = None
        chunks: list[bytes] = []
        size = 0
        async for message in requests:
            if message.HasField("config"):
                if config is not None:
                    raise InvalidArgument("config: sent twice; send it once, first")
                config = message.config
                validate_transcribe_config(config)
            elif config is None:
                raise InvalidArgument("config: the first message must be the TranscribeConfig")
            else:
                size += len(message.audio)
                if size > self._config.max_audio_bytes:
                    raise InvalidArgument(f"audio: larger than the {self._config.max_audio_bytes} byte limit")
                chunks.append(message.audio)
        if config is None:
            raise InvalidArgument("config: no TranscribeConfig was sent")
        if size == 0:
            raise InvalidArgument("audio: no audio bytes were sent")
        return config, chunks

    async def ListModels(
        self, request: router_pb2.ListModelsRequest, context: Context
    ) -> router_pb2.ListModelsResponse:
        models = [
            router_pb2.ModelInfo(
                id=model,
                capabilities=sorted(by_capability),
                backends=sorted({b for ids in by_capability.values() for b in ids}),
            )
            for model, by_capability in sorted(self._registry.models().items())
        ]
        return router_pb2.ListModelsResponse(models=models)

    async def GetStatus(
        self, request: router_pb2.GetStatusRequest, context: Context
    ) -> router_pb2.GetStatusResponse:
        return router_pb2.GetStatusResponse(
            router_id=self._config.router_id,
            version=_version(),
            uptime_seconds=time.monotonic() - self._started,
            backends=[backend_status(b) for b in sorted(self._registry, key=lambda b: b.id)],
        )


def _deadline(context: Context) -> float | None:
    remaining = context.time_remaining()
    return None if remaining is None else time.monotonic() + remaining


async def _single(awaitable: object) -> AsyncIterator[pb.EmbedResponse]:
    yield await awaitable  # type: ignore[misc]


def _finish_usage(usage: pb.Usage, request_id: str, attempt: Attempt) -> None:
    """The router's view wins for who served and how long it took, retries included."""
    now = time.perf_counter()
    usage.request_id = request_id
    if attempt.backend is not None:
        usage.backend = attempt.backend.id
    if attempt.first_item_at is not None:
        usage.ttft_ms = (attempt.first_item_at - attempt.started_at) * 1000
    usage.latency_ms = (now - attempt.started_at) * 1000


async def _abort(context: Context, error: RouterError) -> None:
    if isinstance(error, MidStreamFailure):
        context.set_trailing_metadata((("modelyard-messages-sent", str(error.items_sent)),))
    await context.abort(error.code, error.message)


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("modelyard")
    except PackageNotFoundError:
        return "dev"
