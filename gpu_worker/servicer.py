"""The Worker gRPC service: validate, admit, run the engine, stream back, account."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import aclosing, contextmanager

import grpc
from modelyard.v1 import inference_pb2 as pb
from modelyard.worker.v1 import worker_pb2, worker_pb2_grpc

from core import logs, tracing, wire
from core.constants import SAMPLE_RATE_HZ
from core.errors import InvalidArgument, StatusError
from core.grpc_status import grpc_status
from core.input_limits import DEFAULT_INPUT_LIMITS
from core.input_size import check_audio_seconds
from core.validation import validate_chat, validate_embed, validate_transcribe_config
from gpu_worker import convert
from gpu_worker.admission import Admission
from gpu_worker.audio import MAX_AUDIO_BYTES, decode_audio_bytes
from gpu_worker.coalesce import coalesced
from gpu_worker.engine_set import EngineSet
from gpu_worker.engines.base import ChatFinished, TranscriptInfo

logger = logging.getLogger(__name__)


class WorkerServicer(worker_pb2_grpc.WorkerServiceServicer):  # type: ignore[misc]  # generated base is untyped
    def __init__(
        self, engines: EngineSet, admission: Admission, worker_id: str, stream_interval_s: float = 0.0
    ) -> None:
        self._engines = engines
        self._admission = admission
        self._worker_id = worker_id
        self._stream_interval_s = stream_interval_s  # 0: every token as it comes (gpu_worker.coalesce)

    @grpc_status
    @tracing.traced_rpc("modelyard.worker/Chat")
    async def Chat(
        self, request: pb.ChatRequest, context: grpc.aio.ServicerContext[pb.ChatRequest, pb.ChatResponse]
    ) -> AsyncIterator[pb.ChatResponse]:
        async for response in self._chat(request, continue_final=False):
            yield response

    @grpc_status
    @tracing.traced_rpc("modelyard.worker/ContinueChat")
    async def ContinueChat(
        self,
        request: worker_pb2.ContinueChatRequest,
        context: grpc.aio.ServicerContext[worker_pb2.ContinueChatRequest, pb.ChatResponse],
    ) -> AsyncIterator[pb.ChatResponse]:
        """An answer another backend began, moved here mid-stream: only what follows its final message."""
        async for response in self._chat(request.request, continue_final=True):
            yield response

    async def _chat(self, request: pb.ChatRequest, continue_final: bool) -> AsyncIterator[pb.ChatResponse]:
        started = time.monotonic()
        logs.bind(request_id=request.request_id, model=request.model, backend=self._worker_id)
        with engine_failures():
            validate_chat(request)
            engine = self._engines.chat_engine(request.model)
            chat = convert.chat_input(request, continue_final)
            async with self._admission.slot():
                ttft_ms = 0.0
                finished = ChatFinished(0, 0, "")
                # aclosing: if our caller goes away while we are suspended at a yield, the engine generator is
                # closed right away (aborting the engine request), not whenever the garbage collector gets to it.
                # coalesced: deltas that queue up while a message is being written (or within the stream
                # interval) go out as one.
                async with aclosing(coalesced(engine.chat(chat), self._stream_interval_s)) as events:
                    async for event in events:
                        if isinstance(event, ChatFinished):
                            finished = event
                            continue
                        if not ttft_ms:
                            ttft_ms = _ms_since(started)
                        yield convert.chat_event(event)
            yield pb.ChatResponse(
                usage=self._usage(
                    request.request_id,
                    engine.model_id,
                    started,
                    ttft_ms=ttft_ms,
                    prompt_tokens=finished.prompt_tokens,
                    completion_tokens=finished.completion_tokens,
                    finish_reason=finished.finish_reason,
                )
            )

    @grpc_status
    @tracing.traced_rpc("modelyard.worker/Embed")
    async def Embed(
        self, request: pb.EmbedRequest, context: grpc.aio.ServicerContext[pb.EmbedRequest, pb.EmbedResponse]
    ) -> pb.EmbedResponse:
        started = time.monotonic()
        logs.bind(request_id=request.request_id, model=request.model, backend=self._worker_id)
        with engine_failures():
            validate_embed(request)
            engine = self._engines.embed_engine(request.model)
            async with self._admission.slot():
                result = await engine.embed(request.request_id, list(request.inputs))
        latency_ms = _ms_since(started)
        return pb.EmbedResponse(
            embeddings=[pb.Embedding(values=vector) for vector in result.vectors],
            usage=self._usage(
                request.request_id,
                engine.model_id,
                started,
                ttft_ms=latency_ms,
                prompt_tokens=result.prompt_tokens,
                finish_reason="stop",
            ),
        )

    @grpc_status
    @tracing.traced_rpc("modelyard.worker/Transcribe")
    async def Transcribe(
        self,
        request_iterator: AsyncIterator[pb.TranscribeRequest],
        context: grpc.aio.ServicerContext[pb.TranscribeRequest, pb.TranscribeResponse],
    ) -> AsyncIterator[pb.TranscribeResponse]:
        started = time.monotonic()
        with engine_failures():
            config = await _read_config(request_iterator)
            logs.bind(request_id=config.request_id, model=config.model, backend=self._worker_id)
            validate_transcribe_config(config)
            engine = self._engines.transcribe_engine(config.model)
            self._admission.check()  # refuse before reading what may be a long upload
            data = await _read_audio(request_iterator)
            audio = await asyncio.to_thread(decode_audio_bytes, data, config.encoding)
            check_audio_seconds(
                len(audio) / SAMPLE_RATE_HZ, DEFAULT_INPUT_LIMITS
            )  # compressed audio can be long
            async with self._admission.slot():
                ttft_ms = 0.0
                duration = len(audio) / SAMPLE_RATE_HZ
                async with aclosing(engine.transcribe(audio, convert.transcribe_options(config))) as events:
                    async for event in events:
                        if isinstance(event, TranscriptInfo):
                            duration = event.duration_seconds
                            yield pb.TranscribeResponse(info=convert.info_message(event))
                        else:
                            if not ttft_ms:
                                ttft_ms = _ms_since(started)
                            yield pb.TranscribeResponse(segment=convert.segment_message(event))
            usage = self._usage(
                config.request_id, engine.model_id, started, ttft_ms=ttft_ms, finish_reason="stop"
            )
            usage.audio_seconds = duration
            yield pb.TranscribeResponse(usage=usage)

    def _usage(
        self,
        request_id: str,
        model: str,
        started: float,
        *,
        ttft_ms: float,
        finish_reason: str,
        prompt_tokens: int = 0,
        completion_tokens: int = 0,
    ) -> pb.Usage:
        latency_ms = _ms_since(started)
        # The request line: request id, model and worker come from the bound fields.
        logger.info(
            "served %s in %.0f ms",
            model,
            latency_ms,
            extra={
                "prompt_tokens": prompt_tokens,
                "completion_tokens": completion_tokens,
                "latency_ms": latency_ms,
            },
        )
        return pb.Usage(
            request_id=request_id,
            backend=self._worker_id,
            model=model,
            prompt_tokens=prompt_tokens,
            completion_tokens=completion_tokens,
            ttft=wire.duration_ms(ttft_ms),
            latency=wire.duration_ms(latency_ms),
            finish_reason=_finish_reason(finish_reason),
        )


def _finish_reason(name: str) -> pb.FinishReason:
    try:
        return wire.finish_reason(name)
    except (
        ValueError
    ):  # an engine's own word (vLLM says "error" on a failed request): the stream was cut short
        return pb.FINISH_REASON_ABORT


async def _read_config(requests: AsyncIterator[pb.TranscribeRequest]) -> pb.TranscribeConfig:
    async for message in requests:
        if message.WhichOneof("msg") != "config":
            raise InvalidArgument("config: the first message must be a TranscribeConfig, before any audio")
        return message.config
    raise InvalidArgument("config: the stream ended before a TranscribeConfig was sent")


async def _read_audio(requests: AsyncIterator[pb.TranscribeRequest]) -> bytes:
    chunks: list[bytes] = []
    size = 0
    async for message in requests:
        if message.WhichOneof("msg") != "audio":
            raise InvalidArgument("config: sent more than once; send it first, then only audio")
        size += len(message.audio)
        if size > MAX_AUDIO_BYTES:
            raise InvalidArgument(f"audio: more than {MAX_AUDIO_BYTES} bytes; split it into several requests")
        chunks.append(message.audio)
    return b"".join(chunks)


class EngineFailed(StatusError):
    """The engine failed on a request it had accepted: our fault, not the caller's."""

    code = grpc.StatusCode.INTERNAL
    reason = "ENGINE_FAILED"


@contextmanager
def engine_failures() -> Iterator[None]:
    """Let StatusError through; anything else an engine raises becomes INTERNAL, logged with its traceback."""
    try:
        yield
    except StatusError:
        raise
    except Exception as error:
        logger.exception("engine failure")
        raise EngineFailed(f"worker engine failed: {type(error).__name__}") from error


def _ms_since(started: float) -> float:
    return (time.monotonic() - started) * 1000.0
