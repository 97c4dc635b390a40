"""A whole (non-streamed) answer through the HTTP door from OpenAI-compatible upstreams: the router asks the
upstream for a whole answer too, and usage, cost, failover and the upstream's errors are as for a stream.

Two FakeOpenAI servers (tests.support.fake_openai, OpenAI's wire format) are providers "first" and
"second", tried in that order (strategy priority); the client is the official openai SDK.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass

import openai
import pytest
from openai import AsyncOpenAI
from openai.types.chat import ChatCompletionMessageFunctionToolCall

from router.accounting.pricing import PriceTable
from router.config.settings import ProviderConfig
from router.server import RouterServer
from tests.http.conftest import KEY, door_config
from tests.support.fake_http import Fault
from tests.support.fake_openai import FakeOpenAI

MODEL = "gpt-4o-mini"
WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Weather in a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
    },
}


@dataclass
class Door:
    client: AsyncOpenAI
    first: FakeOpenAI
    second: FakeOpenAI


def _provider(name: str, upstream: FakeOpenAI, priority: int) -> ProviderConfig:
    return ProviderConfig(
        name=name,
        kind="openai_compatible",
        api_key=upstream.api_key,
        base_url=upstream.base_url,
        chat_models=[MODEL],
        priority=priority,
    )


# Short enough for a test to outlast it, long enough for a first request on a busy machine (its TLS context
# and connection are made then).
FIRST_CHUNK_TIMEOUT_S = 5.0


@contextlib.asynccontextmanager
async def _door(**config: object) -> AsyncIterator[Door]:
    async with FakeOpenAI(reasoning="") as first, FakeOpenAI(reply="Answer from the second") as second:
        providers = [_provider("first", first, 1), _provider("second", second, 2)]
        server = RouterServer(door_config(providers=providers, strategy="priority", **config))
        await server.start()
        assert server.http is not None
        try:
            async with AsyncOpenAI(api_key=KEY, base_url=server.http.base_url, max_retries=0) as client:
                yield Door(client, first, second)
        finally:
            await server.stop(0)


@pytest.fixture
async def door() -> AsyncIterator[Door]:
    async with _door() as door:
        yield door


@pytest.fixture
async def timed_door() -> AsyncIterator[Door]:
    async with _door(first_chunk_timeout_s=FIRST_CHUNK_TIMEOUT_S) as door:
        yield door


def _chat_posts(upstream: FakeOpenAI) -> list[dict[str, object]]:
    return [r.json for r in upstream.requests if r.path.endswith("/chat/completions")]


async def test_a_whole_answer_is_asked_whole_with_usage_and_cost(door: Door) -> None:
    answer = await door.client.chat.completions.create(
        model=MODEL, messages=[{"role": "user", "content": "hi"}], max_tokens=50, temperature=0.5
    )
    (sent,) = _chat_posts(door.first)
    assert "stream" not in sent  # whole, not events to rebuild it from
    assert "stream_options" not in sent
    assert (sent["max_tokens"], sent["temperature"]) == (50, 0.5)
    assert answer.choices[0].message.content == "Hello from the fake model"
    assert answer.choices[0].finish_reason == "stop"
    assert answer.usage is not None
    words = 5  # the fake's words
    assert (answer.usage.prompt_tokens, answer.usage.completion_tokens) == (17, words)
    extra = answer.model_extra or {}
    price = PriceTable().price(MODEL)
    expected = (17 * price.input_per_m + words * price.output_per_m) / 1e6
    assert extra["modelyard"]["backend"] == "first"
    assert extra["modelyard"]["cost_usd"] == pytest.approx(expected)


async def test_a_streamed_request_still_streams_from_the_upstream(door: Door) -> None:
    stream = await door.client.chat.completions.create(
        model=MODEL, messages=[{"role": "user", "content": "hi"}], stream=True
    )
    text = "".join([c.choices[0].delta.content or "" async for c in stream if c.choices])
    assert text == "Hello from the fake model"
    (sent,) = _chat_posts(door.first)
    assert sent["stream"] is True


async def test_a_5xx_from_the_first_provider_fails_over_to_the_second(door: Door) -> None:
    door.first.inject(Fault(status=500, message="upstream fell over", path="/v1/chat/completions"))
    answer = await door.client.chat.completions.create(
        model=MODEL, messages=[{"role": "user", "content": "hi"}]
    )
    assert answer.choices[0].message.content == "Answer from the second"
    assert (answer.model_extra or {})["modelyard"]["backend"] == "second"
    assert len(_chat_posts(door.first)) == 1
    (sent,) = _chat_posts(door.second)
    assert "stream" not in sent


async def test_an_upstream_error_answer_is_mapped_as_for_a_stream(door: Door) -> None:
    # A 400 is the caller's fault: no failover, and the status and the provider's message come back.
    for upstream in (door.first, door.second):
        upstream.inject(Fault(status=400, message="messages: bad role", path="/v1/chat/completions"))
    with pytest.raises(openai.BadRequestError) as whole:
        await door.client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "hi"}])
    door.first.inject(Fault(status=400, message="messages: bad role", path="/v1/chat/completions"))
    with pytest.raises(openai.BadRequestError) as streamed:
        await door.client.chat.completions.create(
            model=MODEL, messages=[{"role": "user", "content": "hi"}], stream=True
        )
    assert "messages: bad role" in whole.value.message
    assert whole.value.message == streamed.value.message
    assert whole.value.status_code == streamed.value.status_code == 400


async def test_a_malformed_whole_answer_fails_over(door: Door) -> None:
    door.first.inject(Fault(malformed_after=0, path="/v1/chat/completions"))
    answer = await door.client.chat.completions.create(
        model=MODEL, messages=[{"role": "user", "content": "hi"}]
    )
    assert (answer.model_extra or {})["modelyard"]["backend"] == "second"


async def test_tool_calls_reasoning_and_logprobs_come_whole(door: Door) -> None:
    door.first.reasoning = "Think first."
    door.first.calls_per_answer = 2
    called = await door.client.chat.completions.create(
        model=MODEL,
        messages=[{"role": "user", "content": "weather?"}],
        tools=[WEATHER, {**WEATHER, "function": {**WEATHER["function"], "name": "get_time"}}],  # type: ignore[list-item,dict-item]
    )
    message = called.choices[0].message
    assert called.choices[0].finish_reason == "tool_calls"
    assert message.tool_calls is not None
    calls = [c for c in message.tool_calls if isinstance(c, ChatCompletionMessageFunctionToolCall)]
    assert [(c.id, c.function.name) for c in calls] == [
        ("call_0_get_weather", "get_weather"),
        ("call_1_get_time", "get_time"),
    ]
    assert {c.function.arguments for c in calls} == {door.first.tool_arguments}
    assert (message.model_extra or {})["reasoning_content"] == "Think first."
    door.first.reasoning = ""
    scored = await door.client.chat.completions.create(
        model=MODEL, messages=[{"role": "user", "content": "hi"}], logprobs=True, top_logprobs=2
    )
    logprobs = scored.choices[0].logprobs
    assert logprobs is not None
    assert logprobs.content is not None
    assert "".join(t.token for t in logprobs.content) == "Hello from the fake model"
    assert all(len(t.top_logprobs) == 2 for t in logprobs.content)
    assert all("stream" not in sent for sent in _chat_posts(door.first))


async def test_a_whole_answer_longer_than_the_first_chunk_timeout_is_not_abandoned(timed_door: Door) -> None:
    door = timed_door
    # Its first item is its end: the first-chunk timeout would cut every long answer, so it does not apply.
    door.first.whole_delay_s = FIRST_CHUNK_TIMEOUT_S + 1.0
    answer = await door.client.chat.completions.create(
        model=MODEL, messages=[{"role": "user", "content": "hi"}]
    )
    assert (answer.model_extra or {})["modelyard"]["backend"] == "first"
    assert answer.choices[0].message.content == "Hello from the fake model"
    assert _chat_posts(door.second) == []


async def test_a_stalled_stream_still_gives_way_after_the_first_chunk_timeout(timed_door: Door) -> None:
    door = timed_door
    door.first.inject(Fault(stall=True, path="/v1/chat/completions"))
    stream = await door.client.chat.completions.create(
        model=MODEL, messages=[{"role": "user", "content": "hi"}], stream=True
    )
    text = "".join([c.choices[0].delta.content or "" async for c in stream if c.choices])
    assert text == "Answer from the second"
