"""The OpenAI-compatible HTTP door at concurrency 1, as a plain aiohttp client sees it (issue 21).

The upstream (bench/openai_server.py) answers 64 chunks: whole (JSON) or streamed (SSE). The same load
generator sends the same body to it directly, through the router's HTTP door and through LiteLLM's proxy,
with keep-alive on (one session, one pooled connection) and off (a new connection per request, as a
client without a session makes); a request's time runs from sending it to reading its body's last byte.
"added" is the path's p50 minus the direct p50 of the same kind measured in the same round.
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass

from bench.load import ChatLoad, LoadResult
from bench.processes import Child, cpu_seconds
from bench.report import Report, Table, Target, ms, percentile
from bench.stack import HTTP_MODEL

CHUNKS = 64
TARGET_ADDED_MS = 1.0
TARGET_RATIO = 20.0


@dataclass(frozen=True)
class Settings:
    requests: int  # per measurement
    seconds: float
    warmup: int
    rounds: int = 3


@dataclass(frozen=True)
class Upstream:
    """One way to the upstream: its OpenAI base URL and the key it wants."""

    name: str
    url: str
    api_key: str = ""
    pid: int = 0  # the process in the middle, whose CPU per request is reported; 0: none


def _measure(load: Child, way: Upstream, stream: bool, keepalive: bool, s: Settings) -> tuple[float, float]:
    """The p50 in ms, and the middle process's CPU µs per request (warm-up included; NaN without one)."""
    job = ChatLoad(
        way.url,
        "http-stream" if stream else "http",
        1,
        s.requests,
        s.seconds,
        CHUNKS,
        s.warmup,
        HTTP_MODEL,
        way.api_key,
        keepalive=keepalive,
    )
    before = cpu_seconds(way.pid) if way.pid else math.nan
    result: LoadResult = load.request(job, s.seconds + 120)
    used = cpu_seconds(way.pid) - before if way.pid else math.nan
    if len(result.ok) < len(result.outcomes) or not result.ok:
        return math.nan, math.nan  # a failing path gets no figure
    return percentile([o.total_ms for o in result.ok], 0.5), used / (len(result.outcomes) + s.warmup) * 1e6


def run(report: Report, load: Child, s: Settings, ways: list[Upstream], peer_note: str = "") -> None:
    """`ways[0]` is direct, `ways[1]` the router's door, any further one a peer (LiteLLM)."""
    kinds = [(stream, keepalive) for keepalive in (True, False) for stream in (False, True)]
    p50s: dict[tuple[str, bool, bool], list[float]] = {}
    cpus: dict[tuple[str, bool, bool], list[float]] = {}
    for round_ in range(s.rounds):
        for stream, keepalive in kinds:
            for way in ways:
                print(
                    f"bench: http door: round {round_ + 1}/{s.rounds}: {way.name}, "
                    f"{'SSE' if stream else 'JSON'}, keep-alive {'on' if keepalive else 'off'}",
                    flush=True,
                )
                p50, cpu = _measure(load, way, stream, keepalive, s)
                p50s.setdefault((way.name, stream, keepalive), []).append(p50)
                cpus.setdefault((way.name, stream, keepalive), []).append(cpu)
    direct, door, peers = ways[0], ways[1], ways[2:]

    def added(way: Upstream, stream: bool, keepalive: bool) -> float:
        """Per round (the paths took turns in it), then the median over rounds."""
        pairs = zip(p50s[(way.name, stream, keepalive)], p50s[(direct.name, stream, keepalive)], strict=True)
        values = [a - b for a, b in pairs if not (math.isnan(a) or math.isnan(b))]
        return statistics.median(values) if values else math.nan

    def mid(
        way: Upstream, stream: bool, keepalive: bool, of: dict[tuple[str, bool, bool], list[float]]
    ) -> float:
        values = [v for v in of[(way.name, stream, keepalive)] if not math.isnan(v)]
        return statistics.median(values) if values else math.nan

    table = Table(
        f"HTTP door at c=1 ({CHUNKS}-chunk answers, a plain aiohttp client)",
        ["answer", "keep-alive", "direct p50 ms", "door p50 ms", "door added ms", "router CPU µs per request"]
        + [f"{p.name} added ms" for p in peers]
        + [f"{p.name} added / door added" for p in peers],
    )
    for stream, keepalive in kinds:
        door_added = added(door, stream, keepalive)
        peer_added = [added(p, stream, keepalive) for p in peers]
        table.rows.append(
            [
                "streamed (SSE)" if stream else "whole (JSON)",
                "on" if keepalive else "off",
                ms(mid(direct, stream, keepalive, p50s)),
                ms(mid(door, stream, keepalive, p50s)),
                ms(door_added),
                _us(mid(door, stream, keepalive, cpus)),
                *[ms(a) for a in peer_added],
                *[_ratio(a, door_added) for a in peer_added],
            ]
        )
        if keepalive:
            kind = "streamed" if stream else "whole"
            report.targets.append(
                Target(
                    f"HTTP door: added p50 at c=1, {kind} {CHUNKS}-chunk answer, over direct",
                    f"≤ {TARGET_ADDED_MS:g} ms",
                    f"+{ms(door_added)} ms",
                    door_added <= TARGET_ADDED_MS,
                )
            )
            for peer, theirs in zip(peers, peer_added, strict=True):
                ratio = theirs / door_added if door_added > 0 else math.inf
                report.targets.append(
                    Target(
                        f"HTTP door vs {peer.name}: added p50 at c=1, {kind} {CHUNKS}-chunk answer",
                        f"≥ {TARGET_RATIO:g}x less",
                        f"{_ratio(theirs, door_added)} ({peer.name} +{ms(theirs)} ms, door +{ms(door_added)} ms)",
                        ratio >= TARGET_RATIO,
                    )
                )
    if not peers:
        report.targets.append(
            Target(f"HTTP door vs LiteLLM: added p50 at c=1 ({CHUNKS} chunks)", "≥ 20x less", peer_note, None)
        )
    table.notes += [
        f"One request at a time; each figure is the median over {s.rounds} rounds of that round's p50 "
        "(paths take turns within a round); added = path minus direct, same round, same kind.",
        "Keep-alive on: one aiohttp session keeping its connection; off: force_close, a new TCP connection per "
        "request to whichever server is asked (the router keeps its own upstream connections either way).",
        "Router CPU: user and system time of the router process, all threads, per request through the door "
        "(warm-up included): what a quiet machine's added time is mostly made of; a shared one adds waits for a "
        "core at each of the router's wake-ups.",
        "The door asks the upstream for a whole answer when the client asked for one, and for a stream when "
        "the client asked for a stream.",
    ]
    report.tables.append(table)


def _us(value: float) -> str:
    return "—" if math.isnan(value) else f"{value:,.0f}"


def _ratio(theirs: float, ours: float) -> str:
    if math.isnan(theirs) or math.isnan(ours):
        return "—"
    return f"{theirs / ours:.1f}x" if ours > 0 else "∞"
