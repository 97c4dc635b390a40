"""`python -m gpu_worker --log-format json`: JSON lines only, on stdout (the ready line) and stderr (logging,
vLLM's included), with a request line naming the request."""

from __future__ import annotations

import json

import grpc
import pytest
from modelyard.v1 import inference_pb2 as pb
from modelyard.worker.v1 import worker_pb2_grpc

from tests.worker.process import start_worker
from tests.worker.registry_double import running_registry
from tests.worker.servers import read_rest

pytestmark = pytest.mark.engines


async def test_json_log_format_writes_only_json_lines() -> None:
    async with running_registry() as router:
        worker = await start_worker(
            router.address, "--no-whisper", "--log-format", "json", "--worker-id", "j1"
        )
        try:
            request = pb.ChatRequest(
                request_id="req-json",
                model=worker.models[0],
                messages=[pb.Message(role=pb.ROLE_USER, content=[pb.ContentPart(text="hello")])],
                sampling=pb.SamplingParams(max_tokens=4),
            )
            async with grpc.aio.insecure_channel(worker.address) as channel:
                responses = await read_rest(worker_pb2_grpc.WorkerServiceStub(channel).Chat(request))
            assert responses[-1].HasField("usage")
        finally:
            assert await worker.stop() == 0
    lines = [line for line in [*worker.stdout_lines, *worker.log().splitlines()] if line.strip()]
    parsed = [json.loads(line) for line in lines]  # raises, showing the line, on anything else
    assert any(line.get("event") == "ready" for line in parsed)
    assert any(line["logger"].startswith("vllm") for line in parsed if "logger" in line), (
        "vLLM logs through us"
    )
    served = [line for line in parsed if line.get("request_id") == "req-json" and "latency_ms" in line]
    assert len(served) == 1
    assert (served[0]["model"], served[0]["backend"]) == (worker.models[0], "j1")
