"""`modelyard router --log-format json`: only JSON lines on stdout and stderr, and a request line per request
naming its request id, tenant, backend and model."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
from pathlib import Path

import grpc
from modelyard.v1 import inference_pb2 as pb
from modelyard.v1 import router_pb2_grpc

from tests.router.test_routing import chat_request, collect
from tests.support.echo_worker import EchoWorker

REPO_ROOT = Path(__file__).resolve().parents[2]


async def test_json_logs_are_json_only_and_name_each_request(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MODELYARD_", "OPENAI_", "ANTHROPIC_"))}
    router = await asyncio.create_subprocess_exec(
        *[sys.executable, "-m", "router", "--listen", "127.0.0.1:0", "--log-format", "json"],
        *["--usage-db", str(tmp_path / "usage.sqlite3")],
        cwd=REPO_ROOT,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    assert router.stdout is not None
    ready = json.loads(await asyncio.wait_for(router.stdout.readline(), 60))
    assert ready["event"] == "ready"
    worker = EchoWorker("w1")
    await worker.start()
    try:
        await worker.register(ready["address"])
        async with grpc.aio.insecure_channel(ready["address"]) as channel:
            stub = router_pb2_grpc.RouterServiceStub(channel)
            answer = None
            for _ in range(300):  # until the router has taken the worker's hello
                answer = await _chat_once(stub)
                if answer is not None:
                    break
                await asyncio.sleep(0.1)
            assert answer is not None, "the worker never became routable"
            text, usage = answer
            assert text == "one two "
    finally:
        await worker.stop()
        router.send_signal(signal.SIGTERM)
        stdout, stderr = await asyncio.wait_for(router.communicate(), 60)
    assert router.returncode == 0
    lines = [line for line in (stdout + stderr).decode().splitlines() if line.strip()]
    parsed = [json.loads(line) for line in lines]  # raises on any line that is not JSON
    requests = [line for line in parsed if line.get("kind") == "chat" and line.get("status") == "OK"]
    assert len(requests) == 1
    assert requests[0]["request_id"] == usage.request_id
    assert (requests[0]["tenant"], requests[0]["backend"], requests[0]["model"]) == ("local", "w1", "echo")


async def _chat_once(stub: router_pb2_grpc.RouterServiceStub) -> tuple[str, pb.Usage] | None:
    """The answer, or None while the model is not served yet."""
    try:
        return await collect(stub.Chat(chat_request("one two")))
    except grpc.aio.AioRpcError as error:
        if error.code() not in (grpc.StatusCode.NOT_FOUND, grpc.StatusCode.UNAVAILABLE):
            raise
        return None
