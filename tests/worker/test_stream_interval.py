"""--stream-interval-ms: a sequence's tokens go out together at most once per interval; the first never
waits, nothing is held past the interval, and the end of the answer is never held.

The engine double yields bursts the test releases one at a time; the interval is either far longer than any
test (so only the rules above can let a message out) or short, and the clock can be moved by hand.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncGenerator

from modelyard.v1 import inference_pb2 as pb

from gpu_worker.coalesce import coalesced
from gpu_worker.engine_set import EngineSet
from gpu_worker.engines.base import ChatEngine, ChatEvent, ChatFinished, ChatInput, EngineLoad, TextDelta
from tests.support.polling import wait_until
from tests.worker.servers import read_rest, serving

LONG_S = 3600.0  # no test waits this long: only the rules under test let a message out before it ends
GENEROUS_S = 10.0


class BurstEngine(ChatEngine):
    """Yields `bursts` one after another, each once the test opens its gate (the first at once), letting the
    event loop run between two tokens as a real engine does between steps; then ChatFinished."""

    engine_name = "burst-test-engine"
    max_context_tokens = 64

    def __init__(self, bursts: list[list[str]], model_id: str = "burst") -> None:
        self.model_id = model_id
        self.bursts = bursts
        self.gates = [asyncio.Event() for _ in bursts]
        self.gates[0].set()
        self.produced = 0
        self.waiting_at = -1  # the burst whose gate the engine is waiting on

    async def chat(self, request: ChatInput) -> AsyncGenerator[ChatEvent, None]:
        for index, burst in enumerate(self.bursts):
            self.waiting_at = index
            await self.gates[index].wait()
            for token in burst:
                self.produced += 1
                yield TextDelta(token)
                await asyncio.sleep(0)
        self.waiting_at = len(self.bursts)
        yield ChatFinished(3, self.produced, "stop")

    def load(self) -> EngineLoad:
        return EngineLoad()

    async def close(self) -> None:
        pass


class HandClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _input() -> ChatInput:
    return ChatInput(request_id="r1", messages=())


async def _next(events: AsyncGenerator[ChatEvent, None]) -> ChatEvent:
    return await asyncio.wait_for(anext(events), GENEROUS_S)


async def test_the_first_token_goes_alone_and_tokens_within_the_interval_go_together() -> None:
    engine = BurstEngine([["Hé"], ["llo", " 日本", "語", " 🙂"]])
    events = coalesced(engine.chat(_input()), LONG_S, HandClock())
    assert await _next(events) == TextDelta("Hé")  # never waits for company
    engine.gates[1].set()
    # The interval has not ended (the clock stands still), but the answer has: its end is not held.
    rest = [event async for event in events]
    assert rest == [TextDelta("llo 日本語 🙂"), ChatFinished(3, 5, "stop")]


async def test_nothing_is_held_past_the_interval() -> None:
    engine = BurstEngine([["a"], ["b", "c"], ["d"]])
    events = coalesced(engine.chat(_input()), 0.02)  # the real clock
    assert await _next(events) == TextDelta("a")
    engine.gates[1].set()
    # The engine stops at the third burst's gate: only the end of the interval can let "b" and "c" out (in
    # one message, or two on a machine so busy that an interval ended between them).
    text = ""
    while text != "bc":
        event = await _next(events)
        assert isinstance(event, TextDelta)
        text += event.text
    assert engine.waiting_at == 2
    engine.gates[2].set()
    assert [event async for event in events] == [TextDelta("d"), ChatFinished(3, 4, "stop")]


async def test_a_token_after_a_quiet_spell_longer_than_the_interval_does_not_wait() -> None:
    clock = HandClock()
    engine = BurstEngine([["a"], ["b"], ["c"]])
    events = coalesced(engine.chat(_input()), LONG_S, clock)
    assert await _next(events) == TextDelta("a")
    clock.now += LONG_S + 1  # the interval since "a" went out is over
    engine.gates[1].set()
    assert await _next(events) == TextDelta("b")  # the engine is held at the next gate: nothing else sent it
    assert engine.waiting_at == 2
    engine.gates[2].set()
    assert [event async for event in events] == [TextDelta("c"), ChatFinished(3, 3, "stop")]


async def test_closing_while_gathering_closes_the_engine() -> None:
    engine = BurstEngine([["a"], ["b"], ["c"]])
    closed = asyncio.Event()
    source = engine.chat(_input())

    async def watched() -> AsyncGenerator[ChatEvent, None]:
        try:
            async for event in source:
                yield event
        finally:
            closed.set()

    events = coalesced(watched(), LONG_S, HandClock())
    assert await _next(events) == TextDelta("a")
    engine.gates[1].set()
    waiting = asyncio.create_task(anext(events))  # gathers "b" until the interval ends
    await wait_until(lambda: engine.waiting_at == 2)
    waiting.cancel()  # the gRPC caller went away
    with contextlib.suppress(asyncio.CancelledError):
        await waiting
    await events.aclose()
    await asyncio.wait_for(closed.wait(), GENEROUS_S)


async def test_through_a_real_worker_the_interval_joins_tokens_into_fewer_messages() -> None:
    tokens = ["Hé", "llo", " ", "日", "本", "語", " ", "🙂"]
    engine = BurstEngine([tokens[:1], tokens[1:]])
    engine.gates[1].set()  # the whole answer at once: only the interval keeps the first token alone
    request = pb.ChatRequest(
        request_id="r1",
        model="burst",
        messages=[pb.Message(role=pb.ROLE_USER, content=[pb.ContentPart(text="hi")])],
    )
    async with serving(EngineSet(chat=[engine]), stream_interval_s=LONG_S) as stub:
        responses = await asyncio.wait_for(read_rest(stub.Chat(request)), GENEROUS_S)
    deltas = [r.delta.text for r in responses if r.WhichOneof("event") == "delta"]
    assert deltas == ["Hé", "llo 日本語 🙂"]
    assert responses[-1].WhichOneof("event") == "usage"
    assert responses[-1].usage.completion_tokens == len(tokens)


async def test_through_a_real_worker_no_interval_still_sends_a_paced_engine_token_by_token() -> None:
    engine = BurstEngine([["a"], ["b"], ["c"]])
    request = pb.ChatRequest(
        request_id="r1",
        model="burst",
        messages=[pb.Message(role=pb.ROLE_USER, content=[pb.ContentPart(text="hi")])],
    )
    async with serving(EngineSet(chat=[engine])) as stub:
        call = stub.Chat(request)
        first = await asyncio.wait_for(call.read(), GENEROUS_S)
        engine.gates[1].set()
        second = await asyncio.wait_for(call.read(), GENEROUS_S)
        engine.gates[2].set()
        rest = await asyncio.wait_for(read_rest(call), GENEROUS_S)
    assert [first.delta.text, second.delta.text] == ["a", "b"]
    assert [r.delta.text for r in rest if r.WhichOneof("event") == "delta"] == ["c"]
