"""A real router with workers of our own registered to it: the setup that the admission, spill and migration
tests share.

    async with running_pool(config, EchoWorker("w1")) as pool:
        await pool.stub.Chat(...)
        pool.workers["w1"].faults.hold = asyncio.Event()

Each worker is registered and known to the router before the block starts; at its end every worker's held
answers are let go (so no stream outlives the test), then the workers stop, then the router.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import grpc
from modelyard.v1 import router_pb2_grpc

from router.config.settings import RouterConfig
from router.server import RouterServer
from tests.support.echo_worker import EchoWorker
from tests.support.polling import wait_until


@dataclass
class Pool:
    router: RouterServer
    stub: router_pb2_grpc.RouterServiceStub
    workers: dict[str, EchoWorker] = field(default_factory=dict)

    async def join(self, worker: EchoWorker) -> EchoWorker:
        """Start `worker` and register it; returns once the router counts it in its pool."""
        await worker.start()
        self.workers[worker.worker_id] = worker
        await worker.register(self.router.address)
        await wait_until(lambda: self.router.registry.get(worker.worker_id) is not None)
        return worker


@contextlib.asynccontextmanager
async def running_pool(config: RouterConfig, *workers: EchoWorker) -> AsyncIterator[Pool]:
    """A router started from `config` (listen it on 127.0.0.1:0), with `workers` joined, and a stub on it."""
    router = RouterServer(config)
    await router.start()
    try:
        async with grpc.aio.insecure_channel(router.address) as channel:
            pool = Pool(router, router_pb2_grpc.RouterServiceStub(channel))
            try:
                for worker in workers:
                    await pool.join(worker)
                yield pool
            finally:
                for worker in pool.workers.values():
                    if worker.faults.hold is not None:
                        worker.faults.hold.set()
                    await worker.stop()
    finally:
        await router.stop(0)
