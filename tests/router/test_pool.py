"""A pool of many workers: the candidate index follows it, a large pool scores a bounded set that always holds
the prefix holder and never a worker out of rotation, stopped load reports take a worker out of rotation
until they resume, panic routing, and refused registrations logged once a minute."""

from __future__ import annotations

import asyncio
import dataclasses
import logging

import grpc
import pytest
from modelyard.v1 import admin_pb2, admin_pb2_grpc, router_pb2_grpc
from modelyard.v1 import inference_pb2 as pb
from modelyard.worker.v1 import worker_pb2

from core.errors import InvalidArgument, ModelNotFound
from router.backends.base import ModelSpec
from router.backends.worker import WorkerBackend
from router.config.pool import PoolConfig
from router.config.security import WorkersConfig
from router.config.settings import RouterConfig
from router.routing.pool_events import PoolEvents
from router.routing.prefix_routing import tenant_salt
from router.routing.scheduler import Scheduler
from router.routing.state import RoutingState
from router.server import RouterServer
from router.services.refusal_log import RefusalLog
from tests.router.conftest import WorkerFactory
from tests.support.polling import wait_until

CHAT = pb.CAPABILITY_CHAT
KEYS = [11, 22, 33, 44]


def worker(worker_id: str, *models: str) -> WorkerBackend:
    specs = [ModelSpec(m, frozenset({CHAT})) for m in models or ("m",)]
    return WorkerBackend(id=worker_id, kind="worker", models=specs, max_concurrency=4)


def pool(workers: int, exact_max: int = 4, sample: int = 2) -> tuple[RoutingState, Scheduler]:
    state = RoutingState(RouterConfig(router_id="t", pool=PoolConfig(exact_max=exact_max, sample=sample)))
    for i in range(workers):
        state.registry.add(worker(f"w{i}"))
    return state, Scheduler(state)


def members(state: RoutingState, model: str = "m") -> set[str]:
    bucket = state.registry.index.bucket(model, CHAT)
    return {backend.id for backend, _ in bucket} if bucket is not None else set()


def ready(state: RoutingState, model: str = "m") -> set[str]:
    bucket = state.registry.index.bucket(model, CHAT)
    return {b.id for b, _ in bucket if bucket.is_ready(b.id)} if bucket is not None else set()


def chat(text: str = "a b", model: str = "echo", provider: str = "") -> pb.ChatRequest:
    request = pb.ChatRequest(
        model=model, messages=[pb.Message(role=pb.ROLE_USER, content=[pb.ContentPart(text=text)])]
    )
    request.routing.provider = provider
    return request


async def answer(stub: router_pb2_grpc.RouterServiceStub, request: pb.ChatRequest) -> str:
    text = ""
    async for response in stub.Chat(request):
        text += response.delta.text
    return text


def test_index_follows_register_leave_and_model_change() -> None:
    state, scheduler = pool(0)
    first, second = worker("w1", "m"), worker("w2", "m")
    state.registry.add(first)
    state.registry.add(second)
    assert members(state) == ready(state) == {"w1", "w2"}
    state.registry.add(worker("w1", "n"))  # registered again, now serving another model
    assert members(state) == {"w2"}
    assert members(state, "n") == {"w1"}
    assert {c.backend.id for c in scheduler.plan("n", CHAT, pb.RoutingHints())} == {"w1"}
    assert not state.registry.remove(first)  # the replaced object: the new w1 stays
    state.registry.remove(second)
    assert members(state) == set()
    with pytest.raises(ModelNotFound):
        scheduler.plan("m", CHAT, pb.RoutingHints())


def test_a_large_pool_never_scores_a_draining_or_disabled_worker() -> None:
    state, scheduler = pool(60, exact_max=4, sample=8)
    for i in range(0, 40, 2):
        backend = state.registry.get(f"w{i}")
        assert isinstance(backend, WorkerBackend)
        backend.draining = True
        state.registry.refresh(backend)
    for i in range(1, 40, 2):
        backend = state.registry.get(f"w{i}")
        assert backend is not None
        state.settings[backend].enabled = False
        state.registry.refresh(backend)
    out = {f"w{i}" for i in range(40)}
    assert ready(state) == members(state) - out
    seen: set[str] = set()
    for _ in range(200):
        ranked = scheduler.plan("m", CHAT, pb.RoutingHints())
        assert len(ranked) == state.config.retry.max_attempts  # only as many as failover tries
        seen |= {c.backend.id for c in ranked}
    assert not seen & out
    # Every circuit in rotation open: panic routing tries them anyway, still never a drained or disabled one.
    for i in range(40, 60):
        for _ in range(state.config.circuit_failure_threshold):
            state.circuits[f"w{i}"].record_failure()
    ranked = scheduler.plan("m", CHAT, pb.RoutingHints())
    assert ranked
    assert not {c.backend.id for c in ranked} & out
    assert state.events.panic_routed == 1


def test_a_large_pool_always_scores_the_prefix_holder() -> None:
    state, scheduler = pool(300, exact_max=4, sample=2)
    state.prefixes.index.store("w123", "m", KEYS)
    for _ in range(50):
        ranked = scheduler.plan("m", CHAT, pb.RoutingHints(), prefix_keys=lambda: KEYS)
        assert ranked[0].backend.id == "w123"
        assert ranked[0].prefix_match == 1.0
    # Without its keys the holder is one of 300 and rarely drawn.
    drawn = sum(
        any(c.backend.id == "w123" for c in scheduler.plan("m", CHAT, pb.RoutingHints())) for _ in range(50)
    )
    assert drawn < 50


def test_a_small_pool_ranks_every_candidate() -> None:
    state, scheduler = pool(4, exact_max=4)
    assert {c.backend.id for c in scheduler.plan("m", CHAT, pb.RoutingHints())} == members(state)


async def test_drain_disable_and_leave_over_the_lease(
    router: RouterServer, stub: router_pb2_grpc.RouterServiceStub, echo_workers: WorkerFactory
) -> None:
    one = await echo_workers("w1")
    await echo_workers("w2")
    assert ready(router.state, "echo") == {"w1", "w2"}
    one.draining = True  # said in its next load report
    await wait_until(lambda: router.registry.index.out_of_rotation("w1") == "draining")
    assert ready(router.state, "echo") == {"w2"}
    one.draining = False
    await wait_until(lambda: ready(router.state, "echo") == {"w1", "w2"})
    async with grpc.aio.insecure_channel(router.address) as channel:
        admin = admin_pb2_grpc.AdminServiceStub(channel)
        await admin.UpdateBackend(admin_pb2.UpdateBackendRequest(backend="w2", enabled=False))
        assert router.registry.index.out_of_rotation("w2") == "disabled"
        assert ready(router.state, "echo") == {"w1"}
        await admin.UpdateBackend(admin_pb2.UpdateBackendRequest(backend="w2", enabled=True))
    assert ready(router.state, "echo") == {"w1", "w2"}
    await one.unregister()
    await wait_until(lambda: members(router.state, "echo") == {"w2"})


async def test_a_worker_whose_load_reports_stop_is_skipped_until_they_resume(
    router: RouterServer, stub: router_pb2_grpc.RouterServiceStub, echo_workers: WorkerFactory
) -> None:
    quiet = await echo_workers("quiet")
    await echo_workers("steady")
    quiet.report_load = False

    async def keep_lease() -> None:  # other messages keep the stream open: only the reports stopped
        while True:
            quiet.send_cache_events("echo", worker_pb2.CacheEvent(cleared=worker_pb2.CacheCleared()))
            await asyncio.sleep(0.05)

    lease = asyncio.create_task(keep_lease())
    try:
        pinned = chat(provider="quiet")
        await wait_until(lambda: router.state.out_of_rotation(quiet_backend(router)) != "")
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await answer(stub, pinned)
        assert refused.value.code() == grpc.StatusCode.UNAVAILABLE
        assert "load reports stopped" in (refused.value.details() or "")
        served = quiet.served
        for _ in range(10):
            await answer(stub, chat())
        assert quiet.served == served  # every request went to the worker still reporting
        quiet.report_load = True
        await wait_until(lambda: router.state.out_of_rotation(quiet_backend(router)) == "")
        assert await answer(stub, pinned) == "a b "
    finally:
        lease.cancel()
        with pytest.raises(asyncio.CancelledError):
            await lease


def quiet_backend(router: RouterServer) -> WorkerBackend:
    backend = router.registry.get("quiet")
    assert isinstance(backend, WorkerBackend)
    return backend


async def test_panic_routing_tries_a_set_of_open_circuits(
    router: RouterServer,
    stub: router_pb2_grpc.RouterServiceStub,
    echo_workers: WorkerFactory,
) -> None:
    await echo_workers("w1")
    await echo_workers("w2")
    for worker_id in ("w1", "w2"):
        for _ in range(router.config.circuit_failure_threshold):
            router.state.circuits[worker_id].record_failure()
        assert not router.state.circuits[worker_id].allows()
    assert await answer(stub, chat()) == "a b "  # tried anyway, and it answered
    counted = router.accounting.metrics.registry.get_sample_value("modelyard_panic_routed_requests_total")
    assert counted == router.state.events.panic_routed == 1
    # Its answer closed the circuit of the one that answered: the next request is routed as usual.
    assert any(router.state.circuits[w].allows() for w in ("w1", "w2"))
    assert await answer(stub, chat()) == "a b "
    assert router.state.events.panic_routed == 1


def test_refusals_are_logged_once_a_minute_per_address_and_all_counted(
    caplog: pytest.LogCaptureFixture,
) -> None:
    now = [0.0]
    events = PoolEvents()
    refusals = RefusalLog(events, clock=lambda: now[0])
    with caplog.at_level(logging.INFO):
        for _ in range(5):
            refusals.refused("ipv4:10.0.0.5", "CAPACITY_EXHAUSTED", "the pool is full")
            now[0] += 1
        refusals.refused("ipv4:10.0.0.6", "CAPACITY_EXHAUSTED", "the pool is full")
        now[0] += 60
        refusals.refused("ipv4:10.0.0.5", "CAPACITY_EXHAUSTED", "the pool is full")
    lines = [r.getMessage() for r in caplog.records if "refused a worker registration" in r.getMessage()]
    assert len(lines) == 3
    assert "4 more refused from there" in lines[-1]
    assert events.refused_registrations == {"CAPACITY_EXHAUSTED": 7}


def test_the_pool_holds_thousands_by_default() -> None:
    assert WorkersConfig().max_workers == 4096


async def test_with_tenant_isolation_the_worker_gets_the_tenants_cache_salt(
    router: RouterServer, stub: router_pb2_grpc.RouterServiceStub, echo_workers: WorkerFactory
) -> None:
    worker = await echo_workers("w1")
    request = chat()
    request.cache_salt = "chosen-by-the-caller"
    assert await answer(stub, request) == "a b "
    assert worker.last_chat is not None
    assert worker.last_chat.cache_salt == "chosen-by-the-caller"  # off: passed on as given
    router.state.prefixes.config = dataclasses.replace(router.state.prefixes.config, isolate_tenants=True)
    assert await answer(stub, request) == "a b "
    assert worker.last_chat.cache_salt == tenant_salt("local")  # on: the tenant's, whatever the caller said


async def test_a_cache_salt_too_long_is_refused_naming_the_field(
    stub: router_pb2_grpc.RouterServiceStub, echo_workers: WorkerFactory
) -> None:
    await echo_workers("w1")
    request = chat()
    request.cache_salt = "s" * 129
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await answer(stub, request)
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "cache_salt" in (refused.value.details() or "")


def test_a_provider_hint_is_checked_against_ids_and_kinds_as_they_come_and_go() -> None:
    state, scheduler = pool(0)
    hints = pb.RoutingHints(provider="worker")
    with pytest.raises(InvalidArgument, match=r"routing\.provider"):
        scheduler.check_hints(hints)
    first, second = worker("w1"), worker("w2")
    state.registry.add(first)
    state.registry.add(second)
    scheduler.check_hints(hints)  # a kind
    scheduler.check_hints(pb.RoutingHints(provider="w2"))  # an id
    state.registry.remove(first)
    scheduler.check_hints(hints)  # one of the kind is left
    state.registry.remove(second)
    for provider in ("worker", "w2"):
        with pytest.raises(InvalidArgument, match=r"routing\.provider"):
            scheduler.check_hints(pb.RoutingHints(provider=provider))
