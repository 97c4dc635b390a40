"""Workers that die or freeze mid-answer, as processes of their own: SIGKILL and SIGSTOP, the way a spot
preemption or a stuck host takes a real worker away. The client's answer is the undisturbed one."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
from collections.abc import AsyncIterator

import grpc
import pytest
from modelyard.v1 import inference_pb2 as pb
from modelyard.v1 import router_pb2_grpc

from router.config.settings import RouterConfig
from router.server import RouterServer
from tests.router.test_routing import chat_request, collect
from tests.support.polling import wait_until

WORDS = " ".join(f"n{i}" for i in range(40))
GENEROUS_S = 60.0  # bounds a broken build only; nothing here is timed
DELTA_S = 0.05  # between a worker's deltas: a 2 s answer, time enough to hit it mid-stream


class WorkerProcesses:
    """Echo worker processes registered with one router, by worker id."""

    def __init__(self, router: RouterServer) -> None:
        self.router = router
        self.processes: dict[str, asyncio.subprocess.Process] = {}

    async def start(self, worker_id: str) -> None:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            *("-m", "tests.client.echo_worker_process", "--router", self.router.address),
            *("--worker-id", worker_id, "--delay-s", str(DELTA_S)),
        )
        self.processes[worker_id] = process
        await wait_until(lambda: self.router.registry.get(worker_id) is not None, timeout=GENEROUS_S)

    def serving(self) -> list[str]:
        """Workers this router has a request open on."""
        return [backend.id for backend in self.router.registry if backend.in_flight]

    def signal(self, worker_id: str, signum: signal.Signals) -> None:
        os.kill(self.processes[worker_id].pid, signum)

    async def stop(self) -> None:
        for process in self.processes.values():
            with contextlib.suppress(ProcessLookupError):
                process.send_signal(signal.SIGCONT)  # a frozen one cannot end otherwise
                process.kill()
            await process.wait()


@pytest.fixture
async def router() -> AsyncIterator[RouterServer]:
    config = RouterConfig(
        listen="127.0.0.1:0", router_id="faults", report_interval_ms=500, worker_stall_timeout_s=1.0
    )
    server = RouterServer(config)
    await server.start()
    yield server
    await server.stop(0)


@pytest.fixture
async def workers(router: RouterServer) -> AsyncIterator[WorkerProcesses]:
    processes = WorkerProcesses(router)
    yield processes
    await processes.stop()


async def read_until_disturbed(
    stub: router_pb2_grpc.RouterServiceStub, after: int, disturb: asyncio.Event
) -> tuple[str, pb.Usage]:
    """One answer, read to its end; `disturb` is set once `after` deltas arrived (the test then acts)."""
    text, usage, deltas = "", pb.Usage(), 0
    async for response in stub.Chat(chat_request(WORDS)):
        if response.HasField("usage"):
            usage = response.usage
            continue
        text += response.delta.text
        deltas += 1
        if deltas == after:
            disturb.set()
    return text, usage


async def test_a_worker_killed_mid_answer_leaves_the_answer_unchanged(
    router: RouterServer, workers: WorkerProcesses
) -> None:
    await workers.start("w1")
    await workers.start("w2")
    async with grpc.aio.insecure_channel(router.address) as channel:
        stub = router_pb2_grpc.RouterServiceStub(channel)
        undisturbed, _ = await asyncio.wait_for(collect(stub.Chat(chat_request(WORDS))), GENEROUS_S)
        halfway = asyncio.Event()
        answer = asyncio.create_task(read_until_disturbed(stub, 10, halfway))
        await asyncio.wait_for(halfway.wait(), GENEROUS_S)
        (victim,) = workers.serving()
        workers.signal(victim, signal.SIGKILL)
        text, usage = await asyncio.wait_for(answer, GENEROUS_S)
    assert text == undisturbed
    assert [p.backend for p in usage.parts] == [victim, usage.backend]
    assert usage.backend != victim
    # The reset reads as the call's failure (UNAVAILABLE, mostly), never as a stall.
    assert usage.parts[0].migrated_because not in ("", "stall")


async def test_a_frozen_workers_streams_move_on(router: RouterServer, workers: WorkerProcesses) -> None:
    await workers.start("w1")
    await workers.start("w2")
    async with grpc.aio.insecure_channel(router.address) as channel:
        stub = router_pb2_grpc.RouterServiceStub(channel)
        undisturbed, _ = await asyncio.wait_for(collect(stub.Chat(chat_request(WORDS))), GENEROUS_S)
        started = [asyncio.Event() for _ in range(4)]
        answers = [asyncio.create_task(read_until_disturbed(stub, 5, event)) for event in started]
        await asyncio.wait_for(asyncio.gather(*(event.wait() for event in started)), GENEROUS_S)
        frozen = workers.serving()[0]
        workers.signal(frozen, signal.SIGSTOP)
        finished = await asyncio.wait_for(asyncio.gather(*answers), GENEROUS_S)
    assert [text for text, _ in finished] == [undisturbed] * 4
    moved = [usage for _, usage in finished if usage.parts]
    assert moved  # the frozen worker held at least one of them
    for usage in moved:
        assert [(p.backend, p.migrated_because) for p in usage.parts] == [
            (frozen, "stall"),
            (usage.backend, ""),
        ]
