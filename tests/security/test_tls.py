"""TLS on every leg: client to router (and mutual TLS), worker to router and router to worker, certificate
files re-read when they change, and the registry on a port of its own."""

from __future__ import annotations

import asyncio
import logging
import shutil
import ssl
from pathlib import Path

import aiohttp
import grpc
import pytest
from modelyard.v1 import inference_pb2 as pb
from modelyard.v1 import router_pb2, router_pb2_grpc
from modelyard.worker.v1 import worker_pb2_grpc
from modelyard_client import AsyncClient, Tls, Unavailable
from modelyard_client.cli import main as cli

from gpu_worker.security import WorkerSecurity
from router.config.security import WorkersConfig
from tests.security.helpers import config, gated_worker, register_once, running_router
from tests.support.certs import CertificateAuthority, Issued
from tests.support.echo_worker import EchoWorker
from tests.support.polling import wait_until


@pytest.fixture
def ca(tmp_path: Path) -> CertificateAuthority:
    return CertificateAuthority.create(tmp_path / "ca")


@pytest.fixture
def router_cert(ca: CertificateAuthority, tmp_path: Path) -> Issued:
    return ca.issue(tmp_path, "router")


async def run_cli(*argv: str) -> int:
    return await asyncio.to_thread(cli, list(argv))


async def test_status_over_tls_with_tls_ca_and_plaintext_fails(
    ca: CertificateAuthority,
    router_cert: Issued,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    cfg = config(tls_cert=str(router_cert.cert), tls_key=str(router_cert.key))
    async with running_router(cfg) as router:
        assert await run_cli("status", "--router", router.address, "--tls-ca", str(ca.pem)) == 0
        assert "sec" in capsys.readouterr().out  # the router id
        assert await run_cli("status", "--router", router.address, "--timeout", "5") == 1
        assert "UNAVAILABLE" in capsys.readouterr().err
        monkeypatch.setenv("MODELYARD_TLS_CA", str(ca.pem))  # the environment works as the flag does
        assert await run_cli("status", "--router", router.address) == 0


async def test_a_certificate_from_another_ca_is_not_trusted(router_cert: Issued, tmp_path: Path) -> None:
    other = CertificateAuthority.create(tmp_path / "other", "other-ca")
    cfg = config(tls_cert=str(router_cert.cert), tls_key=str(router_cert.key))
    async with (
        running_router(cfg) as router,
        AsyncClient(router.address, tls=Tls(ca=str(other.pem)), timeout=5) as client,
    ):
        with pytest.raises(Unavailable):
            await client.status()


async def test_mutual_tls_for_clients(ca: CertificateAuthority, router_cert: Issued, tmp_path: Path) -> None:
    client_cert = ca.issue(tmp_path, "client")
    cfg = config(tls_cert=str(router_cert.cert), tls_key=str(router_cert.key), tls_client_ca=str(ca.pem))
    async with running_router(cfg) as router:
        tls = Tls(ca=str(ca.pem), cert=str(client_cert.cert), key=str(client_cert.key))
        async with AsyncClient(router.address, tls=tls, timeout=5) as client:
            assert (await client.status()).router_id == "sec"
        async with AsyncClient(router.address, tls=Tls(ca=str(ca.pem)), timeout=5) as anonymous:
            with pytest.raises(Unavailable):
                await anonymous.status()


async def test_rotated_certificate_files_are_served_without_a_restart(
    ca: CertificateAuthority, router_cert: Issued, tmp_path: Path
) -> None:
    cfg = config(tls_cert=str(router_cert.cert), tls_key=str(router_cert.key))
    async with running_router(cfg) as router:
        async with AsyncClient(router.address, tls=Tls(ca=str(ca.pem)), timeout=5) as client:
            await client.status()
        renewed_ca = CertificateAuthority.create(tmp_path / "renewed", "renewed-ca")
        renewed = renewed_ca.issue(tmp_path / "renewed", "router")
        shutil.copy(renewed.key, router_cert.key)  # as cert-manager does: the files change in place
        shutil.copy(renewed.cert, router_cert.cert)
        async with AsyncClient(router.address, tls=Tls(ca=str(renewed_ca.pem)), timeout=5) as client:
            assert (await client.status()).router_id == "sec"
        async with AsyncClient(router.address, tls=Tls(ca=str(ca.pem)), timeout=5) as stale:
            with pytest.raises(Unavailable):
                await stale.status()


async def test_a_worker_joins_over_mutual_tls_and_is_called_over_it(
    ca: CertificateAuthority, router_cert: Issued, tmp_path: Path
) -> None:
    worker_cert = ca.issue(tmp_path, "worker")
    cfg = config(
        tls_cert=str(router_cert.cert),
        tls_key=str(router_cert.key),
        registry_listen="127.0.0.1:0",
        workers=WorkersConfig(tls_ca=str(ca.pem)),
    )
    security = WorkerSecurity(
        tls_cert=str(worker_cert.cert), tls_key=str(worker_cert.key), tls_ca=str(ca.pem)
    )
    async with (
        running_router(cfg) as router,
        gated_worker(router.registry_address, security) as (app, engine),
    ):
        await wait_until(lambda: router.registry.get("gpu-1") is not None, message="no mTLS join")
        async with AsyncClient(router.address, tls=Tls(ca=str(ca.pem)), timeout=10) as client:
            result = await client.chat_text("hello", model="gated")
        assert result.text == "held"
        assert engine.started == 1
        # Without a certificate nobody gets through: not to the registry, not to the worker.
        hello = EchoWorker("intruder").hello()
        hello.address = "127.0.0.1:1"
        anonymous = grpc.ssl_channel_credentials(ca.pem.read_bytes())
        assert await register_once(router.registry_address, hello, channel_credentials=anonymous) == (
            grpc.StatusCode.UNAVAILABLE
        )
        assert router.registry.get("intruder") is None
        async with grpc.aio.secure_channel(app.address, anonymous) as channel:
            with pytest.raises(grpc.aio.AioRpcError) as refused:
                await worker_pb2_grpc.WorkerServiceStub(channel).Chat(_chat()).read()
            assert refused.value.code() == grpc.StatusCode.UNAVAILABLE
        assert engine.started == 1


async def test_a_worker_checks_the_routers_name_not_its_address(
    ca: CertificateAuthority, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Workers dial the pod IPs behind a headless Service; the router's certificate names the Service."""
    named = ca.issue(tmp_path, "named-router", dns_names=("modelyard-router.test",), ips=())
    worker_cert = ca.issue(tmp_path, "worker")
    cfg = config(tls_cert=str(named.cert), tls_key=str(named.key), workers=WorkersConfig(tls_ca=str(ca.pem)))
    files = {"tls_cert": str(worker_cert.cert), "tls_key": str(worker_cert.key), "tls_ca": str(ca.pem)}
    async with running_router(cfg) as router:
        caplog.set_level(logging.INFO, logger="gpu_worker.registration")
        async with gated_worker(router.address, WorkerSecurity(**files), worker_id="by-ip"):
            await wait_until(lambda: "cannot register with router" in caplog.text, message="no refusal")
            assert router.registry.get("by-ip") is None
        named_security = WorkerSecurity(**files, tls_server_name="modelyard-router.test")
        async with gated_worker(router.address, named_security, worker_id="by-name"):
            await wait_until(lambda: router.registry.get("by-name") is not None, message="no join by name")


async def test_the_http_door_serves_https_and_rotates_too(
    ca: CertificateAuthority, router_cert: Issued, tmp_path: Path
) -> None:
    cfg = config(tls_cert=str(router_cert.cert), tls_key=str(router_cert.key), http_listen="127.0.0.1:0")
    async with running_router(cfg) as router, aiohttp.ClientSession() as session:
        assert router.http is not None
        assert router.http.base_url.startswith("https://")
        health = f"https://{router.http.address}/health"
        async with session.get(health, ssl=ssl.create_default_context(cafile=str(ca.pem))) as answer:
            assert answer.status == 200
        with pytest.raises(aiohttp.ClientError):
            await session.get(f"http://{router.http.address}/health")
        renewed_ca = CertificateAuthority.create(tmp_path / "renewed", "renewed-ca")
        renewed = renewed_ca.issue(tmp_path / "renewed", "router")
        shutil.copy(renewed.key, router_cert.key)
        shutil.copy(renewed.cert, router_cert.cert)
        trusting_renewed = ssl.create_default_context(cafile=str(renewed_ca.pem))

        async def serves_renewed() -> bool:
            try:
                async with (
                    aiohttp.ClientSession() as fresh,
                    fresh.get(health, ssl=trusting_renewed) as answer,
                ):
                    return answer.status == 200
            except aiohttp.ClientError:
                return False

        await wait_until(serves_renewed, message="the HTTP door kept the old certificate")


async def test_the_registry_on_its_own_port_is_not_on_the_client_port() -> None:
    async with running_router(config(registry_listen="127.0.0.1:0")) as router:
        assert router.registry_address != router.address
        hello = EchoWorker("w1").hello()
        hello.address = "127.0.0.1:1"
        assert await register_once(router.address, hello) == grpc.StatusCode.UNIMPLEMENTED
        assert await register_once(router.registry_address, hello) == grpc.StatusCode.OK
        async with grpc.aio.insecure_channel(router.registry_address) as channel:
            with pytest.raises(grpc.aio.AioRpcError) as refused:
                await router_pb2_grpc.RouterServiceStub(channel).GetStatus(router_pb2.GetStatusRequest())
            assert refused.value.code() == grpc.StatusCode.UNIMPLEMENTED


def _chat() -> pb.ChatRequest:
    return pb.ChatRequest(
        model="gated", messages=[pb.Message(role=pb.ROLE_USER, content=[pb.ContentPart(text="SECRET")])]
    )
