"""The thin chat client's proxy: the environment's, looked up once, as the SDK's httpx does; and chat through it."""

from __future__ import annotations

import asyncio
import urllib.parse

import pytest

from router.backends.openai_backend import OpenAIBackend
from router.backends.openai_chat_client import _proxy_for
from router.config.settings import ProviderConfig
from tests.providers.conftest import OPENAI_KEY, chat_request, collect
from tests.support.fake_openai import FakeOpenAI


def test_the_environments_proxy_applies_unless_no_proxy_exempts_the_host(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name in ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "NO_PROXY", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
    assert _proxy_for("https://api.openai.com/v1/chat/completions") is None
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.internal:3128")
    monkeypatch.setenv("NO_PROXY", "localhost,127.0.0.1,.corp.example")
    assert _proxy_for("https://api.openai.com/v1/chat/completions") == "http://proxy.internal:3128"
    assert _proxy_for("https://llm.corp.example/v1/chat/completions") is None
    assert _proxy_for("http://127.0.0.1:8000/v1/chat/completions") is None  # and no HTTP_PROXY is set


class _ForwardProxy:
    """An HTTP forward proxy, as small as the test needs: reads a request in absolute form
    ("POST http://host:port/path HTTP/1.1"), records its request line, sends it on in origin form with
    "Connection: close" (so one request per connection: no need to parse answers), then relays bytes both
    ways until either side hangs up."""

    def __init__(self) -> None:
        self.request_lines: list[str] = []
        self._server: asyncio.Server | None = None

    async def start(self) -> str:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        return f"http://127.0.0.1:{self._server.sockets[0].getsockname()[1]}"

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            request_line, *header_lines = head[:-4].decode("latin-1").split("\r\n")
            self.request_lines.append(request_line)
            method, target, version = request_line.split(" ")
            url = urllib.parse.urlsplit(target)
            kept = [line for line in header_lines if not line.lower().startswith(("connection:", "proxy-"))]
            path = url.path + (f"?{url.query}" if url.query else "")
            forwarded = "\r\n".join([f"{method} {path} {version}", *kept, "Connection: close", "", ""])
            upstream_reader, upstream_writer = await asyncio.open_connection(url.hostname, url.port)
        except (asyncio.IncompleteReadError, ConnectionError, ValueError):
            writer.close()
            return
        upstream_writer.write(forwarded.encode("latin-1"))
        await asyncio.gather(_pipe(reader, upstream_writer), _pipe(upstream_reader, writer))

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()


async def _pipe(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
    try:
        while data := await source.read(65536):
            sink.write(data)
            await sink.drain()
    except ConnectionError:
        pass
    finally:
        sink.close()


async def test_chat_goes_through_the_environments_proxy_streamed_and_whole(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """With HTTP_PROXY set the thin client leaves its direct path for aiohttp's, which speaks to proxies:
    both kinds of answer arrive whole, and every chat request passed through the proxy."""
    for name in ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "NO_PROXY", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
    proxy = _ForwardProxy()
    monkeypatch.setenv("HTTP_PROXY", await proxy.start())
    async with FakeOpenAI(api_key=OPENAI_KEY, models=("m",), reply="through the proxy") as upstream:
        backend = OpenAIBackend(
            ProviderConfig(name="proxied", kind="openai", base_url=upstream.base_url, api_key=OPENAI_KEY)
        )
        try:
            replies = []
            for whole in (False, True):
                request = chat_request("m")
                request.whole_answer = whole
                reply, usage = await collect(backend.chat(request, timeout=30.0))
                replies.append(reply)
                assert usage is not None
                assert usage.completion_tokens > 0
        finally:
            await backend.close()
            await proxy.stop()
        chats = [r for r in upstream.requests if r.path == "/v1/chat/completions"]
    assert replies == ["through the proxy", "through the proxy"]
    assert proxy.request_lines == [f"POST {upstream.base_url}/chat/completions HTTP/1.1"] * 2
    assert len(chats) == 2  # what the proxy sent on is what the upstream answered
