"""What a request will use, estimated once before it runs: for budgets, for planning and for CompareCost.

Backends report what a request really used (tokens, audio seconds); only the router turns either into
money, from its one price table.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from modelyard.v1 import inference_pb2 as pb

from router.accounting.pricing import (
    DEFAULT_COMPLETION_TOKENS,
    PriceTable,
    estimate_prompt_tokens,
    text_tokens,
)


@dataclass(frozen=True)
class TokenEstimate:
    prompt_tokens: int = 0
    completion_tokens: int = 0
    audio_seconds: float = 0.0

    @property
    def tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    def cost(self, prices: PriceTable, model: str) -> float:
        return prices.cost(model, self.prompt_tokens, self.completion_tokens, self.audio_seconds)


def estimate_chat(request: pb.ChatRequest) -> TokenEstimate:
    """The prompt, plus the reply: max_tokens when set, else as long as the prompt (up to a default).

    An answer's length is unknown before it is written; assuming the whole default would refuse every short
    request on a small budget, assuming none would let through requests that pass it.
    """
    prompt = estimate_prompt_tokens(request)
    sampling = request.sampling
    reply = sampling.max_tokens if sampling.HasField("max_tokens") else min(prompt, DEFAULT_COMPLETION_TOKENS)
    return TokenEstimate(prompt, reply)


def estimate_embed(request: pb.EmbedRequest) -> TokenEstimate:
    return TokenEstimate(prompt_tokens=estimate_text_tokens(request.inputs))


def estimate_text_tokens(texts: Iterable[str]) -> int:
    return sum(text_tokens(text) for text in texts)


# Audio length is known only once it is decoded: a transcription is estimated at nothing, and its budget
# check refuses it only when a limit is already reached.
NO_ESTIMATE = TokenEstimate()
