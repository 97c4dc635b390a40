"""Chat completions, streamed or whole, over a thin HTTP client: the one call on the request path that the SDK
made slow.

Measured on this machine (one process, 1-token streams from a local server, bench/results/RESULTS.md):
the OpenAI SDK spends 1,300 to 1,500 µs of CPU per streamed request (its TypedDict transform of the
parameters, httpx's request building, anyio), aiohttp 210 to 350 µs, router.backends.http1 much less (it
says why). Everything else an OpenAI-style backend does (embeddings,
transcription, health checks, resolving the base URL) stays on the SDK; failures here map through the
same table (router.backends.cloud_errors) as the SDK's exceptions do, so failover cannot tell them apart.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import ssl
import urllib.parse
import urllib.request
from collections.abc import AsyncGenerator, AsyncIterator, Mapping
from types import TracebackType
from typing import Any

import aiohttp
import yarl

from core import fast_json
from router.backends.base import BackendError
from router.backends.cloud_errors import (
    broken_stream,
    connection_error,
    error_body_message,
    http_status_error,
    retry_after_seconds,
)
from router.backends.http1 import MAX_HEADER_BYTES, Http1Client, Http1Connection, Http1Error, Http1Response
from router.backends.openai_sse import MAX_LINE_BYTES, StreamErrorEvent, sse_batches

_MAX_ERROR_BODY = 64 * 1024  # what is read of an error answer: enough for any provider's message
_USER_AGENT = "modelyard-router"


class ChatCompletionsClient:
    """POST {base_url}/chat/completions: with "stream": true, `stream` yields the decoded JSON of the events
    that arrived together, as a list (router.backends.openai_sse.sse_batches); without, `complete` returns the
    whole answer's decoded JSON.

    Direct to the server on router.backends.http1 (keep-alive, the least CPU per request); through an HTTP(S)
    proxy from the environment on aiohttp, which speaks to proxies. Raises BackendError for every failure
    except an answer (or a data line) that is not JSON (ValueError, which the backend reports with what it
    knows of the answer so far).
    """

    def __init__(
        self,
        provider: str,
        base_url: str,
        api_key: str,
        max_connections: int,
        *,
        max_header_bytes: int = MAX_HEADER_BYTES,
    ) -> None:
        self._provider = provider
        self._max_header_bytes = max_header_bytes
        self._secret = api_key
        url = base_url.rstrip("/") + "/chat/completions"
        self._url = yarl.URL(url)  # parsed once, not on every request
        self._headers = {
            "Authorization": f"Bearer {api_key}",
            "Content-Type": "application/json",
            "Accept": "text/event-stream",
        }
        self._whole_headers = {**self._headers, "Accept": "application/json"}
        self._max_connections = max_connections
        self._proxy = _proxy_for(url)
        self._session: aiohttp.ClientSession | None = None
        self._direct: Http1Client | None = None
        self._heads: dict[bool, bytes] = {}  # the request head without tracing headers, streamed or whole

    def _open(self) -> aiohttp.ClientSession:
        # Made on first use: a session belongs to the event loop that runs it.
        if self._session is None or self._session.closed:
            connector = aiohttp.TCPConnector(limit=self._max_connections, ssl=_tls_context())
            # Not trust_env: that reads ~/.netrc in a thread on every request. The proxy is looked up once.
            # No cookie jar: one tenant's answer must not set what the next tenant's request carries.
            self._session = aiohttp.ClientSession(connector=connector, cookie_jar=aiohttp.DummyCookieJar())
        return self._session

    def _head(self, stream: bool, extra: Mapping[str, str] | None) -> tuple[Http1Client, bytes]:
        if self._direct is None:
            tls = _tls_context() if self._url.scheme == "https" else None
            self._direct = Http1Client(str(self._url), tls, self._max_connections, self._max_header_bytes)
            self._heads = {
                kind: self._direct.request_head(
                    {**(self._headers if kind else self._whole_headers), "User-Agent": _USER_AGENT}
                )
                for kind in (True, False)
            }
        if not extra:
            return self._direct, self._heads[stream]
        base = self._headers if stream else self._whole_headers
        return self._direct, self._direct.request_head({**base, **extra, "User-Agent": _USER_AGENT})

    async def stream(
        self, body: Mapping[str, Any], timeout: float, headers: Mapping[str, str] | None = None
    ) -> AsyncGenerator[list[Any], None]:
        """`timeout` bounds connecting and each wait for more of the answer, as the SDK's did; the backend
        bounds the whole answer. Closing the generator early hangs up, which ends the upstream generation."""
        if self._proxy is not None:
            async with contextlib.aclosing(self._stream_via_proxy(body, timeout, headers)) as batches:
                async for batch in batches:
                    yield batch
            return
        client, head = self._head(True, headers)
        try:
            with _DirectCall(self._provider, self._secret, client) as call:
                response, call.connection = await client.post(head, fast_json.dumps(body), timeout, timeout)
                if response.status >= 400:
                    raise await self._status_error(
                        response.status, response.headers, _pieces(response, timeout)
                    )
                async for batch in sse_batches(_pieces(response, timeout)):
                    yield batch
        except StreamErrorEvent as e:
            raise broken_stream(self._provider, e.message, secret=self._secret) from e

    async def complete(
        self, body: Mapping[str, Any], timeout: float, headers: Mapping[str, str] | None = None
    ) -> Any:
        """The whole answer's JSON (`body` without "stream"). `timeout` bounds connecting, each read and the
        whole answer, as the backend's deadline bounds a streamed one. An answer that carries `error` raises
        the BackendError a stream's error event does."""
        if self._proxy is not None:
            raw = await self._complete_via_proxy(body, timeout, headers)
        else:
            raw = await self._complete_direct(body, timeout, headers)
        answer = fast_json.loads(raw)  # ValueError on an answer that is not JSON: the backend says so
        if isinstance(answer, dict) and answer.get("error"):
            error = answer["error"]
            message = error.get("message") if isinstance(error, dict) else None
            detail = message if isinstance(message, str) and message else "An error occurred"
            raise broken_stream(self._provider, detail, secret=self._secret)
        return answer

    async def _complete_direct(
        self, body: Mapping[str, Any], timeout: float, headers: Mapping[str, str] | None
    ) -> bytes:
        client, head = self._head(False, headers)
        with _DirectCall(self._provider, self._secret, client) as call:
            async with asyncio.timeout(timeout):  # the whole exchange: no timer of its own for the headers
                response, call.connection = await client.post(head, fast_json.dumps(body), timeout, None)
                if response.status >= 400:
                    raise await self._status_error(response.status, response.headers, _pieces(response, None))
                return await _bounded(_pieces(response, None), response.headers.get("content-length"))

    async def _stream_via_proxy(
        self, body: Mapping[str, Any], timeout: float, headers: Mapping[str, str] | None
    ) -> AsyncGenerator[list[Any], None]:
        session = self._open()
        limits = aiohttp.ClientTimeout(total=None, sock_connect=timeout, sock_read=timeout)
        sent = {**self._headers, **headers} if headers else self._headers
        try:
            async with session.post(
                self._url, data=fast_json.dumps(body), headers=sent, timeout=limits, proxy=self._proxy
            ) as response:
                if response.status >= 400:
                    raise await self._status_error(response.status, response.headers, _proxied_body(response))
                async for batch in sse_batches(response.content.iter_any()):
                    yield batch
        except StreamErrorEvent as e:
            raise broken_stream(self._provider, e.message, secret=self._secret) from e
        except TimeoutError as e:  # aiohttp's ServerTimeoutError is one too
            raise connection_error(self._provider, _describe(e), secret=self._secret, timed_out=True) from e
        except aiohttp.ClientError as e:
            raise connection_error(self._provider, _describe(e), secret=self._secret, timed_out=False) from e

    async def _complete_via_proxy(
        self, body: Mapping[str, Any], timeout: float, headers: Mapping[str, str] | None
    ) -> bytes:
        session = self._open()
        limits = aiohttp.ClientTimeout(total=timeout, sock_connect=timeout, sock_read=timeout)
        sent = {**self._whole_headers, **headers} if headers else self._whole_headers
        try:
            async with session.post(
                self._url, data=fast_json.dumps(body), headers=sent, timeout=limits, proxy=self._proxy
            ) as response:
                if response.status >= 400:
                    raise await self._status_error(response.status, response.headers, _proxied_body(response))
                return await _bounded(response.content.iter_any(), response.headers.get("content-length"))
        except TimeoutError as e:
            raise connection_error(self._provider, _describe(e), secret=self._secret, timed_out=True) from e
        except aiohttp.ClientError as e:
            raise connection_error(self._provider, _describe(e), secret=self._secret, timed_out=False) from e

    async def _status_error(
        self, status: int, headers: Mapping[str, str], pieces: AsyncIterator[bytes]
    ) -> BackendError:
        raw = b""
        async for piece in pieces:
            raw += piece
            if len(raw) >= _MAX_ERROR_BODY:
                raw = raw[:_MAX_ERROR_BODY]
                break
        body: object
        try:
            body = json.loads(raw)
        except ValueError:
            body = raw.decode("utf-8", "replace")
        detail = error_body_message(body) or f"Error code: {status} - {body}"
        inner = body.get("error", body) if isinstance(body, dict) else None
        code = inner.get("code") if isinstance(inner, dict) else None
        return http_status_error(
            self._provider,
            status,
            detail,
            secret=self._secret,
            retry_after_s=retry_after_seconds(headers),
            unknown_model=code == "model_not_found" or "model" in detail.lower(),
        )

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None
        if self._direct is not None:
            await self._direct.close()
            self._direct = None


class _DirectCall:
    """One request on the direct client, streamed or whole: its connection goes back to the client at the end
    (closed unless the answer was read whole: that hangs up on the upstream), and its failures leave as the
    BackendError the SDK's connection failures map to (router.backends.cloud_errors)."""

    __slots__ = ("_client", "_provider", "_secret", "connection")

    def __init__(self, provider: str, secret: str, client: Http1Client) -> None:
        self._provider = provider
        self._secret = secret
        self._client = client
        self.connection: Http1Connection | None = None  # set once the answer's headers are here

    def __enter__(self) -> _DirectCall:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, traceback: TracebackType | None
    ) -> None:
        if self.connection is not None:
            self._client.release(self.connection)
        if isinstance(error, TimeoutError):
            raise connection_error(
                self._provider, _describe(error), secret=self._secret, timed_out=True
            ) from error
        if isinstance(error, Http1Error):
            raise connection_error(
                self._provider, _describe(error), secret=self._secret, timed_out=False
            ) from error


async def _pieces(response: Http1Response, timeout: float | None) -> AsyncIterator[bytes]:
    """The body as it arrives; `timeout` bounds each wait."""
    while piece := await response.read(timeout):
        yield piece


async def _proxied_body(response: aiohttp.ClientResponse) -> AsyncIterator[bytes]:
    while piece := await response.content.read(_MAX_ERROR_BODY):
        yield piece


async def _bounded(pieces: AsyncIterator[bytes], content_length: str | None) -> bytes:
    """The body, refused beyond what the router could relay (a whole answer is one message)."""
    if content_length is not None and content_length.isdigit() and int(content_length) > MAX_LINE_BYTES:
        raise ValueError(f"an answer of {content_length} bytes, more than {MAX_LINE_BYTES}")
    collected: list[bytes] = []
    size = 0
    async for piece in pieces:
        size += len(piece)
        if size > MAX_LINE_BYTES:
            raise ValueError(f"an answer longer than {MAX_LINE_BYTES} bytes")
        collected.append(piece)
    return b"".join(collected)


def _describe(error: BaseException) -> str:
    return f"{type(error).__name__}: {error}" if str(error) else type(error).__name__


def _proxy_for(url: str) -> str | None:
    """HTTPS_PROXY / HTTP_PROXY for `url` unless NO_PROXY exempts its host, as the SDK's httpx client does."""
    parts = urllib.parse.urlsplit(url)
    if parts.hostname is None or urllib.request.proxy_bypass(parts.hostname):
        return None
    return urllib.request.getproxies_environment().get(parts.scheme)


def _tls_context() -> ssl.SSLContext:
    """The system's trust store plus certifi's, which is what the SDK's httpx client trusts."""
    context = ssl.create_default_context()
    try:
        import certifi
    except ImportError:
        return context
    context.load_verify_locations(certifi.where())
    return context
