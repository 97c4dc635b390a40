"""The engines one worker serves, looked up by model id and capability."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from typing import TypeVar

from modelyard.v1 import backend_pb2, inference_pb2

from core.errors import ModelNotFound
from gpu_worker.engines.base import ChatEngine, EmbedEngine, Engine, EngineLoad, TranscribeEngine

logger = logging.getLogger(__name__)

E = TypeVar("E", bound=Engine)


class EngineSet:
    def __init__(
        self,
        chat: Sequence[ChatEngine] = (),
        embed: Sequence[EmbedEngine] = (),
        transcribe: Sequence[TranscribeEngine] = (),
    ) -> None:
        self._chat = {engine.model_id: engine for engine in chat}
        self._embed = {engine.model_id: engine for engine in embed}
        self._transcribe = {engine.model_id: engine for engine in transcribe}

    @property
    def engines(self) -> list[Engine]:
        return [*self._chat.values(), *self._embed.values(), *self._transcribe.values()]

    def batch_size(self) -> int:
        """Requests the engines batch at once: the largest of them (0 when none batches)."""
        return max((engine.batch_size for engine in self.engines), default=0)

    def model_ids(self) -> list[str]:
        return sorted({engine.model_id for engine in self.engines})

    def chat_engines(self) -> list[ChatEngine]:
        return list(self._chat.values())

    def chat_engine(self, model: str) -> ChatEngine:
        return self._find(self._chat, model, "chat")

    def embed_engine(self, model: str) -> EmbedEngine:
        return self._find(self._embed, model, "embeddings")

    def transcribe_engine(self, model: str) -> TranscribeEngine:
        return self._find(self._transcribe, model, "transcription")

    def _find(self, engines: dict[str, E], model: str, what: str) -> E:
        engine = engines.get(model)
        if engine is None:
            served = ", ".join(sorted(engines)) or "none"
            raise ModelNotFound(
                f"model: {model!r} is not served for {what} by this worker; it serves: {served}"
            )
        return engine

    def served_models(self) -> list[backend_pb2.ServedModel]:
        capabilities: dict[str, list[inference_pb2.Capability]] = {}
        by_id: dict[str, Engine] = {}
        for capability, engines in (
            (inference_pb2.CAPABILITY_CHAT, self._chat),
            (inference_pb2.CAPABILITY_EMBED, self._embed),
            (inference_pb2.CAPABILITY_TRANSCRIBE, self._transcribe),
        ):
            for model_id, engine in engines.items():
                capabilities.setdefault(model_id, []).append(capability)
                by_id.setdefault(model_id, engine)
        return [
            backend_pb2.ServedModel(
                id=model_id,
                capabilities=capabilities[model_id],
                engine=by_id[model_id].engine_name,
                max_context_tokens=by_id[model_id].max_context_tokens,
            )
            for model_id in sorted(by_id)
        ]

    def load(self) -> EngineLoad:
        loads = [engine.load() for engine in self.engines]
        return EngineLoad(
            running=sum(load.running for load in loads),
            waiting=sum(load.waiting for load in loads),
            kv_cache_usage=max((load.kv_cache_usage for load in loads), default=0.0),
            tokens_per_second=sum(load.tokens_per_second for load in loads),
            queued_audio_seconds=sum(load.queued_audio_seconds for load in loads),
            aborted_total=sum(load.aborted_total for load in loads),
        )

    async def close(self) -> None:
        results = await asyncio.gather(*(engine.close() for engine in self.engines), return_exceptions=True)
        for engine, result in zip(self.engines, results, strict=True):
            if isinstance(result, BaseException):
                logger.warning("closing %s failed: %s", engine.model_id, result)
