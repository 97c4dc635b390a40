"""Requests that do not decode are INVALID_ARGUMENT, not UNKNOWN.

grpcio turns a request it cannot parse (corrupt wire format, invalid UTF-8 in a string field) into UNKNOWN
("Unexpected DecodeError") before any servicer runs, which reads as our bug and tells the caller nothing.
This interceptor gives every handler a deserializer that cannot fail: bytes that do not parse become an
`Undecodable` marker, and the call ends INVALID_ARGUMENT naming the message type before the servicer sees it
(for a streaming request, when the servicer reaches that message).
"""

from __future__ import annotations

import inspect
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, NoReturn

import grpc
from google.protobuf.message import DecodeError

from core.interceptors import same_shape

Context = grpc.aio.ServicerContext[Any, Any]
if TYPE_CHECKING:  # generic only in the type stubs
    Handler = grpc.RpcMethodHandler[Any, Any]


@dataclass(frozen=True)
class Undecodable:
    message: str


class DecodeGuard(grpc.aio.ServerInterceptor):
    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[Handler | None]],
        details: grpc.HandlerCallDetails,
    ) -> Handler | None:
        handler = await continuation(details)
        if handler is None or handler.request_deserializer is None:
            return handler
        return _guarded(handler)


def _guarded(handler: Handler) -> Handler:
    parse = handler.request_deserializer
    assert parse is not None  # checked by the caller
    kind = getattr(getattr(parse, "__self__", None), "DESCRIPTOR", None)
    name = kind.full_name if kind is not None else "request"

    def deserialize(data: bytes) -> Any:
        try:
            return parse(data)
        except (DecodeError, ValueError, UnicodeDecodeError) as e:
            return Undecodable(f"request: not a valid {name} message ({e})")

    return same_shape(handler, _streamed if handler.request_streaming else _single, deserialize)


async def _refuse(context: Context, bad: Undecodable) -> NoReturn:
    await context.abort(grpc.StatusCode.INVALID_ARGUMENT, bad.message)
    raise AssertionError("context.abort() returned")


def _single(behaviour: Any) -> Any:
    """A unary request: refused before the behaviour runs."""
    if inspect.isasyncgenfunction(behaviour):

        async def stream(request: Any, context: Context) -> AsyncIterator[Any]:
            if isinstance(request, Undecodable):
                await _refuse(context, request)
            async for response in behaviour(request, context):
                yield response

        return stream

    async def call(request: Any, context: Context) -> Any:
        if isinstance(request, Undecodable):
            await _refuse(context, request)
        return await behaviour(request, context)

    return call


class _CheckedReads:
    """The call's context, whose read() refuses a message that did not parse (for servicers that read
    their request stream with context.read() rather than iterating it)."""

    def __init__(self, context: Context) -> None:
        self._context = context

    def __getattr__(self, name: str) -> Any:
        return getattr(self._context, name)

    async def read(self) -> Any:
        request = await self._context.read()
        if isinstance(request, Undecodable):
            await _refuse(self._context, request)
        return request


def _streamed(behaviour: Any) -> Any:
    """A request stream: refused when the behaviour reaches the message that did not parse."""

    async def checked(requests: AsyncIterator[Any], context: Context) -> AsyncIterator[Any]:
        async for request in requests:
            if isinstance(request, Undecodable):
                await _refuse(context, request)
            yield request

    if inspect.isasyncgenfunction(behaviour):

        async def stream(requests: AsyncIterator[Any], context: Context) -> AsyncIterator[Any]:
            async for response in behaviour(checked(requests, context), _CheckedReads(context)):
                yield response

        return stream

    async def call(requests: AsyncIterator[Any], context: Context) -> Any:
        return await behaviour(checked(requests, context), _CheckedReads(context))

    return call
