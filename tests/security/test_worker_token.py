"""The shared worker token: nothing joins the pool or reaches a worker without it (issue 10)."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import pytest
import yaml
from modelyard.v1 import inference_pb2 as pb
from modelyard.worker.v1 import worker_pb2_grpc
from modelyard_client import AsyncClient

from core.worker_token import token_metadata
from gpu_worker.security import WorkerSecurity
from router.backends.base import BackendError
from router.backends.worker import WorkerBackend
from router.config.loader import load_config
from router.config.security import WorkersConfig
from router.server import RouterServer
from tests.security.helpers import TOKEN, config, gated_worker, register_once, running_router
from tests.support.echo_worker import EchoWorker
from tests.support.fake_openai import FakeOpenAI
from tests.support.polling import wait_until


@pytest.fixture
async def openai(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[FakeOpenAI]:
    async with FakeOpenAI() as server:
        monkeypatch.setenv("OPENAI_API_KEY", server.api_key)
        monkeypatch.setenv("OPENAI_BASE_URL", server.base_url)
        monkeypatch.setenv("MODELYARD_WORKER_TOKEN", TOKEN)
        yield server


async def test_register_as_openai_without_the_token_is_refused_and_receives_no_prompt(
    openai: FakeOpenAI,
) -> None:
    """The attack from the issue: a script with no credential registers as "openai" claiming gpt-4o-mini."""
    cfg = load_config(env=os.environ)  # the token from MODELYARD_WORKER_TOKEN, OpenAI from its key
    cfg.listen, cfg.usage_db = "127.0.0.1:0", "off"
    async with running_router(cfg) as router:
        attacker = EchoWorker("openai", models=("gpt-4o-mini",))
        await attacker.start()
        try:
            code = await register_once(router.address, attacker.hello())
            assert code == grpc.StatusCode.UNAUTHENTICATED
            async with AsyncClient(router.address, timeout=10) as client:
                result = await client.chat_text("SECRET prompt 1", model="gpt-4o-mini")
            assert result.usage is not None
            assert result.usage.backend == "openai"
            assert attacker.served == 0
            assert any("SECRET prompt 1" in str(r.json) for r in openai.requests)
            assert router.registry.get("openai") is not None
            assert router.registry.get("openai").kind == "openai"  # type: ignore[union-attr]
        finally:
            await attacker.stop()


async def test_a_wrong_token_is_refused_too() -> None:
    async with running_router(config(workers=WorkersConfig(token=TOKEN))) as router:
        worker = EchoWorker("w1", token="not-the-token-but-long-enough")
        assert await register_once(router.address, worker.hello(), token=worker.token) == (
            grpc.StatusCode.UNAUTHENTICATED
        )
        assert len(router.registry) == 0


async def test_a_worker_with_the_token_joins_and_is_called_with_it() -> None:
    """The real worker app: registers with the token, and its Worker service accepts the router's calls."""
    async with (
        running_router(config(workers=WorkersConfig(token=TOKEN))) as router,
        gated_worker(router.address, WorkerSecurity(token=TOKEN)) as (_, engine),
    ):
        await wait_until(lambda: router.registry.get("gpu-1") is not None, message="worker did not join")
        async with AsyncClient(router.address, timeout=10) as client:
            result = await client.chat_text("hello", model="gated")
        assert result.text == "held"
        assert result.usage is not None
        assert result.usage.backend == "gpu-1"
        assert engine.started == 1


async def test_the_worker_service_refuses_callers_without_the_token() -> None:
    async with (
        running_router(config(workers=WorkersConfig(token=TOKEN))) as router,
        gated_worker(router.address, WorkerSecurity(token=TOKEN)) as (app, engine),
    ):
        request = pb.ChatRequest(
            model="gated",
            messages=[pb.Message(role=pb.ROLE_USER, content=[pb.ContentPart(text="SECRET")])],
        )
        async with grpc.aio.insecure_channel(app.address) as channel:
            stub = worker_pb2_grpc.WorkerServiceStub(channel)
            with pytest.raises(grpc.aio.AioRpcError) as refused:
                await stub.Chat(request).read()
            assert refused.value.code() == grpc.StatusCode.UNAUTHENTICATED
            answered = [r async for r in stub.Chat(request, metadata=token_metadata(TOKEN))]
        assert answered[0].delta.text == "held"
        assert engine.started == 1  # only the call with the token reached the engine


async def test_a_router_without_the_token_cannot_use_the_worker() -> None:
    """A router that has no token (an impostor, or a misconfiguration) gets nothing from a worker that has one."""
    async with (
        running_router(config()) as router,
        gated_worker(router.address, WorkerSecurity(token=TOKEN)) as (_, engine),
    ):
        await wait_until(lambda: router.registry.get("gpu-1") is not None)
        worker = router.registry.get("gpu-1")
        assert isinstance(worker, WorkerBackend)
        request = pb.ChatRequest(
            model="gated", messages=[pb.Message(role=pb.ROLE_USER, content=[pb.ContentPart(text="x")])]
        )
        with pytest.raises(BackendError, match="missing or wrong worker token") as refused:
            async for _ in worker.chat(request, timeout=5):
                pass
        assert refused.value.status == grpc.StatusCode.UNAUTHENTICATED
        assert engine.started == 0


def test_router_server_reads_no_token_from_a_short_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MODELYARD_WORKER_TOKEN", "short")
    with pytest.raises(ValueError, match="at least 16"):
        load_config(env=os.environ)


def test_a_token_file_overrides_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "token"
    path.write_text(TOKEN + "\n")
    monkeypatch.setenv("MODELYARD_WORKER_TOKEN", "from-the-environment-0123456789")
    assert load_config(env=os.environ).workers.token == "from-the-environment-0123456789"
    file = tmp_path / "router.yaml"
    file.write_text(yaml.safe_dump({"workers": {"token_file": str(path)}}))
    assert load_config(file, env=os.environ).workers.token == TOKEN
    assert TOKEN not in repr(load_config(file, env=os.environ))
    RouterServer(load_config(file, env=os.environ))  # builds: the registry now needs the token
