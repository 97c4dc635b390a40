"""vLLM's own KV-cache events reach every router over the registration stream (real engine, real routers)."""

from __future__ import annotations

import grpc
import pytest
from modelyard.v1 import inference_pb2 as pb
from modelyard.v1 import router_pb2_grpc

from core.prefix_keys import prefix_keys
from router.config.settings import RouterConfig
from router.server import RouterServer
from tests.e2e.conftest import REPORT_INTERVAL_MS
from tests.support.polling import wait_until
from tests.worker.process import running_worker

pytestmark = pytest.mark.engines
CHAT_ONLY = ("--no-whisper", "--chat-model", "tiny-random-llama")


async def events_only_router(listen: str = "127.0.0.1:0") -> RouterServer:
    """A router whose strategy has no prefix weight: it records nothing of its own routing, so whatever its
    index holds came from the worker's engine."""
    config = RouterConfig(
        listen=listen, router_id="events", report_interval_ms=REPORT_INTERVAL_MS, strategy="least_loaded"
    )
    server = RouterServer(config)
    await server.start()
    return server


def long_chat(model: str, question: str) -> pb.ChatRequest:
    system = "You are the assistant of the Modelyard router team; answer briefly. " * 20  # ~1.4 kB
    return pb.ChatRequest(
        model=model,
        messages=[
            pb.Message(role=pb.ROLE_SYSTEM, content=[pb.ContentPart(text=system)]),
            pb.Message(role=pb.ROLE_USER, content=[pb.ContentPart(text=question)]),
        ],
        sampling=pb.SamplingParams(max_tokens=4, temperature=0.0),
    )


async def test_the_engines_cache_reaches_both_routers_and_a_late_router_gets_a_snapshot() -> None:
    first, second = await events_only_router(), await events_only_router()
    running = [first, second]
    try:
        routers = f"{first.address},{second.address}"
        async with running_worker(routers, *CHAT_ONLY, "--worker-id", "kv") as worker:
            model = worker.models[0]  # the worker's default chat model
            for router in (first, second):
                await wait_until(lambda r=router: r.registry.get("kv") is not None, timeout=30)  # type: ignore[misc]
            request = long_chat(model, "What does the prefix scorer do?")
            keys = prefix_keys(request)
            async with grpc.aio.insecure_channel(first.address) as channel:
                async for _ in router_pb2_grpc.RouterServiceStub(channel).Chat(request):
                    pass
            # Only the first router routed it; both hear from the engine what it now holds.
            for router in (first, second):
                index = router.state.prefixes.index
                await wait_until(
                    lambda i=index: i.match("kv", model, keys) >= len(keys) - 1,  # type: ignore[misc]
                    timeout=30,
                )
            assert second.state.stats["kv"].requests == 0
            # A router that restarts knows nothing; the worker's new session starts with a snapshot.
            address = second.address
            running.remove(second)
            await second.stop(0)
            late = await events_only_router(address)
            running.append(late)
            await wait_until(lambda: late.registry.get("kv") is not None, timeout=30)
            index = late.state.prefixes.index
            await wait_until(lambda: index.match("kv", model, keys) >= len(keys) - 1, timeout=30)
    finally:
        for router in running:
            await router.stop(0)
