"""Routers restarted under load lose nothing: the drain on SIGTERM (router.drain) and the warm start
(router.routing.warm_start), on real gRPC servers.

The rolling restart runs real router processes (`python -m router`), a worker registered with both through the
real worker's reconnecting registration stream, and a plain generated-stub client on round_robin with no
retry policy (bench.fault_routers, which `python -m bench.fault_routers` runs with more load).
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import socket
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from modelyard.v1 import router_pb2_grpc

from bench.fault_routers import QUICK, run
from router.config.loader import ConfigError, load_config
from router.config.settings import RouterConfig
from router.main import build_parser, config_from_args
from router.readiness import LIVENESS
from router.server import RouterServer
from tests.router.test_routing import chat_request, collect
from tests.support.echo_worker import EchoWorker
from tests.support.polling import wait_until

SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


@pytest.fixture(autouse=True)
def _quiet_worker_logs() -> None:
    # "registration stream broke; reconnecting" is what a router restart looks like to a worker.
    logging.getLogger("gpu_worker").setLevel(logging.ERROR)


async def test_a_rolling_restart_of_two_routers_fails_nothing(tmp_path: Path) -> None:
    result = await run("rolling restart", QUICK, restart=(0, 1), log_dir=tmp_path)
    assert result.requests > 0
    assert result.failures == []


async def test_without_the_drain_the_same_rolling_restart_fails_requests(tmp_path: Path) -> None:
    """The control: drain_s 0 (refuse new calls at once on SIGTERM, as before) loses requests."""
    result = await run("no drain", dataclasses.replace(QUICK, drain_s=0.0), restart=(0, 1), log_dir=tmp_path)
    assert result.failures


async def status(address: str, service: str = "") -> int:
    async with grpc.aio.insecure_channel(address) as channel:
        answer = await health_pb2_grpc.HealthStub(channel).Check(
            health_pb2.HealthCheckRequest(service=service)
        )
    return int(answer.status)


@pytest.fixture
async def fresh_router() -> AsyncIterator[RouterServer]:
    """A router just started, with a long warm-up window and no worker yet."""
    router = RouterServer(RouterConfig(listen="127.0.0.1:0", usage_db="off", startup_wait_s=120))
    await router.start()
    yield router
    await router.stop(0)


async def test_a_restarted_router_holds_requests_until_its_workers_register(
    fresh_router: RouterServer,
) -> None:
    assert await status(fresh_router.address) == NOT_SERVING  # readiness: not until a worker is back
    assert await status(fresh_router.address, LIVENESS) == SERVING
    async with grpc.aio.insecure_channel(fresh_router.address) as channel:
        stub = router_pb2_grpc.RouterServiceStub(channel)
        early = asyncio.ensure_future(collect(stub.Chat(chat_request("one two"))))
        await wait_until(lambda: fresh_router.gate.in_flight == 1)  # it reached the router, and waits
        assert not early.done()
        worker = EchoWorker("w1")
        await worker.start()
        try:
            await worker.register(fresh_router.address)
            text, usage = await early
            assert (text, usage.backend) == ("one two ", "w1")
            assert await status(fresh_router.address) == SERVING
        finally:
            await worker.stop()


async def test_a_held_request_still_ends_at_its_deadline(fresh_router: RouterServer) -> None:
    async with grpc.aio.insecure_channel(fresh_router.address) as channel:
        stub = router_pb2_grpc.RouterServiceStub(channel)
        with pytest.raises(grpc.aio.AioRpcError) as error:
            await collect(stub.Chat(chat_request(), timeout=0.5))
    # Whichever side notices first: the caller's deadline, or the router giving up its wait at the deadline
    # with the reason (no backend yet). Either way it ends then, inside a warm-up window of 120 s.
    assert error.value.code() in (grpc.StatusCode.DEADLINE_EXCEEDED, grpc.StatusCode.UNAVAILABLE)


async def test_after_the_window_no_backend_is_refused_at_once() -> None:
    router = RouterServer(RouterConfig(listen="127.0.0.1:0", usage_db="off", startup_wait_s=0))
    await router.start()
    try:
        assert await status(router.address) == SERVING
        async with grpc.aio.insecure_channel(router.address) as channel:
            with pytest.raises(grpc.aio.AioRpcError) as error:
                await collect(router_pb2_grpc.RouterServiceStub(channel).Chat(chat_request()))
        assert error.value.code() == grpc.StatusCode.UNAVAILABLE
    finally:
        await router.stop(0)


async def test_a_draining_router_reports_not_serving_takes_no_new_connection_and_serves_what_arrives() -> (
    None
):
    router = RouterServer(RouterConfig(listen="127.0.0.1:0", http_listen="127.0.0.1:0", usage_db="off"))
    await router.start()
    worker = EchoWorker("w1")
    await worker.start()
    try:
        await worker.register(router.address)
        async with grpc.aio.insecure_channel(router.address) as channel:
            stub = router_pb2_grpc.RouterServiceStub(channel)
            assert await http_status(router, "/ready") == 200
            await collect(stub.Chat(chat_request("before")))
            draining = asyncio.create_task(router.drain(600))
            await wait_until(lambda: router.readiness.draining)
            health = await health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest())
            assert health.status == NOT_SERVING
            assert await http_status(router, "/health") == 503
            assert await http_status(router, "/ready") == 503
            # A call on the connection the client already has is served, not refused.
            text, _ = await collect(stub.Chat(chat_request("during the drain")))
            assert text == "during the drain "
            with pytest.raises(ConnectionRefusedError):
                socket.create_connection(("127.0.0.1", router.port), timeout=5).close()
            assert not draining.done()
            router.give_up()  # a second signal
            await draining
    finally:
        await router.stop(0)
        await worker.stop()


async def http_status(router: RouterServer, path: str) -> int:
    assert router.http is not None
    url = f"http://{router.http.address}{path}"
    async with aiohttp.ClientSession() as session, session.get(url) as answer:
        return answer.status


def test_drain_and_warm_start_settings(tmp_path: Path) -> None:
    assert (RouterConfig().shutdown.drain_s, RouterConfig().startup_wait_s) == (10.0, 10.0)
    path = tmp_path / "router.yaml"
    path.write_text("shutdown: {drain_s: 3}\nstartup_wait_s: 0\n")
    config = load_config(path, env={})
    assert (config.shutdown.drain_s, config.startup_wait_s) == (3.0, 0.0)
    assert config.shutdown.connection_max_age_ms == 2100  # every connection aged out within the drain
    args = build_parser().parse_args(["--config", str(path), "--drain-seconds", "0"])
    assert config_from_args(args).shutdown.connection_max_age_ms == 0  # no drain: connections never age out
    path.write_text("shutdown: {drain_s: -1}\n")
    with pytest.raises(ConfigError, match=r"shutdown\.drain_s"):
        load_config(path, env={})
