"""Real grpc.aio servers on 127.0.0.1:0 for the tests: a Worker around given engines, and polling helpers."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any, TypeVar, cast

import grpc
from modelyard.worker.v1 import worker_pb2_grpc

from gpu_worker.admission import Admission
from gpu_worker.engine_set import EngineSet
from gpu_worker.server import WorkerServer
from gpu_worker.servicer import WorkerServicer

T = TypeVar("T")


@asynccontextmanager
async def serving(
    engines: EngineSet,
    *,
    max_concurrency: int = 8,
    max_queue: int = 16,
    worker_id: str = "test-worker",
    admission: Admission | None = None,
    stream_interval_s: float = 0.0,
) -> AsyncIterator[worker_pb2_grpc.WorkerServiceStub]:
    """Serve `engines` on a free port and yield a real stub connected to it. Pass `admission` to watch it."""
    admission = admission or Admission(max_concurrency, max_queue)
    server = WorkerServer(WorkerServicer(engines, admission, worker_id, stream_interval_s))
    port = await server.start("127.0.0.1:0")
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            yield worker_pb2_grpc.WorkerServiceStub(channel)
    finally:
        await server.stop(grace=None)


async def read_rest(call: grpc.aio.UnaryStreamCall[Any, T] | grpc.aio.StreamStreamCall[Any, T]) -> list[T]:
    """Every remaining response of a streaming call read with read() (grpc forbids mixing it with `async for`)."""
    responses: list[T] = []
    while True:
        response = await call.read()
        if response is grpc.aio.EOF:
            return responses
        responses.append(cast(T, response))
