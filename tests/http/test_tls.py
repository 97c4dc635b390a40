"""The HTTP door serves the router's certificate (tls_cert/tls_key), asks for client certificates with
tls_client_ca, and picks up rotated files, as the gRPC listener does."""

from __future__ import annotations

import shutil
import ssl
from pathlib import Path

import aiohttp
import pytest
from openai import AsyncOpenAI, DefaultAsyncHttpxClient

from router.server import RouterServer
from router.services.http import tls as door_tls
from tests.http.conftest import KEY, door_config
from tests.support.certs import CertificateAuthority
from tests.support.polling import wait_until


def _client_context(ca: CertificateAuthority) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=str(ca.pem))


async def test_https_with_the_routers_certificate(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    ca = CertificateAuthority.create(tmp_path / "ca")
    issued = ca.issue(tmp_path, "router")
    monkeypatch.setattr(door_tls, "RELOAD_CHECK_S", 0.05)
    server = RouterServer(door_config(tls_cert=str(issued.cert), tls_key=str(issued.key)))
    await server.start()
    try:
        assert server.http is not None
        url = server.http.base_url
        assert url.startswith("https://127.0.0.1:")
        http_client = DefaultAsyncHttpxClient(verify=_client_context(ca))
        async with AsyncOpenAI(api_key=KEY, base_url=url, max_retries=0, http_client=http_client) as client:
            # Answered over HTTPS (an empty list: nothing is registered, so not even `auto` is offered).
            assert [m.id async for m in client.models.list()] == []
        async with aiohttp.ClientSession() as session:
            with pytest.raises(aiohttp.ClientError):  # plaintext to a TLS port
                async with session.get(url.replace("https", "http") + "/models"):
                    pass
            # Rotation: a new certificate from another CA, written in place, is served to new connections.
            other = CertificateAuthority.create(tmp_path / "other")
            renewed = other.issue(tmp_path, "renewed")
            shutil.copy(renewed.cert, issued.cert)
            shutil.copy(renewed.key, issued.key)

            async def trusted_by_new_ca() -> bool:
                try:
                    async with (
                        aiohttp.ClientSession() as fresh,
                        fresh.get(url.removesuffix("/v1") + "/health", ssl=_client_context(other)) as r,
                    ):
                        return r.status == 200
                except aiohttp.ClientError:
                    return False

            await wait_until(trusted_by_new_ca)
    finally:
        await server.stop(0)


async def test_mutual_tls_wants_a_client_certificate(tmp_path: Path) -> None:
    ca = CertificateAuthority.create(tmp_path / "ca")
    issued = ca.issue(tmp_path, "router")
    client = ca.issue(tmp_path, "client")
    cfg = door_config(tls_cert=str(issued.cert), tls_key=str(issued.key), tls_client_ca=str(ca.pem))
    server = RouterServer(cfg)
    await server.start()
    try:
        assert server.http is not None
        health = server.http.base_url.removesuffix("/v1") + "/health"
        context = _client_context(ca)
        async with aiohttp.ClientSession() as session:
            with pytest.raises(aiohttp.ClientError):
                async with session.get(health, ssl=context) as r:
                    await r.read()
            context.load_cert_chain(str(client.cert), str(client.key))
            async with session.get(health, ssl=context) as r:
                assert r.status == 200
    finally:
        await server.stop(0)
