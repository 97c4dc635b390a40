"""Router resident memory: idle, then holding 1,000 concurrent open streams on a slow bench worker."""

from __future__ import annotations

import time
from dataclasses import dataclass

from bench.fixtures import WorkerSpec, worker_child
from bench.load import HoldStreams, LoadResult
from bench.processes import Child, rss_mb, spawn
from bench.report import Report, Table, Target
from bench.router_proc import RouterOptions, router_child
from router.config.limits import LimitsConfig, TenantLimits

LIMIT_MB = 200.0


@dataclass(frozen=True)
class Settings:
    streams: int = 1000
    hold_timeout_s: float = 60.0


def _settled_rss(pid: int, seconds: float = 1.0) -> float:
    time.sleep(seconds)
    return rss_mb(pid)


def run(report: Report, load: Child, s: Settings) -> None:
    print("bench: memory", flush=True)
    # One tenant holds every stream: no per-tenant concurrency limit (the default, 64, would refuse the rest).
    unlimited = LimitsConfig(default=TenantLimits(concurrent_streams=0))
    router = spawn("mem-router", router_child, RouterOptions(limits=unlimited))
    address = str(router.info["address"])
    worker: Child | None = None
    table = Table("Router memory (RSS)", ["state", "RSS MiB"])
    try:
        idle = _settled_rss(router.pid)
        table.rows.append(["idle, no backend", f"{idle:.1f}"])
        # One token at once, then one every 10 minutes: the streams stay open until released.
        spec = WorkerSpec("slow-worker", "slow", 0.0, 600.0, slots=s.streams + 100, router=address)
        worker = spawn("mem-worker", worker_child, spec)
        table.rows.append(["idle, one worker registered", f"{_settled_rss(router.pid):.1f}"])
        load.conn.send(HoldStreams(address, s.streams, s.hold_timeout_s))
        if not load.conn.poll(s.hold_timeout_s + 30):
            raise TimeoutError("memory: the load generator did not report its open streams")
        held = load.conn.recv()
        loaded = _settled_rss(router.pid, 2.0)
        table.rows.append(
            [f"{held['held']} open streams (after {held['seconds']:.1f} s to open)", f"{loaded:.1f}"]
        )
        load.conn.send("release")
        if load.conn.poll(60):
            result: LoadResult = load.conn.recv()
            del result
        table.rows.append(["streams released", f"{_settled_rss(router.pid, 2.0):.1f}"])
    finally:
        if worker is not None:
            worker.stop()
        router.stop()
    per_stream = (loaded - idle) / max(1, held["held"]) * 1024
    table.notes.append(
        f"About {per_stream:.0f} KiB per open stream above idle (relay state, gRPC buffers, both legs)."
    )
    report.tables.append(table)
    complete = held["held"] >= s.streams
    megabytes = loaded * 1.048576  # MiB to MB (10^6 bytes), as the target is written
    figure = f"{megabytes:.1f} MB ({loaded:.1f} MiB) with {held['held']} streams"
    report.targets.append(
        Target(
            f"Router RSS with {s.streams:,} open streams",
            f"< {LIMIT_MB:.0f} MB",
            figure,
            megabytes < LIMIT_MB if complete else None,
        )
    )
