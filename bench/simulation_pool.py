"""Scheduling quality with 100 workers: the simulation's five kinds of worker twenty times over, hosted in one
process (bench.pool_host), so the router schedules a large pool (a bounded sample per request, see
router.config.pool) rather than ranking every worker.

Same events as bench/simulation.py: at half time every "degrading" worker becomes 10x slower, at 60 % every
"dying" one is killed. Every delay is STRETCH times the five-worker run's and arrivals come at
COPIES / STRETCH times its rate, so each worker is as busy as there while the router relays fewer messages
(two shared cores could not relay twenty times as many). The run is LONGER times longer: the router learns a
worker's speed as its answers end, and those take STRETCH times as long.
"""

from __future__ import annotations

import math
import sys
import time
from dataclasses import replace

from bench import pool_sim
from bench.fixtures import WorkerSpec
from bench.load import ROUND_ROBIN, LoadResult, PoissonLoad, load_child
from bench.pool_host import PoolSpec, pool_child
from bench.pool_sim import PoolSimSettings
from bench.processes import Child, spawn
from bench.report import Report, Table, Target, ms
from bench.router_proc import RouterOptions, router_child
from bench.simulation import SLOW_DOWN, Settings, _errors, _summary, workers
from router.config.limits import LimitsConfig, TenantLimits

COPIES = 20
STRETCH = 10.0
LONGER = 3  # the run, this many times the five-worker one's
STRATEGIES = (ROUND_ROBIN, "composite")


def pool_workers(router: str) -> tuple[WorkerSpec, ...]:
    return tuple(
        replace(
            spec,
            worker_id=f"{spec.worker_id}-{copy}",
            ttft_s=spec.ttft_s * STRETCH,
            token_s=spec.token_s * STRETCH,
        )
        for spec in workers(router)
        for copy in range(COPIES)
    )


def run_one(load: Child, strategy: str, s: Settings) -> LoadResult:
    # Requests here last up to seconds, so a hundred or more run at once: past the built-in 64 per tenant,
    # and, while round robin queues behind the slow workers, past 256 streams on the load's one connection.
    unlimited = LimitsConfig(default=TenantLimits(concurrent_streams=0))
    options = RouterOptions(limits=unlimited, extra={"grpc_max_concurrent_streams": 4096})
    router = spawn("simpool-router", router_child, options)
    address = str(router.info["address"])
    host: Child | None = None
    try:
        specs = pool_workers(address)
        host = spawn("simpool-workers", pool_child, PoolSpec(address, specs), ready_timeout=180)
        degrading = [w.worker_id for w in specs if w.worker_id.startswith("degrading")]
        dying = [w.worker_id for w in specs if w.worker_id.startswith("dying")]
        rate, seconds = s.rate * COPIES / STRETCH, s.seconds * LONGER
        load.conn.send(PoissonLoad(address, rate, seconds, s.tokens, strategy))
        began = time.monotonic()
        time.sleep(seconds * 0.5)
        host.request(("slow", degrading, SLOW_DOWN), 30)
        time.sleep(max(0.0, began + seconds * 0.6 - time.monotonic()))
        host.request(("kill", dying), 30)
        if not load.conn.poll(seconds + 120):
            raise TimeoutError(f"simulation with {len(specs)} workers, {strategy}: no result")
        result: LoadResult = load.conn.recv()
        return result
    finally:
        if host is not None:
            host.stop(60)
        router.stop()


def run(report: Report, load: Child, s: Settings) -> dict[str, LoadResult]:
    results: dict[str, LoadResult] = {}
    for strategy in STRATEGIES:
        print(f"bench: simulation, {COPIES * 5} workers: {strategy}", flush=True)
        results[strategy] = run_one(load, strategy, s)
    summaries = {name: _summary(r) for name, r in results.items()}
    table = Table(
        f"Scheduling quality with {COPIES * 5} workers (simulation)",
        ["strategy", "requests", "TTFT p50 ms", "TTFT p99 ms", "completion p99 ms", "errors"],
    )
    for name, r in results.items():
        m = summaries[name]
        table.rows.append(
            [
                name,
                str(len(r.outcomes)),
                ms(m["ttft_p50"], 1),
                ms(m["ttft_p99"], 1),
                ms(m["total_p99"], 1),
                _errors(r),
            ]
        )
    table.notes += [
        f"{COPIES} workers of each kind of the five-worker run, every delay {STRETCH:g}x longer, "
        f"{s.rate * COPIES / STRETCH:g} requests/s of {s.tokens} tokens for "
        f"{s.seconds * LONGER:g} s; "
        "all degrading workers slow down at 50 %, all dying ones are killed at 60 %.",
        "The router scores a bounded set per request: the prefix holders, pool.sample random workers, the previous "
        "request's ranking, the clouds.",
    ]
    report.tables.append(table)
    composite, baseline = summaries["composite"], summaries[ROUND_ROBIN]
    ratio = baseline["ttft_p99"] / composite["ttft_p99"] if composite["ttft_p99"] > 0 else math.nan
    report.targets.append(
        Target(
            f"Composite p99 TTFT vs round robin, {COPIES * 5} workers",
            "≤ half of round robin",
            f"{ms(composite['ttft_p99'], 1)} ms vs {ms(baseline['ttft_p99'], 1)} ms ({ratio:.1f}x lower)",
            composite["ttft_p99"] <= baseline["ttft_p99"] / 2,
        )
    )
    # The same pool and events in simulated time: figures that do not move with the machine's load. Simulated
    # time can afford the five-worker run's length in stretched time (STRETCH times longer, not LONGER), so each
    # worker sees as many requests as there: the router learns a worker's speed only by sending it requests, one
    # slow first answer per slow or degraded worker, a fixed cost that a shorter run turns into its p99.
    pool_sim.run(
        report,
        PoolSimSettings(COPIES, STRETCH, s.rate * COPIES / STRETCH, s.seconds * STRETCH, s.tokens),
        STRATEGIES,
    )
    return results


def main() -> int:
    """`python -m bench.simulation_pool`: the quick form alone, printed."""
    report = Report("quick")
    load = spawn("load-generator", load_child)
    try:
        run(report, load, Settings(seconds=10.0, rate=40.0, tokens=16))
    finally:
        load.stop()
    print("\n".join(report.markdown()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
