"""`python -m bench.faults [--quick]`: what clients see when routine faults hit the pool mid-load.

Workers of our own (tests.client.echo_worker_process) each stream 40 numbered deltas 25 ms apart; a client
keeps 16 streams open at a time through the router (a process of its own, production defaults) while one
scenario's event happens. Each scenario prints requests, failed, migrated (answers that moved to another
backend mid-stream, Usage.parts) and the p99 request time.

A scenario is a name and a coroutine that sets up what it needs, runs `drive` with its event, and returns
the `Outcome`; SCENARIOS lists them (another module adds its own with one line there).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import grpc
from modelyard.v1 import inference_pb2 as pb
from modelyard.v1 import router_pb2, router_pb2_grpc

from bench import fault_routers
from bench.processes import Child, spawn
from bench.report import Report, Table, percentile
from bench.router_proc import RouterOptions, router_child

REPO = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Settings:
    requests: int = 128
    concurrency: int = 16
    deltas: int = 40  # per answer, one word each
    delta_s: float = 0.025  # between a worker's deltas
    event_after_s: float = 1.5  # into the load, the scenario's event happens
    freeze_s: float = 10.0


QUICK = Settings(requests=64)


@dataclass(frozen=True)
class Outcome:
    requests: int
    failed: int
    migrated: int
    p99_s: float
    errors: tuple[str, ...] = ()  # distinct failure statuses, for the notes


class Figures(Protocol):
    """What the table reads of a scenario's result (an Outcome, or a scenario module's own result)."""

    @property
    def requests(self) -> int: ...

    @property
    def failed(self) -> int: ...

    @property
    def migrated(self) -> int: ...

    @property
    def p99_s(self) -> float: ...

    @property
    def errors(self) -> tuple[str, ...]: ...


@dataclass(frozen=True)
class Scenario:
    name: str  # the event, as the table's first column says it
    run: Callable[[Settings], Coroutine[Any, Any, Figures]]


def request(settings: Settings) -> pb.ChatRequest:
    words = " ".join(f"n{i}" for i in range(settings.deltas))
    return pb.ChatRequest(
        model="echo", messages=[pb.Message(role=pb.ROLE_USER, content=[pb.ContentPart(text=words)])]
    )


async def drive(
    target: str,
    settings: Settings,
    event: Callable[[], Awaitable[None]],
    options: Sequence[tuple[str, str]] = (),
) -> Outcome:
    """`settings.requests` answers through `target`, `settings.concurrency` at a time; `event` starts
    `settings.event_after_s` in and is awaited before the figures are taken."""
    times: list[float] = []
    errors: list[str] = []
    migrated = 0
    todo = iter(range(settings.requests))
    chat = request(settings)
    async with grpc.aio.insecure_channel(target, options=list(options)) as channel:
        stub = router_pb2_grpc.RouterServiceStub(channel)

        async def client() -> None:
            nonlocal migrated
            for _ in todo:
                started = time.perf_counter()
                try:
                    async for response in stub.Chat(chat, timeout=120):
                        if response.HasField("usage") and response.usage.parts:
                            migrated += 1
                except grpc.aio.AioRpcError as e:
                    errors.append(e.code().name)
                times.append(time.perf_counter() - started)

        async def delayed_event() -> None:
            await asyncio.sleep(settings.event_after_s)
            await event()

        await asyncio.gather(delayed_event(), *(client() for _ in range(settings.concurrency)))
    return Outcome(len(times), len(errors), migrated, percentile(times, 0.99), tuple(sorted(set(errors))))


class Pool:
    """A router process and echo worker processes registered with it."""

    def __init__(self, router: Child, settings: Settings) -> None:
        self.router = router
        self.settings = settings
        self.workers: dict[str, asyncio.subprocess.Process] = {}

    @property
    def address(self) -> str:
        return str(self.router.info["address"])

    async def add_worker(self, worker_id: str) -> None:
        command = [sys.executable, "-m", "tests.client.echo_worker_process", "--router", self.address]
        command += [
            "--worker-id",
            worker_id,
            "--delay-s",
            str(self.settings.delta_s),
            "--max-concurrency",
            "64",
        ]
        self.workers[worker_id] = await asyncio.create_subprocess_exec(
            *command, cwd=REPO, env={**os.environ, "PYTHONPATH": _path()}
        )
        async with asyncio.timeout(60):
            while worker_id not in await self.backends():  # noqa: ASYNC110 -- the router's status, over gRPC
                await asyncio.sleep(0.1)

    async def backends(self, busy: bool = False) -> list[str]:
        """Backend ids in the router's pool; with `busy`, only those it has requests open on."""
        async with grpc.aio.insecure_channel(self.address) as channel:
            status = await router_pb2_grpc.RouterServiceStub(channel).GetStatus(router_pb2.GetStatusRequest())
        return [b.id for b in status.backends if b.in_flight or not busy]

    def signal(self, worker_id: str, signum: signal.Signals) -> None:
        self.workers[worker_id].send_signal(signum)

    async def stop(self) -> None:
        for process in self.workers.values():
            with contextlib.suppress(ProcessLookupError):
                process.send_signal(signal.SIGCONT)  # a frozen one cannot end otherwise
                process.kill()
            await process.wait()
        self.router.stop()


@contextlib.asynccontextmanager
async def pool(settings: Settings, workers: int = 2) -> AsyncIterator[Pool]:
    started = Pool(spawn("router", router_child, RouterOptions()), settings)
    try:
        for n in range(workers):
            await started.add_worker(f"w{n + 1}")
        yield started
    finally:
        await started.stop()


async def worker_killed(settings: Settings) -> Outcome:
    async with pool(settings) as workers:

        async def kill() -> None:
            victim = (await workers.backends(busy=True))[0]
            workers.signal(victim, signal.SIGKILL)

        return await drive(workers.address, settings, kill)


async def worker_frozen(settings: Settings) -> Outcome:
    async with pool(settings) as workers:

        async def freeze() -> None:
            victim = (await workers.backends(busy=True))[0]
            workers.signal(victim, signal.SIGSTOP)
            await asyncio.sleep(settings.freeze_s)
            workers.signal(victim, signal.SIGCONT)

        return await drive(workers.address, settings, freeze)


SCENARIOS: list[Scenario] = [
    Scenario("a worker SIGKILLed", worker_killed),
    Scenario("a worker frozen (SIGSTOP) for 10 s", worker_frozen),
    Scenario("two routers rolled (bench.fault_routers)", fault_routers.rolling_restart),
    Scenario("a router restarted (bench.fault_routers)", fault_routers.router_restart),
]


def run(report: Report, settings: Settings) -> Table:
    table = Table(
        "Faults: what clients see",
        ["event", "requests", "failed", "migrated", "p99 request (s)"],
        notes=[
            f"{settings.concurrency} streams at a time; each answer {settings.deltas} deltas "
            f"{settings.delta_s * 1000:.0f} ms apart from workers of our own (tests.client.echo_worker_process); "
            f"the event {settings.event_after_s:g} s into the load; router defaults (stall timeout 5 s). "
            "The router rows run bench.fault_routers with the same load shape (its own request count)."
        ],
    )
    for scenario in SCENARIOS:
        outcome = asyncio.run(scenario.run(settings))
        table.rows.append(
            [
                scenario.name,
                str(outcome.requests),
                str(outcome.failed),
                str(outcome.migrated),
                f"{outcome.p99_s:.2f}",
            ]
        )
        if outcome.errors:
            table.notes.append(f"{scenario.name}: failures were {', '.join(outcome.errors)}")
    report.tables.append(table)
    return table


def _path() -> str:
    """PYTHONPATH for a worker process: the repository (for tests.*) and the generated stubs."""
    parts = [str(REPO), str(REPO / "proto"), str(REPO / "clients"), os.environ.get("PYTHONPATH", "")]
    return os.pathsep.join(p for p in parts if p)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.faults", description=__doc__)
    parser.add_argument("--quick", action="store_true", default=os.environ.get("BENCH_QUICK") == "1")
    args = parser.parse_args(argv)
    report = Report("quick" if args.quick else "full")
    table = run(report, QUICK if args.quick else Settings())
    print(f"## {table.title}\n")
    print("| " + " | ".join(table.header) + " |")
    print("|" + "---|" * len(table.header))
    for row in table.rows:
        print("| " + " | ".join(row) + " |")
    for note in table.notes:
        print(f"\n{note}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
