"""Issue 24 item 8: the HTTPS door stops trusting a client CA removed from tls_client_ca, as gRPC does."""

from __future__ import annotations

import shutil
import ssl
from pathlib import Path

import aiohttp
import pytest

from router.services.http import tls as door_tls
from tests.security.helpers import config, running_router
from tests.support.certs import CertificateAuthority
from tests.support.polling import wait_until


def _client(
    server_ca: CertificateAuthority, issued_by: CertificateAuthority, tmp_path: Path, name: str
) -> ssl.SSLContext:
    issued = issued_by.issue(tmp_path, name)
    context = ssl.create_default_context(cafile=str(server_ca.pem))
    context.load_cert_chain(str(issued.cert), str(issued.key))
    return context


async def _answers(url: str, context: ssl.SSLContext) -> bool:
    try:
        async with aiohttp.ClientSession() as session, session.get(url, ssl=context) as answer:
            return answer.status == 200
    except aiohttp.ClientError:
        return False


async def test_a_removed_client_ca_is_no_longer_trusted(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(door_tls, "RELOAD_CHECK_S", 0.05)
    server_ca = CertificateAuthority.create(tmp_path / "server", "server-ca")
    old_ca = CertificateAuthority.create(tmp_path / "old", "old-clients-ca")
    new_ca = CertificateAuthority.create(tmp_path / "new", "new-clients-ca")
    router_cert = server_ca.issue(tmp_path, "router")
    client_ca_file = tmp_path / "clients-ca.pem"
    shutil.copy(old_ca.pem, client_ca_file)
    cfg = config(
        tls_cert=str(router_cert.cert),
        tls_key=str(router_cert.key),
        tls_client_ca=str(client_ca_file),
        http_listen="127.0.0.1:0",
    )
    old_client = _client(server_ca, old_ca, tmp_path, "old-client")
    new_client = _client(server_ca, new_ca, tmp_path, "new-client")
    async with running_router(cfg) as router:
        assert router.http is not None
        health = router.http.base_url.removesuffix("/v1") + "/health"
        assert await _answers(health, old_client)
        assert not await _answers(health, new_client)
        shutil.copy(new_ca.pem, client_ca_file)  # the old CA is replaced, not joined
        await wait_until(lambda: _answers(health, new_client), message="the new client CA was not loaded")
        assert not await _answers(health, old_client)
