"""The HTTP door end to end: the official openai SDK -> router's HTTP door -> a real worker (vLLM CPU chat,
MiniLM embeddings, Whisper tiny.en) and back."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from openai import AsyncOpenAI

from router.server import RouterServer
from tests.e2e.conftest import router_config
from tests.support.polling import wait_until
from tests.worker.process import WorkerProcess, running_worker

pytestmark = pytest.mark.engines
CHAT = "tiny-random-llama"


@pytest.fixture(scope="module")
async def door() -> AsyncIterator[RouterServer]:
    config = router_config()
    config.http_listen = "127.0.0.1:0"
    server = RouterServer(config)
    await server.start()
    yield server
    await server.stop(0)


@pytest.fixture(scope="module")
async def worker(door: RouterServer) -> AsyncIterator[WorkerProcess]:
    async with running_worker(
        door.address,
        "--worker-id",
        "gpu-http",
        "--chat-model",
        CHAT,
        "--embed-model",
        "minilm",
        ready_timeout=600.0,
    ) as worker:
        yield worker


@pytest.fixture
async def client(door: RouterServer, worker: WorkerProcess) -> AsyncIterator[AsyncOpenAI]:
    assert door.http is not None
    async with AsyncOpenAI(api_key="unused", base_url=door.http.base_url, max_retries=0) as client:
        yield client


async def test_chat_streams_with_usage_and_answers_whole(client: AsyncOpenAI) -> None:
    stream = await client.chat.completions.create(
        model=CHAT,
        messages=[{"role": "user", "content": "hello"}],
        max_tokens=8,
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = [chunk async for chunk in stream]
    assert sum(1 for c in chunks if c.choices and c.choices[0].delta.content) > 1
    usage = chunks[-1].usage
    assert usage is not None
    assert usage.completion_tokens == 8
    whole = await client.chat.completions.create(
        model=CHAT, messages=[{"role": "user", "content": "hello"}], max_tokens=4
    )
    assert whole.choices[0].message.content
    assert whole.usage is not None
    assert whole.usage.completion_tokens == 4
    assert whole.choices[0].finish_reason == "length"


async def test_embeddings_and_models(client: AsyncOpenAI) -> None:
    answer = await client.embeddings.create(model="all-minilm-l6-v2", input=["a cat", "a dog"])
    assert [len(d.embedding) for d in answer.data] == [384, 384]
    ids = {m.id async for m in client.models.list()}
    assert {CHAT, "all-minilm-l6-v2", "whisper-tiny.en"} <= ids


async def test_transcription_json_and_verbose_json(client: AsyncOpenAI, speech: Path) -> None:
    audio = await asyncio.to_thread(speech.read_bytes)
    plain = await client.audio.transcriptions.create(model="whisper-tiny.en", file=("speech.wav", audio))
    words = plain.text.lower()
    assert sum(word in words for word in ("quick", "brown", "fox", "lazy", "dog")) >= 4
    verbose = await client.audio.transcriptions.create(
        model="whisper-tiny.en",
        file=("speech.wav", audio),
        response_format="verbose_json",
        timestamp_granularities=["word"],
    )
    assert verbose.segments
    assert verbose.words
    assert verbose.duration > 0


async def test_hanging_up_frees_the_engine(
    client: AsyncOpenAI, door: RouterServer, worker: WorkerProcess
) -> None:
    stream = await client.chat.completions.create(
        model=CHAT, messages=[{"role": "user", "content": "tell me everything"}], max_tokens=2000, stream=True
    )
    async for chunk in stream:
        if chunk.choices and chunk.choices[0].delta.content:
            break
    backend = door.registry.get(worker.worker_id)
    assert backend is not None

    def engine_busy() -> int:
        load = backend.load_report()
        return 0 if load is None else int(load.running + load.waiting)

    await wait_until(lambda: engine_busy() > 0, timeout=5.0)
    await stream.close()  # hang up: the worker's load reports (every 500 ms) show the engine freed
    await wait_until(lambda: engine_busy() == 0 and backend.in_flight == 0, timeout=5.0)
