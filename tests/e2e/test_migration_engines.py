"""Mid-stream migration on real engines: two vLLM CPU workers serving SmolLM2 (a real model, so greedy text
re-tokenizes as it was generated), the one serving a greedy answer SIGKILLed mid-answer. The other continues
the final message (continue_final_message) and the client's text is the undisturbed greedy answer."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import grpc
import pytest
from modelyard.v1 import inference_pb2 as pb
from modelyard.v1 import router_pb2_grpc

from router.server import RouterServer
from tests.router.test_routing import collect
from tests.support.polling import wait_until
from tests.worker.process import WorkerProcess, start_worker

pytestmark = pytest.mark.engines

GENEROUS_S = 300.0  # CPU engines on a shared machine; bounds a broken build only


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
        messages=[
            pb.Message(role=pb.ROLE_USER, content=[pb.ContentPart(text="Describe Paris in a few sentences.")])
        ],
        sampling=pb.SamplingParams(temperature=0.0, max_tokens=64),
    )


async def test_a_worker_killed_mid_answer_the_greedy_answer_is_unchanged(
    router: RouterServer, two_workers: dict[str, WorkerProcess]
) -> None:
    async with grpc.aio.insecure_channel(router.address) as channel:
        stub = router_pb2_grpc.RouterServiceStub(channel)
        undisturbed, _ = await asyncio.wait_for(collect(stub.Chat(greedy_request())), GENEROUS_S)
        text, usage, deltas, victim = "", pb.Usage(), 0, ""
        async with asyncio.timeout(GENEROUS_S):
            async for response in stub.Chat(greedy_request()):
                if response.HasField("usage"):
                    usage = response.usage
                    continue
                text += response.delta.text
                deltas += 1
                if deltas == 1:
                    (victim,) = [b.id for b in router.registry if b.in_flight]
                    two_workers[victim].process.kill()
    assert text == undisturbed
    assert [p.backend for p in usage.parts] == [victim, usage.backend]
    assert usage.backend != victim
