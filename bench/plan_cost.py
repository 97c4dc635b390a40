"""What `RequestPipeline._plan` costs per request, step by step, in one process without gRPC.

A router on the production defaults (not started: no port, no ledger) with N workers registered as the pool
host registers them (one model, 64 slots, a load report each), and `_plan` called for a small chat request
as the pipeline calls it, one request at a time. Each step is timed by a wrapper around the function that
does it; a step's "rest" is its time outside the steps listed under it. The wrappers add a little to every
row, so the "_plan (untimed)" row, from a run without them, is the figure to compare.

`python -m bench.plan_cost [--sizes 2,100,1000] [--requests N]`
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import gc
import random
import statistics
import sys
import time
from collections.abc import Callable
from typing import Any

from modelyard.v1 import backend_pb2
from modelyard.v1 import inference_pb2 as pb

from bench.load import chat_request
from core import event_loop, tracing
from router.accounting.estimates import estimate_chat
from router.accounting.ticket import Ticket
from router.backends.base import ModelSpec
from router.backends.worker import WorkerBackend
from router.config.settings import RouterConfig
from router.pipeline import RequestPipeline
from router.routing import prefix_routing, scheduler, warm_start
from router.routing.placement import Hold
from router.routing.scoring import fused, strategies
from router.server import RouterServer

MODEL = "bench"
# (row, parent row): where each timed function sits in `_plan`.
Step = tuple[str, str | None]


class _Clock:
    """Per request: time spent in each wrapped function."""

    def __init__(self) -> None:
        self.now: dict[str, float] = {}
        self.rows: dict[str, list[float]] = {}

    def add(self, name: str, seconds: float) -> None:
        self.now[name] = self.now.get(name, 0.0) + seconds

    def end_request(self, names: list[str]) -> None:
        for name in names:
            self.rows.setdefault(name, []).append(self.now.get(name, 0.0))
        self.now.clear()


def _wrap(clock: _Clock, name: str, function: Callable[..., Any]) -> Callable[..., Any]:
    if asyncio.iscoroutinefunction(function):

        @functools.wraps(function)
        async def timed_async(*args: Any, **kwargs: Any) -> Any:
            began = time.perf_counter()
            try:
                return await function(*args, **kwargs)
            finally:
                clock.add(name, time.perf_counter() - began)

        return timed_async

    @functools.wraps(function)
    def timed(*args: Any, **kwargs: Any) -> Any:
        began = time.perf_counter()
        try:
            return function(*args, **kwargs)
        finally:
            clock.add(name, time.perf_counter() - began)

    return timed


def _instrument(clock: _Clock) -> tuple[list[Step], Callable[[], None]]:
    """Wrap each step of `_plan`; returns the rows and how to unwrap them."""
    targets: list[tuple[Any, str, str, str | None]] = [  # (owner, attribute, row, parent)
        (scheduler.Scheduler, "check_hints", "check_hints", "_plan"),
        (Ticket, "preferred_strategy", "ticket.preferred_strategy", "_plan"),
        (Ticket, "reserve_budget", "ticket.reserve_budget", "_plan"),
        (warm_start.WarmStart, "plan", "warm_start.plan", "_plan"),
        (scheduler.Scheduler, "plan", "Scheduler.plan", "warm_start.plan"),
        (scheduler.Scheduler, "_groups", "targets (_groups)", "Scheduler.plan"),
        (scheduler.Scheduler, "_sample", "filter: sample (bounded)", "Scheduler.plan"),
        (scheduler._Filter, "consider_all", "filter: all (exact)", "Scheduler.plan"),
        (prefix_routing.PrefixRouting, "annotate", "prefix annotate", "Scheduler.plan"),
        (scheduler, "rank", "rank", "Scheduler.plan"),
        (fused, "score", "scorers, one pass (scoring.fused)", "rank"),
        (Hold, "order", "hold.order", "Scheduler.plan"),
        (prefix_routing.PrefixRouting, "record", "prefix record", "Scheduler.plan"),
        (Ticket, "reserve_cost", "ticket.reserve_cost", "_plan"),
    ]
    for name, scorer in strategies.SCORERS.items():  # a strategy naming only these ranks in one pass
        targets.append((scorer, "score", f"score: {name}", "rank"))
    undo: list[Callable[[], None]] = []
    steps: list[Step] = [("_plan", None)]
    for owner, attribute, row, parent in targets:
        original = getattr(owner, attribute)
        setattr(owner, attribute, _wrap(clock, row, original))
        if isinstance(owner, type) or owner in (scheduler, fused):
            undo.append(functools.partial(setattr, owner, attribute, original))
        else:  # a scorer instance: drop the instance attribute, the class's method shows again
            undo.append(functools.partial(delattr, owner, attribute))
        steps.append((row, parent))

    def unwrap() -> None:
        for u in reversed(undo):
            u()

    return steps, unwrap


def _server(workers: int) -> RouterServer:
    server = RouterServer(RouterConfig(listen="127.0.0.1:0", router_id="bench-plan"))
    rng = random.Random(7)
    models = [ModelSpec(MODEL, frozenset({pb.CAPABILITY_CHAT}))]
    for i in range(workers):
        load = backend_pb2.LoadReport(running=rng.randint(0, 8), waiting=rng.randint(0, 2))
        backend = WorkerBackend(
            id=f"pool-{i}",
            kind="worker",
            models=models,
            worker_address=f"127.0.0.1:{20000 + i}",
            max_concurrency=64,
            load=load,
        )
        server.registry.add(backend)
        stats = server.state.stats[backend.id]
        stats.record_success(rng.uniform(5, 50), rng.uniform(50, 500))
    return server


SUSPENDED = [0]  # `_plan` calls that let the loop run something else before they returned


async def _one(pipeline: RequestPipeline, request: pb.ChatRequest) -> float:
    """One `_plan` as the pipeline's chat calls it; its wall time in seconds. A callback scheduled just
    before it runs before it returns only if it suspended: then the loop ran other work inside it."""
    state = pipeline._state
    with (
        tracing.request_span("modelyard.router/Chat", ()) as trace,
        pipeline._accounting.ticket("chat", (), request) as ticket,
        pipeline.placement.hold() as hold,
    ):
        ticket.authenticate()
        estimate = estimate_chat(request)
        await hold.admit(ticket, request, pb.CAPABILITY_CHAT, None)
        ran: list[bool] = []
        asyncio.get_running_loop().call_soon(ran.append, True)
        began = time.perf_counter()
        await pipeline._plan(
            trace,
            ticket,
            request,
            pb.CAPABILITY_CHAT,
            estimate,
            prefix_keys=lambda: state.prefixes.keys(request),
            hold=hold,
        )
        took = time.perf_counter() - began
        SUSPENDED[0] += bool(ran)
        return took


async def _measure(workers: int, requests: int) -> tuple[list[float], list[Step], dict[str, list[float]]]:
    server = _server(workers)
    pipeline = server.pipeline
    request = chat_request(MODEL, 1)
    for _ in range(500):  # warm-up
        await _one(pipeline, request)
    gc.collect()
    untimed = [await _one(pipeline, request) for _ in range(requests)]
    clock = _Clock()
    steps, undo = _instrument(clock)
    try:
        for _ in range(requests):
            clock.add("_plan", await _one(pipeline, request))
            clock.end_request([row for row, _ in steps])
    finally:
        undo()
    return untimed, steps, clock.rows


def _table(workers: int, untimed: list[float], steps: list[Step], rows: dict[str, list[float]]) -> list[str]:
    def p50(values: list[float]) -> float:
        return statistics.median(values) * 1e6

    children: dict[str, list[str]] = {}
    for row, parent in steps:
        if parent is not None:
            children.setdefault(parent, []).append(row)
    depth = {"_plan": 0}
    out = [f"### {workers} workers", "", "| step | µs p50 | µs mean |", "| --- | --- | --- |"]
    out.append(f"| _plan (untimed) | {p50(untimed):.1f} | {statistics.fmean(untimed) * 1e6:.1f} |")

    def shown(row: str) -> list[str]:
        """The rows under `row`; a step never called (the code has none such) gives way to its own."""
        out: list[str] = []
        for kid in children.get(row, []):
            out += [kid] if any(rows[kid]) else shown(kid)
        return out

    def emit(row: str) -> None:
        values = rows[row]
        pad = "&nbsp;&nbsp;" * depth[row]
        out.append(f"| {pad}{row} | {p50(values):.1f} | {statistics.fmean(values) * 1e6:.1f} |")
        kids = shown(row)
        for kid in kids:
            depth[kid] = depth[row] + 1
            emit(kid)
        if kids:
            rest = [total - sum(rows[k][i] for k in kids) for i, total in enumerate(values)]
            pad = "&nbsp;&nbsp;" * (depth[row] + 1)
            out.append(f"| {pad}rest of {row} | {p50(rest):.1f} | {statistics.fmean(rest) * 1e6:.1f} |")

    emit("_plan")
    return out


def run(sizes: tuple[int, ...], requests: int) -> list[str]:
    lines: list[str] = []
    for workers in sizes:
        SUSPENDED[0] = 0
        untimed, steps, rows = event_loop.run(_measure(workers, requests))
        lines += [*_table(workers, untimed, steps, rows), ""]
        lines += [f"`_plan` suspended in {SUSPENDED[0]} of {2 * requests + 500} calls", ""]
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.plan_cost", description=__doc__)
    parser.add_argument("--sizes", default="2,100,1000", help="comma-separated worker counts")
    parser.add_argument("--requests", type=int, default=3000)
    args = parser.parse_args(argv)
    print("\n".join(run(tuple(int(n) for n in args.sizes.split(",")), args.requests)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
