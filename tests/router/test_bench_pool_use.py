"""The admission benches' pool figures: the bench worker times its own slots (held while an answer runs, and
counted when it finishes), and two snapshots give a window's busy share and the requests/s the pool could
finish at the hold times it showed."""

from __future__ import annotations

import asyncio

import grpc
import pytest
from modelyard.v1 import inference_pb2 as pb
from modelyard.worker.v1 import worker_pb2_grpc

from bench.fixtures import BenchWorker, SlotUse, WorkerSpec
from bench.inproc import pool_use


async def test_a_bench_worker_counts_slot_time_held_and_answers_finished() -> None:
    worker = BenchWorker(WorkerSpec("w1", "bench", ttft_s=0.001, token_s=0.001, slots=2))
    server = grpc.aio.server()
    worker_pb2_grpc.add_WorkerServiceServicer_to_server(worker, server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    try:
        before = worker.slot_use()
        assert (before.slots, before.finished, before.held_s) == (2, 0, 0.0)
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            stub = worker_pb2_grpc.WorkerServiceStub(channel)
            request = pb.ChatRequest(model="bench", sampling=pb.SamplingParams(max_tokens=3))

            async def answer() -> int:
                return len([r async for r in stub.Chat(request) if r.HasField("delta")])

            assert list(await asyncio.gather(answer(), answer(), answer())) == [3, 3, 3]
        after = worker.slot_use()
        assert after.finished == 3
        assert after.finished_held_s > 0
        assert after.held_s == pytest.approx(after.finished_held_s)  # nothing running: all of it finished
    finally:
        await server.stop(0)


def test_pool_use_is_busy_share_and_capacity_over_the_window() -> None:
    before = [SlotUse(4, 10.0, 100, 9.0, 50.0), SlotUse(4, 20.0, 200, 19.0, 70.0)]
    # Over 5 s by each worker's clock: 8 slots, 36 slot-seconds held (90 % busy); 90 answers finished
    # holding 36 s (0.4 s each).
    after = [SlotUse(4, 28.0, 145, 27.0, 55.0), SlotUse(4, 38.0, 245, 37.0, 75.0)]
    use = pool_use(before, after)
    assert use.busy_share == pytest.approx(0.9)
    assert use.capacity_rps == pytest.approx(8 / 0.4)


def test_pool_use_of_an_idle_window_is_zero() -> None:
    idle = [SlotUse(4, 1.0, 3, 1.0, 9.0)]
    use = pool_use(idle, idle)
    assert (use.busy_share, use.capacity_rps) == (0.0, 0.0)
