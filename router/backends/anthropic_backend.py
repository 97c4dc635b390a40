"""Anthropic's Messages API on the official SDK. Chat only: Anthropic offers no embeddings or transcription."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence

import anthropic
import grpc
import httpx2
from anthropic import AsyncAnthropic, omit
from modelyard.v1 import inference_pb2 as pb

from core import tracing
from router.accounting.pricing import text_tokens
from router.backends.anthropic_convert import FINISH_REASONS, split_system
from router.backends.anthropic_options import anthropic_options
from router.backends.anthropic_stream import BlockEvents
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
    http_status_error,
    retry_after_seconds,
)
from router.config.settings import ProviderConfig

# An error event inside a 200 stream carries only its type; this is the status the type stands for.
_ERROR_TYPE_STATUS = {
    "invalid_request_error": 400,
    "authentication_error": 401,
    "billing_error": 402,
    "permission_error": 403,
    "not_found_error": 404,
    "request_too_large": 413,
    "rate_limit_error": 429,
    "api_error": 500,
    "overloaded_error": 529,
}


class AnthropicBackend(CloudBackend):
    def __init__(self, config: ProviderConfig) -> None:
        super().__init__(config)
        # No SDK retries: the router retries on another candidate, within the caller's deadline.
        self._client = AsyncAnthropic(
            api_key=config.api_key or NO_API_KEY,
            base_url=config.base_url,
            max_retries=0,
            timeout=config.timeout_s,
        )

    @property
    def base_url(self) -> str:
        return str(self._client.base_url)

    async def chat(self, request: pb.ChatRequest, timeout: float | None) -> AsyncIterator[pb.ChatResponse]:
        self.check_images(request)
        try:
            system, messages = split_system(request.messages)
            options = anthropic_options(request)
        except ValueError as e:
            raise self.invalid(str(e)) from e
        blocks = BlockEvents(options.response_tool)
        sampling = request.sampling
        budget = self.request_timeout(timeout)
        loop = asyncio.get_running_loop()
        # The SDK's timeout bounds each read, not the whole answer; the deadline is checked per event.
        deadline = loop.time() + budget
        model, stop_reason, prompt, completion, finished = request.model, "", 0, 0, False
        try:
            stream = await self._client.messages.create(
                extra_headers=tracing.outgoing_headers(),
                model=request.model,
                messages=messages,
                system=system or omit,
                # Required by this API; the caller's limit when given.
                max_tokens=(
                    sampling.max_tokens if sampling.HasField("max_tokens") else self.config.default_max_tokens
                )
                + options.thinking_budget,
                stop_sequences=list(sampling.stop) or omit,
                # The Messages API has no seed; sampling.seed is dropped here.
                extra_body=_sampling_body(sampling) or None,
                stream=True,
                timeout=budget,
                **options.params,
            )
            # Leaving this block, however it happens (the client went away, an error), closes the
            # HTTP response, which ends the upstream generation.
            async with stream:
                async for event in stream:
                    if loop.time() > deadline:
                        raise BackendError(
                            f"provider {self.id}: no complete answer within {budget:.1f}s",
                            retryable=True,
                            status=grpc.StatusCode.DEADLINE_EXCEEDED,
                        )
                    if event.type == "message_start":
                        model = event.message.model or model
                        usage = event.message.usage
                        # Cached prompt tokens are still prompt tokens (billed at other rates).
                        prompt = (
                            usage.input_tokens
                            + (usage.cache_creation_input_tokens or 0)
                            + (usage.cache_read_input_tokens or 0)
                        )
                        completion = usage.output_tokens
                    elif event.type == "content_block_start":
                        for response in blocks.start(event.index, event.content_block):
                            yield response
                    elif event.type == "content_block_delta":
                        for response in blocks.delta(event.index, event.delta):
                            yield response
                    elif event.type == "content_block_stop":
                        for response in blocks.stop(event.index):
                            yield response
                    elif event.type == "message_delta":
                        stop_reason = event.delta.stop_reason or stop_reason
                        # Cumulative counts: the last message_delta has the totals.
                        completion = event.usage.output_tokens
                    elif event.type == "message_stop":
                        finished = True
        except anthropic.AnthropicError as e:
            raise self._error(e) from e
        except httpx2.TimeoutException as e:  # the SDK does not wrap transport errors while streaming
            raise connection_error(self.id, repr(e), secret=self.config.api_key, timed_out=True) from e
        except httpx2.TransportError as e:
            raise broken_stream(self.id, repr(e), secret=self.config.api_key) from e
        except ValueError as e:  # a data: line that is not JSON
            raise broken_stream(self.id, f"malformed event: {e}", secret=self.config.api_key) from e
        if not finished:
            raise broken_stream(self.id, "the stream ended before the answer did", secret=self.config.api_key)
        yield pb.ChatResponse(
            usage=pb.Usage(
                request_id=request.request_id,
                backend=self.id,
                model=model,
                prompt_tokens=prompt,
                completion_tokens=completion,
                finish_reason=pb.FINISH_REASON_STOP
                if blocks.answered_in_json and stop_reason == "tool_use"
                else FINISH_REASONS.get(stop_reason, pb.FINISH_REASON_STOP),
            )
        )

    def continues(self, request: pb.ChatRequest) -> bool:
        # A final assistant message is a prefill, which the model continues; extended thinking cannot
        # follow a prefill.
        return not anthropic_options(request).thinking_budget

    async def continue_chat(
        self, request: pb.ChatRequest, timeout: float | None
    ) -> AsyncIterator[pb.ChatResponse]:
        prefill, pending = continuation_prefill(request)
        async for response in self.chat(prefill, timeout):
            if pending and response.HasField("delta"):
                # The API refuses a prefill that ends in whitespace, so it went without it: the model writes
                # that whitespace again first, and the client already has it.
                pending, response.delta.text = _without_repeat(pending, response.delta.text)
                if not response.delta.text:
                    continue
            yield response

    async def embed(self, request: pb.EmbedRequest, timeout: float | None) -> pb.EmbedResponse:
        raise self.unsupported("embeddings")

    async def transcribe(
        self, config: pb.TranscribeConfig, audio: Sequence[bytes], timeout: float | None
    ) -> AsyncIterator[pb.TranscribeResponse]:
        raise self.unsupported("transcription")
        yield  # unreachable; makes this an async generator like every backend's transcribe

    async def health_check(self) -> bool:
        try:
            await self._client.models.list(limit=1, timeout=HEALTH_TIMEOUT_S)
        except anthropic.APIStatusError as e:
            return probe_answer_healthy(e.status_code)
        except (anthropic.AnthropicError, httpx2.HTTPError):
            return False
        return True

    async def close(self) -> None:
        await self._client.close()

    def _error(self, error: anthropic.AnthropicError) -> BackendError:
        return anthropic_error(self.id, error, secret=self.config.api_key)


def continuation_prefill(request: pb.ChatRequest) -> tuple[pb.ChatRequest, str]:
    """The request with its final (assistant) message as a prefill the API takes, and the whitespace that
    had to come off its end. max_tokens counts the whole answer, so the part already written (estimated:
    this router has no Anthropic tokenizer) comes off it."""
    prefill = pb.ChatRequest()
    prefill.CopyFrom(request)
    final = prefill.messages[-1]
    text = "".join(part.text for part in final.content)
    kept = text.rstrip()
    del final.content[:]
    final.content.add(text=kept)
    sampling = prefill.sampling
    if sampling.HasField("max_tokens"):
        sampling.max_tokens = max(1, sampling.max_tokens - text_tokens(text))
    return prefill, text[len(kept) :]


def _without_repeat(pending: str, text: str) -> tuple[str, str]:
    """(what is still to be skipped, `text` less its start that repeats `pending`)."""
    same = 0
    while same < min(len(pending), len(text)) and pending[same] == text[same]:
        same += 1
    # Past the whole delta: the rest may come in the next one. Short of it: the model went another way.
    return (pending[same:] if same == len(text) else ""), text[same:]


def _sampling_body(sampling: pb.SamplingParams) -> dict[str, float]:
    """temperature and top_p, sent only when the caller set them.

    This SDK no longer has parameters for them (recent models choose their own sampling); they go in
    the body as is, and a model that refuses them answers 400, which reaches the caller as
    INVALID_ARGUMENT rather than being silently ignored.
    """
    body: dict[str, float] = {}
    if sampling.HasField("temperature"):
        body["temperature"] = proto_float(sampling.temperature)
    if sampling.HasField("top_p"):
        body["top_p"] = proto_float(sampling.top_p)
    return body


def anthropic_error(provider: str, error: anthropic.AnthropicError, *, secret: str) -> BackendError:
    """The one place an Anthropic SDK exception becomes a BackendError."""
    if isinstance(error, anthropic.APITimeoutError):
        return connection_error(provider, "request timed out", secret=secret, timed_out=True)
    if isinstance(error, anthropic.APIConnectionError):
        cause = error.__cause__
        detail = f"{error.message} ({type(cause).__name__}: {cause})" if cause else error.message
        return connection_error(provider, detail, secret=secret, timed_out=False)
    if isinstance(error, anthropic.APIStatusError):
        status = error.status_code
        if status < 400:
            # An `error` event part way through a 200 stream.
            status = _ERROR_TYPE_STATUS.get(error.type or "", 500)
        detail = error.api_message or error.message
        return http_status_error(
            provider,
            status,
            detail,
            secret=secret,
            retry_after_s=retry_after_seconds(error.response.headers),
            unknown_model=error.type == "not_found_error" and "model" in detail.lower(),
        )
    if isinstance(error, anthropic.APIError):
        return broken_stream(provider, error.message, secret=secret)
    return broken_stream(provider, f"{type(error).__name__}: {error}", secret=secret)
