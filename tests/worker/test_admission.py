from __future__ import annotations

import asyncio

import grpc
import pytest
from modelyard.v1 import inference_pb2 as pb

from core.errors import CapacityExhausted, NoBackendAvailable
from gpu_worker.admission import Admission
from gpu_worker.engine_set import EngineSet
from tests.support.polling import wait_until
from tests.worker.gated_engine import GatedChatEngine
from tests.worker.servers import serving


def _chat(model: str = "gated") -> pb.ChatRequest:
    return pb.ChatRequest(
        model=model, messages=[pb.Message(role=pb.ROLE_USER, content=[pb.ContentPart(text="hi")])]
    )


async def test_slots_then_queue_then_refusal() -> None:
    admission = Admission(max_concurrency=1, max_queue=1)
    release = asyncio.Event()

    async def hold() -> None:
        async with admission.slot():
            await release.wait()

    first = asyncio.create_task(hold())
    second = asyncio.create_task(hold())
    await wait_until(lambda: admission.running == 1 and admission.waiting == 1)
    with pytest.raises(CapacityExhausted, match="max_concurrency 1, max_queue 1"):
        async with admission.slot():
            pass
    release.set()
    await asyncio.gather(first, second)
    assert (admission.running, admission.waiting) == (0, 0)
    assert await admission.wait_idle(0.1)


async def test_cancelled_waiter_leaves_the_queue() -> None:
    admission = Admission(max_concurrency=1, max_queue=4)
    release = asyncio.Event()

    async def hold() -> None:
        async with admission.slot():
            await release.wait()

    holder = asyncio.create_task(hold())
    waiter = asyncio.create_task(hold())
    await wait_until(lambda: admission.waiting == 1)
    waiter.cancel()
    await asyncio.gather(waiter, return_exceptions=True)
    assert admission.waiting == 0
    release.set()
    await holder
    assert await admission.wait_idle(0.1)


async def test_closed_admission_refuses_as_unavailable() -> None:
    admission = Admission(max_concurrency=2, max_queue=0)
    admission.close()
    with pytest.raises(NoBackendAvailable, match="draining"):
        admission.check()


async def test_worker_over_capacity_is_resource_exhausted() -> None:
    engine = GatedChatEngine()
    admission = Admission(max_concurrency=1, max_queue=1)
    async with serving(EngineSet(chat=[engine]), admission=admission) as stub:
        running = stub.Chat(_chat())
        assert (await running.read()).delta.text == "held"
        queued = stub.Chat(_chat())
        await wait_until(lambda: engine.started == 1)
        # The second waits behind the first before the third comes.
        await wait_until(lambda: admission.waiting == 1)
        refused = stub.Chat(_chat())
        with pytest.raises(grpc.aio.AioRpcError) as error:
            await refused.read()
        assert error.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        engine.release.set()
        responses = [response async for response in queued]
        assert responses[-1].usage.finish_reason == pb.FINISH_REASON_STOP
        running.cancel()
