"""The router's own work per request, without gRPC: RequestPipeline.chat in one process, on the production
defaults (authentication, validation, estimates, limits, cache lookup, budgets, scheduling with every
scorer, failover, accounting and the SQLite ledger), in front of a backend that answers at once.

The overhead table's "CPU µs per request in the middle" is this plus what gRPC costs on both legs; the bare
relay's figure there is the gRPC part alone. Their difference to this one is what the router's work costs
beyond its own Python when many requests interleave (cold caches, more objects per request).
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from modelyard.v1 import inference_pb2 as pb

from bench.load import chat_request
from bench.tokens import TOKEN
from core import event_loop
from router.backends.base import Backend, ModelSpec
from router.config.settings import RouterConfig
from router.pipeline import Call
from router.server import RouterServer

MODEL = "bench"


@dataclass
class InstantBackend(Backend):
    """Answers every chat at once with `chunks` one-token deltas: the cost of a backend is left out."""

    chunks: int = 1

    @property
    def max_concurrency(self) -> int:
        return 1 << 20

    async def chat(self, request: pb.ChatRequest, timeout: float | None) -> AsyncIterator[pb.ChatResponse]:
        for _ in range(self.chunks):
            yield pb.ChatResponse(delta=pb.ChatDelta(text=TOKEN))
        usage = pb.Usage(model=MODEL, completion_tokens=self.chunks, finish_reason=pb.FINISH_REASON_STOP)
        yield pb.ChatResponse(usage=usage)

    async def embed(self, request: pb.EmbedRequest, timeout: float | None) -> pb.EmbedResponse:
        raise NotImplementedError("chat only")

    async def transcribe(
        self, config: pb.TranscribeConfig, audio: Sequence[bytes], timeout: float | None
    ) -> AsyncIterator[pb.TranscribeResponse]:
        raise NotImplementedError("chat only")
        yield  # an async generator, as the interface says


async def _measure(requests: int, chunks: int) -> float:
    with tempfile.TemporaryDirectory(prefix="modelyard-bench-") as ledger_dir:
        config = RouterConfig(listen="127.0.0.1:0", usage_db=str(Path(ledger_dir) / "usage.sqlite3"))
        server = RouterServer(config)
        await server.start()
        try:
            capabilities = frozenset({pb.CAPABILITY_CHAT})
            models = [ModelSpec(MODEL, capabilities)]
            server.state.registry.add(
                InstantBackend(id="instant", kind="worker", models=models, chunks=chunks)
            )

            async def one() -> None:
                async for _ in server.pipeline.chat(chat_request(MODEL, chunks), Call()):
                    pass

            for _ in range(min(500, requests)):  # warm-up: imports, caches, the ledger's first batch
                await one()
            began = time.process_time()
            for _ in range(requests):
                await one()
            return (time.process_time() - began) / requests * 1e6
        finally:
            await server.stop(0.1)


def cpu_per_request_us(requests: int = 5000, chunks: int = 1) -> float:
    """CPU µs per request, one request at a time, on the event loop the router runs on."""
    return event_loop.run(_measure(requests, chunks))


if __name__ == "__main__":
    print(f"{cpu_per_request_us():.1f} µs of CPU per request (1 chunk)")
    print(f"{cpu_per_request_us(chunks=64):.1f} µs of CPU per request (64 chunks)")
