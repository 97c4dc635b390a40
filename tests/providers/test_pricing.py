"""Prices, overrides, costs and pre-request estimates."""

from __future__ import annotations

import pytest
from modelyard.v1 import inference_pb2 as pb

from router.accounting.estimates import TokenEstimate, estimate_chat, estimate_embed
from router.accounting.pricing import (
    DEFAULT_COMPLETION_TOKENS,
    IMAGE_TOKENS,
    Price,
    PriceTable,
    estimate_prompt_tokens,
)


@pytest.mark.parametrize(
    ("model", "prompt", "completion", "audio_seconds", "expected"),
    [
        ("gpt-4o-mini", 1_000_000, 1_000_000, 0.0, 0.15 + 0.60),
        ("gpt-4o", 2_000, 500, 0.0, 2_000 * 2.50 / 1e6 + 500 * 10.00 / 1e6),
        ("gpt-4.1-mini", 1_000_000, 0, 0.0, 0.40),
        ("text-embedding-3-small", 1_000_000, 0, 0.0, 0.02),
        ("text-embedding-3-large", 1_000_000, 0, 0.0, 0.13),
        ("whisper-1", 0, 0, 90.0, 1.5 * 0.006),
        ("gpt-4o-mini-transcribe", 0, 0, 60.0, 0.003),
        ("claude-haiku-4-5", 1_000_000, 1_000_000, 0.0, 1.00 + 5.00),
        ("claude-sonnet-4-6", 1_000_000, 1_000_000, 0.0, 3.00 + 15.00),
        ("deepseek-chat", 1_000_000, 1_000_000, 0.0, 0.27 + 1.10),
        ("deepseek-reasoner", 1_000_000, 1_000_000, 0.0, 0.55 + 2.19),
        ("gemini-2.0-flash", 1_000_000, 1_000_000, 0.0, 0.10 + 0.40),
        ("gemini-2.5-flash", 1_000_000, 1_000_000, 0.0, 0.30 + 2.50),
        ("Qwen/Qwen2.5-7B-Instruct", 1_000_000, 1_000_000, 60.0, 0.0),  # a local worker's model
        ("gpt-4o-mini-2024-07-18", 1_000_000, 0, 0.0, 0.15),  # a dated snapshot: its family's price
        ("gpt-4o-2024-08-06", 1_000_000, 0, 0.0, 2.50),
    ],
)
def test_cost(model: str, prompt: int, completion: int, audio_seconds: float, expected: float) -> None:
    assert PriceTable().cost(model, prompt, completion, audio_seconds) == pytest.approx(expected)


def test_overrides_change_only_the_named_fields_and_add_models() -> None:
    base = PriceTable()
    table = base.with_overrides(
        {"gpt-4o": {"input_per_m": 2.0}, "llama-3-8b": {"input_per_m": 0.05, "output_per_m": 0.1}}
    )
    assert table.price("gpt-4o") == Price(2.0, 10.0)
    assert table.price("llama-3-8b") == Price(0.05, 0.1)
    assert "llama-3-8b" in table
    assert "llama-3-8b" not in base
    assert base.price("gpt-4o") == Price(2.50, 10.00)  # the original is untouched


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"gpt-4o": {"input": 1.0}}, "unknown field"),
        ({"gpt-4o": {"output_per_m": -1.0}}, "must not be negative"),
    ],
)
def test_bad_overrides_are_refused(overrides: dict[str, dict[str, float]], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        PriceTable().with_overrides(overrides)


def _request(*messages: pb.Message, max_tokens: int | None = None) -> pb.ChatRequest:
    sampling = pb.SamplingParams() if max_tokens is None else pb.SamplingParams(max_tokens=max_tokens)
    return pb.ChatRequest(model="m", messages=messages, sampling=sampling)


def _user(*parts: pb.ContentPart) -> pb.Message:
    return pb.Message(role=pb.ROLE_USER, content=parts)


def test_prompt_estimate_counts_characters_overheads_and_images() -> None:
    empty = estimate_prompt_tokens(_request())
    one = estimate_prompt_tokens(_request(_user(pb.ContentPart(text="x" * 400))))
    assert one - empty == 100 + 4  # ~4 characters a token, plus the message's own overhead
    with_image = estimate_prompt_tokens(
        _request(_user(pb.ContentPart(text="x" * 400), pb.ContentPart(image=pb.Image(url="https://x/y.png"))))
    )
    assert with_image - one == IMAGE_TOKENS


def test_one_chat_estimate_for_budgets_planning_and_compare_cost() -> None:
    table = PriceTable()
    request = _request(_user(pb.ContentPart(text="hello " * 100)), max_tokens=1000)
    prompt = estimate_prompt_tokens(request)
    assert estimate_chat(request) == TokenEstimate(prompt, 1000)
    assert estimate_chat(request).cost(table, "gpt-4o") == pytest.approx(table.cost("gpt-4o", prompt, 1000))
    request.sampling.ClearField("max_tokens")
    # No max_tokens: a reply as long as the prompt, up to the default.
    assert estimate_chat(request) == TokenEstimate(prompt, min(prompt, DEFAULT_COMPLETION_TOKENS))
    long = _request(_user(pb.ContentPart(text="x" * 4000)))
    assert estimate_chat(long).completion_tokens == DEFAULT_COMPLETION_TOKENS
    # What ranks candidates: the local model is free, the dear model dearest.
    costs = [estimate_chat(request).cost(table, m) for m in ("local-llama", "gpt-4o-mini", "gpt-4o")]
    assert costs == sorted(costs)
    assert costs[0] == 0.0


def test_embed_estimate() -> None:
    request = pb.EmbedRequest(model="text-embedding-3-large", inputs=["x" * 40, "y" * 80])
    assert estimate_embed(request) == TokenEstimate(prompt_tokens=30)
    assert estimate_embed(request).cost(PriceTable(), "text-embedding-3-large") == pytest.approx(
        30 * 0.13 / 1e6
    )
