"""A bench worker that streams tokens at a GPU's pace: the real worker (gpu_worker.app.WorkerApp: its
servicer, admission, registration and --stream-interval-ms) around an engine that sleeps between tokens.

The engine answers `sampling.max_tokens` tokens (bench.tokens.TOKEN each), the first after `ttft_s`, then
one every `token_s`, every sequence on its own clock, as a GPU batch does: nothing here waits for a device.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncGenerator
from dataclasses import dataclass
from multiprocessing.connection import Connection

from bench.processes import next_command
from bench.tokens import TOKEN
from gpu_worker.app import WorkerApp, WorkerOptions
from gpu_worker.engine_set import EngineSet
from gpu_worker.engines.base import ChatEngine, ChatEvent, ChatFinished, ChatInput, EngineLoad, TextDelta
from gpu_worker.router_pool import parse_router_targets


@dataclass(frozen=True)
class PacedSpec:
    worker_id: str
    model: str
    router: str
    stream_interval_ms: float = 0.0
    ttft_s: float = 0.03
    token_s: float = 0.015  # a sequence's pace on a busy GPU: 10-20 ms a token
    slots: int = 256


class PacedEngine(ChatEngine):
    engine_name = "bench-paced"
    max_context_tokens = 1_000_000

    def __init__(self, model_id: str, ttft_s: float, token_s: float, slots: int) -> None:
        self.model_id = model_id
        self.batch_size = slots
        self._ttft_s = ttft_s
        self._token_s = token_s
        self._running = 0

    async def chat(self, request: ChatInput) -> AsyncGenerator[ChatEvent, None]:
        tokens = request.sampling.max_tokens or 1
        self._running += 1
        try:
            await asyncio.sleep(self._ttft_s)
            for i in range(tokens):
                if i:
                    await asyncio.sleep(self._token_s)
                yield TextDelta(TOKEN)
        finally:
            self._running -= 1
        yield ChatFinished(8, tokens, "stop")

    def load(self) -> EngineLoad:
        return EngineLoad(running=self._running)

    async def close(self) -> None:
        pass


async def _serve(conn: Connection, spec: PacedSpec) -> None:
    engine = PacedEngine(spec.model, spec.ttft_s, spec.token_s, spec.slots)
    options = WorkerOptions(
        worker_id=spec.worker_id,
        routers=parse_router_targets([spec.router]),
        listen="127.0.0.1:0",
        max_concurrency=spec.slots,
        grace_seconds=1.0,
        stream_interval_ms=spec.stream_interval_ms,
    )
    app = WorkerApp(options, EngineSet(chat=[engine]))
    address = await app.start()
    conn.send({"address": address})
    while await next_command(conn) != "stop":
        conn.send("ok")
    app.drain("bench done")
    await app.run_until_drained()
    conn.send("stopped")


def paced_worker_child(conn: Connection, spec: PacedSpec) -> None:
    """Process entry: serve the paced worker until told to stop."""
    logging.basicConfig(level=logging.ERROR)
    asyncio.run(_serve(conn, spec))
