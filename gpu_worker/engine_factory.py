"""Starting the engines the command line asks for. Imports vLLM and faster-whisper only when they are used."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from gpu_worker.engine_set import EngineSet
from gpu_worker.engines.base import ChatEngine, EmbedEngine, TranscribeEngine
from gpu_worker.smollm2 import SMOLLM2_ALIASES, SMOLLM2_MODEL_ID, ensure_smollm2
from gpu_worker.tiny_model import TINY_MODEL_ID, ensure_tiny_chat_model

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class EngineChoices:
    chat_model: str | None  # None: no chat; "": the default (SmolLM2-135M-Instruct)
    chat_model_name: str | None
    whisper_model: str | None  # None: no transcription
    whisper_workers: int
    embed_model: str | None  # None: no embeddings
    max_num_seqs: int | None  # None: vLLM's own batch size for the device
    kv_cache_gib: float | None
    gpu_memory_utilization: float | None = None  # None: vLLM's default (0.9 of the GPU)
    tensor_parallel_size: int = 1  # GPUs one chat model is split across
    tool_call_parser: str | None = None  # vLLM tool parser name for the chat model
    reasoning_parser: str | None = None  # vLLM reasoning parser name for the chat model


def chat_model_source(choices: EngineChoices) -> tuple[str, str] | None:
    """(model path or hub id, served id) for chat; a built-in model is prepared in the model cache first."""
    if choices.chat_model is None:
        return None
    model = choices.chat_model or SMOLLM2_MODEL_ID
    if model in SMOLLM2_ALIASES:
        return str(ensure_smollm2()), choices.chat_model_name or SMOLLM2_MODEL_ID
    if model == TINY_MODEL_ID:
        path = ensure_tiny_chat_model()
        logger.warning(
            "chat is served by %s, a tiny model with RANDOM weights: its answers are random noise. "
            "Leave --chat-model out for the default model, or name a Hugging Face id or local path.",
            TINY_MODEL_ID,
        )
        return str(path), choices.chat_model_name or TINY_MODEL_ID
    local = Path(model).expanduser()
    default_name = local.name if local.exists() else model
    return (str(local) if local.exists() else model), choices.chat_model_name or default_name


def start_engines(choices: EngineChoices) -> EngineSet:
    """Start each engine in turn (vLLM takes tens of seconds on CPU); call from the event loop's thread."""
    chat: list[ChatEngine] = []
    embed: list[EmbedEngine] = []
    transcribe: list[TranscribeEngine] = []
    source = chat_model_source(choices)
    if source is not None:
        from gpu_worker.engines.vllm_chat import VllmChatEngine

        chat.append(
            VllmChatEngine.start(
                source[0],
                source[1],
                max_num_seqs=choices.max_num_seqs,
                kv_cache_gib=choices.kv_cache_gib,
                gpu_memory_utilization=choices.gpu_memory_utilization,
                tensor_parallel_size=choices.tensor_parallel_size,
                tool_parser=choices.tool_call_parser,
                reasoning_parser=choices.reasoning_parser,
            )
        )
    if choices.embed_model is not None:
        from gpu_worker.engines.vllm_embed import VllmEmbedEngine, resolve_embed_model

        path, model_id = resolve_embed_model(choices.embed_model)
        embed.append(VllmEmbedEngine.start(path, model_id, max_num_seqs=choices.max_num_seqs))
    if choices.whisper_model is not None:
        from gpu_worker.engines.whisper import WhisperEngine

        transcribe.append(WhisperEngine.start(choices.whisper_model, workers=choices.whisper_workers))
    return EngineSet(chat=chat, embed=embed, transcribe=transcribe)
