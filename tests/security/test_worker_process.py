"""`modelyard worker` as its own process joins a router that wants credentials: with the worker token, and
with mutual TLS; the router then reaches its real Whisper engine over the same credentials."""

from __future__ import annotations

from pathlib import Path

import pytest
from modelyard_client import AsyncClient, Segment, Tls

from router.config.security import WorkersConfig
from tests.security.helpers import TOKEN, config, running_router
from tests.support.certs import CertificateAuthority
from tests.support.polling import wait_until
from tests.worker.process import running_worker
from tests.worker.speech import make_speech_wav

pytestmark = pytest.mark.engines


async def _transcript(router_address: str, wav: Path, tls: Tls | None = None) -> str:
    async with AsyncClient(router_address, timeout=120, tls=tls) as client:
        events = [event async for event in client.transcribe(wav)]
    return " ".join(e.text for e in events if isinstance(e, Segment)).lower()


async def test_modelyard_worker_with_the_token_joins(tmp_path: Path) -> None:
    wav = make_speech_wav(tmp_path)
    async with (
        running_router(config(workers=WorkersConfig(token=TOKEN))) as router,
        running_worker(
            router.address, "--no-chat", "--worker-id", "tok-1", env={"MODELYARD_WORKER_TOKEN": TOKEN}
        ),
    ):
        await wait_until(lambda: router.registry.get("tok-1") is not None, timeout=30, message="no join")
        assert "fox" in await _transcript(router.address, wav)


async def test_modelyard_worker_joins_over_mutual_tls(tmp_path: Path) -> None:
    wav = make_speech_wav(tmp_path)
    ca = CertificateAuthority.create(tmp_path / "ca")
    router_cert, worker_cert = ca.issue(tmp_path, "router"), ca.issue(tmp_path, "worker")
    cfg = config(
        tls_cert=str(router_cert.cert),
        tls_key=str(router_cert.key),
        registry_listen="127.0.0.1:0",
        workers=WorkersConfig(tls_ca=str(ca.pem)),
    )
    async with running_router(cfg) as router:
        flags = [
            "--tls-cert",
            str(worker_cert.cert),
            "--tls-key",
            str(worker_cert.key),
            "--tls-ca",
            str(ca.pem),
        ]
        async with running_worker(router.registry_address, "--no-chat", "--worker-id", "mtls-1", *flags):
            await wait_until(lambda: router.registry.get("mtls-1") is not None, timeout=30, message="no join")
            assert "fox" in await _transcript(router.address, wav, tls=Tls(ca=str(ca.pem)))
