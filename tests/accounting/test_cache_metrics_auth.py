"""Response cache, Prometheus metrics and API keys end to end, over real gRPC and HTTP."""

from __future__ import annotations

import asyncio
import logging
import re
import urllib.request
from pathlib import Path

import grpc
import pytest
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc
from modelyard.v1 import admin_pb2, admin_pb2_grpc, router_pb2, router_pb2_grpc
from modelyard.v1 import inference_pb2 as pb

from router.accounting.auth import hash_key
from router.accounting.cache.keys import chat_key
from router.accounting.cache.store import ResponseCache
from router.config.accounting import ApiKey, CacheConfig
from router.server import RouterServer
from tests.accounting.conftest import RouterFactory, WorkerFactory, chat, chat_request, get_usage
from tests.support.polling import wait_until


async def test_the_second_identical_deterministic_chat_comes_from_the_cache(
    start_router: RouterFactory, start_worker: WorkerFactory
) -> None:
    router = await start_router()
    worker = await start_worker(router, "w1")
    first_text, first = await chat(router, chat_request(temperature=0.0))
    second_text, second = await chat(router, chat_request(temperature=0.0))
    assert second_text == first_text == "one two three four five "
    assert (first.cache_hit, second.cache_hit) == (False, True)
    assert second.cost_usd == 0.0 < first.cost_usd
    assert (second.backend, second.completion_tokens) == ("w1", first.completion_tokens)
    assert second.request_id != first.request_id
    assert worker.served == 1
    # Not deterministic: never cached.
    await chat(router, chat_request(temperature=0.7))
    await chat(router, chat_request(temperature=0.7))
    assert worker.served == 3
    [row] = (await get_usage(router, days=1)).rows
    assert (row.calls, row.cache_hits) == (4, 1)


async def test_routers_share_the_cache_through_redis(
    start_router: RouterFactory, start_worker: WorkerFactory, redis_url: str
) -> None:
    cache = CacheConfig(redis_url=redis_url)
    first = await start_router(cache=cache)
    second = await start_router(cache=cache)
    worker = await start_worker(first, "w1")
    await start_worker(second, "w2")
    request = chat_request("shared through redis", temperature=0.0)
    _, answered = await chat(first, request)
    # The entry is stored in the background as the request ends.
    key = chat_key(request, "local")
    assert key is not None
    stored = first.accounting.cache
    assert stored is not None
    await wait_until(lambda: _stored(stored, key))
    _, replayed = await chat(second, request)
    assert (answered.cache_hit, replayed.cache_hit) == (False, True)
    assert replayed.backend == "w1"
    assert worker.served == 1


def scrape(port: int) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        return str(response.read().decode())


def value(metrics: str, name: str, **labels: str) -> float:
    """The sample `name{labels...}`; labels not given may have any value (the first match wins)."""
    for line in metrics.splitlines():
        match = re.match(r"^(\w+)(?:\{(.*)\})? (\S+)$", line)
        if not match or match[1] != name:
            continue
        found = dict(re.findall(r'(\w+)="([^"]*)"', match[2] or ""))
        if all(found.get(k) == v for k, v in labels.items()):
            return float(match[3])
    raise AssertionError(f"no sample {name}{labels}")


async def test_metrics_endpoint_after_traffic(
    start_router: RouterFactory, start_worker: WorkerFactory
) -> None:
    router = await start_router(metrics_listen="127.0.0.1:0")
    assert router.metrics_port > 0
    await start_worker(router, "w1")
    for _ in range(3):
        await chat(router, chat_request())
    await chat(router, chat_request(temperature=0.0))
    await chat(router, chat_request(temperature=0.0))
    with pytest.raises(grpc.aio.AioRpcError):
        await chat(router, pb.ChatRequest(model="nope", messages=chat_request().messages))
    # A load report sent while the last answer was streaming says running 1 until the next one arrives.
    await wait_until(lambda: router.registry.get("w1").load.running == 0)  # type: ignore[union-attr]
    metrics = await asyncio.to_thread(scrape, router.metrics_port)

    ok = {"kind": "chat", "backend": "w1", "model": "echo", "status": "OK"}
    assert value(metrics, "modelyard_requests_total", **ok) == 5
    assert value(metrics, "modelyard_requests_total", status="NOT_FOUND") == 1
    assert value(metrics, "modelyard_tokens_total", backend="w1", direction="prompt") == 25
    assert value(metrics, "modelyard_tokens_total", backend="w1", direction="completion") == 25
    assert value(metrics, "modelyard_cost_usd_total", backend="w1") > 0
    assert value(metrics, "modelyard_ttft_seconds_count", backend="w1") == 5
    assert value(metrics, "modelyard_ttft_seconds_sum", backend="w1") > 0
    assert value(metrics, "modelyard_request_latency_seconds_count", backend="w1") == 5
    assert value(metrics, "modelyard_router_overhead_seconds_count", kind="chat") == 5
    assert value(metrics, "modelyard_router_overhead_seconds_sum", kind="chat") > 0
    assert value(metrics, "modelyard_in_flight_requests", kind="chat") == 0
    assert value(metrics, "modelyard_cache_lookups_total", result="hit") == 1
    assert value(metrics, "modelyard_cache_lookups_total", result="miss") == 1
    assert value(metrics, "modelyard_worker_running", worker="w1") == 0
    assert value(metrics, "modelyard_worker_kv_cache_usage", worker="w1") == 0
    assert value(metrics, "modelyard_worker_waiting", worker="w1") == 0
    assert value(metrics, "modelyard_circuit_state", backend="w1", state="closed") == 1
    assert value(metrics, "modelyard_circuit_state", backend="w1", state="open") == 0
    assert value(metrics, "modelyard_ledger_dropped_records_total") == 0


async def test_in_flight_and_worker_load_while_a_request_runs(
    start_router: RouterFactory, start_worker: WorkerFactory
) -> None:
    router = await start_router(metrics_listen="127.0.0.1:0")
    worker = await start_worker(router, "w1")
    worker.faults.delay_s = 0.3
    call = asyncio.create_task(chat(router, chat_request("slow words here")))
    # Load reports come every 100 ms; wait for one that tells of the running request.
    await wait_until(lambda: router.registry.get("w1").load.running == 1)  # type: ignore[union-attr]
    metrics = await asyncio.to_thread(scrape, router.metrics_port)
    assert value(metrics, "modelyard_in_flight_requests", kind="chat") == 1
    assert value(metrics, "modelyard_worker_running", worker="w1") == 1
    await call


async def test_two_routers_in_one_process_keep_their_own_metrics(start_router: RouterFactory) -> None:
    first = await start_router(metrics_listen="127.0.0.1:0")
    second = await start_router(metrics_listen="127.0.0.1:0")
    assert first.metrics_port != second.metrics_port
    assert first.accounting.metrics.registry is not second.accounting.metrics.registry


KEYS = [ApiKey("acme", hash_key("k-acme")), ApiKey("ops", hash_key("k-ops"), admin=True)]


def bearer(key: str) -> tuple[tuple[str, str], ...]:
    return (("authorization", f"Bearer {key}"),)


@pytest.mark.parametrize("key", [None, "wrong-key"])
async def test_missing_or_wrong_key_is_unauthenticated(
    start_router: RouterFactory,
    start_worker: WorkerFactory,
    key: str | None,
    caplog: pytest.LogCaptureFixture,
) -> None:
    router = await start_router(keys=KEYS)
    await start_worker(router, "w1")  # workers register without a key
    metadata = bearer(key) if key else ()
    caplog.set_level(logging.DEBUG)
    async with grpc.aio.insecure_channel(router.address) as channel:
        stub = router_pb2_grpc.RouterServiceStub(channel)
        for call in (
            stub.ListModels(router_pb2.ListModelsRequest(), metadata=metadata),
            stub.Chat(chat_request(), metadata=metadata).read(),
        ):
            with pytest.raises(grpc.aio.AioRpcError) as error:
                await call
            assert error.value.code() == grpc.StatusCode.UNAUTHENTICATED
    with pytest.raises(grpc.aio.AioRpcError) as error:
        await get_usage(router, key=key)
    assert error.value.code() == grpc.StatusCode.UNAUTHENTICATED
    assert "wrong-key" not in caplog.text


async def test_keys_name_tenants_and_scope_what_they_see(
    start_router: RouterFactory, start_worker: WorkerFactory, tmp_path: Path
) -> None:
    keys_file = tmp_path / "keys.yaml"
    keys_file.write_text(f'- {{tenant: beta, key_sha256: "{hash_key("k-beta")}"}}\n')
    router = await start_router(keys=KEYS, keys_file=str(keys_file))
    await start_worker(router, "w1")
    await chat(router, chat_request(), key="k-acme")
    await chat(router, chat_request(), key="k-acme")
    await chat(router, chat_request(), key="k-beta")

    own = await get_usage(router, key="k-acme", days=1)
    assert own.tenant == "acme"
    assert own.rows[0].calls == 2
    with pytest.raises(grpc.aio.AioRpcError) as error:
        await get_usage(router, key="k-acme", tenant="beta")
    assert error.value.code() == grpc.StatusCode.PERMISSION_DENIED
    everyone = await get_usage(router, key="k-ops", days=1)
    assert everyone.rows[0].calls == 3
    assert (await get_usage(router, key="k-ops", tenant="beta")).rows[0].calls == 1

    async with grpc.aio.insecure_channel(router.address) as channel:
        admin = admin_pb2_grpc.AdminServiceStub(channel)
        request = admin_pb2.UpdateBackendRequest(backend="w1", priority=5)
        with pytest.raises(grpc.aio.AioRpcError) as error:
            await admin.UpdateBackend(request, metadata=bearer("k-acme"))
        assert error.value.code() == grpc.StatusCode.PERMISSION_DENIED
        status = (await admin.UpdateBackend(request, metadata=bearer("k-ops"))).backend
        assert status.priority == 5


async def test_reflection_lists_the_accounting_service(start_router: RouterFactory) -> None:
    router: RouterServer = await start_router()
    async with grpc.aio.insecure_channel(router.address) as channel:
        stub = reflection_pb2_grpc.ServerReflectionStub(channel)
        call = stub.ServerReflectionInfo(iter([reflection_pb2.ServerReflectionRequest(list_services="")]))
        response = await call.read()
    names = {service.name for service in response.list_services_response.service}
    assert "modelyard.v1.AccountingService" in names


async def _stored(cache: ResponseCache, key: str) -> bool:
    """The entry is stored in the background as the request ends."""
    return await cache.get(key) is not None
