"""The asyncio client against the same real server as the blocking client's tests."""

from __future__ import annotations

import asyncio
from pathlib import Path

import grpc
import pytest
from modelyard_client import (
    AsyncClient,
    DeadlineExceeded,
    NotFound,
    ResourceExhausted,
    Segment,
    TextDelta,
    TranscriptionInfo,
    Unavailable,
    Usage,
)

from tests.client.router_double import DELTAS, RouterDouble, error_message


async def test_chat_streams_deltas_then_usage(double: RouterDouble, address: str) -> None:
    async with AsyncClient(address, api_key="k") as client:
        events = [event async for event in client.chat([{"role": "user", "content": "hi"}], model="m")]
    assert events[:-1] == [TextDelta(t) for t in DELTAS]
    assert isinstance(events[-1], Usage)
    assert events[-1].request_id == "generated-id"
    assert double.metadata[0]["authorization"] == "Bearer k"


async def test_chat_text(double: RouterDouble, address: str) -> None:
    async with AsyncClient(address) as client:
        result = await client.chat_text("hi", system="s", max_tokens=5)
    assert result.text == "Hello, world"
    (request,) = double.chat_requests
    assert request.sampling.max_tokens == 5
    assert request.whole_answer  # an upstream that can may answer whole
    assert "authorization" not in double.metadata[0]


async def test_errors_are_modelyard_errors(double: RouterDouble, address: str) -> None:
    async with AsyncClient(address) as client:
        with pytest.raises(NotFound) as caught:
            await client.chat_text("hi", model="error:NOT_FOUND")
        assert caught.value.message == error_message(grpc.StatusCode.NOT_FOUND)
        with pytest.raises(ResourceExhausted):
            await client.embed(["a"], model="error:RESOURCE_EXHAUSTED")
        with pytest.raises(Unavailable):
            async for _ in client.transcribe(b"RIFF", model="error:UNAVAILABLE"):
                pass


async def test_a_failure_mid_stream_comes_after_the_text_already_sent(
    double: RouterDouble, address: str
) -> None:
    received: list[object] = []
    async with AsyncClient(address) as client:
        with pytest.raises(Unavailable):
            async for event in client.chat("hi", model="error-after:UNAVAILABLE"):
                received.append(event)
    assert received == [TextDelta(DELTAS[0])]


async def test_timeout_is_the_call_deadline(double: RouterDouble, address: str) -> None:
    async with AsyncClient(address, timeout=0.3) as client:
        with pytest.raises(DeadlineExceeded):
            await client.chat_text("hi", model="slow")


async def test_cancelling_the_task_cancels_the_call(double: RouterDouble, address: str) -> None:
    async with AsyncClient(address) as client:
        task = asyncio.create_task(client.chat_text("hi", model="slow"))
        await asyncio.to_thread(double.first_delta_sent.wait, 5)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert await asyncio.to_thread(double.cancelled.wait, 5)


async def test_embed_models_status_usage(double: RouterDouble, address: str) -> None:
    async with AsyncClient(address) as client:
        embeddings = await client.embed("abc", model="e5")
        models = await client.models()
        status = await client.status()
        report = await client.usage()
    assert embeddings.vectors == [[3.0, 0.0]]
    assert (report.days, len(report.rows)) == (1, 2)
    assert [m.id for m in models] == ["qwen-small", "whisper-tiny.en"]
    assert [b.id for b in status.backends] == ["gpu-a", "openai"]


async def test_transcribe(double: RouterDouble, address: str, wav_file: Path) -> None:
    async with AsyncClient(address) as client:
        events = [e async for e in client.transcribe(wav_file, model="whisper-small")]
    assert len(double.audio_chunks) == 3
    assert double.transcribe_configs[0].model == "whisper-small"
    assert isinstance(events[0], TranscriptionInfo)
    assert sum(isinstance(e, Segment) for e in events) == 3
    assert isinstance(events[-1], Usage)
    assert events[-1].audio_seconds == pytest.approx(sum(double.audio_chunks) / 32000)


async def test_client_made_outside_a_loop_works_inside_one(double: RouterDouble, address: str) -> None:
    # The channel is opened on first use, on the loop that uses it.
    client = await asyncio.to_thread(AsyncClient, address)
    try:
        assert (await client.chat_text("hi")).text == "Hello, world"
    finally:
        await client.close()


async def test_an_error_while_audio_is_still_uploading_keeps_the_servers_status(
    double: RouterDouble, address: str
) -> None:
    # grpc.aio would report INTERNAL for most of these (grpc/grpc#36066); the client must not.
    audio = b"\x00" * (8 * 64 * 1024)
    async with AsyncClient(address) as client:
        for _ in range(10):
            with pytest.raises(NotFound) as caught:
                async for _ in client.transcribe(audio, model="error:NOT_FOUND"):
                    pass
            assert caught.value.message == error_message(grpc.StatusCode.NOT_FOUND)
