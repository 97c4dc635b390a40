"""`python -m core.health_probe`, the TLS overlay's probe: SERVING over TLS and mutual TLS, refusing otherwise."""

from __future__ import annotations

import asyncio
from pathlib import Path

from core import health_probe
from tests.security.helpers import config, running_router
from tests.support.certs import CertificateAuthority


async def probe(*argv: str) -> int:
    return await asyncio.to_thread(health_probe.main, list(argv))


async def test_the_probe_checks_health_over_tls_and_mutual_tls(tmp_path: Path) -> None:
    ca = CertificateAuthority.create(tmp_path / "ca")
    server, client = (
        ca.issue(tmp_path, "router", dns_names=("modelyard-router",)),
        ca.issue(tmp_path, "probe"),
    )
    other = CertificateAuthority.create(tmp_path / "other", "other-ca")
    # startup_wait_s 0: serving at once, without waiting for a worker to register.
    cfg = config(
        tls_cert=str(server.cert), tls_key=str(server.key), tls_client_ca=str(ca.pem), startup_wait_s=0
    )
    async with running_router(cfg) as router:
        tls = ["--tls-ca", str(ca.pem), "--server-name", "modelyard-router"]
        mutual = [*tls, "--tls-cert", str(client.cert), "--tls-key", str(client.key)]
        assert await probe(router.address, *mutual) == 0
        assert await probe(router.address, *tls) == 1  # no client certificate: refused
        assert (
            await probe(router.address, "--tls-ca", str(other.pem), "--server-name", "modelyard-router") == 1
        )
        assert await probe(router.address) == 1  # plaintext to a TLS port, as a native gRPC probe would


async def test_the_probe_says_not_serving_once_the_router_stops(tmp_path: Path) -> None:
    async with running_router(config(startup_wait_s=0)) as router:
        assert await probe(router.address) == 0
        assert await probe(router.address, "--service", "liveness") == 0
        await router.health.enter_graceful_shutdown()
        assert await probe(router.address) == 1
