"""Once a request ends, the worker's load report (and so `modelyard status`) shows it idle: RUNNING 0."""

from __future__ import annotations

import grpc
from modelyard.v1 import inference_pb2 as pb
from modelyard.v1 import router_pb2, router_pb2_grpc

from router.server import RouterServer
from tests.support.polling import wait_until
from tests.worker.process import WorkerProcess


async def test_status_shows_the_worker_idle_after_a_chat(
    router: RouterServer, engine_worker: WorkerProcess
) -> None:
    async with grpc.aio.insecure_channel(router.address) as channel:
        stub = router_pb2_grpc.RouterServiceStub(channel)
        request = pb.ChatRequest(
            model="tiny-random-llama",
            messages=[pb.Message(role=pb.ROLE_USER, content=[pb.ContentPart(text="hello there")])],
            sampling=pb.SamplingParams(max_tokens=8),
        )
        responses = [response async for response in stub.Chat(request)]
        assert responses[-1].HasField("usage")
        for _ in range(2):  # the second time with embeddings' and speech's engines still idle
            text = [response async for response in stub.Chat(request)]
            assert text[-1].HasField("usage")

        async def load() -> tuple[int, int]:
            status = await stub.GetStatus(router_pb2.GetStatusRequest())
            worker = next(b for b in status.backends if b.id == engine_worker.worker_id)
            return worker.load.running, worker.load.waiting

        last: list[tuple[int, int]] = []

        async def idle() -> bool:
            last.append(await load())
            return last[-1] == (0, 0)

        await wait_until(idle, timeout=10.0, message=f"the worker still reports load: {last[-1:]}")
