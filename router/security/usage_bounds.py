"""Upper bounds on what a worker may report it used, so a lying worker cannot inflate cost and budgets.

The bounds are loose enough for any honest tokenizer: a token covers at least one byte of text (chat
templates add a few per message), a completion stops at the request's max_tokens (or the context window),
and no audio codec carries a second in fewer than 16 bytes.
"""

from __future__ import annotations

from collections.abc import Sequence

from modelyard.v1 import inference_pb2 as pb

TEMPLATE_TOKENS_PER_MESSAGE = 16
TEMPLATE_TOKENS = 256
TOKENS_PER_IMAGE = 16_384
MAX_CONTEXT_TOKENS = 1 << 20  # what a worker may claim as its context window
MIN_AUDIO_BYTES_PER_SECOND = 16


def max_prompt_tokens(request: pb.ChatRequest) -> int:
    text = 0
    images = 0
    for message in request.messages:
        for part in message.content:
            if part.HasField("image"):
                images += 1
            else:
                text += len(part.text.encode())
    return (
        text
        + TEMPLATE_TOKENS_PER_MESSAGE * len(request.messages)
        + TEMPLATE_TOKENS
        + TOKENS_PER_IMAGE * images
    )


def max_completion_tokens(request: pb.ChatRequest, max_context_tokens: int) -> int:
    if request.sampling.HasField("max_tokens"):
        return request.sampling.max_tokens
    return min(max_context_tokens, MAX_CONTEXT_TOKENS) if max_context_tokens else MAX_CONTEXT_TOKENS


def bound_chat_usage(usage: pb.Usage, request: pb.ChatRequest, max_context_tokens: int) -> None:
    usage.prompt_tokens = min(usage.prompt_tokens, max_prompt_tokens(request))
    usage.completion_tokens = min(usage.completion_tokens, max_completion_tokens(request, max_context_tokens))


def bound_embed_usage(usage: pb.Usage, request: pb.EmbedRequest) -> None:
    cap = sum(len(text.encode()) + TEMPLATE_TOKENS_PER_MESSAGE for text in request.inputs)
    usage.prompt_tokens = min(usage.prompt_tokens, cap)
    usage.completion_tokens = 0


def bound_transcribe_usage(usage: pb.Usage, audio: Sequence[bytes]) -> None:
    seconds = sum(len(chunk) for chunk in audio) / MIN_AUDIO_BYTES_PER_SECOND
    usage.audio_seconds = min(usage.audio_seconds, seconds)
    usage.prompt_tokens = 0
    usage.completion_tokens = min(usage.completion_tokens, MAX_CONTEXT_TOKENS)
