"""Fairness: tenant "flood" keeps 48 streams going on a 2-worker pool, tenant "quiet" sends one at a time.

Workers run 4 requests at once and queue the rest; a request holds its slot about 0.4 s (20 ms to the first
token, then 10 to 30 tokens, 20 on average, 19 ms apart: answers differ in length, so slots free at random
times), so the pool serves about 20 requests/s. Two runs, each with a fresh router
and workers: "today" (no admission queue: requests pile into the workers' FIFO queues in arrival order) and
"admission" (the router holds them and dispatches with weighted fair queuing, equal weights).
Each run also reads the workers' own slot timers over the measured window: the share of slot-time they were
busy (idle slots with admission on would be time between a slot freeing and the router's next dispatch) and
the requests/s the pool could finish at the hold times it showed, so a drop in the flood's throughput can
be read as waste (idle slots) or as the quiet tenant's share (a busy pool serving both).
"""

from __future__ import annotations

import asyncio
import random
import time
from dataclasses import dataclass

import grpc
from modelyard.v1 import router_pb2_grpc

from bench import inproc
from bench.report import Report, Table, Target, ms, percentile
from router.accounting.auth import hash_key
from router.config.accounting import ApiKey
from router.config.admission import AdmissionConfig
from router.config.settings import RouterConfig

FLOOD_STREAMS = 48
TTFT_S, TOKEN_S, TOKENS = 0.020, 0.019, 20
KEYS = {"flood": "bench-flood-key", "quiet": "bench-quiet-key"}


@dataclass(frozen=True)
class Settings:
    seconds: float
    warmup_s: float = 2.0  # the flood fills the queues first; outcomes from then on are counted


@dataclass
class Run:
    quiet_ttft: list[float]
    flood_done: int
    failed: int
    seconds: float
    pool: inproc.PoolUse


def _config(admission: bool) -> RouterConfig:
    keys = [ApiKey(tenant, hash_key(key)) for tenant, key in KEYS.items()]
    return RouterConfig(keys=keys, admission=AdmissionConfig(enabled=admission))


async def _run(admission: bool, s: Settings) -> Run:
    async with (
        inproc.router(_config(admission)) as server,
        inproc.workers(server.address, TTFT_S, TOKEN_S) as children,
        grpc.aio.insecure_channel(server.address) as channel,
    ):
        await inproc.wait_for_workers(server, ["w1", "w2"])
        stub = router_pb2_grpc.RouterServiceStub(channel)
        began = time.perf_counter()
        end = began + s.warmup_s + s.seconds
        outcomes: list[inproc.Outcome] = []
        lengths = random.Random(1)

        async def stream(tenant: str, pause_s: float) -> None:
            metadata = (("authorization", f"Bearer {KEYS[tenant]}"),)
            while time.perf_counter() < end:
                request = inproc.request(inproc.MODEL, lengths.randint(TOKENS // 2, TOKENS * 3 // 2))
                outcomes.append(await inproc.chat(stub, tenant, request, began, metadata))
                if pause_s:
                    await asyncio.sleep(pause_s)

        async def window() -> inproc.PoolUse:  # the workers' slot use over the measured window
            await asyncio.sleep(max(0.0, began + s.warmup_s - time.perf_counter()))
            before = await inproc.slot_use(children)
            await asyncio.sleep(max(0.0, end - time.perf_counter()))
            return inproc.pool_use(before, await inproc.slot_use(children))

        measuring = asyncio.create_task(window())
        streams = [stream("flood", 0.0) for _ in range(FLOOD_STREAMS)]
        await asyncio.gather(*streams, stream("quiet", 0.05))
        pool = await measuring
    measured = [o for o in outcomes if s.warmup_s <= o.end_s <= s.warmup_s + s.seconds]
    quiet = [o.ttft_ms for o in measured if o.tenant == "quiet" and o.ttft_ms is not None and not o.error]
    flood = sum(1 for o in measured if o.tenant == "flood" and not o.error)
    return Run(quiet, flood, sum(1 for o in outcomes if o.error), s.seconds, pool)


def run(report: Report, s: Settings) -> dict[str, Run]:
    runs = {"today": asyncio.run(_run(False, s)), "admission": asyncio.run(_run(True, s))}
    table = Table(
        "Fairness: a quiet tenant beside a flood",
        [
            "router",
            "quiet TTFT p50 ms",
            "quiet TTFT p99 ms",
            "quiet requests",
            "flood requests/s",
            "both requests/s",
            "failed",
            "workers busy",
            "workers could finish req/s",
        ],
    )
    for name, r in runs.items():
        table.rows.append(
            [
                name,
                ms(percentile(r.quiet_ttft, 0.5), 1),
                ms(percentile(r.quiet_ttft, 0.99), 1),
                str(len(r.quiet_ttft)),
                f"{r.flood_done / r.seconds:.1f}",
                f"{(r.flood_done + len(r.quiet_ttft)) / r.seconds:.1f}",
                str(r.failed),
                f"{r.pool.busy_share:.2f}",
                f"{r.pool.capacity_rps:.1f}",
            ]
        )
    table.notes += [
        f"{FLOOD_STREAMS} flood streams (closed loop) and 1 quiet stream (50 ms between requests), {s.seconds:.0f} s "
        f"measured after {s.warmup_s:.0f} s; 2 workers of 4 slots, {TTFT_S * 1000:.0f} ms to the first token "
        f"then {TOKENS // 2} to {TOKENS * 3 // 2} tokens {TOKEN_S * 1000:.0f} ms apart; requests that ended in the "
        "measured window count; router and clients in one process, each worker in its own.",
        "admission: `admission: {enabled: true}` (target_queue_depth 0, dispatch_lead_ms 60, equal weights).",
        "The quiet tenant's share comes out of the flood's: served at its turn, it holds a slot about a tenth of "
        "the time (today it waits behind the flood), so 'both requests/s' is the pool's throughput.",
        "Workers busy: slot-seconds the workers held in the window / (8 slots x the window), as the workers timed "
        "them; could finish: 8 / the mean seconds an answer held a slot (nominal 8 / 0.381 = 21/s). Busy below "
        "today's with admission on is slot time lost between a slot freeing and the next dispatch; at equal busy "
        "shares the flood's drop is what the quiet tenant, served at its turn, now finishes.",
        "Measured on shared cores (other work on the machine): figures are noisy.",
    ]
    report.tables.append(table)
    fair, today = runs["admission"], runs["today"]
    p50, p99 = percentile(fair.quiet_ttft, 0.5), percentile(fair.quiet_ttft, 0.99)
    report.targets.append(
        Target(
            "Quiet tenant TTFT under a flood (admission)",
            "p50 ≤ 150 ms, p99 ≤ 400 ms, none failed",
            f"p50 {ms(p50, 1)} ms, p99 {ms(p99, 1)} ms, {fair.failed} failed "
            f"(today: {ms(percentile(today.quiet_ttft, 0.5), 1)} / {ms(percentile(today.quiet_ttft, 0.99), 1)} ms)",
            bool(fair.quiet_ttft) and p50 <= 150 and p99 <= 400 and fair.failed == 0,
        )
    )
    ratio = fair.flood_done / today.flood_done if today.flood_done else 0.0
    report.targets.append(
        Target(
            "Flood throughput with admission vs today",
            "≥ 0.95x",
            f"{fair.flood_done / fair.seconds:.1f} vs {today.flood_done / today.seconds:.1f} requests/s ({ratio:.2f}x); "
            f"workers busy {fair.pool.busy_share:.2f} vs {today.pool.busy_share:.2f}, both tenants "
            f"{(fair.flood_done + len(fair.quiet_ttft)) / fair.seconds:.1f} vs "
            f"{(today.flood_done + len(today.quiet_ttft)) / today.seconds:.1f} requests/s",
            ratio >= 0.95,
        )
    )
    return runs
