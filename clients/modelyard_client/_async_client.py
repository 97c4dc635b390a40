"""The asyncio client, on grpc.aio.

Requests are built by `_requests` and `_audio`, answers converted by `_convert`, errors by `_errors`; what is
left here is sending them and awaiting the answers, as `Client` waits for them.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterator, Callable, Sequence
from contextlib import aclosing
from types import TracebackType
from typing import Any

import grpc
from modelyard.v1 import inference_pb2 as pb
from modelyard.v1 import router_pb2

from modelyard_client import _audio, _convert, _requests
from modelyard_client._aio_status import FirstStatus
from modelyard_client._channel import AsyncRouterStub, Tls, aio_channel, async_router_stub
from modelyard_client._connection import Connection, Out, Req, Resp
from modelyard_client._convert import Convert, ResultBuilder
from modelyard_client._errors import from_rpc_error
from modelyard_client._parameters import parameters_of
from modelyard_client._types import (
    ChatEvent,
    ChatResult,
    Embeddings,
    ModelInfo,
    RouterStatus,
    TranscribeEvent,
    UsageReport,
)


class AsyncClient(Connection):
    """A connection to a Modelyard router for asyncio code; the same calls as `Client`, awaited.

    `address` defaults to $MODELYARD_ROUTER, else 127.0.0.1:50051; `api_key` to $MODELYARD_API_KEY
    (pass "" to send none); `timeout` is each call's deadline in seconds, whole stream included.
    """

    def _open(self, tls: Tls | None) -> None:
        # Opened on first use: a grpc.aio channel binds to the running loop, which __init__ may not have.
        self._tls = tls
        self._channel: grpc.aio.Channel | None = None
        self._stub_cache: AsyncRouterStub | None = None

    @property
    def _stub(self) -> AsyncRouterStub:
        if self._stub_cache is None:
            self._channel = aio_channel(self.address, self._tls)
            self._stub_cache = async_router_stub(self._channel)
        return self._stub_cache

    async def close(self) -> None:
        if self._channel is not None:
            await self._channel.close()
            self._channel, self._stub_cache = None, None

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    @parameters_of(_requests.chat_request)
    def chat(self, request: pb.ChatRequest) -> AsyncIterator[ChatEvent]:
        """Stream the answer (`async for`): `TextDelta`s as they are generated (and
        `ReasoningDelta`s, `ToolCallDelta` fragments: `ToolCalls` assembles them), then one `Usage`.

        Cancelling the task, or closing the iterator early, cancels the call upstream. The options are
        those of `Client.chat`.
        """
        # Built at the call, so bad input raised there rather than at the first iteration.
        return self._stream(self._stub.chat, request, _convert.chat_event)

    @parameters_of(_requests.chat_request)
    async def chat_text(self, request: pb.ChatRequest) -> ChatResult:
        """The whole answer at once, with its usage. The request says so (ChatRequest.whole_answer): an
        OpenAI-compatible upstream is asked for one whole answer rather than a stream the router would rebuild
        (failover and usage as for a stream)."""
        request.whole_answer = True
        events: AsyncIterator[ChatEvent] = self._stream(self._stub.chat, request, _convert.chat_event)
        result = ResultBuilder()
        async for event in events:
            result.add(event)
        return result.result()

    async def embed(
        self, texts: str | Sequence[str], *, model: str, request_id: str | None = None
    ) -> Embeddings:
        request = _requests.embed_request(texts, model, request_id)
        return await self._unary(self._stub.embed, request, _convert.embeddings)

    async def transcribe(
        self,
        audio: _audio.AudioSource,
        *,
        model: str = "whisper-tiny.en",
        language: str | None = None,
        word_timestamps: bool = False,
        prompt: str | None = None,
        request_id: str | None = None,
    ) -> AsyncIterator[TranscribeEvent]:
        """Send an audio file (path, bytes or binary file) and stream back info, segments, then usage."""
        config = _audio.config(model, language, word_timestamps, prompt, request_id)
        # Reads of a local file between chunk writes are short; grpc.aio awaits each write in between.
        with _audio.open_audio(audio) as stream:
            requests = _audio.requests(config, stream)
            events: AsyncGenerator[TranscribeEvent, None] = self._stream(
                self._stub.transcribe, requests, _convert.transcribe_event
            )
            # aclosing: leaving this loop early ends the call now, not when the inner generator is collected.
            async with aclosing(events):
                async for event in events:
                    yield event

    async def models(self) -> list[ModelInfo]:
        return await self._unary(self._stub.list_models, router_pb2.ListModelsRequest(), _convert.models)

    async def status(self) -> RouterStatus:
        return await self._unary(self._stub.get_status, router_pb2.GetStatusRequest(), _convert.status)

    async def usage(self, *, days: int = 1, tenant: str | None = None) -> UsageReport:
        """Calls, tokens, cost and latency percentiles per backend and model over the last `days`.

        `tenant` defaults to the caller's own (every tenant for an admin key or an open router).
        """
        request = _requests.usage_request(days, tenant)
        return await self._unary(self._stub.get_usage, request, _convert.usage_report)

    async def _unary(
        self,
        method: grpc.aio.UnaryUnaryMultiCallable[Req, Resp],
        request: Req,
        convert: Callable[[Resp], Out],
    ) -> Out:
        try:
            response = await method(request, timeout=self.timeout, metadata=self._call_metadata())
        except grpc.RpcError as e:
            raise from_rpc_error(e) from e
        return convert(response)

    async def _stream(
        self, method: Callable[..., Any], request: object, convert: Convert[Out]
    ) -> AsyncGenerator[Out, None]:
        """Started at the first iteration; `method` is a unary-stream or stream-stream callable of the stub."""
        call = method(request, timeout=self.timeout, metadata=self._call_metadata())
        # Kept for every stream; it matters where the client writes while the server may end (_aio_status).
        status = FirstStatus(call)
        try:
            async for response in call:
                event = convert(response)
                if event is not None:
                    yield event
        except grpc.RpcError as e:
            raise from_rpc_error(status.correct(e)) from e
        finally:
            call.cancel()  # a no-op once the stream has ended; frees the server's work otherwise
