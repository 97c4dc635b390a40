"""What a request costs: list prices per model, overridable from config, and pre-request estimates.

Prices are USD per million tokens (input and output) or per audio minute. A model with no price (a
local worker's, say) costs nothing, so local capacity always looks cheapest to the cost scorer.
Estimates (router.accounting.estimates) feed budgets, the scheduler's max-cost filter and the cost scorer
before anything has run, so they only need to rank candidates sensibly, not match the provider's bill.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass

from modelyard.v1 import inference_pb2 as pb

# Rough English average; providers' tokenizers differ by a few tens of percent either way.
CHARS_PER_TOKEN = 4
# Role markers and separators each message costs on top of its text (OpenAI documents 3 to 4).
MESSAGE_OVERHEAD_TOKENS = 4
# Tokens that prime the reply.
REPLY_OVERHEAD_TOKENS = 3
# One image, whatever its size: about a 768x768 image at high detail on OpenAI (and close to what
# Anthropic charges for one of ~0.6 megapixels).
IMAGE_TOKENS = 765
# The longest completion assumed when the request sets no max_tokens (router.accounting.estimates).
DEFAULT_COMPLETION_TOKENS = 256


@dataclass(frozen=True)
class Price:
    input_per_m: float = 0.0  # USD per million prompt (or embedding input) tokens
    output_per_m: float = 0.0  # USD per million completion tokens
    per_audio_minute: float = 0.0  # USD per minute of transcribed audio


FREE = Price()

# List prices at the time of writing; config `prices:` corrects them without a release.
DEFAULT_PRICES: Mapping[str, Price] = {
    "gpt-4o-mini": Price(0.15, 0.60),
    "gpt-4o": Price(2.50, 10.00),
    "gpt-4.1-mini": Price(0.40, 1.60),
    "text-embedding-3-small": Price(0.02),
    "text-embedding-3-large": Price(0.13),
    "whisper-1": Price(per_audio_minute=0.006),
    "gpt-4o-mini-transcribe": Price(per_audio_minute=0.003),
    "claude-haiku-4-5": Price(1.00, 5.00),
    "claude-sonnet-4-6": Price(3.00, 15.00),
    "deepseek-chat": Price(0.27, 1.10),
    "deepseek-reasoner": Price(0.55, 2.19),
    "gemini-2.0-flash": Price(0.10, 0.40),
    "gemini-2.5-flash": Price(0.30, 2.50),
}

_PRICE_FIELDS = frozenset(f.name for f in dataclasses.fields(Price))


_MAX_RESOLVED = 4096


class PriceTable:
    """Prices by model id. Immutable: `with_overrides` returns a new table."""

    def __init__(self, prices: Mapping[str, Price] | None = None) -> None:
        self._prices: dict[str, Price] = dict(DEFAULT_PRICES if prices is None else prices)
        # Family lookups already made (a worker's own models miss every known id, twice per request). The
        # table never changes, so neither do they; bounded, since a model id can come from a request.
        self._resolved: dict[str, Price] = {}

    def with_overrides(self, overrides: Mapping[str, Mapping[str, float]]) -> PriceTable:
        """Config `prices: {model: {input_per_m: .., output_per_m: .., per_audio_minute: ..}}`.

        Fields left out keep the model's current price, so one corrected figure is one line of config.
        """
        prices = dict(self._prices)
        for model, fields in overrides.items():
            unknown = set(fields) - _PRICE_FIELDS
            if unknown:
                raise ValueError(
                    f"prices.{model}: unknown field(s) {sorted(unknown)}; known: {sorted(_PRICE_FIELDS)}"
                )
            negative = sorted(name for name, value in fields.items() if float(value) < 0)
            if negative:
                raise ValueError(f"prices.{model}: {', '.join(negative)} must not be negative")
            current = prices.get(model, FREE)
            prices[model] = dataclasses.replace(
                current, **{name: float(value) for name, value in fields.items()}
            )
        return PriceTable(prices)

    def __contains__(self, model: object) -> bool:
        return model in self._prices

    def price(self, model: str) -> Price:
        """The model's price; a dated snapshot ("gpt-4o-2024-08-06") takes its family's price."""
        found = self._prices.get(model) or self._resolved.get(model)
        if found is not None:
            return found
        # Longest known id that the model extends at a "-" boundary, so "gpt-4o-mini-2024-07-18"
        # is priced as gpt-4o-mini, not gpt-4o.
        family = max(
            (known for known in self._prices if model.startswith(known + "-")), key=len, default=None
        )
        found = FREE if family is None else self._prices[family]
        if len(self._resolved) < _MAX_RESOLVED:
            self._resolved[model] = found
        return found

    def cost(
        self,
        model: str,
        prompt_tokens: int = 0,
        completion_tokens: int = 0,
        audio_seconds: float = 0.0,
    ) -> float:
        price = self.price(model)
        return (
            prompt_tokens * price.input_per_m / 1e6
            + completion_tokens * price.output_per_m / 1e6
            + audio_seconds / 60.0 * price.per_audio_minute
        )


def text_tokens(text: str) -> int:
    return math.ceil(len(text) / CHARS_PER_TOKEN)


def estimate_prompt_tokens(request: pb.ChatRequest) -> int:
    """Prompt tokens before any tokenizer has seen the request: ~4 characters a token, plus overheads."""
    tokens = REPLY_OVERHEAD_TOKENS
    for message in request.messages:
        tokens += MESSAGE_OVERHEAD_TOKENS + text_tokens(message.name)
        for part in message.content:
            tokens += IMAGE_TOKENS if part.HasField("image") else text_tokens(part.text)
    return tokens
