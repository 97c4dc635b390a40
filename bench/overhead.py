"""Router overhead: the same load sent straight to a backend and through the router, in one run.

Backends: the bench worker (instant engine, registered over the real WorkerRegistry lease) and a local
OpenAI-format HTTP server (an `openai_compatible` provider); the peer, LiteLLM's proxy, in front of the
same HTTP server. The router is reached by gRPC and by its OpenAI-compatible HTTP door; the door, LiteLLM
and the direct HTTP rows share one aiohttp client. Per path: latency at concurrency 1, requests/s at 64,
64-chunk streams at 32.
"""

from __future__ import annotations

import math
import multiprocessing
import statistics
from dataclasses import dataclass

from bench import http_door, pipeline_cost
from bench.bare_relay import bare_relay_child
from bench.litellm_peer import Install, LiteLLMProxy
from bench.load import ChatLoad, LoadResult
from bench.processes import Child, cpu_seconds, spawn
from bench.report import Report, Table, Target, bar_plot, count, ms, percentile
from bench.stack import HTTP_MODEL, spawn_stack

DOOR_SSE = "HTTP server, through router's HTTP door (SSE)"
BARE = "worker, through a bare gRPC relay (the floor)"
STREAM_CHUNKS = 64


@dataclass(frozen=True)
class Settings:
    requests: int  # upper bound per measurement
    seconds: float  # time bound per measurement
    warmup: int
    rounds: int = 1  # every path measured this many times, paths taking turns; medians are reported


@dataclass(frozen=True)
class Path:
    name: str
    target: str
    protocol: str  # see ChatLoad.protocol
    model: str
    baseline: str = ""  # the direct path this one is compared with
    api_key: str = ""
    relay_pid: int = 0  # the process in the middle (router, bare relay) whose CPU time is measured; 0: none


@dataclass
class Figures:
    p50: float = math.nan
    p99: float = math.nan
    rps: float = math.nan
    ttft_p50: float = math.nan
    ttft_p99: float = math.nan
    chunks_per_s: float = math.nan
    cpu_per_request_us: float = math.nan  # the middle process's CPU time per request at c=64
    cpu_per_chunk_us: float = math.nan  # and per relayed chunk at c=32, 64-chunk streams
    errors: int = 0
    requests: int = 0


def _run(load: Child, path: Path, s: Settings, concurrency: int, tokens: int) -> tuple[LoadResult, float]:
    """The load's result, and the CPU seconds the path's middle process spent on it (warm-up included; NaN
    for a path with none)."""
    job = ChatLoad(
        path.target,
        path.protocol,
        concurrency,
        s.requests,
        s.seconds,
        tokens,
        s.warmup,
        path.model,
        path.api_key,
    )
    before = cpu_seconds(path.relay_pid) if path.relay_pid else math.nan
    result: LoadResult = load.request(job, s.seconds + 120)
    used = cpu_seconds(path.relay_pid) - before if path.relay_pid else math.nan
    return result, used


def measure(load: Child, path: Path, s: Settings) -> Figures:
    f = Figures()
    single, _ = _run(load, path, s, 1, 1)
    latencies = [o.total_ms for o in single.ok]
    f.p50, f.p99 = percentile(latencies, 0.5), percentile(latencies, 0.99)
    many, cpu = _run(load, path, s, 64, 1)
    f.rps = len(many.ok) / many.elapsed_s if many.elapsed_s else math.nan
    f.cpu_per_request_us = cpu / (len(many.outcomes) + s.warmup) * 1e6 if many.outcomes else math.nan
    results = [single, many]
    if path.protocol != "http":  # a JSON answer is not a stream
        streams, cpu = _run(load, path, s, 32, STREAM_CHUNKS)
        ttfts = [o.ttft_ms for o in streams.ok if o.ttft_ms is not None]
        f.ttft_p50, f.ttft_p99 = percentile(ttfts, 0.5), percentile(ttfts, 0.99)
        f.chunks_per_s = sum(o.chunks for o in streams.ok) / streams.elapsed_s
        relayed = sum(o.chunks for o in streams.outcomes) * (1 + s.warmup / max(1, len(streams.outcomes)))
        f.cpu_per_chunk_us = cpu / relayed * 1e6 if relayed else math.nan
        results.append(streams)
    f.errors = sum(len(r.outcomes) - len(r.ok) for r in results)
    f.requests = sum(len(r.outcomes) for r in results)
    return f


def run(report: Report, load: Child, s: Settings, litellm: Install) -> dict[str, Figures]:
    stack = spawn_stack("bench")
    url, address, router, worker = stack.url, stack.address, stack.router, stack.worker
    bare = spawn("bare-relay", bare_relay_child, str(worker.info["address"]))
    paths = [
        Path("worker, direct (gRPC)", str(worker.info["address"]), "worker", "bench"),
        Path("worker, through router", address, "router", "bench", "worker, direct (gRPC)", "", router.pid),
        Path(BARE, str(bare.info["address"]), "router", "bench", "worker, direct (gRPC)", "", bare.pid),
        Path("HTTP server, direct (SSE)", url, "http-stream", HTTP_MODEL),
        Path(
            "HTTP server, through router",
            address,
            "router",
            HTTP_MODEL,
            "HTTP server, direct (SSE)",
            "",
            router.pid,
        ),
        Path(
            "HTTP server, through router's HTTP door (SSE)",
            str(router.info["http_url"]),
            "http-stream",
            HTTP_MODEL,
            "HTTP server, direct (SSE)",
            "",
            router.pid,
        ),
        Path(
            "HTTP server, through router's HTTP door (JSON)",
            str(router.info["http_url"]),
            "http",
            HTTP_MODEL,
            "HTTP server, direct (JSON)",
            "",
            router.pid,
        ),
        Path("HTTP server, direct (JSON)", url, "http", HTTP_MODEL),
    ]
    proxy: LiteLLMProxy | None = None
    litellm_error = "" if litellm.ok else litellm.version
    if litellm.ok:
        proxy = LiteLLMProxy(url, HTTP_MODEL)
        try:
            proxy.start()
            paths.append(
                Path(
                    "HTTP server, through LiteLLM (SSE)",
                    proxy.url,
                    "http-stream",
                    HTTP_MODEL,
                    "HTTP server, direct (SSE)",
                    proxy.key,
                )
            )
            paths.append(
                Path(
                    "HTTP server, through LiteLLM (JSON)",
                    proxy.url,
                    "http",
                    HTTP_MODEL,
                    "HTTP server, direct (JSON)",
                    proxy.key,
                )
            )
        except RuntimeError as e:
            litellm_error = f"did not start: {e}"[:200]
            proxy = None
    runs: dict[str, list[Figures]] = {path.name: [] for path in paths}
    try:
        # Paths take turns, round after round: a busy or quiet spell of a shared machine lands on all of
        # them instead of on whichever path was measured then.
        for round_ in range(s.rounds):
            for path in paths:
                print(f"bench: overhead: round {round_ + 1}/{s.rounds}: {path.name}", flush=True)
                runs[path.name].append(measure(load, path, s))
        ways = [
            http_door.Upstream("direct", url),
            http_door.Upstream("door", str(router.info["http_url"]), pid=router.pid),
        ]
        if proxy is not None:
            ways.append(http_door.Upstream("LiteLLM", proxy.url, proxy.key))
        door = http_door.Settings(min(s.requests, 2000), s.seconds, min(s.warmup, 50), s.rounds)
        http_door.run(report, load, door, ways, f"LiteLLM {litellm_error}")
    finally:
        if proxy is not None:
            proxy.stop()
        bare.stop()
        stack.stop()
    figures = {name: _median(measured) for name, measured in runs.items()}
    _report(report, paths, figures, litellm_error)
    _own_work(report, figures)
    return figures


def _own_work(report: Report, figures: dict[str, Figures]) -> None:
    """What the router's Python costs per request without gRPC, beside what the router process and the bare
    relay used per request under load: where the rest of the router's time goes."""
    print("bench: overhead: the router's own work, in-process", flush=True)
    with multiprocessing.get_context("spawn").Pool(1) as pool:  # a fresh process, as the router is
        one = pool.apply(pipeline_cost.cpu_per_request_us, (5000, 1))
        streamed = pool.apply(pipeline_cost.cpu_per_request_us, (1000, STREAM_CHUNKS))
    router, bare = figures["worker, through router"], figures.get(BARE, Figures())
    table = Table(
        "The router's own work per request (in-process, no gRPC)",
        ["request", "CPU µs per request", "router process under load", "bare relay under load"],
        [
            [
                "1-chunk answer",
                f"{one:,.0f}",
                f"{_us(router.cpu_per_request_us)} µs (c=64)",
                f"{_us(bare.cpu_per_request_us)} µs (c=64)",
            ],
            [
                f"{STREAM_CHUNKS}-chunk stream",
                f"{streamed:,.0f} ({(streamed - one) / (STREAM_CHUNKS - 1):,.1f} per chunk beyond the first)",
                f"{_us(router.cpu_per_chunk_us)} µs per chunk (c=32)",
                f"{_us(bare.cpu_per_chunk_us)} µs per chunk (c=32)",
            ],
        ],
    )
    table.notes += [
        "bench/pipeline_cost.py: RequestPipeline.chat one request at a time on the production defaults "
        "(keys, validation, estimates, limits, cache lookup, budgets, every scorer, failover, accounting, the "
        "SQLite ledger) in front of a backend that answers at once; CPU time of that process.",
        "The router process's figure adds gRPC on both legs and everything interleaving 64 requests costs; the "
        "bare relay's is what gRPC alone costs for the same traffic.",
    ]
    report.tables.append(table)


def _median(runs: list[Figures]) -> Figures:
    """Each figure's median over the rounds; errors and requests summed."""

    def mid(name: str) -> float:
        values = sorted(v for v in (getattr(f, name) for f in runs) if not math.isnan(v))
        return statistics.median(values) if values else math.nan

    return Figures(
        p50=mid("p50"),
        p99=mid("p99"),
        rps=mid("rps"),
        ttft_p50=mid("ttft_p50"),
        ttft_p99=mid("ttft_p99"),
        chunks_per_s=mid("chunks_per_s"),
        cpu_per_request_us=mid("cpu_per_request_us"),
        cpu_per_chunk_us=mid("cpu_per_chunk_us"),
        errors=sum(f.errors for f in runs),
        requests=sum(f.requests for f in runs),
    )


def _added(figures: dict[str, Figures], path: Path, q: str) -> float:
    if not path.baseline:
        return math.nan
    through, direct = figures[path.name], figures[path.baseline]
    return float(getattr(through, q) - getattr(direct, q))


def _report(report: Report, paths: list[Path], figures: dict[str, Figures], litellm_error: str) -> None:
    table = Table(
        "Router overhead",
        [
            "path",
            "p50 ms (c=1)",
            "p99 ms (c=1)",
            "added p50 ms",
            "added p99 ms",
            "req/s (c=64)",
            f"TTFT p50 ms ({STREAM_CHUNKS}-chunk streams, c=32)",
            "TTFT p99 ms",
            "chunks/s",
            "CPU µs per request in the middle (c=64)",
            "CPU µs per chunk in the middle (c=32)",
            "errors/requests",
        ],
    )
    for p in paths:
        f = figures[p.name]
        table.rows.append(
            [
                p.name,
                ms(f.p50),
                ms(f.p99),
                ms(_added(figures, p, "p50")),
                ms(_added(figures, p, "p99")),
                count(f.rps),
                ms(f.ttft_p50),
                ms(f.ttft_p99),
                count(f.chunks_per_s),
                _us(f.cpu_per_request_us),
                _us(f.cpu_per_chunk_us),
                f"{f.errors}/{f.requests}",
            ]
        )
    if litellm_error:
        table.rows.append(["HTTP server, through LiteLLM", *[f"LiteLLM {litellm_error}"], *["—"] * 10])
    table.notes += [
        "Every figure is the median of the rounds (paths take turns each round); errors/requests add them up.",
        "added = through-router (or proxy) minus the direct path it is compared with, same percentile.",
        "The router reaches the HTTP server over SSE (its thin aiohttp client), so its baseline is direct SSE.",
        "The HTTP door rows use the same aiohttp client as the direct and LiteLLM rows; gRPC rows a grpc.aio one.",
        "The load generator is a separate process (grpc.aio / aiohttp clients); all processes share the cores.",
        "The bare gRPC relay (bench/bare_relay.py) passes the worker's messages on as bytes with none of the "
        "router's work: what one more Python gRPC hop costs here, the floor for the worker rows.",
        "chunks/s counts the upstream's one-token chunks delivered, by their text: a router may send deltas "
        "that queued up behind a busy writer as one message.",
        "CPU µs: user and system time of the process in the middle (the router, or the bare relay), all its "
        "threads, divided by the requests (c=64, 1-chunk answers) or by the chunks relayed (c=32); warm-up "
        "requests are counted in both.",
    ]
    report.tables.append(table)
    by = {p.name: p for p in paths}
    worker = figures["worker, through router"]
    added_p50 = _added(figures, by["worker, through router"], "p50")
    added_p99 = _added(figures, by["worker, through router"], "p99")
    report.targets += [
        Target(
            "Router overhead p50, c=1 (worker backend)", "≤ 1 ms", f"{ms(added_p50)} ms", added_p50 <= 1.0
        ),
        Target(
            "Router overhead p99, c=1 (worker backend)", "≤ 2 ms", f"{ms(added_p99)} ms", added_p99 <= 2.0
        ),
        Target(
            "Requests/s through one router, c=64 (worker backend)",
            "≥ 1,500",
            count(worker.rps),
            worker.rps >= 1500,
        ),
        Target(
            "Relayed chunks/s, c=32 (worker backend)",
            "≥ 10,000",
            count(worker.chunks_per_s),
            worker.chunks_per_s >= 10_000,
        ),
    ]
    report.targets += _relay_targets(figures)
    ours = _added(figures, by["HTTP server, through router"], "p50")
    door = _added(figures, by[DOOR_SSE], "p50")
    peer_name = "HTTP server, through LiteLLM (SSE)"
    if peer_name in by:
        theirs = _added(figures, by[peer_name], "p50")
        ratio = theirs / ours if ours > 0 else math.inf
        figure = f"{ratio:.1f}x (LiteLLM +{ms(theirs)} ms, router +{ms(ours)} ms, p50, same HTTP server)"
        report.targets.append(Target("Added latency vs LiteLLM proxy", "≥ 20x less", figure, ratio >= 20))
        door_ratio = theirs / door if door > 0 else math.inf
        figure = f"{door_ratio:.1f}x (LiteLLM +{ms(theirs)} ms, HTTP door +{ms(door)} ms, p50, same client)"
        report.targets.append(
            Target("HTTP door: added latency vs LiteLLM, c=1", "≥ 20x less", figure, door_ratio >= 20)
        )
        peer_rate, door_rate = figures[peer_name].chunks_per_s, figures[DOOR_SSE].chunks_per_s
        rate_ratio = door_rate / peer_rate if peer_rate > 0 else math.inf
        figure = f"{rate_ratio:.1f}x ({count(door_rate)} vs LiteLLM {count(peer_rate)} chunks/s)"
        report.targets.append(
            Target("HTTP door: streamed chunks/s vs LiteLLM, c=32", "≥ 10x", figure, rate_ratio >= 10)
        )
    else:
        for name in ("Added latency vs LiteLLM proxy", "HTTP door: added latency vs LiteLLM, c=1"):
            report.targets.append(Target(name, "≥ 20x less", f"LiteLLM {litellm_error}", None))
        report.targets.append(
            Target("HTTP door: streamed chunks/s vs LiteLLM, c=32", "≥ 10x", f"LiteLLM {litellm_error}", None)
        )
    names = [p.name.replace("HTTP server", "HTTP") for p in paths]
    plot = bar_plot(
        "overhead_latency",
        "Latency at concurrency 1",
        names,
        {"p50": [figures[p.name].p50 for p in paths], "p99": [figures[p.name].p99 for p in paths]},
        "ms",
        log=True,
    )
    rate = bar_plot(
        "overhead_rate",
        "Requests/s at concurrency 64",
        names,
        {"req/s": [figures[p.name].rps for p in paths]},
        "requests/s",
    )
    report.plots += [p for p in (plot, rate) if p]


def _us(value: float) -> str:
    return "—" if math.isnan(value) else f"{value:,.0f}"


def _ratio(a: float, b: float) -> float:
    return a / b if b > 0 else math.nan


def _relay_targets(figures: dict[str, Figures]) -> list[Target]:
    """Issue 15's targets: the router against the direct path measured in the same run, so that a busy or
    quiet machine moves both sides; the worker rows say what the bare relay (the floor) got beside them."""
    worker, direct = figures["worker, through router"], figures["worker, direct (gRPC)"]
    floor = figures.get(BARE, Figures())
    http, sse = figures["HTTP server, through router"], figures["HTTP server, direct (SSE)"]
    added, floor_added = worker.p50 - direct.p50, floor.p50 - direct.p50
    http_added = http.p50 - sse.p50
    rate, chunks = _ratio(worker.rps, direct.rps), _ratio(worker.chunks_per_s, direct.chunks_per_s)
    floor_rate, floor_chunks = _ratio(floor.rps, direct.rps), _ratio(floor.chunks_per_s, direct.chunks_per_s)
    http_chunks, http_ttft = _ratio(http.chunks_per_s, sse.chunks_per_s), _ratio(http.ttft_p50, sse.ttft_p50)
    return [
        Target(
            "Relay: worker, added p50 at c=1 vs the direct p50",
            "≤ direct p50",
            f"+{ms(added)} ms (direct {ms(direct.p50)} ms; bare relay +{ms(floor_added)} ms)",
            added <= direct.p50,
        ),
        Target(
            "Relay: worker, req/s at c=64 vs direct",
            "≥ 0.5x",
            f"{rate:.2f}x ({count(worker.rps)} vs {count(direct.rps)}; bare relay {floor_rate:.2f}x)",
            rate >= 0.5,
        ),
        Target(
            f"Relay: worker, chunks/s at c=32 ({STREAM_CHUNKS}-chunk streams) vs direct",
            "≥ 0.7x",
            f"{chunks:.2f}x ({count(worker.chunks_per_s)} vs {count(direct.chunks_per_s)}; "
            f"bare relay {floor_chunks:.2f}x)",
            chunks >= 0.7,
        ),
        Target(
            "Relay: OpenAI-compatible upstream, added p50 at c=1 over direct SSE",
            "≤ 1 ms",
            f"+{ms(http_added)} ms",
            http_added <= 1.0,
        ),
        Target(
            "Relay: OpenAI-compatible upstream, chunks/s at c=32 vs direct SSE",
            "≥ 0.5x",
            f"{http_chunks:.2f}x ({count(http.chunks_per_s)} vs {count(sse.chunks_per_s)})",
            http_chunks >= 0.5,
        ),
        Target(
            "Relay: OpenAI-compatible upstream, TTFT p50 at c=32 vs direct SSE",
            "≤ 2x",
            f"{http_ttft:.1f}x ({ms(http.ttft_p50)} vs {ms(sse.ttft_p50)} ms)",
            http_ttft <= 2.0,
        ),
    ]
