"""The admission benches' stack: a router and its clients in this process and event loop, bench workers (4
running, the rest queued) and a cloud double in processes of their own, on 127.0.0.1 ports; and a chat call
timed from the client's side.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass

import grpc
from modelyard.v1 import inference_pb2 as pb
from modelyard.v1 import router_pb2_grpc

from bench.fixtures import SlotUse, WorkerSpec, worker_child
from bench.openai_server import openai_child
from bench.processes import Child, spawn
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
async def workers(router: str, ttft_s: float, token_s: float, count: int = 2) -> AsyncIterator[list[Child]]:
    """Bench workers in processes of their own, registered with `router`."""
    started: list[Child] = []
    try:
        for i in range(count):
            spec = WorkerSpec(f"w{i + 1}", MODEL, ttft_s, token_s, SLOTS, QUEUE, router)
            started.append(await asyncio.to_thread(spawn, spec.worker_id, worker_child, spec))
        yield started
    finally:
        for child in started:
            await asyncio.to_thread(child.stop)


@dataclass(frozen=True)
class PoolUse:
    """The workers' slots over a window, as the workers timed them: busy share (slot-seconds held / slots x
    window) and capacity (slots / mean seconds an answer held one: requests/s the pool could finish)."""

    busy_share: float
    capacity_rps: float


async def slot_use(children: Sequence[Child]) -> list[SlotUse]:
    """Each worker's slot use so far (bench.fixtures.SlotUse)."""
    return [await asyncio.to_thread(child.request, "slots", 10.0) for child in children]


def pool_use(before: Sequence[SlotUse], after: Sequence[SlotUse]) -> PoolUse:
    """The window between two snapshots, each worker's timed by its own clock (a snapshot taken late on a
    busy machine lengthens the window it closes, not the busy share)."""
    pairs = list(zip(after, before, strict=True))
    slot_s = sum(a.slots * (a.at_s - b.at_s) for a, b in pairs)
    held = sum(a.held_s - b.held_s for a, b in pairs)
    finished = sum(a.finished - b.finished for a, b in pairs)
    finished_held = sum(a.finished_held_s - b.finished_held_s for a, b in pairs)
    capacity = sum(a.slots for a in after) * finished / finished_held if finished_held > 0 else 0.0
    return PoolUse(held / slot_s if slot_s > 0 else 0.0, capacity)


@contextlib.asynccontextmanager
async def cloud(first_token_s: float) -> AsyncIterator[str]:
    """An OpenAI-format server (a process of its own) answering after `first_token_s`; yields its base URL."""
    child = await asyncio.to_thread(spawn, "cloud", openai_child, first_token_s)
    try:
        yield str(child.info["url"])
    finally:
        await asyncio.to_thread(child.stop)


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
