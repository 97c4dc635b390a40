"""The worker pool as operators see it: leases, restarts, drain and several routers (real processes)."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
from pathlib import Path

import pytest
from modelyard_client import AsyncClient, Segment, Usage

from router.backends.base import Backend
from router.config.settings import RouterConfig
from router.server import RouterServer
from tests.e2e.conftest import start_router
from tests.support.polling import wait_until
from tests.worker.process import running_worker, start_worker
from tests.worker.speech import make_speech_wav

pytestmark = pytest.mark.engines
WHISPER_ONLY = ("--no-chat",)  # Whisper starts in about a second; enough to exercise the pool


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def transcribe(address: str, speech: Path) -> tuple[str, Usage]:
    text, usage = "", None
    async with AsyncClient(address, api_key="") as client:
        async for event in client.transcribe(speech):
            if isinstance(event, Segment):
                text += event.text
            elif isinstance(event, Usage):
                usage = event
    assert usage is not None
    return text, usage


async def test_sigkilled_worker_leaves_the_pool_when_its_stream_breaks() -> None:
    # A lease of 1000 missed reports (over eight minutes): within the wait below, only the broken
    # registration stream can take the worker out of the pool, not the missed-report timeout.
    router = RouterServer(RouterConfig(listen="127.0.0.1:0", report_interval_ms=500, missed_reports=1000))
    await router.start()
    try:
        worker = await start_worker(router.address, *WHISPER_ONLY, "--worker-id", "doomed")
        await wait_until(lambda: router.registry.get("doomed") is not None)
        os.kill(worker.pid, signal.SIGKILL)
        await wait_until(lambda: router.registry.get("doomed") is None, timeout=60.0)
        await worker.stop()
    finally:
        await router.stop(0)


async def test_worker_rejoins_a_restarted_router_by_itself() -> None:
    listen = f"127.0.0.1:{free_port()}"
    router = await start_router(listen)
    async with running_worker(listen, *WHISPER_ONLY, "--worker-id", "faithful"):
        await wait_until(lambda: router.registry.get("faithful") is not None)
        await router.stop(0)
        router = await start_router(listen)
        try:
            await wait_until(lambda: router.registry.get("faithful") is not None, timeout=60.0)
        finally:
            await router.stop(0)


@pytest.fixture(scope="module")
def long_speech(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Long enough (about ten seconds) that three transcriptions are still held when SIGTERM lands."""
    text = (
        "the quick brown fox jumps over the lazy dog. a stitch in time saves nine. "
        "every cloud has a silver lining. better late than never, but never late is better."
    )
    return make_speech_wav(tmp_path_factory.mktemp("long"), text, "long")


def held(backend: Backend) -> int:
    load = backend.load_report()
    return 0 if load is None else load.running + load.waiting


def draining_or_gone(backend: Backend | None) -> bool:
    return backend is None or backend.draining


async def test_sigterm_under_load_finishes_every_request_and_exits_zero(long_speech: Path) -> None:
    speech = long_speech
    router = await start_router()
    try:
        worker = await start_worker(router.address, *WHISPER_ONLY, "--worker-id", "leaving")
        await wait_until(lambda: router.registry.get("leaving") is not None)
        requests = [asyncio.create_task(transcribe(router.address, speech)) for _ in range(3)]
        backend = router.registry.get("leaving")
        assert backend is not None
        # Held by the worker itself (its load report), not only sent: what SIGTERM must not lose.
        await wait_until(lambda: held(backend) == 3, timeout=60.0)
        os.kill(worker.pid, signal.SIGTERM)
        await wait_until(lambda: draining_or_gone(router.registry.get("leaving")), timeout=60.0)
        results = await asyncio.gather(*requests)
        expected = ("quick", "brown", "lazy", "stitch", "cloud", "silver", "never")
        assert all(sum(word in text.lower() for word in expected) >= 3 for text, _ in results), results
        assert all(usage.backend == "leaving" for _, usage in results)
        assert await worker.stop() == 0
    finally:
        await router.stop(0)


async def test_two_routers_share_one_worker(speech: Path) -> None:
    first, second = await start_router(), await start_router()
    try:
        routers = f"{first.address},{second.address}"
        async with running_worker(routers, *WHISPER_ONLY, "--worker-id", "shared"):
            for router in (first, second):
                await wait_until(lambda r=router: r.registry.get("shared") is not None)  # type: ignore[misc]
            for router in (first, second):
                text, usage = await transcribe(router.address, speech)
                assert "fox" in text.lower()
                assert usage.backend == "shared"
    finally:
        await first.stop(0)
        await second.stop(0)


__all__ = ["RouterServer"]
