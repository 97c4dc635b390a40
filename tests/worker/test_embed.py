"""Embeddings through a real Worker server on vLLM's pooling runner with the packaged all-MiniLM-L6-v2."""

from __future__ import annotations

import math

import grpc
import pytest
from modelyard.v1 import inference_pb2 as pb

from gpu_worker.engine_set import EngineSet
from gpu_worker.engines.vllm_embed import VllmEmbedEngine
from tests.worker.servers import serving

pytestmark = pytest.mark.engines


def _cosine(a: list[float], b: list[float]) -> float:
    dot = sum(x * y for x, y in zip(a, b, strict=True))
    return dot / (math.sqrt(sum(x * x for x in a)) * math.sqrt(sum(y * y for y in b)))


async def test_vectors_have_the_model_dimension_and_meaning(embed_engine: VllmEmbedEngine) -> None:
    texts = [
        "A cat sleeps on the sofa.",
        "A kitten is napping on the couch.",
        "Interest rates rose sharply today.",
    ]
    async with serving(EngineSet(embed=[embed_engine])) as stub:
        response = await stub.Embed(pb.EmbedRequest(request_id="e1", model="all-minilm-l6-v2", inputs=texts))
    vectors = [list(embedding.values) for embedding in response.embeddings]
    assert [len(vector) for vector in vectors] == [384, 384, 384]
    assert _cosine(vectors[0], vectors[1]) > _cosine(vectors[0], vectors[2]) + 0.3
    assert response.usage.prompt_tokens > len(texts)
    assert response.usage.model == "all-minilm-l6-v2"
    assert response.usage.request_id == "e1"


async def test_embed_served_models_and_errors(embed_engine: VllmEmbedEngine) -> None:
    assert embed_engine.dimensions == 384
    async with serving(EngineSet(embed=[embed_engine])) as stub:
        with pytest.raises(grpc.aio.AioRpcError) as unknown:
            await stub.Embed(pb.EmbedRequest(model="tiny-random-llama", inputs=["x"]))
        assert unknown.value.code() == grpc.StatusCode.NOT_FOUND
        assert "all-minilm-l6-v2" in (unknown.value.details() or "")
        with pytest.raises(grpc.aio.AioRpcError) as empty:
            await stub.Embed(pb.EmbedRequest(model="all-minilm-l6-v2", inputs=["ok", ""]))
        assert empty.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert "inputs[1]" in (empty.value.details() or "")
        with pytest.raises(grpc.aio.AioRpcError) as too_long:
            await stub.Embed(pb.EmbedRequest(model="all-minilm-l6-v2", inputs=["word " * 2000]))
        assert too_long.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert "inputs[0]" in (too_long.value.details() or "")
