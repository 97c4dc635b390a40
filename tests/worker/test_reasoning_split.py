"""`--reasoning-parser`: a model's thinking split from its answer as it streams, by vLLM's own parser."""

from __future__ import annotations

import pytest

from gpu_worker.engines.vllm_reasoning import ReasoningSplit, check_reasoning_parser
from gpu_worker.main import build_parser


class ThinkingVocabulary:
    """The one thing a thinking-token parser asks of a tokenizer: where its markers are in the vocabulary."""

    def get_vocab(self) -> dict[str, int]:
        return {"<think>": 1, "</think>": 2}


def test_thinking_goes_out_as_reasoning_and_the_rest_as_the_answer() -> None:
    split = ReasoningSplit("deepseek_r1", ThinkingVocabulary())
    deltas = [
        ("<think>", [1]),
        ("The capital", [10]),
        (" is Paris.", [11]),
        ("</think>", [2]),
        ("Paris", [12]),
    ]
    reasoning, answer = "", ""
    for text, ids in deltas:
        thought, said = split.feed(text, ids)
        reasoning += thought
        answer += said
    assert (reasoning, answer) == ("The capital is Paris.", "Paris")


def test_an_unknown_parser_is_refused_naming_the_known_ones() -> None:
    with pytest.raises(ValueError, match=r"reasoning parser 'nonsense': not one of .*deepseek_r1"):
        check_reasoning_parser("nonsense")


def test_the_worker_takes_the_flag() -> None:
    assert build_parser().parse_args(["--reasoning-parser", "qwen3"]).reasoning_parser == "qwen3"
