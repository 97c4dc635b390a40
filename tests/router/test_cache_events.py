"""Prefix-cache events over the registration stream: the router's view follows what workers report."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from modelyard.v1 import inference_pb2 as pb
from modelyard.v1 import router_pb2_grpc
from modelyard.worker.v1 import worker_pb2

from core.prefix_keys import prefix_keys
from router.config.settings import RouterConfig
from router.server import RouterServer
from tests.router.conftest import WorkerFactory
from tests.router.test_prefix_routing import conversation
from tests.support.echo_worker import EchoWorker
from tests.support.polling import wait_until

BLOCK = 256  # the router's default prefix.block_bytes


def stored(*keys: int) -> worker_pb2.CacheEvent:
    return worker_pb2.CacheEvent(stored=worker_pb2.PrefixStored(keys=keys))


def removed(*keys: int) -> worker_pb2.CacheEvent:
    return worker_pb2.CacheEvent(removed=worker_pb2.PrefixRemoved(keys=keys))


CLEARED = worker_pb2.CacheEvent(cleared=worker_pb2.CacheCleared())


async def backend_of(stub: router_pb2_grpc.RouterServiceStub, request: pb.ChatRequest) -> str:
    async for response in stub.Chat(request):
        if response.HasField("usage"):
            return str(response.usage.backend)
    raise AssertionError("no usage")


async def test_stored_removed_and_cleared_events_move_the_routers_view(
    router: RouterServer, echo_workers: WorkerFactory
) -> None:
    worker = await echo_workers("w1", prefix_block_bytes=BLOCK)
    index = router.state.prefixes.index
    worker.send_cache_events("echo", stored(1, 2, 3), removed(3))
    await wait_until(lambda: index.match("w1", "echo", [1, 2, 3]) == 2)
    worker.send_cache_events("echo", CLEARED, stored(7))
    await wait_until(lambda: index.match("w1", "echo", [7]) == 1)
    assert index.match("w1", "echo", [1]) == 0
    worker.send_cache_events("not-served-here", stored(9))  # a model the worker never announced
    worker.send_cache_events("echo", stored(8))
    await wait_until(lambda: index.match("w1", "echo", [8]) == 1)
    assert index.keys_held("w1") == 2


async def test_reported_cache_decides_where_a_conversation_goes(
    router: RouterServer, stub: router_pb2_grpc.RouterServiceStub, echo_workers: WorkerFactory
) -> None:
    cold = await echo_workers("a-cold", prefix_block_bytes=BLOCK)
    warm = await echo_workers("b-warm", prefix_block_bytes=BLOCK)
    request = conversation("what is in the cache?", "and now?")
    keys = prefix_keys(request, BLOCK)
    # The conversation's prefix, as another router routed it, is in b-warm's engine.
    warm.send_cache_events("echo", stored(*keys[:-1]))
    await wait_until(lambda: router.state.prefixes.index.keys_held("b-warm") == len(keys) - 1)
    assert await backend_of(stub, request) == "b-warm"
    # Its engine evicts it, and a-cold's engine turns out to hold it: the next turn follows the cache.
    warm.send_cache_events("echo", CLEARED)
    cold.send_cache_events("echo", stored(*keys))
    await wait_until(lambda: router.state.prefixes.index.keys_held("b-warm") == 0)
    await wait_until(lambda: router.state.prefixes.index.keys_held("a-cold") >= len(keys))
    assert await backend_of(stub, conversation("what is in the cache?", "and now?", "again")) == "a-cold"


async def test_events_keyed_with_another_block_size_are_ignored(
    router: RouterServer, echo_workers: WorkerFactory
) -> None:
    worker = await echo_workers("w1", prefix_block_bytes=BLOCK * 2)
    worker.send_cache_events("echo", stored(1, 2))
    worker.running = 5  # the next load report follows the events on the stream
    backend = router.registry.get("w1")
    assert backend is not None
    await wait_until(lambda: backend.utilisation() > 0)
    assert router.state.prefixes.index.keys_held("w1") == 0
    worker.running = 0


@pytest.fixture
async def second_router() -> AsyncIterator[RouterServer]:
    server = RouterServer(RouterConfig(listen="127.0.0.1:0", router_id="second", report_interval_ms=100))
    await server.start()
    yield server
    await server.stop(0)


async def test_two_routers_see_the_same_events_and_agree(
    router: RouterServer, second_router: RouterServer, echo_workers: WorkerFactory
) -> None:
    first = await echo_workers("w1", prefix_block_bytes=BLOCK)
    # The worker's lease to the second router (a worker registers with every router and sends each
    # the same events; gpu_worker's side of that is tested with the real engine).
    lease = EchoWorker("w1", prefix_block_bytes=BLOCK, port=first.port)
    await lease.register(second_router.address)
    try:
        events = (stored(11, 12), removed(12), stored(13))
        first.send_cache_events("echo", *events)
        lease.send_cache_events("echo", *events)
        for server in (router, second_router):
            index = server.state.prefixes.index
            await wait_until(lambda index=index: index.keys_held("w1") == 2)  # type: ignore[misc]
            assert [index.match("w1", "echo", [k]) for k in (11, 12, 13)] == [1, 0, 1]
    finally:
        await lease.unregister()
