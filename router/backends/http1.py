"""A small HTTP/1.1 client for one upstream origin: POST a body, read the answer as it arrives, keep the
connection for the next request.

Why not aiohttp's ClientSession here: on the chat hot path it cost 300-350 µs of CPU per request on this
machine (its request and response objects, header merging, cookie and timeout machinery), a quarter of the
router's own work for an answer through the HTTP door (bench/http_door.py). This client does what the OpenAI
chat call needs and nothing else: one origin, keep-alive, Content-Length or chunked bodies (httptools, the
parser uvicorn uses), TLS, per-read timeouts. A proxy, which it does not speak, keeps the aiohttp client
(router.backends.openai_chat_client decides).

Failures raise `Http1Error` (the connection failed or broke) or `TimeoutError`; the caller maps them as it
maps aiohttp's.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Mapping
from typing import cast

import httptools

_READ_HIGH_WATER = 256 * 1024  # buffered and unread: stop reading the socket until the reader catches up
MAX_HEADER_BYTES = 64 * 1024  # the default cap on an answer's status line and headers (ProviderConfig's)


class Http1Error(Exception):
    """The connection could not be made, or broke before the answer was whole."""


class _Connection(asyncio.Protocol):
    def __init__(self, max_header_bytes: int = MAX_HEADER_BYTES) -> None:
        # httptools buffers a header until it ends and has no cap of its own: without this one an upstream
        # that never ends its headers would grow the router's memory until the read timeout, or forever
        # while it keeps sending.
        self._max_header_bytes = max_header_bytes
        self.transport: asyncio.Transport | None = None
        self.closed = False
        self._parser = httptools.HttpResponseParser(self)
        self._reset()

    def _reset(self) -> None:
        self.status = 0
        self.headers: dict[str, str] = {}
        self.complete = False  # the whole answer is here
        self._keep_alive = False
        self.received = False  # any byte of the answer arrived
        self._header_bytes = 0  # received while the headers had not ended
        self._field = ""
        self._chunks: list[bytes] = []
        self._buffered = 0
        self._paused = False
        self._error: BaseException | None = None
        self._headers_done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiter: asyncio.Future[None] | None = None

    # asyncio.Protocol
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not asyncio.Transport subclasses, though they have its methods.
        self.transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        self.received = True
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserError as e:
            self._fail(Http1Error(f"malformed HTTP answer: {e}"))
            self.close()
            return
        if not self._headers_done.done():  # all of `data` was status line and headers
            self._header_bytes += len(data)
            if self._header_bytes > self._max_header_bytes:
                self._fail(
                    Http1Error(
                        f"the answer's headers exceed {self._max_header_bytes} bytes"
                        " (the provider's max_response_header_bytes)"
                    )
                )
                self.close()

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self.complete:
            return
        if self._headers_done.done() and "content-length" not in self.headers and not self._chunked():
            self.on_message_complete()  # a body that ends where the connection does
            return
        self._fail(Http1Error(f"the server closed the connection{f' ({exc})' if exc else ''}"))

    # httptools callbacks
    def on_header(self, name: bytes, value: bytes) -> None:
        self._field = name.decode("latin-1").lower()
        previous = self.headers.get(self._field)
        text = value.decode("latin-1")
        self.headers[self._field] = f"{previous}, {text}" if previous else text

    def on_headers_complete(self) -> None:
        self.status = self._parser.get_status_code()
        # Read now: the parser resets once the message has ended.
        self._keep_alive = self._parser.should_keep_alive()
        if not self._headers_done.done():
            self._headers_done.set_result(None)

    def on_body(self, body: bytes) -> None:
        self._chunks.append(body)
        self._buffered += len(body)
        if self._buffered > _READ_HIGH_WATER and not self._paused and self.transport is not None:
            self._paused = True
            self.transport.pause_reading()
        self._wake()

    def on_message_complete(self) -> None:
        self.complete = True
        if not self._headers_done.done():
            self._headers_done.set_result(None)
        self._wake()

    # used by Http1Client and Http1Response
    def _chunked(self) -> bool:
        return "chunked" in self.headers.get("transfer-encoding", "").lower()

    def _wake(self) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    def _fail(self, error: BaseException) -> None:
        self._error = error
        if not self._headers_done.done():
            self._headers_done.set_exception(error)
            self._headers_done.exception()  # retrieved here: nobody may be waiting any more
        self._wake()

    async def headers_received(self) -> None:
        await self._headers_done

    async def read(self) -> bytes:
        """What arrived since the last read (waiting for something), b"" once the body has ended."""
        while not self._chunks:
            if self.complete:
                return b""
            if self._error is not None:
                raise self._error
            self._waiter = asyncio.get_running_loop().create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None
        data = b"".join(self._chunks) if len(self._chunks) > 1 else self._chunks[0]
        self._chunks.clear()
        self._buffered = 0
        if self._paused and self.transport is not None:
            self._paused = False
            self.transport.resume_reading()
        return data

    def must_wait(self) -> bool:
        """Whether `read` would wait for the socket: nothing buffered, the body not ended, no failure."""
        return not self._chunks and not self.complete and self._error is None

    def reusable(self) -> bool:
        return self.complete and not self.closed and self._keep_alive

    def close(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.close()


Http1Connection = _Connection  # what `post` hands back for `release`: opaque to callers


class Http1Response:
    """An answer being read: status and headers (names lower-case) are here; the body comes by `read`."""

    def __init__(self, connection: _Connection) -> None:
        self._connection = connection
        self.status = connection.status
        self.headers = connection.headers

    async def read(self, timeout: float | None) -> bytes:
        """The next piece of the body, b"" at its end; `timeout` bounds the wait for it."""
        if timeout is None or not self._connection.must_wait():
            return await self._connection.read()  # no wait, no timer: most reads of a fast answer
        async with asyncio.timeout(timeout):
            return await self._connection.read()


class Http1Client:
    """POSTs to `url` (http:// or https://), at most `max_connections` at once, keeping idle connections;
    an answer whose status line and headers run past `max_header_bytes` fails with Http1Error."""

    def __init__(
        self,
        url: str,
        ssl_context: ssl.SSLContext | None,
        max_connections: int,
        max_header_bytes: int = MAX_HEADER_BYTES,
    ) -> None:
        from urllib.parse import urlsplit

        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"not an http(s) URL: {url}")
        self._host = parts.hostname
        self._port = parts.port or (443 if parts.scheme == "https" else 80)
        self._ssl = (ssl_context or ssl.create_default_context()) if parts.scheme == "https" else None
        path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        host = parts.netloc.rsplit("@", 1)[-1]
        self._head = f"POST {path} HTTP/1.1\r\nHost: {host}\r\n".encode("latin-1")
        self._idle: list[_Connection] = []
        self._slots = asyncio.Semaphore(max_connections) if max_connections > 0 else None
        self._open: set[_Connection] = set()
        self._max_header_bytes = max_header_bytes

    def request_head(self, headers: Mapping[str, str]) -> bytes:
        """The request line and these headers, for `post` (built once for headers that never change)."""
        lines = "".join(f"{name}: {value}\r\n" for name, value in headers.items())
        return self._head + lines.encode("latin-1")

    async def post(
        self, head: bytes, body: bytes, connect_timeout: float, read_timeout: float | None
    ) -> tuple[Http1Response, _Connection]:
        """Send `head` (from request_head) and `body`; returns once the answer's headers are here, within
        `read_timeout` (None: the caller bounds the whole exchange). The caller must `release` the
        connection, whatever happens next."""
        if self._slots is not None:
            await self._slots.acquire()
        message = b"%sContent-Length: %d\r\n\r\n%s" % (head, len(body), body)
        try:
            while True:
                connection, reused = self._idle.pop() if self._idle else None, True
                if connection is None:
                    connection, reused = await self._connect(connect_timeout), False
                if connection.closed:
                    self._open.discard(connection)
                    continue
                connection._reset()
                assert connection.transport is not None
                connection.transport.write(message)
                try:
                    if read_timeout is None:  # the caller bounds the whole exchange itself
                        await connection.headers_received()
                    else:
                        async with asyncio.timeout(read_timeout):
                            await connection.headers_received()
                except Http1Error:
                    self._drop(connection)
                    # A kept connection the server had already closed: nothing was answered, send again.
                    if reused and not connection.received:
                        continue
                    raise
                except BaseException:
                    self._drop(connection)
                    raise
                return Http1Response(connection), connection
        except BaseException:
            if self._slots is not None:
                self._slots.release()
            raise

    def release(self, connection: _Connection) -> None:
        """Keep the connection if its answer was read whole and the server keeps it open; close it otherwise
        (an answer left unread ends there, which ends the upstream's generation)."""
        if connection.reusable():
            self._idle.append(connection)
        else:
            self._drop(connection)
        if self._slots is not None:
            self._slots.release()

    async def _connect(self, timeout: float) -> _Connection:
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(timeout):
                _, connection = await loop.create_connection(
                    lambda: _Connection(self._max_header_bytes),
                    self._host,
                    self._port,
                    ssl=self._ssl,
                    server_hostname=self._host if self._ssl else None,
                )
        except OSError as e:
            raise Http1Error(f"cannot connect to {self._host}:{self._port}: {e}") from e
        self._open.add(connection)
        return connection

    def _drop(self, connection: _Connection) -> None:
        connection.close()
        self._open.discard(connection)

    async def close(self) -> None:
        for connection in list(self._open):
            connection.close()
        self._open.clear()
        self._idle.clear()
