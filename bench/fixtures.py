"""A benchmark worker: the real Worker and WorkerRegistry protocols, an engine simulated by delays.

It answers `sampling.max_tokens` chunks (default 1) of one token each, after `ttft_s` and then
`token_s` between tokens, times a slow-down factor the parent can change mid-run. At most `slots`
requests run at once; the rest wait (and are reported as waiting), as an engine's scheduler would.
Delays of zero never sleep, so the instant engine costs only the gRPC work. The command "slots" answers
its `SlotUse` (slot-seconds held so far and answers finished), from which a bench reads the pool's busy
share and the capacity the workers really had (their own timers overshoot on a busy machine).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import Any

import grpc
from modelyard.v1 import backend_pb2
from modelyard.v1 import inference_pb2 as pb
from modelyard.worker.v1 import worker_pb2, worker_pb2_grpc

from bench.processes import next_command
from bench.tokens import TOKEN

Context = grpc.aio.ServicerContext[Any, Any]
_DELTA = pb.ChatResponse(delta=pb.ChatDelta(text=TOKEN))


@dataclass(frozen=True)
class WorkerSpec:
    worker_id: str
    model: str = "bench"
    ttft_s: float = 0.0
    token_s: float = 0.0
    slots: int = 4096  # requests run at once
    queue: int = 0  # declared to the router: requests accepted beyond `slots`
    router: str = ""  # register with this router ("" = serve only, for direct load)


@dataclass(frozen=True)
class SlotUse:
    """A worker's slots as used so far: seconds held (those running counted up to now) and answers finished,
    with the seconds those held; two snapshots give a window's busy share and mean hold."""

    slots: int
    held_s: float
    finished: int
    finished_held_s: float
    at_s: float  # the worker's time.perf_counter() as it answered: a window's length as the worker saw it


class BenchWorker(worker_pb2_grpc.WorkerServiceServicer):  # type: ignore[misc]
    def __init__(self, spec: WorkerSpec) -> None:
        self.spec = spec
        self.factor = 1.0
        self.running = 0
        self.waiting = 0
        self._slots = asyncio.Semaphore(spec.slots)
        self._started: dict[int, float] = {}  # running answers: when each took its slot
        self._finished = 0
        self._finished_held_s = 0.0
        self._usage = pb.ChatResponse(usage=pb.Usage(model=spec.model, finish_reason=pb.FINISH_REASON_STOP))

    async def Chat(self, request: pb.ChatRequest, context: Context) -> AsyncIterator[pb.ChatResponse]:
        tokens = request.sampling.max_tokens or 1
        self.waiting += 1
        try:
            await self._slots.acquire()
        finally:
            self.waiting -= 1
        self.running += 1
        key = id(context)
        self._started[key] = time.perf_counter()
        try:
            if self.spec.ttft_s:
                await asyncio.sleep(self.spec.ttft_s * self.factor)
            for i in range(tokens):
                if i and self.spec.token_s:
                    await asyncio.sleep(self.spec.token_s * self.factor)
                yield _DELTA
            self._usage.usage.completion_tokens = tokens
            yield self._usage
        finally:
            self._finished += 1
            self._finished_held_s += time.perf_counter() - self._started.pop(key)
            self.running -= 1
            self._slots.release()

    def slot_use(self) -> SlotUse:
        now = time.perf_counter()
        running = sum(now - at for at in self._started.values())
        held = self._finished_held_s + running
        return SlotUse(self.spec.slots, held, self._finished, self._finished_held_s, now)

    def hello(self, address: str) -> worker_pb2.WorkerHello:
        model = backend_pb2.ServedModel(id=self.spec.model, capabilities=[pb.CAPABILITY_CHAT], engine="bench")
        return worker_pb2.WorkerHello(
            worker_id=self.spec.worker_id,
            address=address,
            models=[model],
            max_concurrency=self.spec.slots,
            max_queue=self.spec.queue,
            version="bench",
        )

    async def lease(self, router: str, address: str, acked: asyncio.Event) -> None:
        """Hold the registration stream open, reporting load, until cancelled: the lease."""
        async with grpc.aio.insecure_channel(router) as channel:
            call = worker_pb2_grpc.WorkerRegistryServiceStub(channel).Register()
            await call.write(worker_pb2.RegisterRequest(hello=self.hello(address)))
            reply = await call.read()
            if reply is grpc.aio.EOF or not reply.HasField("ack"):
                raise RuntimeError(f"router {router} refused worker {self.spec.worker_id}")
            acked.set()
            interval = reply.ack.report_interval_ms / 1000
            while True:
                load = backend_pb2.LoadReport(running=self.running, waiting=self.waiting)
                await call.write(worker_pb2.RegisterRequest(load=load))
                await asyncio.sleep(min(interval, 0.5))


async def _serve(conn: Connection, spec: WorkerSpec) -> None:
    worker = BenchWorker(spec)
    server = grpc.aio.server(options=[("grpc.max_concurrent_streams", 100_000)])
    worker_pb2_grpc.add_WorkerServiceServicer_to_server(worker, server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    address = f"127.0.0.1:{port}"
    lease: asyncio.Task[None] | None = None
    if spec.router:
        acked = asyncio.Event()
        lease = asyncio.create_task(worker.lease(spec.router, address, acked))
        await asyncio.wait(
            [lease, asyncio.create_task(acked.wait())], timeout=20, return_when="FIRST_COMPLETED"
        )
        if not acked.is_set():
            conn.send({"error": f"no registration ack from {spec.router}"})
            return
    conn.send({"address": address})
    while (command := await next_command(conn)) != "stop":
        if command == "slots":
            conn.send(worker.slot_use())
            continue
        if isinstance(command, tuple) and command[0] == "slow":
            worker.factor = float(command[1])
        conn.send("ok")
    if lease is not None:
        lease.cancel()
        with contextlib.suppress(asyncio.CancelledError, grpc.aio.AioRpcError):
            await lease
    await server.stop(0)
    conn.send("stopped")


def worker_child(conn: Connection, spec: WorkerSpec) -> None:
    """Process entry: serve the bench worker until told to stop (or killed, to simulate a crash)."""
    logging.basicConfig(level=logging.ERROR)
    asyncio.run(_serve(conn, spec))
