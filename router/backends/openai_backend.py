"""OpenAI and every OpenAI-compatible API (DeepSeek, Gemini's OpenAI surface, vLLM, Ollama): chat on a thin
aiohttp client (router.backends.openai_chat_client), streamed, or whole when the caller reads only the whole
answer (ChatRequest.whole_answer); the rest on the official SDK."""

from __future__ import annotations

import asyncio
import contextlib
import math
from collections.abc import AsyncIterator, Sequence
from typing import Any, Literal

import grpc
import openai
from modelyard.v1 import inference_pb2 as pb
from openai import AsyncOpenAI, omit

from core import tracing
from router.accounting.pricing import CHARS_PER_TOKEN, estimate_prompt_tokens
from router.backends.base import BackendError
from router.backends.cloud import (
    HEALTH_TIMEOUT_S,
    NO_API_KEY,
    CloudBackend,
    probe_answer_healthy,
    proto_float,
)
from router.backends.cloud_errors import (
    broken_stream,
    connection_error,
    error_body_message,
    http_status_error,
    retry_after_seconds,
)
from router.backends.coalesce import joined
from router.backends.openai_chat_client import ChatCompletionsClient
from router.backends.openai_convert import (
    audio_file,
    chat_messages,
    plain_transcription_events,
    transcription_events,
    wav_duration,
)
from router.backends.openai_options import chat_options, choice_events, plain_text
from router.config.settings import ProviderConfig

# OpenAI's own API wants max_completion_tokens (its reasoning models refuse max_tokens); most
# compatible servers only know max_tokens. The preset says which one a kind speaks.
MaxTokensParam = Literal["max_completion_tokens", "max_tokens"]

# OpenAI's GPT-4o transcription models answer only in plain `json` (text, no segments or timings);
# they refuse verbose_json with a 400.
JSON_ONLY_TRANSCRIBE_MODELS = frozenset({"gpt-4o-transcribe", "gpt-4o-mini-transcribe"})

# OpenAI's finish reasons as the API's enum.
_FINISH_REASONS = {
    "stop": pb.FINISH_REASON_STOP,
    "length": pb.FINISH_REASON_LENGTH,
    "tool_calls": pb.FINISH_REASON_TOOL_CALLS,
    "function_call": pb.FINISH_REASON_TOOL_CALLS,
    "content_filter": pb.FINISH_REASON_CONTENT_FILTER,
}


class OpenAIBackend(CloudBackend):
    fetches_whole = True  # a chat with whole_answer is asked for whole (_whole)

    def __init__(
        self,
        config: ProviderConfig,
        *,
        max_tokens_param: MaxTokensParam = "max_completion_tokens",
    ) -> None:
        super().__init__(config)
        self.max_tokens_param: MaxTokensParam = max_tokens_param
        # No SDK retries: the router retries on another candidate, within the caller's deadline.
        self._client = AsyncOpenAI(
            api_key=config.api_key or NO_API_KEY,
            base_url=config.base_url,
            max_retries=0,
            timeout=config.timeout_s,
        )
        # Streamed chat, the hot path, on a thin client (router.backends.openai_chat_client says why).
        self._chat = ChatCompletionsClient(
            self.id,
            str(self._client.base_url),
            config.api_key or NO_API_KEY,
            config.max_concurrency,
            max_header_bytes=config.max_response_header_bytes,
        )

    @property
    def base_url(self) -> str:
        return str(self._client.base_url)

    async def chat(self, request: pb.ChatRequest, timeout: float | None) -> AsyncIterator[pb.ChatResponse]:
        self.check_images(request)
        try:
            messages = chat_messages(request)
            options = chat_options(request)
        except ValueError as e:
            raise self.invalid(str(e)) from e
        sampling = request.sampling
        max_tokens = sampling.max_tokens if sampling.HasField("max_tokens") else None
        budget = self.request_timeout(timeout)
        body: dict[str, Any] = {"model": request.model, "messages": messages, **options}
        if sampling.HasField("temperature"):
            body["temperature"] = proto_float(sampling.temperature)
        if sampling.HasField("top_p"):
            body["top_p"] = proto_float(sampling.top_p)
        if max_tokens is not None:
            body[self.max_tokens_param] = max_tokens
        if sampling.stop:
            body["stop"] = list(sampling.stop)
        if sampling.HasField("seed"):
            body["seed"] = sampling.seed
        if request.whole_answer:
            # The caller reads only the whole answer: ask for it whole, not as events to rebuild it from.
            for event in await self._whole(request, body, budget):
                yield event
            return
        body["stream"] = True
        body["stream_options"] = {"include_usage": True}
        loop = asyncio.get_running_loop()
        # The client's timeout bounds each read, not the whole answer; the deadline is checked per chunk.
        deadline = loop.time() + budget
        model, finish, chars = request.model, "", 0
        usage: dict[str, Any] | None = None
        try:
            # Leaving this block, however it happens (the client went away, an error), closes the HTTP
            # response now, which ends the upstream generation.
            batches = self._chat.stream(body, budget, tracing.outgoing_headers() or None)
            async with contextlib.aclosing(batches):
                async for batch in batches:
                    if loop.time() > deadline:
                        raise BackendError(
                            f"provider {self.id}: no complete answer within {budget:.1f}s",
                            retryable=True,
                            status=grpc.StatusCode.DEADLINE_EXCEEDED,
                        )
                    events: list[pb.ChatResponse] = []
                    texts: list[str] = []  # a run of text-only chunks, made one event when the run ends
                    for chunk in batch:
                        if not isinstance(chunk, dict):
                            raise ValueError(f"a chunk that is not an object: {str(chunk)[:80]}")
                        model = chunk.get("model") or model
                        usage = chunk.get("usage") or usage
                        for choice in chunk.get("choices") or ():
                            if choice.get("index", 0) != 0:
                                continue
                            finish = choice.get("finish_reason") or finish
                            text = plain_text(choice)
                            if text is not None:
                                if text:
                                    texts.append(text)
                                continue
                            if texts:
                                events.append(pb.ChatResponse(delta=pb.ChatDelta(text="".join(texts))))
                                texts = []
                            events.extend(choice_events(choice))
                    if texts:
                        events.append(pb.ChatResponse(delta=pb.ChatDelta(text="".join(texts))))
                    # Chunks that arrived together while we were busy go on as one message each kind.
                    for event in joined(events):
                        chars += _chars(event)
                        yield event
        except ValueError as e:  # a data: line that is not JSON
            raise broken_stream(self.id, f"malformed event: {e}", secret=self.config.api_key) from e
        if not finish:
            raise broken_stream(self.id, "the stream ended before the answer did", secret=self.config.api_key)
        yield pb.ChatResponse(usage=self._chat_usage(request, model, finish, usage, chars))

    async def _whole(
        self, request: pb.ChatRequest, body: dict[str, Any], budget: float
    ) -> list[pb.ChatResponse]:
        """The answer fetched whole, as the events a stream of it would join into (reasoning, text with its
        logprobs, each tool call), then its usage: failures, usage and cost as the streamed path has them."""
        try:
            answer = await self._chat.complete(body, budget, tracing.outgoing_headers() or None)
            if not isinstance(answer, dict):
                raise ValueError(f"an answer that is not an object: {str(answer)[:80]}")
            choice = next((c for c in answer.get("choices") or () if c.get("index", 0) == 0), None)
            if choice is None:
                raise ValueError("no choice in the answer")
            finish = choice.get("finish_reason")
            if not finish or not isinstance(finish, str):
                raise ValueError("the answer's choice has no finish_reason")
            message = choice.get("message") or {}
            # A whole message lists its calls without the index each fragment of a streamed one carries.
            calls = [{**call, "index": i} for i, call in enumerate(message.get("tool_calls") or ())]
            events = list(
                choice_events({"delta": {**message, "tool_calls": calls}, "logprobs": choice.get("logprobs")})
            )
        except (ValueError, TypeError, KeyError, AttributeError) as e:  # not the shape OpenAI's answers have
            raise broken_stream(self.id, f"malformed answer: {e}", secret=self.config.api_key) from e
        chars = sum(_chars(event) for event in events)
        model = answer.get("model") or request.model
        usage = answer.get("usage")
        usage = usage if isinstance(usage, dict) else None  # none reported: estimated, as for a stream
        events.append(pb.ChatResponse(usage=self._chat_usage(request, model, finish, usage, chars)))
        return events

    def _chat_usage(
        self, request: pb.ChatRequest, model: str, finish: str, usage: dict[str, Any] | None, chars: int
    ) -> pb.Usage:
        """`usage` is the stream's usage object as sent (OpenAI's CompletionUsage fields)."""
        if usage is None:
            # A compatible server that ignores stream_options: estimate rather than bill nothing.
            prompt, completion = estimate_prompt_tokens(request), math.ceil(chars / CHARS_PER_TOKEN)
        else:
            prompt, completion = (
                int(usage.get("prompt_tokens") or 0),
                int(usage.get("completion_tokens") or 0),
            )
        details = (usage or {}).get("completion_tokens_details") or {}
        return pb.Usage(
            reasoning_tokens=int(details.get("reasoning_tokens") or 0),
            request_id=request.request_id,
            backend=self.id,
            model=model,
            prompt_tokens=prompt,
            completion_tokens=completion,
            finish_reason=_FINISH_REASONS.get(finish, pb.FINISH_REASON_STOP),
        )

    async def embed(self, request: pb.EmbedRequest, timeout: float | None) -> pb.EmbedResponse:
        try:
            result = await self._client.embeddings.create(
                extra_headers=tracing.outgoing_headers(),
                model=request.model,
                input=list(request.inputs),
                encoding_format="float",
                timeout=self.request_timeout(timeout),
            )
        except openai.OpenAIError as e:
            raise self._error(e) from e
        except ValueError as e:
            raise broken_stream(self.id, f"malformed answer: {e}", secret=self.config.api_key) from e
        data = sorted(result.data, key=lambda item: item.index)
        if len(data) != len(request.inputs):
            raise broken_stream(
                self.id,
                f"{len(data)} embeddings came back for {len(request.inputs)} inputs",
                secret=self.config.api_key,
            )
        prompt = result.usage.prompt_tokens
        return pb.EmbedResponse(
            embeddings=[pb.Embedding(values=item.embedding) for item in data],
            usage=pb.Usage(
                request_id=request.request_id,
                backend=self.id,
                model=result.model or request.model,
                prompt_tokens=prompt,
            ),
        )

    async def transcribe(
        self, config: pb.TranscribeConfig, audio: Sequence[bytes], timeout: float | None
    ) -> AsyncIterator[pb.TranscribeResponse]:
        filename, data, mime_type = audio_file(config, audio)
        budget = self.request_timeout(timeout)
        try:
            if config.model in JSON_ONLY_TRANSCRIBE_MODELS:
                plain = await self._client.audio.transcriptions.create(
                    extra_headers=tracing.outgoing_headers(),
                    file=(filename, data, mime_type),
                    model=config.model,
                    response_format="json",
                    language=config.language or omit,
                    prompt=config.prompt or omit,
                    timeout=budget,
                )
                events = plain_transcription_events(plain, config, wav_duration(data))
            else:
                verbose = await self._client.audio.transcriptions.create(
                    extra_headers=tracing.outgoing_headers(),
                    file=(filename, data, mime_type),
                    model=config.model,
                    response_format="verbose_json",
                    language=config.language or omit,
                    prompt=config.prompt or omit,
                    timestamp_granularities=["word", "segment"] if config.word_timestamps else omit,
                    timeout=budget,
                )
                events = transcription_events(verbose)
        except openai.OpenAIError as e:
            raise self._error(e) from e
        except ValueError as e:
            raise broken_stream(self.id, f"malformed answer: {e}", secret=self.config.api_key) from e
        for event in events:
            yield event
        seconds = events[0].info.duration_seconds
        yield pb.TranscribeResponse(
            usage=pb.Usage(
                request_id=config.request_id,
                backend=self.id,
                model=config.model,
                audio_seconds=seconds,
                finish_reason=pb.FINISH_REASON_STOP,
            )
        )

    async def health_check(self) -> bool:
        try:
            await self._client.models.list(timeout=HEALTH_TIMEOUT_S)
        except openai.APIStatusError as e:
            return probe_answer_healthy(e.status_code)
        except openai.OpenAIError:
            return False
        return True

    async def close(self) -> None:
        await self._chat.close()
        await self._client.close()

    def _error(self, error: openai.OpenAIError) -> BackendError:
        return openai_error(self.id, error, secret=self.config.api_key)


def openai_error(provider: str, error: openai.OpenAIError, *, secret: str) -> BackendError:
    """The one place an OpenAI SDK exception becomes a BackendError."""
    if isinstance(error, openai.APITimeoutError):
        return connection_error(provider, error.message, secret=secret, timed_out=True)
    if isinstance(error, openai.APIConnectionError):
        return connection_error(provider, _cause(error), secret=secret, timed_out=False)
    if isinstance(error, openai.APIStatusError):
        detail = error_body_message(error.body) or error.message
        return http_status_error(
            provider,
            error.status_code,
            detail,
            secret=secret,
            retry_after_s=retry_after_seconds(error.response.headers),
            unknown_model=error.code == "model_not_found" or "model" in detail.lower(),
        )
    if isinstance(error, openai.APIError):
        # An error event inside a 200 stream: the provider failed part way.
        return broken_stream(provider, error_body_message(error.body) or error.message, secret=secret)
    return broken_stream(provider, f"{type(error).__name__}: {error}", secret=secret)


def _cause(error: BaseException) -> str:
    """The transport's own words ("connection refused", "incomplete chunked read"), not just the SDK's."""
    cause = error.__cause__
    return f"{error} ({type(cause).__name__}: {cause})" if cause is not None else str(error)


def _chars(event: pb.ChatResponse) -> int:
    """Characters generated, for the token estimate when a server reports no usage."""
    return len(event.delta.text) + len(event.reasoning.text) + len(event.tool_call.arguments)
