"""Many bench workers in one process: each with its own gRPC server and its own Register stream (a connection
of its own to the router), answering as its WorkerSpec says (at once by default). The streams are the worker's
own (gpu_worker.registration.RegistrationStream): they report load as a GPU worker does, when it changed and
otherwise a heartbeat now and then. Commands: ("slow", worker ids, factor) slows some down; ("kill", worker
ids) stops their servers and leases at once, as a killed process would.

What a pool of a thousand costs the router, without a thousand processes: the router sees what it would see
of separate machines (a connection, a lease and a report stream each). Registration is timed from the first
hello to the last acknowledgement.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from multiprocessing.connection import Connection

import grpc
from modelyard.v1 import backend_pb2
from modelyard.worker.v1 import worker_pb2_grpc

from bench.fixtures import BenchWorker, WorkerSpec
from bench.processes import next_command
from gpu_worker.registration import RegistrationStream

READY_TIMEOUT_S = 120.0


@dataclass(frozen=True)
class PoolSpec:
    router: str  # where they register
    workers: tuple[WorkerSpec, ...]

    @classmethod
    def uniform(cls, count: int, router: str, model: str = "bench", slots: int = 64) -> PoolSpec:
        """`count` workers that answer at once."""
        return cls(router, tuple(WorkerSpec(f"pool-{i}", model, slots=slots) for i in range(count)))


def _stream(worker: BenchWorker, router: str, address: str, acked: asyncio.Event) -> RegistrationStream:
    """The worker's registration as gpu_worker runs it; its load is what the bench worker holds."""

    def load() -> backend_pb2.LoadReport:
        return backend_pb2.LoadReport(running=worker.running, waiting=worker.waiting)

    def drain(reason: str) -> None:
        pass  # bench workers are never asked to drain

    return RegistrationStream(router, lambda: worker.hello(address), load, drain, on_registered=acked.set)


async def _serve(conn: Connection, spec: PoolSpec) -> None:
    servers: dict[str, grpc.aio.Server] = {}
    leases: dict[str, RegistrationStream] = {}
    acks: list[asyncio.Event] = []
    workers: dict[str, tuple[BenchWorker, str]] = {}
    for worker_spec in spec.workers:
        worker = BenchWorker(worker_spec)
        server = grpc.aio.server()
        worker_pb2_grpc.add_WorkerServiceServicer_to_server(worker, server)
        port = server.add_insecure_port("127.0.0.1:0")
        await server.start()
        servers[worker_spec.worker_id] = server
        workers[worker_spec.worker_id] = (worker, f"127.0.0.1:{port}")
    began = time.perf_counter()
    for worker_id, (worker, address) in workers.items():
        acked = asyncio.Event()
        acks.append(acked)
        leases[worker_id] = _stream(worker, spec.router, address, acked)
        leases[worker_id].start()
    waiting = asyncio.gather(*(a.wait() for a in acks))
    try:
        await asyncio.wait_for(waiting, READY_TIMEOUT_S)
    except TimeoutError:
        registered = sum(a.is_set() for a in acks)
        conn.send({"error": f"{registered} of {len(workers)} workers registered in {READY_TIMEOUT_S:.0f} s"})
        return
    conn.send({"register_s": time.perf_counter() - began})
    while (command := await next_command(conn)) != "stop":
        if isinstance(command, tuple) and command[0] == "slow":
            for worker_id in command[1]:
                workers[worker_id][0].factor = float(command[2])
        elif isinstance(command, tuple) and command[0] == "kill":
            await _stop([leases.pop(w) for w in command[1]], [servers.pop(w) for w in command[1]])
        conn.send("ok")
    await _stop(list(leases.values()), list(servers.values()))
    conn.send("stopped")


async def _stop(leases: list[RegistrationStream], servers: list[grpc.aio.Server]) -> None:
    await asyncio.gather(*(lease.abort() for lease in leases))
    await asyncio.gather(*(server.stop(0) for server in servers))


def pool_child(conn: Connection, spec: PoolSpec) -> None:
    """Process entry: host the pool until told to stop."""
    logging.basicConfig(level=logging.ERROR)
    asyncio.run(_serve(conn, spec))
