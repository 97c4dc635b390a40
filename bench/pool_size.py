"""Pool size: what the router's work per request costs as the pool grows, 2 against 100 against 1,000 workers.

For each size, a fresh router and one process hosting every worker (bench.pool_host: a gRPC server and a
Register stream each, run by the worker's own registration code: load reports when the load changes, else a
heartbeat every 3 s; answers at once). In one run: the time to register them all,
the router's CPU with only their load reports coming in, its RSS, requests/s at c=32 and p50 at c=1 through
the router (1-token answers), and the time `RequestPipeline._plan` takes per request, timed inside the router
while that load runs.

`python -m bench.pool_size [--quick]` runs it alone; `python -m bench --only pool_size` as a section.
"""

from __future__ import annotations

import argparse
import logging
import math
import sys
import tempfile
import time
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from bench.load import ChatLoad, LoadResult, load_child
from bench.pool_host import PoolSpec, pool_child
from bench.processes import Child, cpu_seconds, next_command, rss_mb, spawn
from bench.report import Report, Table, Target, count, ms, percentile
from core import event_loop, gc_tuning
from router.config.settings import RouterConfig
from router.server import RouterServer

SIZES = (2, 100, 1000)


@dataclass(frozen=True)
class Settings:
    seconds: float  # per load (c=32, then c=1), bounded by the request counts too
    requests: int
    idle_s: float  # router CPU measured over this long with only load reports
    sizes: tuple[int, ...] = SIZES


QUICK = Settings(seconds=3.0, requests=5_000, idle_s=3.0)
FULL = Settings(seconds=10.0, requests=50_000, idle_s=10.0)


@dataclass
class Figures:
    workers: int
    register_s: float
    idle_cpu: float  # share of one core
    rss_mb: float
    rps_c32: float
    p50_c1_ms: float
    plan_p50_us: float
    plan_p99_us: float
    plan_cpu_p50_us: (
        float  # the same, in CPU time of the router's thread: what other processes do not inflate
    )
    router_cpu_us: float  # router CPU per request at c=32, warm-up included
    host_cpu_us: float  # the pool host's CPU per request at c=32: what answering costs the workers' side
    errors: int


async def _serve_router(conn: Connection, ledger_dir: str) -> None:
    config = RouterConfig(
        listen="127.0.0.1:0", router_id="bench-pool", usage_db=str(Path(ledger_dir) / "usage.sqlite3")
    )
    server = RouterServer(config)
    plan_times: list[tuple[float, float]] = []  # (wall, CPU of the router's thread) per call
    timed = server.pipeline._plan

    async def plan(*args: Any, **kwargs: Any) -> Any:
        began, cpu = time.perf_counter(), time.thread_time()
        try:
            return await timed(*args, **kwargs)
        finally:
            plan_times.append((time.perf_counter() - began, time.thread_time() - cpu))

    server.pipeline._plan = plan  # type: ignore[method-assign]
    await server.start()
    gc_tuning.settle_after_start()  # as router.main does once the router has started
    conn.send({"address": server.address})
    while (command := await next_command(conn)) != "stop":
        if command == "plan-times":
            conn.send(list(plan_times))
            plan_times.clear()
        elif command == "workers":
            conn.send(server.registry.workers)
        else:
            conn.send("ok")
    await server.stop(1.0)
    conn.send("stopped")


def pool_router_child(conn: Connection) -> None:
    """Process entry: a router with the production defaults that times its `_plan` for the bench."""
    logging.basicConfig(level=logging.ERROR)
    with tempfile.TemporaryDirectory(prefix="modelyard-bench-") as ledger_dir:
        event_loop.run(_serve_router(conn, ledger_dir))


def measure(load: Child, workers: int, s: Settings) -> Figures:
    router = spawn(f"pool-router-{workers}", pool_router_child)
    address = str(router.info["address"])
    host: Child | None = None
    try:
        host = spawn(
            f"pool-host-{workers}", pool_child, PoolSpec.uniform(workers, address), ready_timeout=180
        )
        register_s = float(host.info["register_s"])
        registered = router.request("workers", 10)
        if registered != workers:
            raise RuntimeError(f"the router holds {registered} of {workers} workers")
        time.sleep(1.0)  # every worker's first report in
        before = cpu_seconds(router.pid)
        time.sleep(s.idle_s)
        idle_cpu = (cpu_seconds(router.pid) - before) / s.idle_s
        rss = rss_mb(router.pid)
        warmup = max(200, 2 * workers)  # the router dials each worker on its first request
        cpu = cpu_seconds(router.pid), cpu_seconds(host.pid)
        busy = _load(load, ChatLoad(address, "router", 32, s.requests, s.seconds, 1, warmup))
        sent = warmup + len(busy.outcomes)
        router_cpu_us = (cpu_seconds(router.pid) - cpu[0]) / sent * 1e6
        host_cpu_us = (cpu_seconds(host.pid) - cpu[1]) / sent * 1e6
        router.request("plan-times", 30)  # at c=32 they would count other requests' turns on the loop too
        calm = _load(load, ChatLoad(address, "router", 1, s.requests, s.seconds, 1, 50))
        plans = router.request("plan-times", 30)
        return Figures(
            workers=workers,
            register_s=register_s,
            idle_cpu=idle_cpu,
            rss_mb=rss,
            rps_c32=len(busy.ok) / busy.elapsed_s if busy.elapsed_s else math.nan,
            p50_c1_ms=percentile([o.total_ms for o in calm.ok], 0.5),
            plan_p50_us=percentile([wall * 1e6 for wall, _ in plans], 0.5),
            plan_p99_us=percentile([wall * 1e6 for wall, _ in plans], 0.99),
            plan_cpu_p50_us=percentile([cpu * 1e6 for _, cpu in plans], 0.5),
            router_cpu_us=router_cpu_us,
            host_cpu_us=host_cpu_us,
            errors=len(busy.outcomes) - len(busy.ok) + len(calm.outcomes) - len(calm.ok),
        )
    finally:
        if host is not None:
            host.stop(60)
        router.stop()


def _load(load: Child, job: ChatLoad) -> LoadResult:
    result: LoadResult = load.request(job, job.max_seconds + 180)
    return result


def run(report: Report, load: Child, s: Settings) -> list[Figures]:
    figures = []
    for workers in s.sizes:
        print(f"bench: pool size: {workers} workers", flush=True)
        figures.append(measure(load, workers, s))
    _report(report, figures, s)
    return figures


def _report(report: Report, figures: list[Figures], s: Settings) -> None:
    table = Table(
        "Pool size",
        [
            "workers",
            "register all s",
            "router CPU, load reports only",
            "RSS MiB",
            "req/s (c=32)",
            "p50 ms (c=1)",
            "_plan µs p50",
            "_plan µs p99",
            "_plan CPU µs p50",
            "router CPU µs per request (c=32)",
            "pool host CPU µs per request",
            "errors",
        ],
    )
    for f in figures:
        table.rows.append(
            [
                str(f.workers),
                f"{f.register_s:.2f}",
                f"{f.idle_cpu:.1%}",
                f"{f.rss_mb:.1f}",
                count(f.rps_c32),
                ms(f.p50_c1_ms),
                f"{f.plan_p50_us:.1f}",
                f"{f.plan_p99_us:.1f}",
                f"{f.plan_cpu_p50_us:.1f}",
                f"{f.router_cpu_us:.0f}",
                f"{f.host_cpu_us:.0f}",
                str(f.errors),
            ]
        )
    table.notes += [
        "One process hosts every worker (bench/pool_host.py): a gRPC server and a Register stream each (the "
        "worker's own RegistrationStream: its load checked every second and sent when it changed, else a "
        "heartbeat every 3 s), 1-token answers at once; the router has the production defaults and, as "
        "router.main does, its start-up heap frozen (core.gc_tuning).",
        f"Loads: c=32 then c=1, each up to {s.requests:,} requests or {s.seconds:g} s; router CPU over "
        f"{s.idle_s:g} s with only load reports coming in, as a share of one core.",
        "_plan: RequestPipeline._plan (budget checks and the scheduler: targets, filter, scoring, ranking) "
        "timed inside the router during the c=1 load: wall clock, and the CPU time of the router's thread "
        "(which the other processes on these cores do not inflate).",
        "CPU per request: user and system time of the router (or of the process hosting every worker) over the "
        "c=32 load and its warm-up, divided by the requests sent; every process shares the same cores.",
    ]
    report.tables.append(table)
    base, largest = figures[0], figures[-1]
    if base is largest:
        return
    name = f"Pool of {largest.workers:,}"
    report.targets += [
        Target(
            f"{name}: req/s (c=32) vs {base.workers} workers",
            "≥ 0.9x",
            f"{largest.rps_c32 / base.rps_c32:.2f}x ({count(largest.rps_c32)} vs {count(base.rps_c32)})",
            largest.rps_c32 >= 0.9 * base.rps_c32,
        ),
        Target(
            f"{name}: p50 (c=1) vs {base.workers} workers",
            "≤ 1.25x",
            f"{largest.p50_c1_ms / base.p50_c1_ms:.2f}x ({ms(largest.p50_c1_ms)} vs {ms(base.p50_c1_ms)} ms)",
            largest.p50_c1_ms <= 1.25 * base.p50_c1_ms,
        ),
        Target(
            f"{name}: _plan p50",
            "≤ 50 µs",
            f"{largest.plan_p50_us:.1f} µs ({largest.plan_cpu_p50_us:.1f} µs of CPU; "
            f"{base.plan_p50_us:.1f} µs with {base.workers})",
            largest.plan_p50_us <= 50,
        ),
        Target(
            f"{name}: router CPU with only load reports",
            "≤ 10% of a core",
            f"{largest.idle_cpu:.1%}",
            largest.idle_cpu <= 0.10,
        ),
        Target(
            f"{name}: router RSS", "≤ 250 MB", f"{largest.rss_mb:.1f} MiB", largest.rss_mb * 1.048576 <= 250
        ),
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.pool_size", description=__doc__)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--sizes", default=",".join(map(str, SIZES)), help="comma-separated worker counts")
    args = parser.parse_args(argv)
    s = QUICK if args.quick else FULL
    s = Settings(s.seconds, s.requests, s.idle_s, tuple(int(n) for n in args.sizes.split(",")))
    report = Report("quick" if args.quick else "full")
    load = spawn("load-generator", load_child)
    try:
        run(report, load, s)
    finally:
        load.stop()
    print("\n".join(report.markdown()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
