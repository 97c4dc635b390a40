"""router.backends.http1, the upstream client of the OpenAI-style chat: kept connections, the body framings a
server may choose, a kept connection the server closed, and the router's own event loop (uvloop, against the
bench's OpenAI-format server: the test doubles' servers assume asyncio's loop)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable

import pytest
import uvloop
from aiohttp import web
from modelyard.v1 import inference_pb2 as pb

from bench.openai_server import make_app
from bench.tokens import TOKEN
from router.backends.base import BackendError
from router.backends.http1 import Http1Client
from router.backends.openai_backend import OpenAIBackend
from router.config.settings import ProviderConfig
from tests.providers.conftest import OPENAI_KEY, chat_request, collect
from tests.support.fake_http import content_length
from tests.support.own_loop import run_on
from tests.support.polling import wait_until

_ANSWER = json.dumps(
    {
        "model": "m",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "hi"}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 3, "completion_tokens": 1},
    }
).encode()


class _RawServer:
    """Answers each request on a connection with `answer(n)` (n counts requests on that connection)."""

    def __init__(self, answer: Callable[[int], bytes], close_after: int | None = None) -> None:
        self.connections = 0
        self._answer = answer
        self._close_after = close_after  # requests on a connection before the server closes it
        self._server: asyncio.Server | None = None

    async def start(self) -> str:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        port = self._server.sockets[0].getsockname()[1]
        return f"http://127.0.0.1:{port}/v1"

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        served = 0
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = content_length(head)
                await reader.readexactly(length)
                served += 1
                writer.write(self._answer(served))
                await writer.drain()
                if self._close_after is not None and served >= self._close_after:
                    break
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        writer.close()

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()


def _sized(_: int) -> bytes:
    return b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s" % (
        len(_ANSWER),
        _ANSWER,
    )


def _chunked(_: int) -> bytes:
    half = len(_ANSWER) // 2
    pieces = [_ANSWER[:half], _ANSWER[half:]]
    body = b"".join(b"%x\r\n%s\r\n" % (len(p), p) for p in pieces) + b"0\r\n\r\n"
    return b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n" + body


def _backend(url: str) -> OpenAIBackend:
    return OpenAIBackend(
        ProviderConfig(name="raw", kind="openai", base_url=url, api_key=OPENAI_KEY, chat_models=["m"])
    )


def _idle_closed(backend: OpenAIBackend) -> bool:
    """Whether every connection the backend's chat client keeps idle has seen the server close it."""
    direct = backend._chat._direct
    return direct is not None and all(connection.closed for connection in direct._idle)


def _whole() -> pb.ChatRequest:
    request = chat_request("m")
    request.whole_answer = True
    return request


async def test_answers_come_back_on_one_kept_connection_sized_or_chunked() -> None:
    for answer in (_sized, _chunked):
        server = _RawServer(answer)
        backend = _backend(await server.start())
        try:
            for _ in range(3):
                reply, usage = await collect(backend.chat(_whole(), timeout=5.0))
                assert reply == "hi"
                assert usage is not None
                assert usage.prompt_tokens == 3
            assert server.connections == 1
        finally:
            await backend.close()
            await server.stop()


async def test_a_body_that_ends_with_the_connection_is_whole() -> None:
    def until_close(_: int) -> bytes:
        return b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nConnection: close\r\n\r\n" + _ANSWER

    server = _RawServer(until_close, close_after=1)
    backend = _backend(await server.start())
    try:
        for _ in range(2):
            reply, _ = await collect(backend.chat(_whole(), timeout=5.0))
            assert reply == "hi"
        assert server.connections == 2  # not kept: the server said it closes
    finally:
        await backend.close()
        await server.stop()


async def test_a_kept_connection_the_server_closed_is_replaced_and_the_request_sent_again() -> None:
    server = _RawServer(_sized, close_after=1)  # closes each connection after one answer, without saying so
    backend = _backend(await server.start())
    try:
        for _ in range(3):
            reply, _ = await collect(backend.chat(_whole(), timeout=5.0))
            assert reply == "hi"
            await wait_until(lambda: _idle_closed(backend))  # the close reached the client while it was idle
        assert server.connections == 3
    finally:
        await backend.close()
        await server.stop()


async def test_a_closed_kept_connection_noticed_only_on_sending_is_retried_once() -> None:
    server = _RawServer(_sized, close_after=1)
    url = await server.start()
    client = Http1Client(url + "/chat/completions", None, 4)
    head = client.request_head({"Content-Type": "application/json"})
    try:
        response, connection = await client.post(head, b"{}", 5.0, 5.0)
        assert await response.read(5.0) == _ANSWER
        assert await response.read(5.0) == b""
        connection.closed = False  # as if the server's close had not arrived yet
        client.release(connection)
        response, connection = await client.post(head, b"{}", 5.0, 5.0)
        assert response.status == 200
        client.release(connection)
        assert server.connections == 2
    finally:
        await client.close()
        await server.stop()


class _StallingServer:
    """Sends `first` on each request, then holds the connection open without another byte."""

    def __init__(self, first: bytes) -> None:
        self._first = first
        self._server: asyncio.Server | None = None
        self._held: list[asyncio.StreamWriter] = []

    async def start(self) -> str:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        return f"http://127.0.0.1:{self._server.sockets[0].getsockname()[1]}/v1"

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(self._first)
        self._held.append(writer)

    async def stop(self) -> None:
        for writer in self._held:
            writer.close()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()


async def test_a_read_that_must_wait_is_bounded_and_one_that_need_not_is_answered() -> None:
    half = len(_ANSWER) // 2
    head = b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % len(_ANSWER)
    server = _StallingServer(head + _ANSWER[:half])  # half the body, then nothing more
    client = Http1Client(await server.start() + "/chat/completions", None, 4)
    try:
        response, connection = await client.post(client.request_head({}), b"{}", 5.0, 5.0)
        assert await response.read(0.2) == _ANSWER[:half]  # buffered already: no wait, no timer
        with pytest.raises(TimeoutError):
            await response.read(0.2)  # nothing more comes: the timeout still bounds the wait
        client.release(connection)  # not read whole: closed, not kept
    finally:
        await client.close()
        await server.stop()


async def test_a_whole_answer_whose_headers_never_come_times_out() -> None:
    server = _StallingServer(b"")  # reads the request, never answers
    backend = _backend(await server.start())
    try:
        # Without a timer of its own for the headers, the whole exchange's bound still applies.
        with pytest.raises(BackendError) as failed:
            await collect(backend.chat(_whole(), timeout=0.3))
        assert failed.value.retryable
    finally:
        await backend.close()
        await server.stop()


def test_the_backend_streams_and_answers_whole_on_uvloop() -> None:
    """The router runs on uvloop (core.event_loop), whose transports differ from asyncio's."""

    async def scenario() -> None:
        runner = web.AppRunner(make_app(), access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = runner.addresses[0][1]
        backend = _backend(f"http://127.0.0.1:{port}/v1")
        try:
            for _ in range(2):
                request = chat_request("m", max_tokens=5)
                streamed, streamed_usage = await collect(backend.chat(request, timeout=5.0))
                request.whole_answer = True
                whole, whole_usage = await collect(backend.chat(request, timeout=5.0))
                assert streamed == whole == TOKEN * 5
                assert streamed_usage is not None
                assert whole_usage is not None
                assert streamed_usage.completion_tokens == whole_usage.completion_tokens == 5
        finally:
            await backend.close()
            await runner.cleanup()

    run_on(uvloop.new_event_loop, scenario())
