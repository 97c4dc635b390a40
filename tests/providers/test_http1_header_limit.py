"""An upstream that never ends its answer's headers (ProviderConfig.max_response_header_bytes): the direct
client gives up once they pass the cap, the attempt fails as a broken connection does, and the router answers
from the next candidate; never a hang, never INTERNAL, never the router's memory."""

from __future__ import annotations

import asyncio
import json

import grpc
import pytest
from modelyard.v1 import inference_pb2 as pb
from modelyard.v1 import router_pb2_grpc

from router.backends.base import BackendError
from router.backends.http1 import Http1Client, Http1Error
from router.backends.openai_backend import OpenAIBackend
from router.config.settings import ProviderConfig, RouterConfig
from router.server import RouterServer
from tests.providers.conftest import OPENAI_KEY, chat_request, collect
from tests.support.fake_http import content_length
from tests.support.fake_openai import FakeOpenAI

_SENT_AT_MOST = (
    8 * 1024 * 1024
)  # then the server stops sending (and holds the connection) rather than loop forever
_MODELS = json.dumps({"object": "list", "data": [{"id": "m", "object": "model", "owned_by": "me"}]}).encode()


class _EndlessHeaders:
    """Answers GET .../models properly (so health checks pass) and every POST with a status line and headers
    that do not end: many header lines, or with `one_line` a single header value without its line end."""

    def __init__(self, one_line: bool = False) -> None:
        self.posts = 0
        self._one_line = one_line
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()

    async def start(self) -> str:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        return f"http://127.0.0.1:{self._server.sockets[0].getsockname()[1]}/v1"

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._writers.add(writer)
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            if head.startswith(b"GET"):
                writer.write(
                    b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nConnection: close\r\n"
                    b"Content-Length: %d\r\n\r\n%s" % (len(_MODELS), _MODELS)
                )
                await writer.drain()
                return
            self.posts += 1
            length = content_length(head)
            await reader.readexactly(length)
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n")
            writer.write(b"X-Endless: " if self._one_line else b"")
            sent = 0
            while sent < _SENT_AT_MOST:
                piece = b"a" * 1000 if self._one_line else b"X-Filler: " + b"a" * 990 + b"\r\n"
                writer.write(piece)
                sent += len(piece)
                await writer.drain()
            await reader.read()  # hold the connection open until the client hangs up
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            self._writers.discard(writer)
            writer.close()

    async def stop(self) -> None:
        """Stop listening and hang up on every connection still open: nothing of it outlives the test."""
        if self._server is not None:
            self._server.close()
            for writer in list(self._writers):
                writer.close()
            await self._server.wait_closed()


@pytest.mark.parametrize("one_line", [False, True], ids=["many-lines", "one-endless-line"])
async def test_the_client_refuses_headers_past_its_cap(one_line: bool) -> None:
    server = _EndlessHeaders(one_line)
    url = await server.start()
    client = Http1Client(url + "/chat/completions", None, 4, max_header_bytes=16 * 1024)
    try:
        with pytest.raises(Http1Error, match="headers exceed 16384 bytes"):
            await client.post(client.request_head({}), b"{}", 30.0, 30.0)
    finally:
        await client.close()
        await server.stop()


async def test_a_long_body_arriving_with_the_headers_is_not_counted_as_headers() -> None:
    """The cap is on the head alone: an answer whose first read holds short headers and a body far longer
    than the cap is whole."""
    body = b"x" * (256 * 1024)

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        length = content_length(head)
        await reader.readexactly(length)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body))
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    url = f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}/v1/chat/completions"
    client = Http1Client(url, None, 4, max_header_bytes=1024)
    try:
        response, connection = await client.post(client.request_head({}), b"{}", 30.0, 30.0)
        received = b""
        while piece := await response.read(30.0):
            received += piece
        client.release(connection)
        assert received == body
    finally:
        await client.close()
        server.close()
        await server.wait_closed()


async def test_the_backend_fails_the_attempt_as_a_broken_connection() -> None:
    server = _EndlessHeaders()
    backend = OpenAIBackend(
        ProviderConfig(
            name="endless",
            kind="openai_compatible",
            base_url=await server.start(),
            api_key=OPENAI_KEY,
            chat_models=["m"],
            max_response_header_bytes=16 * 1024,
        )
    )
    try:
        for whole in (False, True):
            request = chat_request("m")
            request.whole_answer = whole
            with pytest.raises(BackendError) as raised:
                await collect(backend.chat(request, timeout=30.0))
            assert raised.value.retryable
            assert raised.value.status == grpc.StatusCode.UNAVAILABLE
            assert "headers exceed 16384 bytes" in str(raised.value)
    finally:
        await backend.close()
        await server.stop()


async def test_the_router_answers_from_the_next_provider() -> None:
    server = _EndlessHeaders()
    endless_url = await server.start()
    async with FakeOpenAI(models=("m",), reply="from the good one") as good:
        providers = [
            ProviderConfig(
                name="endless",
                kind="openai_compatible",
                base_url=endless_url,
                api_key=OPENAI_KEY,
                chat_models=["m"],
                priority=1,
            ),
            ProviderConfig(
                name="good",
                kind="openai_compatible",
                base_url=good.base_url,
                api_key=good.api_key,
                chat_models=["m"],
                priority=2,
            ),
        ]
        router = RouterServer(RouterConfig(listen="127.0.0.1:0", router_id="headers", providers=providers))
        await router.start()
        try:
            async with grpc.aio.insecure_channel(router.address) as channel:
                stub = router_pb2_grpc.RouterServiceStub(channel)
                request = chat_request("m")
                request.routing.strategy = pb.STRATEGY_FALLBACK
                responses = [r async for r in stub.Chat(request, timeout=60.0)]
        finally:
            await router.stop(0)
            await server.stop()
    assert server.posts == 1  # the endless one was tried first
    assert responses[-1].usage.backend == "good"
    assert "".join(r.delta.text for r in responses if r.HasField("delta")) == "from the good one"
