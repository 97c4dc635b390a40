"""No open admin: a router (or worker) reachable from other machines needs credentials or --allow-open, and
tenants that are not admins see a redacted status."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

import grpc
import pytest
from modelyard.v1 import router_pb2, router_pb2_grpc
from modelyard_client import AdminClient, AsyncClient, PermissionDenied

from gpu_worker.main import main as worker_main
from router.accounting.auth import hash_key
from router.config.accounting import ApiKey
from router.config.security import WorkersConfig
from router.security.exposure import ExposureError
from router.server import RouterServer
from tests.security.helpers import TOKEN, config, running_router
from tests.support.echo_worker import EchoWorker

REPO = Path(__file__).resolve().parents[2]


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MODELYARD_", "OPENAI_", "ANTHROPIC_"))}
    env["PYTHONPATH"] = os.pathsep.join(str(REPO / p) for p in ("", "proto", "clients"))
    return env


async def test_a_router_with_no_keys_refuses_a_public_address_naming_allow_open() -> None:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "router",
        "--listen",
        "0.0.0.0:0",
        "--usage-db",
        "off",
        env=_env(),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode != 0
    assert "--allow-open" in err.decode()
    assert "no API keys" in err.decode()
    assert "ready" not in out.decode()


def test_keys_alone_do_not_open_the_registry_to_anyone() -> None:
    keys = [ApiKey("acme", hash_key("k-acme"))]
    with pytest.raises(ExposureError, match="worker credentials"):
        RouterServer(config(listen="0.0.0.0:0", keys=keys))
    RouterServer(config(listen="0.0.0.0:0", keys=keys, workers=WorkersConfig(token=TOKEN)))  # both: fine
    # The registry on loopback only (a sidecar, a port-forward) needs no worker credentials.
    RouterServer(config(listen="0.0.0.0:0", keys=keys, registry_listen="127.0.0.1:0"))


async def test_allow_open_serves_but_open_callers_are_not_admins_off_loopback() -> None:
    async with running_router(config(listen="0.0.0.0:0", allow_open=True)) as router:
        echo = EchoWorker("w1")
        await echo.start()
        try:
            await echo.register(router.address)
            async with AsyncClient(router.address, timeout=10) as client:
                status = await client.status()
            worker = next(b for b in status.backends if b.id == "w1")
            assert worker.address == ""  # redacted: the open caller is no admin here
            assert [m.id for m in worker.models] == ["echo"]
            with AdminClient(router.address, timeout=10) as admin, pytest.raises(PermissionDenied):
                await asyncio.to_thread(admin.drain_worker, "w1")
            assert not router.registry.get("w1").draining  # type: ignore[union-attr]
        finally:
            await echo.stop()


async def test_on_loopback_the_open_caller_stays_an_admin_for_modelyard_up() -> None:
    async with running_router(config()) as router:
        echo = EchoWorker("w1")
        await echo.start()
        try:
            await echo.register(router.address)
            async with AsyncClient(router.address, timeout=10) as client:
                status = await client.status()
            assert next(b for b in status.backends if b.id == "w1").address == echo.address
        finally:
            await echo.stop()


async def test_tenants_that_are_not_admins_get_a_redacted_status() -> None:
    keys = [ApiKey("acme", hash_key("k-acme")), ApiKey("ops", hash_key("k-ops"), admin=True)]
    async with running_router(config(keys=keys)) as router:
        echo = EchoWorker("w1")
        await echo.start()
        try:
            await echo.register(router.address)
            router.state.stats["w1"].record_failure("upstream said: secret detail at 10.0.0.5")
            async with AsyncClient(router.address, api_key="k-acme", timeout=10) as tenant:
                seen = next(b for b in (await tenant.status()).backends if b.id == "w1")
            async with AsyncClient(router.address, api_key="k-ops", timeout=10) as admin:
                full = next(b for b in (await admin.status()).backends if b.id == "w1")
        finally:
            await echo.stop()
    assert seen.address == ""
    assert seen.healthy
    assert [m.id for m in seen.models] == ["echo"]
    assert full.address == echo.address


async def test_the_raw_status_message_carries_no_error_for_tenants() -> None:
    keys = [ApiKey("acme", hash_key("k-acme"))]
    async with running_router(config(keys=keys)) as router:
        echo = EchoWorker("w1")
        await echo.start()
        try:
            await echo.register(router.address)
            router.state.stats["w1"].record_failure("secret detail")
            async with grpc.aio.insecure_channel(router.address) as channel:
                response = await router_pb2_grpc.RouterServiceStub(channel).GetStatus(
                    router_pb2.GetStatusRequest(), metadata=(("authorization", "Bearer k-acme"),)
                )
        finally:
            await echo.stop()
    worker = next(b for b in response.backends if b.id == "w1")
    assert (worker.address, worker.last_error, worker.HasField("load")) == ("", "", False)


def test_a_worker_with_no_credentials_refuses_a_public_listen(capsys: pytest.CaptureFixture[str]) -> None:
    code = worker_main(["--router", "127.0.0.1:1", "--listen", "0.0.0.0:0", "--no-chat", "--no-whisper"])
    assert code == 2
    assert "--allow-open" in capsys.readouterr().err
