"""The blocking client, on grpc's own synchronous channel (no event loop hidden underneath).

Requests are built by `_requests` and `_audio`, answers converted by `_convert`, errors by `_errors`; what is
left here is sending them and waiting, as `AsyncClient` awaits them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from types import TracebackType
from typing import Any

import grpc
from modelyard.v1 import inference_pb2 as pb
from modelyard.v1 import router_pb2

from modelyard_client import _audio, _convert, _requests
from modelyard_client._channel import Tls, router_stub, sync_channel
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


class Client(Connection):
    """A connection to a Modelyard router.

    `address` defaults to $MODELYARD_ROUTER, else 127.0.0.1:50051; `api_key` to $MODELYARD_API_KEY
    (pass "" to send none); `timeout` is each call's deadline in seconds, whole stream included.
    """

    def _open(self, tls: Tls | None) -> None:
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

    @parameters_of(_requests.chat_request)
    def chat(self, request: pb.ChatRequest) -> Iterator[ChatEvent]:
        """Stream the answer: `TextDelta`s as they are generated (and
        `ReasoningDelta`s, `ToolCallDelta` fragments: `ToolCalls` assembles them), then one `Usage`.

        Closing the iterator early (break, or an exception in the loop) cancels the call upstream.
        `tool_choice` is "auto", "none", "required" or a tool's name; `response_format` is "text", "json" or
        a JSON Schema; `logprobs=N` returns each token's logprob and its N likeliest alternatives.
        """
        # The request was built at the call, so bad input raised there rather than at first next().
        return self._stream(self._stub.chat, request, _convert.chat_event)

    @parameters_of(_requests.chat_request)
    def chat_text(self, request: pb.ChatRequest) -> ChatResult:
        """The whole answer at once, with its usage. The request says so (ChatRequest.whole_answer): an
        OpenAI-compatible upstream is asked for one whole answer rather than a stream the router would rebuild
        (failover and usage as for a stream)."""
        request.whole_answer = True
        events: Iterator[ChatEvent] = self._stream(self._stub.chat, request, _convert.chat_event)
        result = ResultBuilder()
        for event in events:
            result.add(event)
        return result.result()

    def embed(self, texts: str | Sequence[str], *, model: str, request_id: str | None = None) -> Embeddings:
        request = _requests.embed_request(texts, model, request_id)
        return self._unary(self._stub.embed, request, _convert.embeddings)

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
            requests = _audio.requests(config, stream)
            events: Iterator[TranscribeEvent] = self._stream(
                self._stub.transcribe, requests, _convert.transcribe_event
            )
            yield from events

    def models(self) -> list[ModelInfo]:
        return self._unary(self._stub.list_models, router_pb2.ListModelsRequest(), _convert.models)

    def status(self) -> RouterStatus:
        return self._unary(self._stub.get_status, router_pb2.GetStatusRequest(), _convert.status)

    def usage(self, *, days: int = 1, tenant: str | None = None) -> UsageReport:
        """Calls, tokens, cost and latency percentiles per backend and model over the last `days`.

        `tenant` defaults to the caller's own (every tenant for an admin key or an open router).
        """
        request = _requests.usage_request(days, tenant)
        return self._unary(self._stub.get_usage, request, _convert.usage_report)

    def _unary(
        self, method: grpc.UnaryUnaryMultiCallable[Req, Resp], request: Req, convert: Callable[[Resp], Out]
    ) -> Out:
        try:
            response = method(request, timeout=self.timeout, metadata=self._call_metadata())
        except grpc.RpcError as e:
            raise from_rpc_error(e) from e
        return convert(response)

    def _stream(self, method: Callable[..., Any], request: object, convert: Convert[Out]) -> Iterator[Out]:
        """Started at the first next(); `method` is a unary-stream or stream-stream callable of the stub."""
        call = method(request, timeout=self.timeout, metadata=self._call_metadata())
        try:
            for response in call:
                event = convert(response)
                if event is not None:
                    yield event
        except grpc.RpcError as e:
            raise from_rpc_error(e) from e
        finally:
            call.cancel()  # a no-op once the stream has ended; frees the server's work otherwise
