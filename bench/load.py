"""The load generator: a process of its own (grpc.aio and aiohttp clients), driven by jobs on its pipe.

Every loop is bounded by a request count and by a time limit. Closed loops keep `concurrency`
requests in flight; Poisson arrivals send at a steady average rate whatever the answers do.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import random
import time
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from typing import Any

import aiohttp
import grpc
from modelyard.v1 import inference_pb2 as pb
from modelyard.v1 import router_pb2, router_pb2_grpc
from modelyard.worker.v1 import worker_pb2_grpc

from bench.processes import next_command
from bench.tokens import tokens_in
from core import wire

REQUEST_TIMEOUT_S = 30.0
ROUND_ROBIN = "round_robin"  # client-side baseline, not a router strategy


@dataclass(frozen=True)
class ChatLoad:
    """Closed loop: `protocol` is "router" or "worker" (gRPC), "http" or "http-stream" (OpenAI format)."""

    target: str  # host:port, or an OpenAI base URL ending in /v1
    protocol: str
    concurrency: int
    max_requests: int
    max_seconds: float
    tokens: int = 1
    warmup: int = 0
    model: str = "bench"
    api_key: str = ""  # sent as a bearer token over HTTP
    keepalive: bool = True  # False: a new HTTP connection per request, as a client without a session makes


@dataclass(frozen=True)
class PoissonLoad:
    """Open loop through the router: requests arrive at `rate` per second for `seconds`."""

    router: str
    rate: float
    seconds: float
    tokens: int
    strategy: str  # a router strategy, or ROUND_ROBIN: the client rotates routing.provider itself
    seed: int = 1
    model: str = "bench"


@dataclass(frozen=True)
class HoldStreams:
    """Open `streams` long chats, answer {"held": n} once each has a first chunk, end them on "release"."""

    router: str
    streams: int
    max_seconds: float
    model: str = "slow"


@dataclass
class Outcome:
    start_s: float  # since the load began
    total_ms: float
    ttft_ms: float | None
    chunks: int
    error: str = ""  # status name; "" when the request succeeded
    messages: int = 0  # text messages that carried the chunks (gRPC)


@dataclass
class LoadResult:
    outcomes: list[Outcome] = field(default_factory=list)
    elapsed_s: float = 0.0

    @property
    def ok(self) -> list[Outcome]:
        return [o for o in self.outcomes if not o.error]

    @property
    def failed_before_first(self) -> int:
        return sum(1 for o in self.outcomes if o.error and o.chunks == 0)

    @property
    def failed_mid_stream(self) -> int:
        return sum(1 for o in self.outcomes if o.error and o.chunks > 0)


def chat_request(model: str, tokens: int, strategy: str = "", provider: str = "") -> pb.ChatRequest:
    return pb.ChatRequest(
        model=model,
        messages=[pb.Message(role=pb.ROLE_USER, content=[pb.ContentPart(text="hello there")])],
        sampling=pb.SamplingParams(max_tokens=tokens),
        routing=pb.RoutingHints(strategy=wire.strategy(strategy), provider=provider),
    )


async def grpc_chat(stub: Any, request: pb.ChatRequest, began: float) -> Outcome:
    start = time.perf_counter()
    first: float | None = None
    chunks = messages = 0
    error = ""
    try:
        async for response in stub.Chat(request, timeout=REQUEST_TIMEOUT_S):
            if response.HasField("delta"):
                messages += 1
                chunks += tokens_in(response.delta.text)
                if first is None:
                    first = time.perf_counter()
    except grpc.aio.AioRpcError as e:
        error = e.code().name
    end = time.perf_counter()
    ttft = None if first is None else (first - start) * 1000
    return Outcome(start - began, (end - start) * 1000, ttft, chunks, error, messages)


async def http_chat(
    session: aiohttp.ClientSession, url: str, body: bytes, headers: dict[str, str], stream: bool, began: float
) -> Outcome:
    start = time.perf_counter()
    first: float | None = None
    chunks = 0
    error = ""
    try:
        async with session.post(url, data=body, headers=headers) as r:
            if r.status != 200:
                error = f"HTTP {r.status}"
                await r.read()
            elif not stream:
                answer = json.loads(await r.read())
                chunks = tokens_in(answer["choices"][0]["message"]["content"] or "")
                first = time.perf_counter()
            else:
                async for line in r.content:
                    if not line.startswith(b"data: ") or line.startswith(b"data: [DONE]"):
                        continue
                    choices = json.loads(line[6:]).get("choices") or []
                    text = (choices[0].get("delta") or {}).get("content") if choices else None
                    if text:
                        chunks += tokens_in(text)
                        if first is None:
                            first = time.perf_counter()
    except (aiohttp.ClientError, TimeoutError, ValueError) as e:
        error = type(e).__name__
    end = time.perf_counter()
    ttft = None if first is None else (first - start) * 1000
    return Outcome(start - began, (end - start) * 1000, ttft, chunks, error)


async def closed_loop(job: ChatLoad) -> LoadResult:
    http = job.protocol.startswith("http")
    channel = None if http else grpc.aio.insecure_channel(job.target)
    timeout = aiohttp.ClientTimeout(total=REQUEST_TIMEOUT_S)
    session = (
        aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=job.concurrency, force_close=not job.keepalive),
            timeout=timeout,
        )
        if http
        else None
    )
    stream = job.protocol == "http-stream"
    url = f"{job.target}/chat/completions"
    body = json.dumps(
        {
            "model": job.model,
            "messages": [{"role": "user", "content": "hello there"}],
            "max_tokens": job.tokens,
            "stream": stream,
        }
    ).encode()
    headers = {"Content-Type": "application/json"}
    if job.api_key:
        headers["Authorization"] = f"Bearer {job.api_key}"
    stub: Any = None
    if channel is not None:
        stub = (
            router_pb2_grpc.RouterServiceStub
            if job.protocol == "router"
            else worker_pb2_grpc.WorkerServiceStub
        )(channel)
    request = chat_request(job.model, job.tokens)

    async def once(began: float) -> Outcome:
        if session is not None:
            return await http_chat(session, url, body, headers, stream, began)
        return await grpc_chat(stub, request, began)

    async def run(count: int, seconds: float) -> LoadResult:
        result = LoadResult()
        left = count
        began = time.perf_counter()
        deadline = began + seconds

        async def user() -> None:
            nonlocal left
            while left > 0 and time.perf_counter() < deadline:
                left -= 1
                result.outcomes.append(await once(began))

        await asyncio.gather(*(user() for _ in range(job.concurrency)))
        result.elapsed_s = time.perf_counter() - began
        return result

    try:
        if job.warmup:
            await run(job.warmup, 10.0)
        return await run(job.max_requests, job.max_seconds)
    finally:
        if session is not None:
            await session.close()
        if channel is not None:
            await channel.close()


async def _workers(stub: Any) -> list[str]:
    status = await stub.GetStatus(router_pb2.GetStatusRequest(), timeout=5)
    return [
        b.id
        for b in status.backends
        if b.kind == router_pb2.BACKEND_KIND_WORKER and b.healthy and not b.draining
    ]


async def poisson(job: PoissonLoad) -> LoadResult:
    """Open-loop arrivals; round robin refreshes the worker list from GetStatus twice a second."""
    rng = random.Random(job.seed)
    result = LoadResult()
    async with grpc.aio.insecure_channel(job.router) as channel:
        stub = router_pb2_grpc.RouterServiceStub(channel)
        workers = await _workers(stub) if job.strategy == ROUND_ROBIN else []
        began = time.perf_counter()
        tasks: list[asyncio.Task[Outcome]] = []
        at = 0.0
        refreshed = 0.0
        for i in range(int(job.rate * job.seconds * 3) + 10):
            at += rng.expovariate(job.rate)
            if at > job.seconds:
                break
            await asyncio.sleep(max(0.0, began + at - time.perf_counter()))
            if job.strategy == ROUND_ROBIN:
                if at - refreshed > 0.5:
                    with contextlib.suppress(grpc.aio.AioRpcError):  # a busy router: keep the last list
                        workers = await _workers(stub) or workers
                    refreshed = at
                request = chat_request(job.model, job.tokens, provider=workers[i % len(workers)])
            else:
                request = chat_request(job.model, job.tokens, strategy=job.strategy)
            tasks.append(asyncio.create_task(grpc_chat(stub, request, began)))
        result.outcomes = list(await asyncio.gather(*tasks))
        result.elapsed_s = time.perf_counter() - began
    return result


async def hold(job: HoldStreams, conn: Connection) -> LoadResult:
    result = LoadResult()
    async with grpc.aio.insecure_channel(job.router) as channel:
        stub = router_pb2_grpc.RouterServiceStub(channel)
        # Long enough to stay open (the slow worker sends one token every few minutes), within the
        # router's input.max_tokens.
        request = chat_request(job.model, 10_000)
        calls = [stub.Chat(request, timeout=job.max_seconds + 30) for _ in range(job.streams)]
        began = time.perf_counter()

        async def first(call: Any) -> None:
            await call.read()

        done, _ = await asyncio.wait([asyncio.create_task(first(c)) for c in calls], timeout=job.max_seconds)
        held = sum(1 for d in done if d.exception() is None)
        conn.send({"held": held, "seconds": time.perf_counter() - began})
        await next_command(conn)  # "release"
        for call in calls:
            call.cancel()
        result.elapsed_s = time.perf_counter() - began
        result.outcomes = [Outcome(0.0, 0.0, None, 1)] * held
    return result


async def _serve(conn: Connection) -> None:
    conn.send({"pid": os.getpid()})
    while (job := await next_command(conn)) != "stop":
        if isinstance(job, ChatLoad):
            conn.send(await closed_loop(job))
        elif isinstance(job, PoissonLoad):
            conn.send(await poisson(job))
        elif isinstance(job, HoldStreams):
            conn.send(await hold(job, conn))
        else:
            conn.send(None)
    conn.send("stopped")


def load_child(conn: Connection) -> None:
    """Process entry: run load jobs until told to stop."""
    logging.basicConfig(level=logging.ERROR)
    asyncio.run(_serve(conn))
