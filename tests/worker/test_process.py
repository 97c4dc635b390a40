"""The worker as its own process (`python -m gpu_worker`): ready line, registration, serving, SIGTERM drain."""

from __future__ import annotations

from collections.abc import AsyncIterator

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc
from modelyard.v1 import inference_pb2 as pb
from modelyard.worker.v1 import worker_pb2_grpc

from tests.support.polling import wait_until
from tests.worker.process import start_worker
from tests.worker.registry_double import running_registry
from tests.worker.servers import read_rest

pytestmark = pytest.mark.engines


async def test_worker_process_registers_serves_and_drains_on_sigterm(speech_file: bytes) -> None:
    async with running_registry() as router:
        worker = await start_worker(
            router.address, "--no-chat", "--worker-id", "proc-1", "--grace-seconds", "10"
        )
        try:
            assert worker.models == ("whisper-tiny.en",)
            assert worker.address.startswith("127.0.0.1:")
            await wait_until(
                lambda: "proc-1" in router.registry.open_streams,
                timeout=30,
                message="no hello",
            )
            hello = router.registry.hellos[-1]
            assert hello.address == worker.address
            assert [model.engine for model in hello.models] == ["faster-whisper"]
            await wait_until(lambda: len(router.registry.loads) >= 2, message="no load reports")

            async with grpc.aio.insecure_channel(worker.address) as channel:
                health = await health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest())
                assert health.status == health_pb2.HealthCheckResponse.SERVING
                assert "modelyard.worker.v1.WorkerService" in await _reflected_services(channel)

                async def requests() -> AsyncIterator[pb.TranscribeRequest]:
                    yield pb.TranscribeRequest(config=pb.TranscribeConfig(model="whisper-tiny.en"))
                    yield pb.TranscribeRequest(audio=speech_file)

                responses = await read_rest(worker_pb2_grpc.WorkerServiceStub(channel).Transcribe(requests()))
                assert "fox" in " ".join(
                    r.segment.text.lower() for r in responses if r.WhichOneof("event") == "segment"
                )
        finally:
            exit_code = await worker.stop()
        assert exit_code == 0, worker.log()[-3000:]
        assert router.registry.loads[-1].draining
        await wait_until(lambda: "proc-1" not in router.registry.open_streams, message="stream left open")


async def _reflected_services(channel: grpc.aio.Channel) -> set[str]:
    stub = reflection_pb2_grpc.ServerReflectionStub(channel)

    async def ask() -> AsyncIterator[reflection_pb2.ServerReflectionRequest]:
        yield reflection_pb2.ServerReflectionRequest(list_services="")

    async for reply in stub.ServerReflectionInfo(ask()):
        return {service.name for service in reply.list_services_response.service}
    return set()
