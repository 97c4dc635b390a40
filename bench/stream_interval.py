"""Messages per token (issue 21): the router's CPU per 1,000 relayed tokens when workers send every token, or
a sequence's tokens at most once per 20 or 50 ms (`--stream-interval-ms`).

One router, one real worker per interval (bench/paced_worker.py: tokens every 15 ms per sequence, as on a
busy GPU), each serving a model of its own; the load keeps `concurrency` sequences streaming through the
router and counts tokens by their text (bench.tokens), so joined tokens count as what they are.
"""

from __future__ import annotations

import math
import statistics
import time
from dataclasses import dataclass

from bench.load import ChatLoad, LoadResult
from bench.paced_worker import PacedSpec, paced_worker_child
from bench.processes import Child, cpu_seconds, spawn
from bench.report import Report, Table, count, ms, percentile
from bench.router_proc import RouterOptions, router_child

INTERVALS_MS = (0.0, 20.0, 50.0)
READY_TIMEOUT_S = 30.0


@dataclass(frozen=True)
class Settings:
    seconds: float  # load per interval and round
    concurrency: int = 64  # sequences streaming at once
    tokens: int = 64  # per answer
    rounds: int = 1


@dataclass
class Figures:
    router_ms_per_1k: float = math.nan  # router CPU ms per 1,000 relayed tokens
    worker_ms_per_1k: float = math.nan
    tokens_per_message: float = math.nan
    tokens_per_s: float = math.nan
    ttft_p50: float = math.nan
    latency_p50: float = math.nan
    errors: int = 0


def _model(interval_ms: float) -> str:
    return f"paced-{interval_ms:g}ms"


def _wait_registered(load: Child, address: str) -> None:
    """Until each worker's model answers through the router (registration is asynchronous)."""
    deadline = time.monotonic() + READY_TIMEOUT_S
    for interval_ms in INTERVALS_MS:
        while True:
            job = ChatLoad(address, "router", 1, 1, 5.0, 1, 0, _model(interval_ms))
            result: LoadResult = load.request(job, 30)
            if result.ok:
                break
            if time.monotonic() > deadline:
                raise RuntimeError(f"{_model(interval_ms)}: not served through the router")
            time.sleep(0.2)


def _measure(
    load: Child, address: str, router: Child, worker: Child, interval_ms: float, s: Settings
) -> Figures:
    job = ChatLoad(address, "router", s.concurrency, 10**9, s.seconds, s.tokens, 0, _model(interval_ms))
    router_before, worker_before = cpu_seconds(router.pid), cpu_seconds(worker.pid)
    result: LoadResult = load.request(job, s.seconds + 120)
    router_cpu = cpu_seconds(router.pid) - router_before
    worker_cpu = cpu_seconds(worker.pid) - worker_before
    tokens = sum(o.chunks for o in result.outcomes)
    messages = sum(o.messages for o in result.outcomes)
    return Figures(
        router_ms_per_1k=router_cpu * 1e3 / tokens * 1000 if tokens else math.nan,
        worker_ms_per_1k=worker_cpu * 1e3 / tokens * 1000 if tokens else math.nan,
        tokens_per_message=tokens / messages if messages else math.nan,
        tokens_per_s=tokens / result.elapsed_s if result.elapsed_s else math.nan,
        ttft_p50=percentile([o.ttft_ms for o in result.ok if o.ttft_ms is not None], 0.5),
        latency_p50=percentile([o.total_ms for o in result.ok], 0.5),
        errors=len(result.outcomes) - len(result.ok),
    )


def run(report: Report, load: Child, s: Settings) -> dict[float, Figures]:
    router = spawn("stream-interval-router", router_child, RouterOptions())
    address = str(router.info["address"])
    workers: dict[float, Child] = {}
    try:
        for interval_ms in INTERVALS_MS:
            spec = PacedSpec(_model(interval_ms), _model(interval_ms), address, interval_ms)
            workers[interval_ms] = spawn(_model(interval_ms), paced_worker_child, spec)
        _wait_registered(load, address)
        runs: dict[float, list[Figures]] = {i: [] for i in INTERVALS_MS}
        for round_ in range(s.rounds):
            for interval_ms in INTERVALS_MS:  # intervals take turns: a busy spell lands on all of them
                print(
                    f"bench: stream interval: round {round_ + 1}/{s.rounds}: {interval_ms:g} ms", flush=True
                )
                runs[interval_ms].append(
                    _measure(load, address, router, workers[interval_ms], interval_ms, s)
                )
    finally:
        for worker in workers.values():
            worker.stop()
        router.stop()
    figures = {i: _median(r) for i, r in runs.items()}
    _report(report, figures, s)
    return figures


def _median(runs: list[Figures]) -> Figures:
    def mid(name: str) -> float:
        values = [v for v in (getattr(f, name) for f in runs) if not math.isnan(v)]
        return statistics.median(values) if values else math.nan

    return Figures(
        router_ms_per_1k=mid("router_ms_per_1k"),
        worker_ms_per_1k=mid("worker_ms_per_1k"),
        tokens_per_message=mid("tokens_per_message"),
        tokens_per_s=mid("tokens_per_s"),
        ttft_p50=mid("ttft_p50"),
        latency_p50=mid("latency_p50"),
        errors=sum(f.errors for f in runs),
    )


def _report(report: Report, figures: dict[float, Figures], s: Settings) -> None:
    every = figures[INTERVALS_MS[0]].router_ms_per_1k
    table = Table(
        "Messages per token: router CPU per 1,000 relayed tokens by --stream-interval-ms",
        [
            "stream interval",
            "router CPU ms per 1,000 tokens",
            "vs every token",
            "worker CPU ms per 1,000 tokens",
            "tokens per message",
            "tokens/s",
            "TTFT p50 ms",
            "answer p50 ms",
            "errors",
        ],
    )
    for interval_ms, f in figures.items():
        table.rows.append(
            [
                f"{interval_ms:g} ms" if interval_ms else "0 (every token)",
                f"{f.router_ms_per_1k:,.0f}",
                f"{f.router_ms_per_1k / every:.2f}x" if every > 0 else "—",
                f"{f.worker_ms_per_1k:,.0f}",
                f"{f.tokens_per_message:.2f}",
                count(f.tokens_per_s),
                ms(f.ttft_p50),
                ms(f.latency_p50),
                str(f.errors),
            ]
        )
    table.notes += [
        f"{s.concurrency} sequences streaming at once through one router, {s.tokens} tokens each, the first after "
        "30 ms then one every 15 ms per sequence (bench/paced_worker.py: the real worker around a paced engine); "
        f"{s.seconds:g} s of load per interval and round, the median of {s.rounds} round(s).",
        "CPU: user and system time of the router (or worker) process over the load, divided by the tokens the "
        "client received (counted by their text: joined tokens count as what they are).",
        "Tokens per message: as the client received them. With no interval a sequence's tokens still join "
        "when they queue behind a busy writer, so on a loaded machine it is above 1.",
        "The first token never waits and neither does the end of an answer, so TTFT and answer times should not "
        "move with the interval.",
    ]
    report.tables.append(table)
