"""A real engine that fails on a request it accepted: INTERNAL with reason ENGINE_FAILED, from the worker and
through the router (the README's codes table), naming the failure but not leaking its text.

The engine is a real faster-whisper WhisperEngine whose decoding pool has been shut down under it (as a crashed
or closing engine would be): every transcription then raises inside the engine.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import grpc
import pytest
from modelyard.v1 import inference_pb2 as pb
from modelyard.v1 import router_pb2_grpc

from gpu_worker.app import WorkerApp, WorkerOptions
from gpu_worker.engine_set import EngineSet
from gpu_worker.engines.whisper import WhisperEngine
from gpu_worker.router_pool import parse_router_targets
from router.config.settings import RouterConfig
from router.server import RouterServer
from tests.router.test_status_codes import reason_of
from tests.support.polling import wait_until
from tests.worker.servers import read_rest, serving

pytestmark = pytest.mark.engines


@pytest.fixture
async def broken_whisper() -> WhisperEngine:
    engine = WhisperEngine.start("whisper-tiny.en", workers=1)
    await engine.close()  # the decoding pool is gone: the engine raises on the next transcription
    return engine


SILENCE = b"\x00\x00" * 16_000  # one second of 16 kHz PCM: valid audio, accepted before the engine runs


async def uploads() -> AsyncIterator[pb.TranscribeRequest]:
    config = pb.TranscribeConfig(
        model="whisper-tiny.en", encoding=pb.AUDIO_ENCODING_PCM_S16LE, sample_rate_hz=16_000
    )
    yield pb.TranscribeRequest(config=config)
    yield pb.TranscribeRequest(audio=SILENCE)


def assert_engine_failed(error: grpc.aio.AioRpcError) -> None:
    assert error.code() == grpc.StatusCode.INTERNAL, error.details()
    assert reason_of(error) == "ENGINE_FAILED"
    assert "engine failed: RuntimeError" in (error.details() or "")


async def test_the_worker_says_engine_failed(broken_whisper: WhisperEngine) -> None:
    async with serving(EngineSet(transcribe=[broken_whisper])) as stub:
        with pytest.raises(grpc.aio.AioRpcError) as failed:
            await read_rest(stub.Transcribe(uploads()))
    assert_engine_failed(failed.value)


async def test_the_router_passes_engine_failed_on(broken_whisper: WhisperEngine) -> None:
    router = RouterServer(RouterConfig(listen="127.0.0.1:0", report_interval_ms=100, usage_db="off"))
    await router.start()
    worker = WorkerApp(
        WorkerOptions(
            worker_id="w-broken", routers=parse_router_targets([router.address]), listen="127.0.0.1:0"
        ),
        EngineSet(transcribe=[broken_whisper]),
    )
    await worker.start()
    run = asyncio.create_task(worker.run_until_drained())
    try:
        await wait_until(lambda: router.registry.get("w-broken") is not None)
        async with grpc.aio.insecure_channel(router.address) as channel:
            with pytest.raises(grpc.aio.AioRpcError) as failed:
                await read_rest(router_pb2_grpc.RouterServiceStub(channel).Transcribe(uploads()))
        assert_engine_failed(failed.value)
        assert "w-broken" in (failed.value.details() or "")
    finally:
        worker.drain("test over")
        await asyncio.wait_for(run, 60)
        await router.stop(0)
