"""Bytes that are not a valid request are INVALID_ARGUMENT naming the message type (grpcio says UNKNOWN)."""

from __future__ import annotations

from typing import Any

import grpc
import pytest

from router.server import RouterServer

CORRUPT = b"\x0a\xff\xff\xff"  # field 1, a length that runs past the end


@pytest.mark.parametrize(
    ("method", "streaming", "type_name"),
    [
        ("/modelyard.v1.RouterService/Chat", (False, True), "modelyard.v1.ChatRequest"),
        ("/modelyard.v1.RouterService/Embed", (False, False), "modelyard.v1.EmbedRequest"),
        ("/modelyard.v1.RouterService/Transcribe", (True, True), "modelyard.v1.TranscribeRequest"),
        # Read with context.read(), not by iterating the request stream.
        (
            "/modelyard.worker.v1.WorkerRegistryService/Register",
            (True, True),
            "modelyard.worker.v1.RegisterRequest",
        ),
    ],
)
async def test_corrupt_requests_are_invalid_argument(
    router: RouterServer, method: str, streaming: tuple[bool, bool], type_name: str
) -> None:
    async with grpc.aio.insecure_channel(router.address) as channel:
        kinds = {
            (False, False): channel.unary_unary,
            (False, True): channel.unary_stream,
            (True, True): channel.stream_stream,
        }
        stub: Any = kinds[streaming](method)
        argument = iter([CORRUPT]) if streaming[0] else CORRUPT
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            call = stub(argument)
            if streaming[1]:
                async for _ in call:
                    pass
            else:
                await call
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert (refused.value.details() or "").startswith(f"request: not a valid {type_name} message")
