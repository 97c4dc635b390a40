"""Mid-stream migration on real engines: two vLLM CPU workers serving SmolLM2 (a real model, so greedy text
re-tokenizes as it was generated), the one serving a greedy answer SIGKILLed mid-answer. The other continues
the final message (continue_final_message) and the client's text is the undisturbed greedy answer."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import grpc
import pytest
from modelyard.v1 import admin_pb2, admin_pb2_grpc, router_pb2_grpc
from modelyard.v1 import inference_pb2 as pb

from router.server import RouterServer
from tests.e2e.conftest import router_config
from tests.router.test_routing import collect
from tests.support.polling import wait_until
from tests.worker.process import WorkerProcess, start_worker

pytestmark = pytest.mark.engines

PROMPT = "Write a long essay on the history of Paris."
GENEROUS_S = 300.0  # CPU engines on a shared machine; bounds a broken build only


@pytest.fixture
async def router() -> AsyncIterator[RouterServer]:
    config = router_config()
    # CPU engines on a shared machine may take seconds to prefill a continuation; a stall here would be noise.
    config.worker_stall_timeout_s = 60.0
    server = RouterServer(config)
    await server.start()
    yield server
    await server.stop(0)


@pytest.fixture
async def two_workers(router: RouterServer) -> AsyncIterator[dict[str, WorkerProcess]]:
    workers: dict[str, WorkerProcess] = {}
    try:
        # One after the other: the first converts the packaged model into the cache, the second reuses it.
        for worker_id in ("cpu-a", "cpu-b"):
            workers[worker_id] = await start_worker(
                router.address, "--no-whisper", "--worker-id", worker_id, ready_timeout=600
            )
        await wait_until(lambda: all(router.registry.get(w) is not None for w in workers), GENEROUS_S)
        yield workers
    finally:
        for worker in workers.values():
            with contextlib.suppress(ProcessLookupError):
                await worker.stop()


def greedy_request() -> pb.ChatRequest:
    return pb.ChatRequest(
        model="smollm2-135m-instruct",
        messages=[pb.Message(role=pb.ROLE_USER, content=[pb.ContentPart(text=PROMPT)])],
        # Long enough that the answer is still being generated when its worker dies. No temperature: the
        # model's own default is greedy (0), and a request that sets 0 would be answered again from the
        # router's response cache.
        sampling=pb.SamplingParams(max_tokens=48),
    )


@pytest.mark.timeout(1200)  # two engines start first, on a shared machine
async def test_a_worker_killed_mid_answer_the_greedy_answer_is_unchanged(
    router: RouterServer, two_workers: dict[str, WorkerProcess]
) -> None:
    async with grpc.aio.insecure_channel(router.address) as channel:
        stub = router_pb2_grpc.RouterServiceStub(channel)
        undisturbed, whole = await asyncio.wait_for(collect(stub.Chat(greedy_request())), GENEROUS_S)
        # cpu-a first, so the test knows which worker serves the answer the moment it starts.
        admin = admin_pb2_grpc.AdminServiceStub(channel)
        for priority, worker_id in enumerate(("cpu-a", "cpu-b"), start=1):
            await admin.UpdateBackend(admin_pb2.UpdateBackendRequest(backend=worker_id, priority=priority))
        request = greedy_request()
        request.routing.strategy = pb.STRATEGY_FALLBACK
        text, usage = "", pb.Usage()
        async with asyncio.timeout(GENEROUS_S):
            async for response in stub.Chat(request):
                if response.HasField("usage"):
                    usage = response.usage
                    continue
                if not text:
                    two_workers["cpu-a"].process.kill()
                text += response.delta.text
    assert whole.completion_tokens > 20, undisturbed  # long enough to break into
    assert text == undisturbed
    assert [p.backend for p in usage.parts] == ["cpu-a", "cpu-b"]
