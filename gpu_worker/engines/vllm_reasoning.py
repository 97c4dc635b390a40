"""Reasoning (a model's thinking, e.g. DeepSeek-R1's <think>...</think>) split from the answer as it streams.

A worker started with `--reasoning-parser NAME` runs vLLM's parser of that name over each request's output:
what it calls reasoning goes out as ReasoningText (ReasoningDelta to clients, `reasoning_content` over HTTP),
the rest on to the tool-call handling as the answer's text. Parsers keep per-request state: one per request.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from vllm.reasoning import ReasoningParser, ReasoningParserManager


def known_reasoning_parsers() -> list[str]:
    return sorted(ReasoningParserManager.list_registered())


def check_reasoning_parser(name: str) -> None:
    if name not in known_reasoning_parsers():
        raise ValueError(f"reasoning parser {name!r}: not one of {', '.join(known_reasoning_parsers())}")


class ReasoningSplit:
    """Feeds each delta to the parser; gives back (reasoning, answer) text for that delta."""

    def __init__(self, name: str, tokenizer: Any, prompt_token_ids: Sequence[int] = ()) -> None:
        self._parser: ReasoningParser = ReasoningParserManager.get_reasoning_parser(name)(tokenizer)
        self._parser.adjust_initial_state_from_prompt(prompt_token_ids)
        self._text = ""
        self._token_ids: list[int] = []

    def feed(self, text: str, token_ids: Sequence[int]) -> tuple[str, str]:
        previous_text, previous_ids = self._text, list(self._token_ids)
        self._text += text
        self._token_ids.extend(token_ids)
        if not text and not token_ids:
            return "", ""
        delta = self._parser.extract_reasoning_streaming(
            previous_text, self._text, text, previous_ids, self._token_ids, list(token_ids)
        )
        if delta is None:  # held back (a partial marker) or only a marker
            return "", ""
        return delta.reasoning or "", delta.content or ""
