"""The blocking client, on grpc's own synchronous channel (no event loop hidden underneath)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from types import TracebackType
from typing import Any

import grpc
from modelyard.v1 import accounting_pb2, router_pb2
from modelyard.v1 import inference_pb2 as pb

from modelyard_client import _audio, _convert, _requests
from modelyard_client._channel import (
    Tls,
    metadata,
    resolve_address,
    resolve_api_key,
    router_stub,
    sync_channel,
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


class Client:
    """A connection to a Modelyard router.

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
        self.address = resolve_address(address)
        self.timeout = timeout
        self._metadata = metadata(resolve_api_key(api_key))
        self._channel = sync_channel(self.address, tls)
        self._stub = router_stub(self._channel)

    def close(self) -> None:
        self._channel.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

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
    ) -> Iterator[ChatEvent]:
        """Stream the answer: `TextDelta`s as they are generated (and
        `ReasoningDelta`s, `ToolCallDelta` fragments: `ToolCalls` assembles them), then one `Usage`.

        Closing the iterator early (break, or an exception in the loop) cancels the call upstream.
        `tool_choice` is "auto", "none", "required" or a tool's name; `response_format` is "text", "json" or
        a JSON Schema; `logprobs=N` returns each token's logprob and its N likeliest alternatives.
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
        # The request is built here, eagerly, so bad input raises at the call rather than at first next().
        return self._chat(request)

    def _chat(self, request: pb.ChatRequest) -> Iterator[ChatEvent]:
        call = self._stub.chat(request, timeout=self.timeout, metadata=with_trace(self._metadata))
        try:
            for response in call:
                event = _convert.chat_event(response)
                if event is not None:
                    yield event
        except grpc.RpcError as e:
            raise from_rpc_error(e) from e
        finally:
            call.cancel()  # a no-op once the stream has ended; frees the server's work otherwise

    def chat_text(
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
        for event in events:
            result.add(event)
        return result.result()

    def embed(self, texts: str | Sequence[str], *, model: str, request_id: str | None = None) -> Embeddings:
        request = _requests.embed_request(texts, model, request_id)
        try:
            response = self._stub.embed(request, timeout=self.timeout, metadata=with_trace(self._metadata))
        except grpc.RpcError as e:
            raise from_rpc_error(e) from e
        return _convert.embeddings(response)

    def transcribe(
        self,
        audio: _audio.AudioSource,
        *,
        model: str = "whisper-tiny.en",
        language: str | None = None,
        word_timestamps: bool = False,
        prompt: str | None = None,
        request_id: str | None = None,
    ) -> Iterator[TranscribeEvent]:
        """Send an audio file (path, bytes or binary file) and stream back info, segments, then usage."""
        config = _audio.config(model, language, word_timestamps, prompt, request_id)
        with _audio.open_audio(audio) as stream:
            call = self._stub.transcribe(
                _audio.requests(config, stream), timeout=self.timeout, metadata=with_trace(self._metadata)
            )
            try:
                for response in call:
                    event = _convert.transcribe_event(response)
                    if event is not None:
                        yield event
            except grpc.RpcError as e:
                raise from_rpc_error(e) from e
            finally:
                call.cancel()

    def models(self) -> list[ModelInfo]:
        try:
            response = self._stub.list_models(
                router_pb2.ListModelsRequest(), timeout=self.timeout, metadata=with_trace(self._metadata)
            )
        except grpc.RpcError as e:
            raise from_rpc_error(e) from e
        return _convert.models(response)

    def status(self) -> RouterStatus:
        try:
            response = self._stub.get_status(
                router_pb2.GetStatusRequest(), timeout=self.timeout, metadata=with_trace(self._metadata)
            )
        except grpc.RpcError as e:
            raise from_rpc_error(e) from e
        return _convert.status(response)

    def usage(self, *, days: int = 1, tenant: str | None = None) -> UsageReport:
        """Calls, tokens, cost and latency percentiles per backend and model over the last `days`.

        `tenant` defaults to the caller's own (every tenant for an admin key or an open router).
        """
        request = accounting_pb2.GetUsageRequest(days=days, tenant=tenant or "")
        try:
            response = self._stub.get_usage(
                request, timeout=self.timeout, metadata=with_trace(self._metadata)
            )
        except grpc.RpcError as e:
            raise from_rpc_error(e) from e
        return _convert.usage_report(response)
