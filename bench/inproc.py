"""One process for the admission benches: a router, bench workers (4 running, the rest queued) and a cloud
double, started on 127.0.0.1 ports in this event loop, and a chat call timed from the client's side.

The figures are hundreds of milliseconds (queues, a 250 ms cloud), so sharing one loop costs them little; the
processes of bench.simulation would cost more CPU than these loads do.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import socket
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass

import grpc
from aiohttp import web
from modelyard.v1 import inference_pb2 as pb
from modelyard.v1 import router_pb2_grpc
from modelyard.worker.v1 import worker_pb2_grpc

from bench.fixtures import BenchWorker, WorkerSpec
from bench.openai_server import make_app
from router.config.settings import RouterConfig
from router.server import RouterServer

SLOTS, QUEUE = 4, 64  # each worker runs 4 at once and queues the rest (bounded well above the load)
MODEL = "bench"


@dataclass
class Outcome:
    tenant: str
    at_s: float  # since the load began
    end_s: float
    ttft_ms: float | None
    backend: str
    error: str = ""


@contextlib.asynccontextmanager
async def workers(
    router: str, ttft_s: float, token_s: float, count: int = 2
) -> AsyncIterator[list[BenchWorker]]:
    started: list[tuple[BenchWorker, grpc.aio.Server, asyncio.Task[None]]] = []
    try:
        for i in range(count):
            spec = WorkerSpec(f"w{i + 1}", MODEL, ttft_s, token_s, SLOTS, QUEUE, router)
            worker = BenchWorker(spec)
            server = grpc.aio.server()
            worker_pb2_grpc.add_WorkerServiceServicer_to_server(worker, server)
            address = f"127.0.0.1:{server.add_insecure_port('127.0.0.1:0')}"
            await server.start()
            acked = asyncio.Event()
            lease = asyncio.create_task(worker.lease(router, address, acked))
            started.append((worker, server, lease))
            await asyncio.wait_for(acked.wait(), 20)
        yield [w for w, _, _ in started]
    finally:
        for _, server, lease in started:
            lease.cancel()
            with contextlib.suppress(asyncio.CancelledError, grpc.aio.AioRpcError):
                await lease
            await server.stop(0)


@contextlib.asynccontextmanager
async def cloud(first_token_s: float) -> AsyncIterator[str]:
    """An OpenAI-format server answering after `first_token_s`; yields its base URL."""
    runner = web.AppRunner(make_app(first_token_s), access_log=None)
    await runner.setup()
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    site = web.SockSite(runner, listener, backlog=1024)
    await site.start()
    try:
        yield f"http://127.0.0.1:{listener.getsockname()[1]}/v1"
    finally:
        await runner.cleanup()


@contextlib.asynccontextmanager
async def router(config: RouterConfig) -> AsyncIterator[RouterServer]:
    config.listen = "127.0.0.1:0"
    config.usage_db = "off"
    server = RouterServer(config)
    await server.start()
    try:
        yield server
    finally:
        await server.stop(0)


async def wait_for_workers(server: RouterServer, ids: Sequence[str]) -> None:
    for _ in range(500):
        if all(server.registry.get(i) is not None for i in ids):
            return
        await asyncio.sleep(0.02)
    raise RuntimeError(f"workers {ids} did not register")


async def chat(
    stub: router_pb2_grpc.RouterServiceStub,
    tenant: str,
    request: pb.ChatRequest,
    began: float,
    metadata: tuple[tuple[str, str], ...] = (),
) -> Outcome:
    start = time.perf_counter()
    first: float | None = None
    backend = ""
    error = ""
    try:
        async for response in stub.Chat(request, metadata=metadata, timeout=30):
            if first is None and response.HasField("delta"):
                first = time.perf_counter()
            if response.HasField("usage"):
                backend = response.usage.backend
    except grpc.aio.AioRpcError as e:
        error = e.code().name
    ttft = None if first is None else (first - start) * 1000
    return Outcome(tenant, start - began, time.perf_counter() - began, ttft, backend, error)


_numbers = itertools.count()


def request(model: str, tokens: int, **routing: object) -> pb.ChatRequest:
    """A chat of its own: a prompt no other request shares, so prefix affinity does not pile them up."""
    text = f"request {next(_numbers)}: hello there"
    return pb.ChatRequest(
        model=model,
        messages=[pb.Message(role=pb.ROLE_USER, content=[pb.ContentPart(text=text)])],
        sampling=pb.SamplingParams(max_tokens=tokens),
        routing=pb.RoutingHints(**routing),  # type: ignore[arg-type]
    )
