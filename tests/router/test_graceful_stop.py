"""Stopping the router: NOT_SERVING at once, new client calls refused, calls in flight finish, ledger flushed."""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from modelyard.v1 import inference_pb2 as pb
from modelyard.v1 import router_pb2_grpc

from router.config.settings import RouterConfig
from router.main import build_parser, config_from_args
from router.server import RouterServer
from tests.router.test_routing import chat_request, collect
from tests.support.echo_worker import EchoWorker, Faults
from tests.support.polling import wait_until
from tests.worker.servers import read_rest


async def test_stop_finishes_calls_in_flight_and_refuses_new_ones(tmp_path: Path) -> None:
    ledger = tmp_path / "usage.sqlite3"
    router = RouterServer(RouterConfig(listen="127.0.0.1:0", report_interval_ms=100, usage_db=str(ledger)))
    await router.start()
    hold = asyncio.Event()
    worker = EchoWorker("w1", faults=Faults(hold=hold))
    await worker.start()
    try:
        await worker.register(router.address)
        await wait_until(lambda: router.registry.get("w1") is not None)
        async with grpc.aio.insecure_channel(router.address) as channel:
            stub = router_pb2_grpc.RouterServiceStub(channel)
            in_flight = stub.Chat(chat_request("one two three"))
            first = await in_flight.read()
            assert first.delta.text == "one "

            stopping = asyncio.create_task(router.stop(grace=60))
            await wait_until(lambda: router.gate.closed)
            health = await health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest())
            assert health.status == health_pb2.HealthCheckResponse.NOT_SERVING
            with pytest.raises(grpc.aio.AioRpcError) as refused:
                await collect(stub.Chat(chat_request("too late")))
            assert refused.value.code() == grpc.StatusCode.UNAVAILABLE
            assert not stopping.done()  # still waiting for the call in flight

            hold.set()
            rest = await read_rest(in_flight)
            assert "".join(r.delta.text for r in rest) == "two three "
            assert rest[-1].usage.finish_reason == pb.FINISH_REASON_STOP
            await stopping  # returns once the last call ended, not after the 60 s grace
    finally:
        await worker.stop()
    # The finished call's record was written before stop returned.
    with contextlib.closing(sqlite3.connect(ledger)) as db:
        assert db.execute("SELECT COUNT(*) FROM usage").fetchone() == (1,)


async def test_grace_gives_up_on_calls_that_outlast_it() -> None:
    router = RouterServer(RouterConfig(listen="127.0.0.1:0", report_interval_ms=100, usage_db="off"))
    await router.start()
    worker = EchoWorker("w1", faults=Faults(hold=asyncio.Event()))  # never released
    await worker.start()
    try:
        await worker.register(router.address)
        await wait_until(lambda: router.registry.get("w1") is not None)
        async with grpc.aio.insecure_channel(router.address) as channel:
            in_flight = router_pb2_grpc.RouterServiceStub(channel).Chat(chat_request("one two"))
            await in_flight.read()
            await router.stop(grace=0.2)
            with pytest.raises(grpc.aio.AioRpcError):
                await read_rest(in_flight)
    finally:
        await worker.stop()


def test_grace_seconds_default_and_flag() -> None:
    assert RouterConfig().grace_seconds == 30.0
    args = build_parser().parse_args(["--grace-seconds", "12.5"])
    assert config_from_args(args).grace_seconds == 12.5
