"""The Router service: the gRPC door to the request pipeline (router.pipeline), plus models and status."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from importlib.metadata import PackageNotFoundError, version
from typing import Any

import grpc
from modelyard.v1 import inference_pb2 as pb
from modelyard.v1 import router_pb2, router_pb2_grpc

from core import wire
from core.errors import InvalidArgument, StatusError
from core.grpc_status import grpc_status
from router.pipeline import Call, RequestPipeline, Upload
from router.routing.backend_status import backend_status, redacted
from router.routing.placement_status import placement_status
from router.routing.state import RoutingState
from router.upload_gate import UploadMeter

Context = grpc.aio.ServicerContext[Any, Any]
_DRAIN_S = 10.0  # how long a refused upload may go on sending before it is cut off


class RouterServicer(router_pb2_grpc.RouterServiceServicer):  # type: ignore[misc]
    def __init__(self, state: RoutingState, pipeline: RequestPipeline) -> None:
        self._state = state
        self._pipeline = pipeline
        self._config = state.config
        self._started = time.monotonic()

    @grpc_status
    async def Chat(self, request: pb.ChatRequest, context: Context) -> AsyncIterator[pb.ChatResponse]:
        async for response in self._pipeline.chat(request, _call(context)):
            yield response

    @grpc_status
    async def Embed(self, request: pb.EmbedRequest, context: Context) -> pb.EmbedResponse:
        return await self._pipeline.embed(request, _call(context))

    @grpc_status
    async def Transcribe(
        self, request_iterator: AsyncIterator[pb.TranscribeRequest], context: Context
    ) -> AsyncIterator[pb.TranscribeResponse]:
        async def upload(meter: UploadMeter) -> Upload:
            return await self._read_transcription(request_iterator, meter)

        try:
            async for response in self._pipeline.transcribe(upload, _call(context)):
                yield response
        except StatusError:
            # A refusal before or during the upload (busy, too large): read what the client is still sending,
            # keeping none of it, so that it sees our status rather than INTERNAL (grpc/grpc#36066).
            await _drain(request_iterator, self._config.input.max_audio_bytes)
            raise

    async def _read_transcription(
        self, requests: AsyncIterator[pb.TranscribeRequest], meter: UploadMeter
    ) -> Upload:
        """Hold the whole upload: the decoder needs all of it, and a retry on another worker needs it too.

        A bad request is answered only after the client has finished sending (within the size limit):
        grpc.aio clients that are still writing when the server ends the call see INTERNAL instead of
        our status (grpc/grpc#36066), and every caller deserves the real reason. The pipeline checks
        the config itself.
        """
        config: pb.TranscribeConfig | None = None
        problem: InvalidArgument | None = None
        chunks: list[bytes] = []
        while (message := await meter.within_idle(anext(requests, None))) is not None:
            if message.HasField("config"):
                if config is not None:
                    problem = problem or InvalidArgument("config: sent twice; send it once, first")
                    continue
                config = message.config
                meter.pcm = config.encoding == pb.AUDIO_ENCODING_PCM_S16LE
            elif config is None:
                problem = problem or InvalidArgument("config: the first message must be the TranscribeConfig")
            meter.take(len(message.audio))  # counted before it is kept; over a limit, refused now
            if problem is None and message.audio:
                chunks.append(message.audio)
        if problem is not None:
            raise problem
        if config is None:
            raise InvalidArgument("config: no TranscribeConfig was sent")
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
        statuses = [backend_status(b, self._state) for b in sorted(registry, key=lambda b: b.id)]
        caller = self._pipeline.caller(_call(context))
        queues = placement_status(self._pipeline.placement, statuses, caller)
        hidden = not caller.admin
        if hidden:
            statuses = [redacted(status) for status in statuses]
        return router_pb2.GetStatusResponse(
            redacted=hidden,
            router_id=self._config.router_id,
            version=_version(),
            uptime=wire.duration_s(time.monotonic() - self._started),
            backends=statuses,
            strategy=wire.strategy(self._state.strategies.default),
            weights=self._state.strategies.weights(),
            queues=queues,
        )


async def _drain(requests: AsyncIterator[pb.TranscribeRequest], max_bytes: int) -> None:
    """Discard the rest of an upload, up to max_bytes more or _DRAIN_S (a client that sends more, or
    never finishes, is cut off)."""
    seen = 0
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(_DRAIN_S):
            async for message in requests:
                seen += len(message.audio)
                if seen > max_bytes:
                    return


def _call(context: Context) -> Call:
    remaining = context.time_remaining()
    deadline = None if remaining is None else time.monotonic() + remaining
    return Call(metadata=tuple(context.invocation_metadata() or ()), deadline=deadline)


def _version() -> str:
    try:
        return version("modelyard")
    except PackageNotFoundError:
        return "dev"
