"""Failover under a stalled backend, runtime control through the Admin service, and CompareCost."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from typing import cast

import grpc
import pytest
from modelyard.v1 import admin_pb2, admin_pb2_grpc, router_pb2, router_pb2_grpc
from modelyard.v1 import inference_pb2 as pb

from router.routing.circuit import CircuitState
from router.server import RouterServer
from tests.router.conftest import WorkerFactory
from tests.router.test_routing import chat_request, collect
from tests.support.echo_worker import Faults

# A value from a newer client: proto3 enums are open, so the router sees the bare number.
UNKNOWN_STRATEGY = cast(pb.Strategy, 99)


@pytest.fixture
async def admin(router: RouterServer) -> AsyncIterator[admin_pb2_grpc.AdminServiceStub]:
    async with grpc.aio.insecure_channel(router.address) as channel:
        yield admin_pb2_grpc.AdminServiceStub(channel)


def pinned_order(text: str = "a b") -> pb.ChatRequest:
    request = chat_request(text)
    request.routing.strategy = pb.STRATEGY_FALLBACK
    return request


async def test_stalled_first_backend_leaves_time_for_the_second(
    router: RouterServer,
    stub: router_pb2_grpc.RouterServiceStub,
    admin: admin_pb2_grpc.AdminServiceStub,
    echo_workers: WorkerFactory,
) -> None:
    staller = await echo_workers("a-stalls", faults=Faults(stall=True))
    await echo_workers("b-answers")
    await admin.UpdateBackend(admin_pb2.UpdateBackendRequest(backend="a-stalls", priority=1))
    deadline_s = 4.0
    # gRPC enforces the deadline: an answer at all means it came within it.
    text, usage = await collect(stub.Chat(pinned_order("x y"), timeout=deadline_s))
    assert text == "x y "
    assert usage.backend == "b-answers"
    assert staller.served == 0
    stats = router.state.stats["a-stalls"]
    assert stats.failures == 1
    # The stalled attempt was given its share of the deadline (half: two candidates), not all of it.
    waited = re.fullmatch(r"a-stalls: nothing after ([\d.]+) s; trying the next backend", stats.last_error)
    assert waited is not None, stats.last_error
    assert 0 < float(waited.group(1)) <= deadline_s / 2


async def test_disabled_backend_is_avoided_without_restart(
    stub: router_pb2_grpc.RouterServiceStub,
    admin: admin_pb2_grpc.AdminServiceStub,
    echo_workers: WorkerFactory,
) -> None:
    first = await echo_workers("w1")
    second = await echo_workers("w2")
    await admin.UpdateBackend(admin_pb2.UpdateBackendRequest(backend="w1", priority=1))
    _, usage = await collect(stub.Chat(pinned_order()))
    assert usage.backend == "w1"
    status = (await admin.UpdateBackend(admin_pb2.UpdateBackendRequest(backend="w1", enabled=False))).backend
    assert not status.enabled
    for _ in range(3):
        _, usage = await collect(stub.Chat(pinned_order()))
        assert usage.backend == "w2"
    assert (first.served, second.served) == (1, 3)
    with pytest.raises(grpc.aio.AioRpcError) as error:
        await admin.UpdateBackend(admin_pb2.UpdateBackendRequest(backend="nope", enabled=False))
    assert error.value.code() == grpc.StatusCode.NOT_FOUND


async def test_strategy_and_weights_change_at_runtime(
    stub: router_pb2_grpc.RouterServiceStub, admin: admin_pb2_grpc.AdminServiceStub
) -> None:
    response = await admin.SetStrategy(admin_pb2.SetStrategyRequest(strategy=pb.STRATEGY_LEAST_LOADED))
    assert response.strategy == pb.STRATEGY_LEAST_LOADED
    response = await admin.SetStrategy(admin_pb2.SetStrategyRequest(weights={"cost": 5, "load": 1}))
    # Only the named weights change; least_loaded's others stay.
    merged = {"cost": 5.0, "load": 1.0, "success_rate": 2.0, "latency": 1.0}
    assert dict(response.weights) == merged
    status = await stub.GetStatus(router_pb2.GetStatusRequest())
    assert status.strategy == pb.STRATEGY_LEAST_LOADED
    assert dict(status.weights) == merged
    with pytest.raises(grpc.aio.AioRpcError) as error:
        await admin.SetStrategy(admin_pb2.SetStrategyRequest(strategy=UNKNOWN_STRATEGY))
    assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT


async def test_unknown_strategy_in_a_request_is_invalid(
    stub: router_pb2_grpc.RouterServiceStub, echo_workers: WorkerFactory
) -> None:
    await echo_workers("w1")
    request = chat_request()
    request.routing.strategy = UNKNOWN_STRATEGY
    with pytest.raises(grpc.aio.AioRpcError) as error:
        await collect(stub.Chat(request))
    assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "strategy" in (error.value.details() or "")


async def test_repeated_failures_open_the_circuit(
    router: RouterServer, stub: router_pb2_grpc.RouterServiceStub, echo_workers: WorkerFactory
) -> None:
    await echo_workers("flaky", faults=Faults(fail_before_first=grpc.StatusCode.UNAVAILABLE))
    await echo_workers("steady")
    request = chat_request()
    request.routing.provider = "flaky"
    for _ in range(5):  # the default threshold: five failures in a row
        with pytest.raises(grpc.aio.AioRpcError):
            await collect(stub.Chat(request))
    assert router.state.circuits["flaky"].state is CircuitState.OPEN
    status = await stub.GetStatus(router_pb2.GetStatusRequest())
    flaky = next(b for b in status.backends if b.id == "flaky")
    assert flaky.circuit == router_pb2.CIRCUIT_STATE_OPEN
    assert flaky.success_rate < 0.5
    assert "injected failure" in flaky.last_error
    # With the circuit open the request goes elsewhere even unpinned.
    _, usage = await collect(stub.Chat(chat_request()))
    assert usage.backend == "steady"


async def test_compare_cost_lists_every_candidate_cheapest_first(
    admin: admin_pb2_grpc.AdminServiceStub, echo_workers: WorkerFactory
) -> None:
    await echo_workers("w1")
    await echo_workers("w2")
    response = await admin.CompareCost(admin_pb2.CompareCostRequest(chat=chat_request("how much is this")))
    assert sorted(e.backend for e in response.estimates) == ["w1", "w2"]
    assert all(e.cost_usd == 0 and e.prompt_tokens > 0 and e.available for e in response.estimates)
