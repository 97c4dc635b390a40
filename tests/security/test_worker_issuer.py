"""Issue 24 item 1: with clients' and workers' CAs on one listener, only a workers' certificate registers."""

from __future__ import annotations

from pathlib import Path

import grpc
import pytest

from core.tls import TlsConfigError
from router.config.security import WorkersConfig
from router.server import RouterServer
from tests.security.helpers import TOKEN, config, register_once, running_router
from tests.support.certs import CertificateAuthority
from tests.support.echo_worker import EchoWorker


def _credentials(
    ca: CertificateAuthority, tmp_path: Path, name: str, router_ca: Path
) -> grpc.ChannelCredentials:
    issued = ca.issue(tmp_path, name)
    return grpc.ssl_channel_credentials(
        router_ca.read_bytes(),
        private_key=issued.key.read_bytes(),
        certificate_chain=issued.cert.read_bytes(),
    )


async def test_a_client_certificate_cannot_register_a_worker(tmp_path: Path) -> None:
    clients = CertificateAuthority.create(tmp_path / "clients", "clients-ca")
    workers = CertificateAuthority.create(tmp_path / "workers", "workers-ca")
    router_cert = workers.issue(tmp_path, "router")
    cfg = config(
        tls_cert=str(router_cert.cert),
        tls_key=str(router_cert.key),
        tls_client_ca=str(clients.pem),
        workers=WorkersConfig(tls_ca=str(workers.pem)),
    )
    hello = EchoWorker("m1-thief", models=("m1",)).hello()
    hello.address = "127.0.0.1:1"
    async with running_router(cfg) as router:
        as_client = _credentials(clients, tmp_path, "client", workers.pem)
        code = await register_once(router.address, hello, channel_credentials=as_client)
        assert code == grpc.StatusCode.PERMISSION_DENIED
        assert router.registry.get("m1-thief") is None
        as_worker = _credentials(workers, tmp_path, "worker", workers.pem)
        assert await register_once(router.address, hello, channel_credentials=as_worker) == grpc.StatusCode.OK


def test_one_ca_for_clients_and_workers_needs_a_token_or_a_registry_port(tmp_path: Path) -> None:
    ca = CertificateAuthority.create(tmp_path / "ca")
    router_cert = ca.issue(tmp_path, "router")
    shared = {
        "tls_cert": str(router_cert.cert),
        "tls_key": str(router_cert.key),
        "tls_client_ca": str(ca.pem),
    }
    with pytest.raises(TlsConfigError, match=r"workers\.token_file"):
        RouterServer(config(**shared, workers=WorkersConfig(tls_ca=str(ca.pem))))
    RouterServer(config(**shared, registry_listen="127.0.0.1:0", workers=WorkersConfig(tls_ca=str(ca.pem))))
    RouterServer(config(**shared, workers=WorkersConfig(tls_ca=str(ca.pem), token=TOKEN)))
