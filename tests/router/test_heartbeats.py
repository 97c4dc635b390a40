"""Load reports when the load changes, heartbeats otherwise: the router keeps a steady worker in rotation on
heartbeats alone, takes a change in at once, and still takes a silent worker out. The router here: load checked
every 100 ms, heartbeats every 200 ms, out after ten missed (2 s, so a busy test machine's stalls are not
silences)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

import grpc
import pytest
from modelyard.v1 import backend_pb2
from modelyard.v1 import inference_pb2 as pb
from modelyard.worker.v1 import worker_pb2, worker_pb2_grpc

from gpu_worker.registration import RegistrationStream
from router.backends.worker import WorkerBackend
from router.config.settings import RouterConfig
from router.server import RouterServer
from tests.support.polling import wait_until

SILENCE_S = 2.0

IDLE = backend_pb2.LoadReport()
HELLO = worker_pb2.WorkerHello(
    worker_id="w1",
    address="127.0.0.1:9",
    models=[backend_pb2.ServedModel(id="m", capabilities=[pb.CAPABILITY_CHAT])],
    max_concurrency=4,
)
HEARTBEAT = worker_pb2.RegisterRequest(heartbeat=worker_pb2.Heartbeat())
OTHER = worker_pb2.RegisterRequest(
    cache=worker_pb2.CacheEvents(model="m")
)  # keeps the lease, reports nothing


@pytest.fixture
async def router() -> AsyncIterator[RouterServer]:
    config = RouterConfig(
        listen="127.0.0.1:0",
        report_interval_ms=100,
        heartbeat_interval_ms=200,
        missed_reports=int(SILENCE_S / 0.2),
        usage_db="off",
        startup_wait_s=0,
    )
    server = RouterServer(config)
    await server.start()
    yield server
    await server.stop(0)


@asynccontextmanager
async def registered(
    router: RouterServer, load: Callable[[], backend_pb2.LoadReport]
) -> AsyncIterator[RegistrationStream]:
    """The worker's own registration stream (gpu_worker), reporting `load()`."""
    stream = RegistrationStream(router.address, lambda: HELLO, load, lambda reason: None)
    stream.start()
    try:
        await wait_until(lambda: router.registry.get("w1") is not None)
        yield stream
    finally:
        await stream.stop()


def backend(router: RouterServer) -> WorkerBackend:
    worker = router.registry.get("w1")
    assert isinstance(worker, WorkerBackend)
    return worker


def rotation(router: RouterServer) -> str:
    """Why w1 is out of rotation, as the scheduler and the candidate index see it ("" if it is in)."""
    worker = backend(router)
    return router.state.out_of_rotation(worker) or router.registry.index.out_of_rotation(worker.id)


async def test_a_worker_whose_load_stays_the_same_stays_in_rotation_on_heartbeats(
    router: RouterServer,
) -> None:
    seen: list[tuple[str, backend_pb2.LoadReport]] = []  # the router's view at each of the worker's checks

    def load() -> backend_pb2.LoadReport:
        if (worker := router.registry.get("w1")) is not None and isinstance(worker, WorkerBackend):
            seen.append((rotation(router), worker.load))
        return IDLE

    async with registered(router, load):
        # Forty checks: twice as long as a silent worker stays in rotation.
        await wait_until(lambda: len(seen) >= 40, timeout=30)
    after_first_report = seen[2:]
    assert {reason for reason, _ in after_first_report} == {""}
    # The load the router holds is still the first report's: heartbeats, not reports, kept it in rotation.
    assert len({id(report) for _, report in after_first_report}) == 1


async def test_a_load_change_is_taken_in_without_waiting_for_a_heartbeat() -> None:
    config = RouterConfig(
        listen="127.0.0.1:0", report_interval_ms=50, heartbeat_interval_ms=600_000, usage_db="off"
    )
    router = RouterServer(config)
    await router.start()
    load = [IDLE]
    try:
        async with registered(router, lambda: load[0]):
            await wait_until(lambda: backend(router).load is not IDLE)  # the first report came
            load[0] = backend_pb2.LoadReport(running=3, waiting=1)
            await wait_until(lambda: (backend(router).load.running, backend(router).load.waiting) == (3, 1))
            assert rotation(router) == ""
    finally:
        await router.stop(0)


@asynccontextmanager
async def raw_lease(router: RouterServer) -> AsyncIterator[grpc.aio.StreamStreamCall]:  # type: ignore[type-arg]
    async with grpc.aio.insecure_channel(router.address) as channel:
        call = worker_pb2_grpc.WorkerRegistryServiceStub(channel).Register()
        await call.write(worker_pb2.RegisterRequest(hello=HELLO))
        assert (await call.read()).HasField("ack")
        await call.write(worker_pb2.RegisterRequest(load=IDLE))
        try:
            yield call
        finally:
            call.cancel()


async def test_a_worker_whose_heartbeats_stop_leaves_rotation_until_they_resume(router: RouterServer) -> None:
    async with raw_lease(router) as call:
        beating = True

        async def keep_lease() -> None:  # other messages keep the stream open: only the heartbeats stop
            while True:
                await call.write(HEARTBEAT if beating else OTHER)
                await asyncio.sleep(0.05)

        lease = asyncio.create_task(keep_lease())
        try:
            assert rotation(router) == ""
            beating = False
            await wait_until(lambda: rotation(router) == "load reports stopped", timeout=30)
            beating = True
            await wait_until(lambda: rotation(router) == "")
        finally:
            lease.cancel()
            await asyncio.gather(lease, return_exceptions=True)


async def test_a_silent_worker_loses_its_lease_after_heartbeats(router: RouterServer) -> None:
    async with raw_lease(router) as call:
        for _ in range(40):  # four seconds of heartbeats: twice the silence that ends a lease
            await call.write(HEARTBEAT)
            await asyncio.sleep(0.1)
        assert router.registry.get("w1") is not None
        await wait_until(lambda: router.registry.get("w1") is None, timeout=30)  # then nothing at all
