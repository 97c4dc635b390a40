"""Deltas that queue up behind a slow reader go out joined: same text, same order, fewer messages."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator

from modelyard.v1 import inference_pb2 as pb

from gpu_worker.coalesce import coalesced
from gpu_worker.engine_set import EngineSet
from gpu_worker.engines.base import (
    ChatEngine,
    ChatEvent,
    ChatFinished,
    ChatInput,
    EngineLoad,
    ReasoningText,
    TextDelta,
    ToolCallFragment,
)
from tests.support.polling import wait_until
from tests.worker.servers import read_rest, serving

# Multi-byte characters of 2, 3 and 4 bytes in UTF-8, one token each, as a tokenizer may cut them.
TOKENS = ["Hé", "llo", " ", "日", "本", "語", " ", "🙂", "👍🏽", " ", "naïve", " ", "ё", "ж"] * 20
ANSWER = "".join(TOKENS)


class ScriptedEngine(ChatEngine):
    """Yields `events`, counting how many it has produced; with `pause`, it lets the event loop run between
    two events, as a real engine does between steps."""

    engine_name = "scripted-test-engine"
    max_context_tokens = 64

    def __init__(self, events: list[ChatEvent], model_id: str = "scripted", pause: bool = False) -> None:
        self.model_id = model_id
        self.pause = pause
        self.events = events
        self.produced = 0
        self.closed = False

    async def chat(self, request: ChatInput) -> AsyncGenerator[ChatEvent, None]:
        try:
            for event in self.events:
                self.produced += 1
                yield event
                if self.pause:
                    await asyncio.sleep(0)
        finally:
            self.closed = True

    def load(self) -> EngineLoad:
        return EngineLoad()

    async def close(self) -> None:
        pass


def _script() -> list[ChatEvent]:
    events: list[ChatEvent] = [TextDelta(t) for t in TOKENS]
    return [*events, ChatFinished(3, len(TOKENS), "stop")]


async def test_a_slow_reader_gets_the_exact_text_in_order_in_fewer_messages() -> None:
    engine = ScriptedEngine(_script(), pause=True)
    events = coalesced(engine.chat(ChatInput(request_id="r1", messages=())))
    first = await anext(events)
    assert first == TextDelta(TOKENS[0])  # never held back to wait for more
    # The reader is behind: the engine has produced everything before it asks again.
    await wait_until(lambda: engine.produced == len(engine.events))
    rest = [event async for event in events]
    received = [first, *rest]
    texts = [e.text for e in received if isinstance(e, TextDelta)]
    assert "".join(texts) == ANSWER
    assert len(texts) < len(TOKENS)
    assert isinstance(received[-1], ChatFinished)
    assert engine.closed


async def test_only_like_deltas_join_and_the_order_is_kept() -> None:
    script: list[ChatEvent] = [
        ReasoningText("thin"),
        ReasoningText("king…"),
        TextDelta("Let me "),
        TextDelta("call 🛠"),
        ToolCallFragment(0, id="c1", name="f"),
        ToolCallFragment(0, arguments='{"q": "日本"}'),
        TextDelta("done"),
        ChatFinished(1, 7, "tool_calls"),
    ]
    engine = ScriptedEngine(script)
    events = coalesced(engine.chat(ChatInput(request_id="r1", messages=())))
    # This engine never waits, so everything is queued before the reader takes the first event.
    received = [event async for event in events]
    assert received == [
        ReasoningText("thinking…"),
        TextDelta("Let me call 🛠"),
        ToolCallFragment(0, id="c1", name="f"),
        ToolCallFragment(0, arguments='{"q": "日本"}'),
        TextDelta("done"),
        ChatFinished(1, 7, "tool_calls"),
    ]


async def test_closing_early_closes_the_engine() -> None:
    engine = ScriptedEngine(_script())
    events = coalesced(engine.chat(ChatInput(request_id="r1", messages=())))
    await anext(events)
    await events.aclose()
    assert engine.closed


async def test_through_a_real_worker_the_answer_is_exact_and_usage_comes_last() -> None:
    engine = ScriptedEngine(_script())
    request = pb.ChatRequest(
        request_id="r1",
        model="scripted",
        messages=[pb.Message(role=pb.ROLE_USER, content=[pb.ContentPart(text="hi")])],
    )
    async with serving(EngineSet(chat=[engine])) as stub:
        responses = await read_rest(stub.Chat(request))
    deltas = [r.delta.text for r in responses if r.WhichOneof("event") == "delta"]
    assert "".join(deltas) == ANSWER
    # This engine never waits, so the worker's writer is always behind it: the deltas go out joined.
    assert len(deltas) < len(TOKENS)
    assert responses[-1].WhichOneof("event") == "usage"
    assert responses[-1].usage.completion_tokens == len(TOKENS)
