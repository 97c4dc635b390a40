"""The asyncio client, on grpc.aio."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from types import TracebackType
from typing import Any

import grpc
from modelyard.v1 import accounting_pb2, router_pb2
from modelyard.v1 import inference_pb2 as pb

from modelyard_client import _audio, _convert, _requests
from modelyard_client._aio_status import FirstStatus
from modelyard_client._channel import (
    AsyncRouterStub,
    Tls,
    aio_channel,
    async_router_stub,
    metadata,
    resolve_address,
    resolve_api_key,
)
from modelyard_client._convert import ResultBuilder
from modelyard_client._errors import from_rpc_error
from modelyard_client._requests import Messages
from modelyard_client._tools import Tool
from modelyard_client._trace import with_trace
from modelyard_client._types import (
    ChatEvent,
    ChatResult,
    Embeddings,
    ModelInfo,
    RouterStatus,
    TranscribeEvent,
    UsageReport,
)


class AsyncClient:
    """A connection to a Modelyard router for asyncio code; the same calls as `Client`, awaited.

    `address` defaults to $MODELYARD_ROUTER, else 127.0.0.1:50051; `api_key` to $MODELYARD_API_KEY
    (pass "" to send none); `timeout` is each call's deadline in seconds, whole stream included.
    """

    def __init__(
        self,
        address: str | None = None,
        *,
        api_key: str | None = None,
        timeout: float | None = None,
        tls: Tls | None = None,
    ) -> None:
        self._tls = tls
        self.address = resolve_address(address)
        self.timeout = timeout
        self._metadata = metadata(resolve_api_key(api_key))
        # Opened on first use: a grpc.aio channel binds to the running loop, which __init__ may not have.
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

    def chat(
        self,
        prompt_or_messages: Messages,
        *,
        model: str = "auto",
        system: str | None = None,
        temperature: float | None = None,
        top_p: float | None = None,
        max_tokens: int | None = None,
        stop: str | Sequence[str] | None = None,
        seed: int | None = None,
        provider: str | None = None,
        strategy: str | None = None,
        max_cost_usd: float | None = None,
        task: str | None = None,
        request_id: str | None = None,
        tools: Sequence[Tool | Mapping[str, Any]] | None = None,
        tool_choice: str | None = None,
        parallel_tool_calls: bool | None = None,
        response_format: str | Mapping[str, Any] | None = None,
        logprobs: int | None = None,
        presence_penalty: float | None = None,
        frequency_penalty: float | None = None,
        reasoning_effort: str | None = None,
    ) -> AsyncIterator[ChatEvent]:
        """Stream the answer (`async for`): `TextDelta`s as they are generated (and
        `ReasoningDelta`s, `ToolCallDelta` fragments: `ToolCalls` assembles them), then one `Usage`.

        Cancelling the task, or closing the iterator early, cancels the call upstream. The options are
        those of `Client.chat`.
        """
        request = _requests.chat_request(
            prompt_or_messages,
            model=model,
            system=system,
            temperature=temperature,
            top_p=top_p,
            max_tokens=max_tokens,
            stop=stop,
            seed=seed,
            provider=provider,
            strategy=strategy,
            max_cost_usd=max_cost_usd,
            task=task,
            request_id=request_id,
            tools=tools,
            tool_choice=tool_choice,
            parallel_tool_calls=parallel_tool_calls,
            response_format=response_format,
            logprobs=logprobs,
            presence_penalty=presence_penalty,
            frequency_penalty=frequency_penalty,
            reasoning_effort=reasoning_effort,
        )
        # Built eagerly, so bad input raises at the call rather than at the first iteration.
        return self._chat(request)

    async def _chat(self, request: pb.ChatRequest) -> AsyncIterator[ChatEvent]:
        call = self._stub.chat(request, timeout=self.timeout, metadata=with_trace(self._metadata))
        try:
            async for response in call:
                event = _convert.chat_event(response)
                if event is not None:
                    yield event
        except grpc.RpcError as e:
            raise from_rpc_error(e) from e
        finally:
            call.cancel()  # a no-op once the stream has ended; frees the server's work otherwise

    async def chat_text(
        self,
        prompt_or_messages: Messages,
        *,
        model: str = "auto",
        system: str | None = None,
        temperature: float | None = None,
        top_p: float | None = None,
        max_tokens: int | None = None,
        stop: str | Sequence[str] | None = None,
        seed: int | None = None,
        provider: str | None = None,
        strategy: str | None = None,
        max_cost_usd: float | None = None,
        task: str | None = None,
        request_id: str | None = None,
        tools: Sequence[Tool | Mapping[str, Any]] | None = None,
        tool_choice: str | None = None,
        parallel_tool_calls: bool | None = None,
        response_format: str | Mapping[str, Any] | None = None,
        logprobs: int | None = None,
        presence_penalty: float | None = None,
        frequency_penalty: float | None = None,
        reasoning_effort: str | None = None,
    ) -> ChatResult:
        """The whole answer at once, with its usage. The request says so (ChatRequest.whole_answer): an
        OpenAI-compatible upstream is asked for one whole answer rather than a stream the router would rebuild
        (failover and usage as for a stream)."""
        request = _requests.chat_request(
            prompt_or_messages,
            model=model,
            system=system,
            temperature=temperature,
            top_p=top_p,
            max_tokens=max_tokens,
            stop=stop,
            seed=seed,
            provider=provider,
            strategy=strategy,
            max_cost_usd=max_cost_usd,
            task=task,
            request_id=request_id,
            tools=tools,
            tool_choice=tool_choice,
            parallel_tool_calls=parallel_tool_calls,
            response_format=response_format,
            logprobs=logprobs,
            presence_penalty=presence_penalty,
            frequency_penalty=frequency_penalty,
            reasoning_effort=reasoning_effort,
        )
        request.whole_answer = True
        events = self._chat(request)
        result = ResultBuilder()
        async for event in events:
            result.add(event)
        return result.result()

    async def embed(
        self, texts: str | Sequence[str], *, model: str, request_id: str | None = None
    ) -> Embeddings:
        request = _requests.embed_request(texts, model, request_id)
        try:
            response = await self._stub.embed(
                request, timeout=self.timeout, metadata=with_trace(self._metadata)
            )
        except grpc.RpcError as e:
            raise from_rpc_error(e) from e
        return _convert.embeddings(response)

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
            call = self._stub.transcribe(
                _audio.requests(config, stream), timeout=self.timeout, metadata=with_trace(self._metadata)
            )
            status = FirstStatus(call)
            try:
                async for response in call:
                    event = _convert.transcribe_event(response)
                    if event is not None:
                        yield event
            except grpc.RpcError as e:
                raise from_rpc_error(status.correct(e)) from e
            finally:
                call.cancel()

    async def models(self) -> list[ModelInfo]:
        try:
            response = await self._stub.list_models(
                router_pb2.ListModelsRequest(), timeout=self.timeout, metadata=with_trace(self._metadata)
            )
        except grpc.RpcError as e:
            raise from_rpc_error(e) from e
        return _convert.models(response)

    async def status(self) -> RouterStatus:
        try:
            response = await self._stub.get_status(
                router_pb2.GetStatusRequest(), timeout=self.timeout, metadata=with_trace(self._metadata)
            )
        except grpc.RpcError as e:
            raise from_rpc_error(e) from e
        return _convert.status(response)

    async def usage(self, *, days: int = 1, tenant: str | None = None) -> UsageReport:
        """Calls, tokens, cost and latency percentiles per backend and model over the last `days`.

        `tenant` defaults to the caller's own (every tenant for an admin key or an open router).
        """
        request = accounting_pb2.GetUsageRequest(days=days, tenant=tenant or "")
        try:
            response = await self._stub.get_usage(
                request, timeout=self.timeout, metadata=with_trace(self._metadata)
            )
        except grpc.RpcError as e:
            raise from_rpc_error(e) from e
        return _convert.usage_report(response)
