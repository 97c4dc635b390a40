"""Issue 24 item 12: tenants do not learn backend addresses from failure messages; admins get the detail."""

from __future__ import annotations

import socket

import grpc
import pytest
from modelyard.v1 import inference_pb2 as pb
from modelyard.v1 import router_pb2_grpc

from router.accounting.auth import hash_key
from router.config.accounting import ApiKey
from router.config.settings import ProviderConfig
from tests.security.helpers import config, running_router

KEYS = [ApiKey("acme", hash_key("k-acme")), ApiKey("ops", hash_key("k-ops"), admin=True)]


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def _failure(address: str, key: str) -> tuple[grpc.StatusCode, str]:
    request = pb.ChatRequest(
        model="m", messages=[pb.Message(role=pb.ROLE_USER, content=[pb.ContentPart(text="hi")])]
    )
    async with grpc.aio.insecure_channel(address) as channel:
        with pytest.raises(grpc.aio.AioRpcError) as failed:
            call = router_pb2_grpc.RouterServiceStub(channel).Chat(
                request, metadata=(("authorization", f"Bearer {key}"),), timeout=30
            )
            async for _ in call:
                pass
    return failed.value.code(), failed.value.details() or ""


async def test_tenants_get_generic_text_admins_the_detail() -> None:
    port = _closed_port()
    provider = ProviderConfig(
        name="local",
        kind="openai_compatible",
        api_key="sk-x",
        base_url=f"http://127.0.0.1:{port}/v1",
        chat_models=["m"],
    )
    cfg = config(keys=KEYS, providers=[provider], circuit_failure_threshold=1000)
    async with running_router(cfg) as router:  # one router each: the first failure marks the backend down
        admin_code, admin_text = await _failure(router.address, "k-ops")
    async with running_router(cfg) as router:
        tenant_code, tenant_text = await _failure(router.address, "k-acme")
    assert tenant_code == admin_code
    assert str(port) in admin_text
    assert str(port) not in tenant_text
    assert "127.0.0.1" not in tenant_text
    assert "router's log has the details" in tenant_text
