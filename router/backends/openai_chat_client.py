"""Streamed chat completions over a thin aiohttp client: the one call on the request path that the SDK made
slow.

Measured on this machine (one process, 1-token streams from a local server, bench/results/RESULTS.md):
the OpenAI SDK spends 1,300 to 1,500 µs of CPU per streamed request (its TypedDict transform of the
parameters, httpx's request building, anyio), aiohttp 210 to 240 µs. The router already runs aiohttp for
its HTTP door, in the same event loop. Everything else an OpenAI-style backend does (embeddings,
transcription, health checks, resolving the base URL) stays on the SDK; failures here map through the
same table (router.backends.cloud_errors) as the SDK's exceptions do, so failover cannot tell them apart.
"""

from __future__ import annotations

import json
import ssl
import urllib.parse
import urllib.request
from collections.abc import AsyncGenerator, Mapping
from typing import Any

import aiohttp

from router.backends.base import BackendError
from router.backends.cloud_errors import (
    broken_stream,
    connection_error,
    error_body_message,
    http_status_error,
    retry_after_seconds,
)
from router.backends.openai_sse import MAX_LINE_BYTES, StreamErrorEvent, sse_batches

_MAX_ERROR_BODY = 64 * 1024  # what is read of an error answer: enough for any provider's message


class ChatCompletionsClient:
    """POST {base_url}/chat/completions: with "stream": true, `stream` yields the decoded JSON of the events
    that arrived together, as a list (router.backends.openai_sse.sse_batches); without, `complete` returns the
    whole answer's decoded JSON.

    Raises BackendError for every failure except an answer (or a data line) that is not JSON (ValueError,
    which the backend reports with what it knows of the answer so far).
    """

    def __init__(self, provider: str, base_url: str, api_key: str, max_connections: int) -> None:
        self._provider = provider
        self._secret = api_key
        self._url = base_url.rstrip("/") + "/chat/completions"
        self._headers = {
            "Authorization": f"Bearer {api_key}",
            "Content-Type": "application/json",
            "Accept": "text/event-stream",
        }
        self._whole_headers = {**self._headers, "Accept": "application/json"}
        self._max_connections = max_connections
        self._proxy = _proxy_for(self._url)
        self._session: aiohttp.ClientSession | None = None

    def _open(self) -> aiohttp.ClientSession:
        # Made on first use: a session belongs to the event loop that runs it.
        if self._session is None or self._session.closed:
            connector = aiohttp.TCPConnector(limit=self._max_connections, ssl=_tls_context())
            # Not trust_env: that reads ~/.netrc in a thread on every request. The proxy is looked up once.
            self._session = aiohttp.ClientSession(connector=connector)
        return self._session

    async def stream(
        self, body: Mapping[str, Any], timeout: float, headers: Mapping[str, str] | None = None
    ) -> AsyncGenerator[list[Any], None]:
        """`timeout` bounds connecting and each wait for more of the answer, as the SDK's did; the backend
        bounds the whole answer. Closing the generator early hangs up, which ends the upstream generation."""
        session = self._open()
        limits = aiohttp.ClientTimeout(total=None, sock_connect=timeout, sock_read=timeout)
        sent = {**self._headers, **headers} if headers else self._headers
        try:
            async with session.post(
                self._url, data=json.dumps(body).encode(), headers=sent, timeout=limits, proxy=self._proxy
            ) as response:
                if response.status >= 400:
                    raise await self._status_error(response)
                async for batch in sse_batches(response.content.iter_any()):
                    yield batch
        except StreamErrorEvent as e:
            raise broken_stream(self._provider, e.message, secret=self._secret) from e
        except TimeoutError as e:  # aiohttp's ServerTimeoutError is one too
            raise connection_error(self._provider, _describe(e), secret=self._secret, timed_out=True) from e
        except aiohttp.ClientError as e:
            raise connection_error(self._provider, _describe(e), secret=self._secret, timed_out=False) from e

    async def complete(
        self, body: Mapping[str, Any], timeout: float, headers: Mapping[str, str] | None = None
    ) -> Any:
        """The whole answer's JSON (`body` without "stream"). `timeout` bounds connecting, each read and the
        whole answer, as the backend's deadline bounds a streamed one. An answer that carries `error` raises
        the BackendError a stream's error event does."""
        session = self._open()
        limits = aiohttp.ClientTimeout(total=timeout, sock_connect=timeout, sock_read=timeout)
        sent = {**self._whole_headers, **headers} if headers else self._whole_headers
        try:
            async with session.post(
                self._url, data=json.dumps(body).encode(), headers=sent, timeout=limits, proxy=self._proxy
            ) as response:
                if response.status >= 400:
                    raise await self._status_error(response)
                raw = await _bounded_body(response)
        except TimeoutError as e:
            raise connection_error(self._provider, _describe(e), secret=self._secret, timed_out=True) from e
        except aiohttp.ClientError as e:
            raise connection_error(self._provider, _describe(e), secret=self._secret, timed_out=False) from e
        answer = json.loads(raw)  # ValueError on an answer that is not JSON: the backend says so
        if isinstance(answer, dict) and answer.get("error"):
            error = answer["error"]
            message = error.get("message") if isinstance(error, dict) else None
            detail = message if isinstance(message, str) and message else "An error occurred"
            raise broken_stream(self._provider, detail, secret=self._secret)
        return answer

    async def _status_error(self, response: aiohttp.ClientResponse) -> BackendError:
        raw = b""
        while len(raw) < _MAX_ERROR_BODY:
            piece = await response.content.read(_MAX_ERROR_BODY - len(raw))
            if not piece:
                break
            raw += piece
        body: object
        try:
            body = json.loads(raw)
        except ValueError:
            body = raw.decode("utf-8", "replace")
        detail = error_body_message(body) or f"Error code: {response.status} - {body}"
        inner = body.get("error", body) if isinstance(body, dict) else None
        code = inner.get("code") if isinstance(inner, dict) else None
        return http_status_error(
            self._provider,
            response.status,
            detail,
            secret=self._secret,
            retry_after_s=retry_after_seconds(response.headers),
            unknown_model=code == "model_not_found" or "model" in detail.lower(),
        )

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None


async def _bounded_body(response: aiohttp.ClientResponse) -> bytes:
    """The body, refused beyond what the router could relay (a whole answer is one message)."""
    if response.content_length is not None and response.content_length > MAX_LINE_BYTES:
        raise ValueError(f"an answer of {response.content_length} bytes, more than {MAX_LINE_BYTES}")
    pieces: list[bytes] = []
    size = 0
    async for piece in response.content.iter_any():
        size += len(piece)
        if size > MAX_LINE_BYTES:
            raise ValueError(f"an answer longer than {MAX_LINE_BYTES} bytes")
        pieces.append(piece)
    return b"".join(pieces)


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
