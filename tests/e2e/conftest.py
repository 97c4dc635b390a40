"""A real router (in process) with real worker processes (vLLM CPU and faster-whisper), as users run them."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from router.config.settings import RouterConfig
from router.server import RouterServer
from tests.worker.process import WorkerProcess, running_worker
from tests.worker.speech import make_speech_wav

REPORT_INTERVAL_MS = 500  # a 1.5 s lease: engines on a busy CI machine can delay reports


def router_config(listen: str = "127.0.0.1:0") -> RouterConfig:
    return RouterConfig(listen=listen, router_id="e2e", report_interval_ms=REPORT_INTERVAL_MS)


async def start_router(listen: str = "127.0.0.1:0") -> RouterServer:
    server = RouterServer(router_config(listen))
    await server.start()
    return server


@pytest.fixture(scope="module")
async def router() -> AsyncIterator[RouterServer]:
    server = await start_router()
    yield server
    await server.stop(0)


@pytest.fixture(scope="module")
async def engine_worker(router: RouterServer) -> AsyncIterator[WorkerProcess]:
    """Chat on the tiny vLLM model and Whisper tiny.en: `modelyard up` with the fast test model."""
    async with running_worker(
        router.address, "--worker-id", "gpu-0", "--chat-model", "tiny-random-llama"
    ) as worker:
        yield worker


@pytest.fixture(scope="session")
def speech(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_speech_wav(tmp_path_factory.mktemp("speech"))
