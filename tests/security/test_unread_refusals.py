"""Issue 24 item 3: keyless callers cannot make the router read (and hold) large messages.

A caller without a key is refused on its metadata, before gRPC reads the request; a message larger than the
input caps allow is refused by size (RESOURCE_EXHAUSTED) whoever sends it; and each connection may hold only
grpc_max_concurrent_streams calls.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import grpc
import pytest
from modelyard.v1 import inference_pb2 as pb
from modelyard.v1 import router_pb2_grpc

from router.accounting.auth import hash_key
from router.config.accounting import ApiKey
from router.security.listeners import server_options
from tests.security.helpers import config, running_router

KEYS = [ApiKey("acme", hash_key("k-acme"))]
CHAT = "/modelyard.v1.RouterService/Chat"


def _chat(text_bytes: int) -> pb.ChatRequest:
    part = pb.ContentPart(text="x" * text_bytes)
    return pb.ChatRequest(model="m", messages=[pb.Message(role=pb.ROLE_USER, content=[part])])


async def _chat_code(address: str, request: pb.ChatRequest, key: str = "") -> grpc.StatusCode:
    metadata = (("authorization", f"Bearer {key}"),) if key else None
    async with grpc.aio.insecure_channel(address) as channel:
        call = router_pb2_grpc.RouterServiceStub(channel).Chat(request, metadata=metadata, timeout=60)
        try:
            async for _ in call:
                pass
        except grpc.aio.AioRpcError as e:
            return e.code()
    return grpc.StatusCode.OK


async def test_a_keyless_oversized_chat_is_refused() -> None:
    async with running_router(config(keys=KEYS)) as router:
        codes = await asyncio.gather(*(_chat_code(router.address, _chat(60 << 20)) for _ in range(3)))
        assert set(codes) <= {grpc.StatusCode.UNAUTHENTICATED, grpc.StatusCode.RESOURCE_EXHAUSTED}


async def test_a_keyless_call_is_refused_without_its_request_being_read() -> None:
    """The caller never sends its request message: only a refusal that does not wait for it can answer."""
    never = asyncio.Event()

    async def nothing() -> AsyncIterator[bytes]:
        await never.wait()
        yield b""

    async with (
        running_router(config(keys=KEYS)) as router,
        grpc.aio.insecure_channel(router.address) as channel,
    ):
        chat: Any = channel.stream_stream(CHAT)
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            async for _ in chat(nothing(), timeout=30):
                pass
        assert refused.value.code() == grpc.StatusCode.UNAUTHENTICATED


async def test_a_message_over_the_input_caps_is_refused_by_size() -> None:
    async with running_router(config(keys=KEYS)) as router:
        code = await _chat_code(router.address, _chat(30 << 20), key="k-acme")
        assert code == grpc.StatusCode.RESOURCE_EXHAUSTED


def test_the_receive_limit_follows_the_input_caps_and_streams_are_capped() -> None:
    options = dict(server_options(config()))
    assert options["grpc.max_receive_message_length"] == (4 << 20) + (20 << 20) + (1 << 20)
    assert options["grpc.max_concurrent_streams"] == 256
    assert (
        dict(server_options(config(grpc_max_receive_bytes=1 << 20)))["grpc.max_receive_message_length"]
        == 1 << 20
    )
