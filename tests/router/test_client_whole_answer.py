"""The Python client's `chat_text` asks for a whole answer (ChatRequest.whole_answer): through a real router, an
OpenAI-compatible upstream is asked without "stream", while failover and the router's usage hold as for a
stream; `chat` still streams."""

from __future__ import annotations

import asyncio
from pathlib import Path

from modelyard_client import AsyncClient, ChatResult, Client, TextDelta

from router.server import RouterServer
from tests.support.clouds import config_file, start_configured_router
from tests.support.fake_anthropic import FakeAnthropic
from tests.support.fake_http import Fault
from tests.support.fake_openai import FakeOpenAI

CHAT_PATH = "/v1/chat/completions"


async def _router(tmp_path: Path, config: str) -> RouterServer:
    return await start_configured_router(config_file(tmp_path, config))


def _blocking_chat_text(address: str) -> ChatResult:
    with Client(address) as client:
        return client.chat_text("hi", model="auto", strategy="fallback")


def _chats(openai: FakeOpenAI) -> list[dict[str, object]]:
    return [r.json for r in openai.requests if r.path == CHAT_PATH]


async def test_chat_text_asks_the_upstream_for_a_whole_answer_and_chat_streams(
    clouds: tuple[FakeOpenAI, FakeAnthropic], tmp_path: Path
) -> None:
    openai, _ = clouds
    server = await _router(tmp_path, "providers: {openai: {kind: openai, chat_models: [gpt-4o-mini]}}\n")
    try:
        async with AsyncClient(server.address) as client:
            whole = await client.chat_text("hi", model="gpt-4o-mini")
            streamed = [e async for e in client.chat("hi", model="gpt-4o-mini")]
    finally:
        await server.stop(0)
    first, second = _chats(openai)
    assert "stream" not in first  # one JSON answer, not events for the router to rebuild
    assert second.get("stream") is True
    assert whole.text == "".join(e.text for e in streamed if isinstance(e, TextDelta))
    assert whole.usage is not None
    assert (whole.usage.backend, whole.usage.model) == ("openai", "gpt-4o-mini")
    assert whole.usage.prompt_tokens > 0
    assert whole.usage.cost_usd > 0  # priced by the router, as a stream's usage is


async def test_a_whole_answer_still_fails_over(
    clouds: tuple[FakeOpenAI, FakeAnthropic], tmp_path: Path
) -> None:
    openai, anthropic = clouds
    openai.inject(*[Fault(status=500, path=CHAT_PATH)] * 50)
    server = await _router(
        tmp_path,
        "providers: {openai: {kind: openai, priority: 1}, anthropic: {kind: anthropic, priority: 2}}\n",
    )
    try:
        result = await asyncio.to_thread(_blocking_chat_text, server.address)  # it sets whole_answer too
    finally:
        await server.stop(0)
    assert _chats(openai)  # the failed attempt(s)
    assert all("stream" not in sent for sent in _chats(openai))
    assert anthropic.requests
    assert result.text
    assert result.usage is not None
    assert result.usage.backend == "anthropic"
    assert result.usage.cost_usd > 0
