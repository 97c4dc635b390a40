"""The worker's /metrics (its own figures and vLLM's), and its capacity following the engine's batch size."""

from __future__ import annotations

import asyncio
import re
import urllib.request

import pytest

from gpu_worker.app import WorkerApp, WorkerOptions
from gpu_worker.engine_set import EngineSet
from gpu_worker.main import build_parser
from gpu_worker.metrics import WORKER_METRIC_NAMES
from gpu_worker.router_pool import parse_router_targets
from tests.support.polling import wait_until
from tests.support.servers import free_port
from tests.worker.gated_engine import GatedChatEngine
from tests.worker.process import start_worker
from tests.worker.registry_double import running_registry


async def scrape(port: int) -> str:
    def get() -> str:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as response:
            return str(response.read().decode())

    return await asyncio.to_thread(get)


def value(text: str, name: str) -> float:
    match = re.search(rf"^{re.escape(name)} (\S+)$", text, re.MULTILINE)
    assert match, f"{name} not in /metrics"
    return float(match.group(1))


async def test_capacity_follows_the_engine_batch_size_and_metrics_show_it() -> None:
    engine = GatedChatEngine()
    engine.batch_size = 24
    options = WorkerOptions(
        worker_id="m1",
        routers=parse_router_targets(["127.0.0.1:1"]),
        listen="127.0.0.1:0",
        metrics_listen="127.0.0.1:0",
    )
    app = WorkerApp(options, EngineSet(chat=[engine]))
    await app.start()
    run = asyncio.create_task(app.run_until_drained())
    try:
        assert app.hello().max_concurrency == 24
        text = await scrape(app.metrics.port)
        assert value(text, "modelyard_gpu_worker_max_concurrency") == 24
        assert value(text, "modelyard_gpu_worker_draining") == 0
        own = {
            sample.name
            for family in app.metrics.registry.collect()
            if family.name.startswith("modelyard_")
            for sample in family.samples
        }
        assert (
            WORKER_METRIC_NAMES
            - {"modelyard_gpu_worker_gpu_memory_used_bytes", "modelyard_gpu_worker_gpu_utilization"}
            <= own
        )
        assert re.search(r'^modelyard_gpu_worker_info\{.*worker_id="m1"', text, re.MULTILINE)
    finally:
        app.drain("test over")
        await asyncio.wait_for(run, 30)


def test_gpu_settings_parse_and_are_checked() -> None:
    args = build_parser().parse_args(["--gpu-memory-utilization", "0.85", "--tensor-parallel-size", "2"])
    assert (args.gpu_memory_utilization, args.tensor_parallel_size, args.max_concurrency) == (0.85, 2, None)
    for bad in (["--gpu-memory-utilization", "1.5"], ["--tensor-parallel-size", "0"]):
        with pytest.raises(SystemExit):
            build_parser().parse_args(bad)


@pytest.mark.engines
async def test_a_real_worker_serves_its_own_and_vllm_metrics() -> None:
    port = free_port()
    async with running_registry() as router:
        worker = await start_worker(
            router.address,
            "--no-whisper",
            "--chat-model",
            "tiny-random-llama",
            "--metrics-listen",
            f"127.0.0.1:{port}",
        )
        try:
            await wait_until(lambda: bool(router.registry.hellos), timeout=30, message="no hello")
            text = await scrape(port)
            assert "vllm:num_requests_running" in text
            # No --max-concurrency: vLLM's own batch size, not the old fixed 16.
            capacity = value(text, "modelyard_gpu_worker_max_concurrency")
            assert capacity == router.registry.hellos[-1].max_concurrency
            assert capacity > 16
        finally:
            assert await worker.stop() == 0
