"""`modelyard router` as a process: the first SIGTERM starts a graceful stop that would wait out a long grace for
the call in flight; a second signal stops it at once (the README's "A second signal stops at once")."""

from __future__ import annotations

import asyncio
import re
import signal
import sys
from collections.abc import AsyncIterator

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from modelyard.v1 import router_pb2, router_pb2_grpc

from tests.router.test_routing import chat_request
from tests.support.echo_worker import EchoWorker, Faults
from tests.support.polling import wait_until
from tests.worker.servers import read_rest

GRACE_S = 3600  # far longer than any wait below: only the second signal can end the stop in time
_READY = re.compile(r"ready on ([0-9.]+:[0-9]+)")


@pytest.fixture
async def router_process() -> AsyncIterator[tuple[asyncio.subprocess.Process, str]]:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "router", "--listen", "127.0.0.1:0", "--usage-db", "off",
        "--grace-seconds", str(GRACE_S),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    assert process.stdout is not None
    address = ""
    while not address:
        line = (await asyncio.wait_for(process.stdout.readline(), 60)).decode()
        assert line, "the router exited before it was ready"
        found = _READY.search(line)
        address = found.group(1) if found else ""
    drain = asyncio.create_task(process.stdout.read())  # keep reading: a full pipe would block the router
    try:
        yield process, address
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
        await drain


async def serving(address: str) -> bool:
    async with grpc.aio.insecure_channel(address) as channel:
        try:
            reply = await health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(), timeout=5
            )
        except grpc.aio.AioRpcError:
            return False
    return bool(reply.status == health_pb2.HealthCheckResponse.SERVING)


async def test_a_second_signal_stops_the_router_at_once(
    router_process: tuple[asyncio.subprocess.Process, str],
) -> None:
    process, address = router_process
    worker = EchoWorker("w1", faults=Faults(hold=asyncio.Event()))  # holds its answer until the end
    await worker.start()
    try:
        await worker.register(address)
        async with grpc.aio.insecure_channel(address) as channel:
            stub = router_pb2_grpc.RouterServiceStub(channel)
            await wait_until(lambda: has_worker(stub), timeout=30)
            held = stub.Chat(chat_request("one two three"))
            assert (await held.read()).delta.text == "one "

            process.send_signal(signal.SIGTERM)
            await wait_until(lambda: not_serving(address), timeout=30)  # the graceful stop began
            assert process.returncode is None  # and waits for the held call
            assert not held.done()

            process.send_signal(signal.SIGTERM)
            assert await asyncio.wait_for(process.wait(), 60) == 0
            with pytest.raises(grpc.aio.AioRpcError):
                await read_rest(held)
    finally:
        await worker.stop()


async def has_worker(stub: router_pb2_grpc.RouterServiceStub) -> bool:
    status = await stub.GetStatus(router_pb2.GetStatusRequest())
    return any(b.id == "w1" for b in status.backends)


async def not_serving(address: str) -> bool:
    return not await serving(address)
