"""Counts the client calls in flight, and refuses new ones once the router is stopping.

A graceful stop closes the gate (new client calls get UNAVAILABLE, so clients go to another router), waits for
the calls already running to finish, then stops the server. On SIGTERM the drain (router.drain) comes first, with
the gate open: by the time it closes, clients have been sent elsewhere and nothing should arrive. Worker registrations, health checks and reflection
pass untouched: workers keep serving the calls in flight, and probes see NOT_SERVING.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
from collections.abc import AsyncIterator, Collection, Iterator
from typing import TYPE_CHECKING, Any

import grpc

from core.errors import Unavailable
from core.grpc_status import abort
from core.interceptors import ScopedInterceptor, same_shape

if TYPE_CHECKING:  # generic only in the type stubs
    Handler = grpc.RpcMethodHandler[Any, Any]
Context = grpc.aio.ServicerContext[Any, Any]
_STOPPING = "the router is stopping; retry on another router"


class CallGate(ScopedInterceptor):
    def __init__(self, services: Collection[str]) -> None:
        super().__init__(services)
        self._in_flight = 0
        self._idle = asyncio.Event()
        self._idle.set()
        self._give_up = asyncio.Event()
        self.closed = False

    @property
    def in_flight(self) -> int:
        return self._in_flight

    def close(self) -> None:
        """Refuse every new client call from now on."""
        self.closed = True

    def give_up(self) -> None:
        """End a `wait_idle` now (a second stop signal)."""
        self._give_up.set()

    async def wait_idle(self, timeout: float) -> bool:
        """Wait until no client call is running; False if some still are after `timeout` seconds or
        `give_up`."""
        if self._idle.is_set():
            return True
        waits = {asyncio.ensure_future(self._idle.wait()), asyncio.ensure_future(self._give_up.wait())}
        await asyncio.wait(waits, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        for wait in waits:
            wait.cancel()
        return self._idle.is_set()

    def scoped(self, handler: Handler, details: grpc.HandlerCallDetails) -> Handler:
        """The same handler, counted while it runs, or refused when the gate is closed."""
        return same_shape(handler, self._counted)

    @contextlib.contextmanager
    def admitted(self) -> Iterator[None]:
        """One client call from another door (HTTP), counted like a gRPC one; Unavailable once closed."""
        if self.closed:
            raise Unavailable(_STOPPING, reason="ROUTER_STOPPING")
        self._enter()
        try:
            yield
        finally:
            self._leave()

    def _enter(self) -> None:
        self._in_flight += 1
        self._idle.clear()

    def _leave(self) -> None:
        self._in_flight -= 1
        if self._in_flight == 0:
            self._idle.set()

    def _counted(self, behaviour: Any) -> Any:
        # Streaming behaviours are either async generators or coroutines that write to the context.
        if inspect.isasyncgenfunction(behaviour):

            async def stream(request: Any, context: Context) -> AsyncIterator[Any]:
                if self.closed:
                    await abort(context, Unavailable(_STOPPING, reason="ROUTER_STOPPING"))
                self._enter()
                try:
                    async for response in behaviour(request, context):
                        yield response
                finally:
                    self._leave()

            return stream

        async def call(request: Any, context: Context) -> Any:
            if self.closed:
                await abort(context, Unavailable(_STOPPING, reason="ROUTER_STOPPING"))
            self._enter()
            try:
                return await behaviour(request, context)
            finally:
                self._leave()

        return call
