"""n > 1 on /v1/chat/completions: n answers, each its own request, whole or streamed, read by the openai SDK."""

from __future__ import annotations

from typing import Any

import openai
import pytest
from openai import AsyncOpenAI

from tests.http.conftest import WorkerFactory

HELLO: Any = [{"role": "user", "content": "one two"}]


async def test_n_whole_answers_come_as_numbered_choices(client: AsyncOpenAI, workers: WorkerFactory) -> None:
    worker = await workers("w1")
    answer = await client.chat.completions.create(model="echo", messages=HELLO, n=3)
    assert [c.index for c in answer.choices] == [0, 1, 2]
    assert [c.message.content for c in answer.choices] == ["one two "] * 3
    assert answer.usage is not None
    assert answer.usage.completion_tokens == 6  # each choice is a request: 2 tokens each
    assert len(worker.received) == 3
    assert len({r.request_id for r in worker.received}) == 3


async def test_n_streamed_answers_interleave_by_index(client: AsyncOpenAI, workers: WorkerFactory) -> None:
    await workers("w1")
    stream = await client.chat.completions.create(
        model="echo", messages=HELLO, n=2, stream=True, stream_options={"include_usage": True}
    )
    texts = {0: "", 1: ""}
    finished, usage = set(), None
    async for chunk in stream:
        for choice in chunk.choices:
            texts[choice.index] += choice.delta.content or ""
            if choice.finish_reason:
                finished.add(choice.index)
        usage = chunk.usage or usage
    assert texts == {0: "one two ", 1: "one two "}
    assert finished == {0, 1}
    assert usage is not None
    assert usage.completion_tokens == 4


async def test_too_many_choices_are_refused_naming_n(client: AsyncOpenAI, workers: WorkerFactory) -> None:
    await workers("w1")
    with pytest.raises(openai.BadRequestError) as refused:
        await client.chat.completions.create(model="echo", messages=HELLO, n=100)
    assert "n: at most" in refused.value.message
