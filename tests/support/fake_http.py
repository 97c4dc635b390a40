"""What the fake cloud APIs share: an aiohttp server on 127.0.0.1:0 that records requests, injects faults
and notices when a client hangs up.

A test double, used only by tests: each subclass (fake_openai, fake_anthropic) speaks one real wire
format so the official SDKs can be tested as they run in production.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Self

from aiohttp import BodyPartReader, web

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def content_length(head: bytes) -> int:
    """The Content-Length of a raw HTTP/1.1 request head (for the tests' hand-written socket servers)."""
    return next(
        int(line.split(b":", 1)[1])
        for line in head.split(b"\r\n")
        if line.lower().startswith(b"content-length:")
    )


@dataclass
class Fault:
    """What goes wrong with one request. Counts are SSE frames (events), not text pieces."""

    status: int | None = None  # answer with this HTTP status and the provider's error body
    message: str = "injected failure"
    code: str | None = None  # the provider's error code or type, when the test cares
    retry_after: str | None = None  # Retry-After header value, with `status`
    stall: bool = False  # send nothing; hold the request until the client hangs up
    stall_after: int | None = None  # send this many frames, then hold until the client hangs up
    cut_after: int | None = None  # send this many frames, then drop the connection
    end_after: int | None = None  # send this many frames, then end the body cleanly (no finish, no [DONE])
    malformed_after: int | None = None  # send this many frames, then one that is not JSON
    error_event_after: int | None = None  # send this many frames, then the provider's error event
    path: str | None = None  # only for requests to this path; None: the next request of any path


@dataclass
class Recorded:
    method: str
    path: str
    headers: dict[str, str]
    json: Any = None
    form: dict[str, str] = field(default_factory=dict)
    files: dict[str, tuple[str, bytes, str]] = field(default_factory=dict)  # name -> (filename, data, type)


class FakeServer:
    """Start with `async with`; `requests`, `disconnects` and `inject()` are for the test."""

    def __init__(self, api_key: str) -> None:
        self.api_key = api_key
        self.requests: list[Recorded] = []
        self.disconnects = 0
        self.disconnected = asyncio.Event()
        self._faults: list[Fault] = []
        self._runner: web.AppRunner | None = None
        self.port = 0

    @property
    def root_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def routes(self) -> Sequence[web.RouteDef]:
        raise NotImplementedError

    def error_response(self, status: int, fault: Fault) -> web.Response:
        """The provider's error body for `status`."""
        raise NotImplementedError

    def authorized(self, request: web.Request) -> bool:
        raise NotImplementedError

    def unauthorized(self, request: web.Request) -> web.Response:
        raise NotImplementedError

    def error_event(self, fault: Fault) -> bytes:
        """An error reported inside a 200 stream."""
        raise NotImplementedError

    def malformed_frame(self) -> bytes:
        """A frame whose data is cut-off JSON."""
        raise NotImplementedError

    def inject(self, *faults: Fault) -> None:
        """Faults for the next requests, in order, one per request (matching `path` when given)."""
        self._faults.extend(faults)

    def clear_faults(self) -> None:
        """Drop the faults not yet used: the server answers normally from now on."""
        self._faults.clear()

    async def __aenter__(self) -> Self:
        app = web.Application(middlewares=[self._middleware])
        app.add_routes(self.routes())
        # Cancel a handler when its client goes away, so a held request sees the hang-up.
        self._runner = web.AppRunner(app, handler_cancellation=True)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        server = site._server
        assert isinstance(server, asyncio.Server)
        self.port = server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def wait_disconnect(self, timeout: float = 5.0) -> None:
        await asyncio.wait_for(self.disconnected.wait(), timeout)

    @web.middleware
    async def _middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        try:
            return await handler(request)
        except (asyncio.CancelledError, ConnectionResetError):
            self._hung_up()
            raise

    def _hung_up(self) -> None:
        self.disconnects += 1
        self.disconnected.set()

    def take_fault(self, path: str) -> Fault | None:
        for index, fault in enumerate(self._faults):
            if fault.path is None or fault.path == path:
                return self._faults.pop(index)
        return None

    async def record(self, request: web.Request) -> Recorded:
        recorded = Recorded(request.method, request.path, dict(request.headers))
        if request.content_type == "application/json":
            recorded.json = await request.json()
        elif request.content_type == "multipart/form-data":
            reader = await request.multipart()
            async for part in reader:
                if not isinstance(part, BodyPartReader) or part.name is None:
                    continue
                if part.filename is not None:
                    content_type = part.headers.get("Content-Type", "")
                    recorded.files[part.name] = (part.filename, bytes(await part.read()), content_type)
                else:
                    # Repeated fields (timestamp_granularities[]) are joined with commas.
                    value = await part.text()
                    previous = recorded.form.get(part.name)
                    recorded.form[part.name] = value if previous is None else f"{previous},{value}"
        self.requests.append(recorded)
        return recorded

    async def begin(self, request: web.Request) -> tuple[Recorded, Fault | None, web.Response | None]:
        """Record the request and decide its fate: (record, fault, an early answer or None)."""
        recorded = await self.record(request)
        fault = self.take_fault(request.path)
        if not self.authorized(request):
            return recorded, fault, self.unauthorized(request)
        if fault is not None and fault.stall:
            await self.hold()
        if fault is not None and fault.status is not None:
            return recorded, fault, self.error_response(fault.status, fault)
        return recorded, fault, None

    async def hold(self) -> None:
        """Wait until the client hangs up (the middleware sees the cancellation)."""
        await asyncio.Event().wait()

    async def stream(
        self, request: web.Request, frames: Sequence[bytes], fault: Fault | None
    ) -> web.StreamResponse:
        """Send SSE frames, applying the stream faults."""
        response = web.StreamResponse(
            headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"}
        )
        await response.prepare(request)
        for sent, frame in enumerate(frames):
            if fault is not None and sent == fault.stall_after:
                await self.hold()
            if fault is not None and sent == fault.cut_after:
                transport = request.transport
                assert transport is not None
                transport.abort()  # no chunked terminator: the client sees a broken body
                return response
            if fault is not None and sent == fault.end_after:
                break
            if fault is not None and sent == fault.malformed_after:
                await response.write(self.malformed_frame())
                await response.write_eof()
                return response
            if fault is not None and sent == fault.error_event_after:
                await response.write(self.error_event(fault))
                await response.write_eof()
                return response
            await response.write(frame)
            await asyncio.sleep(0)  # one frame per write, as a real server flushes them
        with contextlib.suppress(ConnectionResetError):
            await response.write_eof()
        return response
