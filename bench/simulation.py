"""Scheduling quality: workers of different speeds, one slowing down half way, one dying, Poisson arrivals.

Each strategy gets a fresh router and fresh workers (the router's EWMAs must not carry over), the
same seeded arrival times, and the same events: at half time the "degrading" worker becomes 10x
slower; at 60 % the "dying" worker's process is killed (its server goes and its lease breaks).
Round robin is a client-side baseline: the client rotates `routing.provider` over the workers the
router lists as healthy (refreshed twice a second), so it pays the same router hop but no scoring.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

from bench.fixtures import WorkerSpec, worker_child
from bench.load import ROUND_ROBIN, LoadResult, PoissonLoad
from bench.processes import Child, spawn
from bench.report import Report, Table, Target, bar_plot, ms, percentile, scatter_plot
from bench.router_proc import RouterOptions, router_child

STRATEGIES = (ROUND_ROBIN, "composite", "least_loaded", "latency", "fallback", "priority", "cost_optimized")
SLOW_DOWN = 10.0
SLOTS, QUEUE = 4, 16


@dataclass(frozen=True)
class Settings:
    seconds: float
    rate: float  # requests per second, Poisson
    tokens: int


def workers(router: str) -> list[WorkerSpec]:
    def spec(name: str, ttft: float, token: float) -> WorkerSpec:
        return WorkerSpec(name, "bench", ttft, token, SLOTS, QUEUE, router)

    return [
        spec("fast", 0.010, 0.002),
        spec("medium", 0.030, 0.005),
        spec("slow", 0.100, 0.020),
        spec("degrading", 0.010, 0.002),
        spec("dying", 0.010, 0.003),
    ]


def run_one(load: Child, strategy: str, s: Settings) -> LoadResult:
    router = spawn("sim-router", router_child, RouterOptions())
    address = str(router.info["address"])
    children: dict[str, Child] = {}
    try:
        for spec in workers(address):
            children[spec.worker_id] = spawn(f"sim-{spec.worker_id}", worker_child, spec)
        load.conn.send(PoissonLoad(address, s.rate, s.seconds, s.tokens, strategy))
        began = time.monotonic()
        time.sleep(s.seconds * 0.5)
        children["degrading"].request(("slow", SLOW_DOWN), 10)
        time.sleep(max(0.0, began + s.seconds * 0.6 - time.monotonic()))
        children.pop("dying").kill()
        if not load.conn.poll(s.seconds + 60):
            raise TimeoutError(f"simulation {strategy}: no result")
        result: LoadResult = load.conn.recv()
        return result
    finally:
        for child in children.values():
            child.stop()
        router.stop()


def run(report: Report, load: Child, s: Settings) -> dict[str, LoadResult]:
    results: dict[str, LoadResult] = {}
    for strategy in STRATEGIES:
        print(f"bench: simulation: {strategy}", flush=True)
        results[strategy] = run_one(load, strategy, s)
    _report(report, results, s)
    simulated(report, s)
    return results


def simulated(report: Report, s: Settings) -> None:
    """The same workers and events in simulated time: figures that do not move with the machine's load."""
    from bench import pool_sim  # here: it builds on this module's workers

    outcomes = pool_sim.run(report, pool_sim.PoolSimSettings(1, 1.0, s.rate, s.seconds, s.tokens), STRATEGIES)
    p99 = {name: percentile(o.ttft_ms, 0.99) for name, o in outcomes.items()}
    worst = max((n for n in p99 if n != ROUND_ROBIN), key=p99.__getitem__)
    report.targets.append(
        Target(
            "Worst strategy's p99 TTFT vs composite (simulated time)",
            "≤ 2x composite",
            f"{worst} {ms(p99[worst], 1)} ms vs {ms(p99['composite'], 1)} ms "
            f"({p99[worst] / p99['composite']:.1f}x; latency {ms(p99['latency'], 1)} ms)",
            p99[worst] <= 2 * p99["composite"],
        )
    )


def _summary(result: LoadResult) -> dict[str, float]:
    ok = result.ok
    ttfts = [o.ttft_ms for o in ok if o.ttft_ms is not None]
    totals = [o.total_ms for o in ok]
    return {
        "ttft_p50": percentile(ttfts, 0.5),
        "ttft_p99": percentile(ttfts, 0.99),
        "total_p50": percentile(totals, 0.5),
        "total_p99": percentile(totals, 0.99),
    }


def _errors(result: LoadResult) -> str:
    codes: dict[str, int] = {}
    for o in result.outcomes:
        if o.error:
            key = f"{o.error} {'mid-stream' if o.chunks else 'before first chunk'}"
            codes[key] = codes.get(key, 0) + 1
    return ", ".join(f"{n}x {k}" for k, n in sorted(codes.items())) or "none"


def _report(report: Report, results: dict[str, LoadResult], s: Settings) -> None:
    table = Table(
        "Scheduling quality (simulation)",
        [
            "strategy",
            "requests",
            "TTFT p50 ms",
            "TTFT p99 ms",
            "completion p50 ms",
            "completion p99 ms",
            "failed before first chunk",
            "failed mid-stream",
            "errors",
        ],
    )
    summaries = {name: _summary(r) for name, r in results.items()}
    for name, r in results.items():
        m = summaries[name]
        table.rows.append(
            [
                name,
                str(len(r.outcomes)),
                ms(m["ttft_p50"], 1),
                ms(m["ttft_p99"], 1),
                ms(m["total_p50"], 1),
                ms(m["total_p99"], 1),
                str(r.failed_before_first),
                str(r.failed_mid_stream),
                _errors(r),
            ]
        )
    table.notes += [
        f"{s.seconds:.0f} s of Poisson arrivals at {s.rate:.0f}/s, {s.tokens} tokens each, same seed for every strategy.",
        f"Workers (TTFT / per token, {SLOTS} running + {QUEUE} queued each): fast 10/2 ms, medium 30/5 ms, "
        f"slow 100/20 ms, degrading 10/2 ms then {SLOW_DOWN:.0f}x slower at 50 %, dying 10/3 ms, killed at 60 %.",
        "round_robin: the client rotates routing.provider over the healthy workers the router lists.",
    ]
    report.tables.append(table)
    composite, baseline = summaries["composite"], summaries[ROUND_ROBIN]
    ratio = baseline["ttft_p99"] / composite["ttft_p99"] if composite["ttft_p99"] > 0 else math.nan
    report.targets.append(
        Target(
            "Composite p99 TTFT vs round robin",
            "≤ half of round robin",
            f"{ms(composite['ttft_p99'], 1)} ms vs {ms(baseline['ttft_p99'], 1)} ms ({ratio:.1f}x lower)",
            composite["ttft_p99"] <= baseline["ttft_p99"] / 2,
        )
    )
    routed = [n for n in summaries if n != ROUND_ROBIN]
    worst = max(routed, key=lambda n: summaries[n]["ttft_p99"])
    worst_ratio = (
        summaries[worst]["ttft_p99"] / composite["ttft_p99"] if composite["ttft_p99"] > 0 else math.nan
    )
    report.targets.append(
        Target(
            "Worst strategy's p99 TTFT vs composite (simulation)",
            "≤ 2x composite",
            f"{worst} {ms(summaries[worst]['ttft_p99'], 1)} ms vs {ms(composite['ttft_p99'], 1)} ms "
            f"({worst_ratio:.1f}x; latency {ms(summaries['latency']['ttft_p99'], 1)} ms)",
            worst_ratio <= 2.0,
        )
    )
    lost = results["composite"].failed_before_first
    report.targets.append(
        Target(
            "Requests failed before streaming when a worker dies (composite)",
            "0",
            f"{lost} ({_errors(results['composite'])})",
            lost == 0,
        )
    )
    names = list(results)
    bars = bar_plot(
        "simulation_ttft",
        "Time to first token by strategy",
        names,
        {"p50": [summaries[n]["ttft_p50"] for n in names], "p99": [summaries[n]["ttft_p99"] for n in names]},
        "ms",
        log=True,
    )
    points = scatter_plot(
        "simulation_timeline",
        "TTFT over the run (slow-down at 50 %, death at 60 %)",
        {
            n: ([o.start_s for o in results[n].ok], [o.ttft_ms or math.nan for o in results[n].ok])
            for n in (ROUND_ROBIN, "composite", "least_loaded")
        },
        "seconds since start",
        "TTFT ms",
    )
    report.plots += [p for p in (bars, points) if p]
