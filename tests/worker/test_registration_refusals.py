"""A worker says "ready" only once a router has it, and a refusal that retrying cannot fix is an ERROR, asked
again on a slow (about a minute) backoff instead of the reconnect one. Against a real router."""

from __future__ import annotations

import asyncio
import logging

import pytest
from modelyard.v1.backend_pb2 import LoadReport
from modelyard.worker.v1 import worker_pb2

from gpu_worker.app import WorkerApp, WorkerOptions
from gpu_worker.engine_set import EngineSet
from gpu_worker.registration import REFUSED_BACKOFF_S, Backoff, RegistrationStream
from gpu_worker.router_pool import parse_router_targets
from router.config.security import WorkersConfig
from tests.security.helpers import TOKEN, config, running_router
from tests.support.polling import wait_until
from tests.worker.gated_engine import GatedChatEngine
from tests.worker.registry_double import running_registry


class CountingBackoff(Backoff):
    """Counts the delays asked of it and keeps them short, so the test sees several attempts quickly."""

    def __init__(self) -> None:
        super().__init__()
        self.asked = 0

    def next_delay(self) -> float:
        self.asked += 1
        return 0.05


async def test_a_refused_worker_logs_an_error_and_backs_off_slowly(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="gpu_worker.registration")
    reconnect, refused = CountingBackoff(), CountingBackoff()
    async with running_router(config(workers=WorkersConfig(token=TOKEN))) as router:
        stream = RegistrationStream(
            router.address,
            lambda: worker_pb2.WorkerHello(worker_id="no-token", address="127.0.0.1:1"),
            LoadReport,
            lambda _reason: None,
            backoff=reconnect,
            refused_backoff=refused,
        )
        stream.start()
        try:
            await wait_until(lambda: refused.asked >= 2, message="no second attempt")
        finally:
            await stream.stop()
    assert reconnect.asked == 0  # never the fast reconnect backoff
    errors = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert errors
    assert "refused this worker (UNAUTHENTICATED" in errors[0].getMessage()


def test_the_refusal_backoff_grows_to_about_a_minute() -> None:
    backoff = Backoff(*REFUSED_BACKOFF_S)
    delays = [backoff.next_delay() for _ in range(8)]
    assert REFUSED_BACKOFF_S[0] / 2 <= delays[0] <= REFUSED_BACKOFF_S[0]
    assert 30.0 <= delays[-1] <= 60.0


def app(routers: list[str]) -> WorkerApp:
    options = WorkerOptions(worker_id="w1", routers=parse_router_targets(routers), listen="127.0.0.1:0")
    return WorkerApp(options, EngineSet(chat=[GatedChatEngine()]))


async def test_ready_waits_for_a_router_to_acknowledge() -> None:
    async with running_registry() as router:
        worker = app([router.address])
        await worker.start()
        try:
            assert await asyncio.wait_for(worker.wait_registered(), 30)
            assert router.registry.hellos[0].worker_id == "w1"
        finally:
            worker.drain("test over")
            await asyncio.wait_for(worker.run_until_drained(), 30)


async def test_a_worker_drained_before_any_router_has_it_is_never_ready() -> None:
    worker = app(["127.0.0.1:1"])  # nothing listens there
    await worker.start()
    waiting = asyncio.create_task(worker.wait_registered())
    await asyncio.sleep(0)
    worker.drain("stopped before registering")
    assert await asyncio.wait_for(waiting, 30) is False
    assert await asyncio.wait_for(worker.run_until_drained(), 30) == 0
