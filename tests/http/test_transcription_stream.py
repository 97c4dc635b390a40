"""POST /v1/audio/transcriptions with stream=true: OpenAI's transcript.text.delta events as segments are decoded,
then transcript.text.done with the whole text and usage, read by the official openai SDK."""

from __future__ import annotations

from typing import Any

import openai
import pytest
from openai import AsyncOpenAI

from router.server import RouterServer
from tests.http.conftest import KEY
from tests.http.test_embeddings_audio import _wav, audio_router  # noqa: F401  (the fixture)
from tests.support.fake_openai import FakeOpenAI


async def test_a_streamed_transcription_sends_each_segment_then_the_whole_text(
    audio_router: tuple[RouterServer, FakeOpenAI],  # noqa: F811
) -> None:
    server, _ = audio_router
    assert server.http is not None
    async with AsyncOpenAI(api_key=KEY, base_url=server.http.base_url, max_retries=0) as client:
        stream: Any = await client.audio.transcriptions.create(
            model="whisper-1", file=("speech.wav", _wav(), "audio/wav"), stream=True
        )
        events = [event async for event in stream]
    assert [e.type for e in events] == [
        "transcript.text.delta",
        "transcript.text.delta",
        "transcript.text.done",
    ]
    assert "".join(e.delta for e in events[:2]) == "Hello there. General Kenobi."
    assert events[-1].text == "Hello there. General Kenobi."
    assert events[-1].usage.seconds == pytest.approx(1.0)


async def test_a_streamed_transcription_refused_before_it_starts_is_a_plain_error(
    audio_router: tuple[RouterServer, FakeOpenAI],  # noqa: F811
) -> None:
    server, _ = audio_router
    assert server.http is not None
    async with AsyncOpenAI(api_key=KEY, base_url=server.http.base_url, max_retries=0) as client:
        with pytest.raises(openai.NotFoundError):
            await client.audio.transcriptions.create(model="whisper-9", file=("a.wav", _wav()), stream=True)
