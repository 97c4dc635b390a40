"""Prefix-aware routing on real engines: two CPU vLLM workers (prefix caching on) behind one router.

Multi-turn sessions share one long system prompt. Both workers are first given the system prompt, so
what differs between the two runs is where each session's own history is cached. The same workload
runs twice on fresh sessions: composite without the prefix weight, then the default composite. TTFT is
measured by the client; the prefix-cache hit rate is the engines' own (vLLM's prefix_cache_hits over
prefix_cache_queries, in tokens, read from each worker's /metrics before and after each run).
Figures only, with no target: on a shared 2-core CPU both engines compete for the same cores.
"""

from __future__ import annotations

import asyncio
import random
import re
import socket
import time
import urllib.request
from dataclasses import dataclass

import grpc
from modelyard.v1 import inference_pb2 as pb
from modelyard.v1 import router_pb2_grpc

from bench.report import Report, Table, percentile
from router.config.settings import RouterConfig
from router.server import RouterServer

SESSIONS, TURNS, WORKERS = 8, 4, 2
ANSWER_TOKENS = 16
_METRIC = re.compile(r"^vllm:prefix_cache_(queries|hits)_total\{[^}]*\} ([0-9.e+]+)$", re.M)


@dataclass
class RunFigures:
    ttft_ms: list[float]
    hit_rate: float
    served: dict[str, int]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _words(rng: random.Random, count: int) -> str:
    return " ".join(f"w{rng.randrange(5000)}" for _ in range(count))


def _cache_counters(port: int) -> tuple[float, float]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as response:
        text = response.read().decode()
    found: dict[str, float] = {"queries": 0.0, "hits": 0.0}
    for name, value in _METRIC.findall(text):
        found[name] += float(value)
    return found["queries"], found["hits"]


def _request(model: str, messages: list[pb.Message], provider: str = "") -> pb.ChatRequest:
    return pb.ChatRequest(
        model=model,
        messages=messages,
        sampling=pb.SamplingParams(max_tokens=ANSWER_TOKENS, temperature=0.0),
        routing=pb.RoutingHints(provider=provider),
    )


async def _turn(stub: router_pb2_grpc.RouterServiceStub, request: pb.ChatRequest) -> tuple[float, str, str]:
    began = time.perf_counter()
    first: float | None = None
    text, backend = "", ""
    async for response in stub.Chat(request, timeout=600):
        if response.HasField("delta") and first is None:
            first = time.perf_counter()
        if response.HasField("delta"):
            text += response.delta.text
        if response.HasField("usage"):
            backend = response.usage.backend
    return ((first or time.perf_counter()) - began) * 1000, text or "ok", backend


async def _run(
    stub: router_pb2_grpc.RouterServiceStub, model: str, system: str, seed: int, metrics: list[int]
) -> RunFigures:
    rng = random.Random(seed)
    before = [_cache_counters(port) for port in metrics]
    sessions = [
        [pb.Message(role=pb.ROLE_SYSTEM, content=[pb.ContentPart(text=system)])] for _ in range(SESSIONS)
    ]
    ttfts: list[float] = []
    served: dict[str, int] = {}
    for _ in range(TURNS):
        for messages in sessions:
            messages.append(pb.Message(role=pb.ROLE_USER, content=[pb.ContentPart(text=_words(rng, 40))]))
        results = await asyncio.gather(*(_turn(stub, _request(model, list(m))) for m in sessions))
        for messages, (ttft, text, backend) in zip(sessions, results, strict=True):
            ttfts.append(ttft)
            served[backend] = served.get(backend, 0) + 1
            messages.append(pb.Message(role=pb.ROLE_ASSISTANT, content=[pb.ContentPart(text=text)]))
    after = [_cache_counters(port) for port in metrics]
    queries = sum(a[0] - b[0] for a, b in zip(after, before, strict=True))
    hits = sum(a[1] - b[1] for a, b in zip(after, before, strict=True))
    return RunFigures(ttfts, hits / queries if queries else float("nan"), served)


async def _bench() -> tuple[str, dict[str, RunFigures]]:
    from tests.worker.process import start_worker

    router = RouterServer(
        RouterConfig(listen="127.0.0.1:0", router_id="bench-prefix", report_interval_ms=500)
    )
    await router.start()
    ports = [_free_port() for _ in range(WORKERS)]
    workers = await asyncio.gather(
        *(
            start_worker(
                router.address,
                "--no-whisper",
                "--worker-id",
                f"prefix-{i}",
                "--metrics-listen",
                f"127.0.0.1:{port}",
                ready_timeout=900,
            )
            for i, port in enumerate(ports)
        )
    )
    try:
        while len(router.registry) < WORKERS:  # noqa: ASYNC110 -- a benchmark's one-off wait for the leases
            await asyncio.sleep(0.1)
        model = workers[0].models[0]
        system = _words(random.Random(0), 400)  # ~1,100 tokens with the tiny model (2,048 in all)
        async with grpc.aio.insecure_channel(router.address) as channel:
            stub = router_pb2_grpc.RouterServiceStub(channel)
            prompt = [pb.Message(role=pb.ROLE_SYSTEM, content=[pb.ContentPart(text=system)])]
            for worker in workers:  # every worker holds the shared prefix before either run
                hello = [*prompt, pb.Message(role=pb.ROLE_USER, content=[pb.ContentPart(text="hello")])]
                await _turn(stub, _request(model, hello, provider=worker.worker_id))
            weights = router.state.strategies.weights("composite")
            without = {k: v for k, v in weights.items() if k != "prefix"}
            router.state.strategies.set_weights("composite", without)
            plain = await _run(stub, model, system, 1, ports)
            router.state.strategies.set_weights("composite", weights)
            prefix = await _run(stub, model, system, 2, ports)
    finally:
        await asyncio.gather(*(w.stop() for w in workers))
        await router.stop(0)
    return model, {"composite (no prefix)": plain, "composite + prefix": prefix}


def run(report: Report) -> None:
    print("bench: prefix routing on engines", flush=True)
    table = Table(
        "Prefix-aware routing (real engines)",
        [
            "strategy",
            "requests",
            "TTFT p50 ms",
            "TTFT p99 ms",
            "engines' prefix-cache hit rate",
            "requests per worker",
        ],
    )
    model, results = asyncio.run(_bench())
    for name, figures in results.items():
        table.rows.append(
            [
                name,
                str(len(figures.ttft_ms)),
                f"{percentile(figures.ttft_ms, 0.5):.1f}",
                f"{percentile(figures.ttft_ms, 0.99):.1f}",
                f"{figures.hit_rate:.0%}",
                " / ".join(f"{k}: {v}" for k, v in sorted(figures.served.items())),
            ]
        )
    table.notes += [
        f"{WORKERS} workers (`python -m gpu_worker --no-whisper`, vLLM's CPU build, {model}, prefix "
        f"caching on) behind one router; {SESSIONS} sessions x {TURNS} turns, each turn of all sessions sent at "
        f"once; a shared 400-word system prompt given to both workers first; 40-word user turns, "
        f"{ANSWER_TOKENS}-token answers.",
        "Hit rate: vLLM's prefix_cache_hits / prefix_cache_queries (tokens) from the workers' /metrics, per run.",
        "Both engines share this machine's cores, so TTFT says little here; the hit rate is the engines' own "
        "measure of the prefill work saved.",
    ]
    report.tables.append(table)
