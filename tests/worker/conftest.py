"""Fixtures for the worker tests. Engines start once per session: vLLM takes tens of seconds on CPU."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from gpu_worker.engine_env import apply_engine_env_defaults
from tests.worker.speech import make_speech_wav, wav_to_pcm_s16le

if TYPE_CHECKING:
    from gpu_worker.engines.vllm_chat import VllmChatEngine
    from gpu_worker.engines.vllm_embed import VllmEmbedEngine
    from gpu_worker.engines.whisper import WhisperEngine

# Before anything imports vLLM, which reads these at import time. The engines themselves are imported inside
# the fixtures, so tests that start no engine do not pay for importing vLLM.
apply_engine_env_defaults()


@pytest.fixture(scope="session")
async def chat_engine() -> AsyncIterator[VllmChatEngine]:
    from gpu_worker.engines.vllm_chat import VllmChatEngine
    from gpu_worker.tiny_model import TINY_MODEL_ID, ensure_tiny_chat_model

    engine = VllmChatEngine.start(str(ensure_tiny_chat_model()), TINY_MODEL_ID, max_num_seqs=8)
    yield engine
    await engine.close()


@pytest.fixture(scope="session")
async def embed_engine() -> AsyncIterator[VllmEmbedEngine]:
    from gpu_worker.engines.vllm_embed import VllmEmbedEngine, resolve_embed_model

    path, model_id = resolve_embed_model("minilm")
    engine = VllmEmbedEngine.start(path, model_id, max_num_seqs=8)
    yield engine
    await engine.close()


@pytest.fixture(scope="session")
async def whisper_engine() -> AsyncIterator[WhisperEngine]:
    from gpu_worker.engines.whisper import WhisperEngine

    engine = WhisperEngine.start("whisper-tiny.en", workers=2)
    yield engine
    await engine.close()


@pytest.fixture(scope="session")
def speech_wav(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_speech_wav(tmp_path_factory.mktemp("speech"))


@pytest.fixture(scope="session")
def speech_file(speech_wav: Path) -> bytes:
    """The spoken sentence as the bytes of a WAV file."""
    return speech_wav.read_bytes()


@pytest.fixture(scope="session")
def speech_pcm(speech_wav: Path) -> bytes:
    """The spoken sentence as raw PCM s16le at 16 kHz."""
    return wav_to_pcm_s16le(speech_wav)
