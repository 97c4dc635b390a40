"""Embeddings and transcriptions through the HTTP door with the official openai SDK.

Transcriptions go to an OpenAI-format upstream (tests.support.fake_openai) configured as a provider, so
the door's multipart reading and its three answer formats are checked without an engine; tests/e2e has
the same through a real Whisper worker.
"""

from __future__ import annotations

import io
import wave
from collections.abc import AsyncIterator

import openai
import pytest
from openai import AsyncOpenAI

from core.input_limits import InputLimits
from router.config.settings import ProviderConfig
from router.server import RouterServer
from tests.http.conftest import KEY, WorkerFactory, door_config
from tests.support.fake_openai import FakeOpenAI


async def test_embeddings_as_floats_and_base64(client: AsyncOpenAI, workers: WorkerFactory) -> None:
    await workers("w1")
    # The SDK asks for base64 by default and decodes it; floats when asked.
    packed = await client.embeddings.create(model="echo", input=["abc", "hello"])
    plain = await client.embeddings.create(model="echo", input="abcd", encoding_format="float")
    assert [d.embedding for d in packed.data] == [[3.0, 1.0], [5.0, 1.0]]
    assert [d.index for d in packed.data] == [0, 1]
    assert plain.data[0].embedding == [4.0, 1.0]
    assert packed.usage.prompt_tokens == 2
    with pytest.raises(openai.BadRequestError) as caught:
        await client.embeddings.create(model="echo", input=[[1, 2, 3]])
    assert "token arrays" in caught.value.message


def _wav(seconds: float = 1.0) -> bytes:
    out = io.BytesIO()
    with wave.open(out, "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(16000)
        wav.writeframes(b"\0\0" * int(16000 * seconds))
    return out.getvalue()


@pytest.fixture
async def audio_router() -> AsyncIterator[tuple[RouterServer, FakeOpenAI]]:
    async with FakeOpenAI() as upstream:
        provider = ProviderConfig(
            name="cloud",
            kind="openai_compatible",
            api_key=upstream.api_key,
            base_url=upstream.base_url,
            transcribe_models=["whisper-1"],
        )
        server = RouterServer(door_config(providers=[provider], input=InputLimits(max_audio_bytes=100_000)))
        await server.start()
        try:
            yield server, upstream
        finally:
            await server.stop(0)


async def test_transcriptions_in_json_text_and_verbose_json(
    audio_router: tuple[RouterServer, FakeOpenAI],
) -> None:
    server, upstream = audio_router
    assert server.http is not None
    async with AsyncOpenAI(api_key=KEY, base_url=server.http.base_url, max_retries=0) as client:
        audio = ("speech.wav", _wav(), "audio/wav")
        plain = await client.audio.transcriptions.create(model="whisper-1", file=audio)
        assert plain.text == "Hello there. General Kenobi."
        text = await client.audio.transcriptions.create(model="whisper-1", file=audio, response_format="text")
        assert text.strip() == "Hello there. General Kenobi."
        verbose = await client.audio.transcriptions.create(
            model="whisper-1",
            file=audio,
            response_format="verbose_json",
            timestamp_granularities=["word", "segment"],
            language="en",
        )
    assert [s.text.strip() for s in verbose.segments or []] == ["Hello there.", "General Kenobi."]
    assert verbose.words is not None
    assert [w.word for w in verbose.words][:2] == ["Hello", "there."]
    assert verbose.duration == pytest.approx(1.0)
    assert upstream.requests[-1].files["file"][1] == _wav()


async def test_transcription_limits_and_missing_file(audio_router: tuple[RouterServer, FakeOpenAI]) -> None:
    server, _ = audio_router
    assert server.http is not None
    async with AsyncOpenAI(api_key=KEY, base_url=server.http.base_url, max_retries=0) as client:
        with pytest.raises(openai.BadRequestError) as caught:
            await client.audio.transcriptions.create(model="whisper-1", file=("long.wav", _wav(5.0)))
        assert "100000 byte limit" in caught.value.message
        with pytest.raises(openai.BadRequestError) as caught:
            await client.audio.transcriptions.create(
                model="whisper-1", file=("a.wav", _wav()), response_format="srt"
            )
        assert "response_format" in caught.value.message
