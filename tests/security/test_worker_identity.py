"""Worker ids and names: their own namespace, a plain charset, one live owner, a cap, pruned tables."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator

import grpc
import pytest
from modelyard.v1 import inference_pb2 as pb
from modelyard_client import AsyncClient

from router.config.loader import load_config
from router.config.security import WorkersConfig
from tests.security.helpers import config, register_once, running_router
from tests.support.echo_worker import EchoWorker
from tests.support.fake_openai import FakeOpenAI
from tests.support.polling import wait_until


@pytest.fixture
async def echo() -> AsyncIterator[EchoWorker]:
    worker = EchoWorker("w1")
    await worker.start()
    yield worker
    await worker.stop()


async def test_a_worker_cannot_take_a_configured_providers_id(monkeypatch: pytest.MonkeyPatch) -> None:
    async with FakeOpenAI() as openai:
        monkeypatch.setenv("OPENAI_API_KEY", openai.api_key)
        monkeypatch.setenv("OPENAI_BASE_URL", openai.base_url)
        cfg = load_config(env=os.environ)
        cfg.listen, cfg.usage_db = "127.0.0.1:0", "off"
        async with running_router(cfg) as router:
            hello = EchoWorker("openai", models=("gpt-4o-mini",)).hello()
            hello.address = "127.0.0.1:1"
            assert await register_once(router.address, hello) == grpc.StatusCode.ALREADY_EXISTS
            assert router.registry.get("openai").kind == "openai"  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("worker_id", "model"),
    [
        ("w1\n2026-01-01 INFO forged log line", "echo"),
        ("w" * 129, "echo"),
        ("-starts-with-dash", "echo"),
        ("w1", 'label"} injection{x="'),
        ("w1", "m\nforged"),
        ("w1", "m" * 129),
    ],
)
async def test_ids_and_model_names_are_validated(worker_id: str, model: str) -> None:
    async with running_router(config()) as router:
        hello = EchoWorker(worker_id, models=(model,)).hello()
        hello.address = "127.0.0.1:1"
        assert await register_once(router.address, hello) == grpc.StatusCode.INVALID_ARGUMENT
        assert len(router.registry) == 0


async def test_a_live_id_cannot_be_taken_over_from_elsewhere(echo: EchoWorker) -> None:
    async with running_router(config()) as router:
        await echo.register(router.address)
        impostor = echo.hello()
        impostor.address = "127.0.0.1:1"  # another worker claiming the same id
        assert await register_once(router.address, impostor) == grpc.StatusCode.ALREADY_EXISTS
        assert router.registry.get("w1").address == echo.address  # type: ignore[union-attr]


async def test_allowed_models_limits_what_workers_may_serve(echo: EchoWorker) -> None:
    cfg = config(workers=WorkersConfig(allowed_models=("tiny-random-llama",)))
    async with running_router(cfg) as router:
        assert await register_once(router.address, echo.hello()) == grpc.StatusCode.PERMISSION_DENIED
        allowed = EchoWorker("w2", models=("tiny-random-llama",)).hello()
        allowed.address = "127.0.0.1:1"
        assert await register_once(router.address, allowed) == grpc.StatusCode.OK


async def test_registrations_are_capped() -> None:
    async with running_router(config(workers=WorkersConfig(max_workers=2))) as router:
        workers = [EchoWorker(f"w{i}") for i in range(3)]
        for worker in workers:
            await worker.start()
        try:
            await workers[0].register(router.address)
            await workers[1].register(router.address)
            code = await register_once(router.address, workers[2].hello())
            assert code == grpc.StatusCode.RESOURCE_EXHAUSTED
        finally:
            for worker in workers:
                await worker.stop()


async def test_tables_are_pruned_when_workers_leave() -> None:
    async with running_router(config()) as router:
        workers = [EchoWorker(f"junk-{i}") for i in range(20)]
        for worker in workers:
            await worker.start()
            await worker.register(router.address)
        async with AsyncClient(router.address, timeout=10) as client:
            await client.status()  # touches settings, stats and circuit entries of every backend
            await client.chat_text("a b c", model="echo")
        state = router.state
        assert all(w.worker_id in state.stats for w in workers)
        for worker in workers:
            await worker.stop()
        await wait_until(lambda: len(router.registry) == 0, message="workers did not leave")
        for table in (state.stats, state.circuits, state.settings):
            assert not [w.worker_id for w in workers if w.worker_id in table]


async def test_worker_reported_tokens_are_bounded_by_the_request() -> None:
    class Inflating(EchoWorker):
        async def Chat(self, request: pb.ChatRequest, context: object) -> AsyncIterator[pb.ChatResponse]:
            yield pb.ChatResponse(delta=pb.ChatDelta(text="ok"))
            yield pb.ChatResponse(
                usage=pb.Usage(
                    prompt_tokens=4_000_000_000,
                    completion_tokens=4_000_000_000,
                    finish_reason=pb.FINISH_REASON_STOP,
                )
            )

    liar = Inflating("liar")
    await liar.start()
    try:
        async with running_router(config()) as router:
            await liar.register(router.address)
            async with AsyncClient(router.address, timeout=10) as client:
                result = await client.chat_text("four short words here", model="echo", max_tokens=7)
    finally:
        await liar.stop()
    assert result.usage is not None
    assert result.usage.completion_tokens == 7
    assert result.usage.prompt_tokens <= len("four short words here") + 16 + 256


async def test_a_reconnect_of_the_same_worker_replaces_its_lease(echo: EchoWorker) -> None:
    async with running_router(config()) as router:
        await echo.register(router.address)
        first = router.registry.get("w1")
        again = EchoWorker("w1", port=echo.port)  # the same machine and address: a reconnect
        await again.register(router.address)
        try:
            second = router.registry.get("w1")
            assert second is not None
            assert second is not first
        finally:
            await again.unregister()
