"""The one place a StatusError becomes a gRPC status: servicers raise, this edge aborts the call.

Everything below a servicer (the request pipeline, routing, accounting, engines) raises StatusError and
never sees a gRPC context, so another transport (an HTTP door) can map the same errors its own way.
"""

from __future__ import annotations

import contextlib
import functools
import inspect
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, NoReturn, TypeVar, cast

import grpc

from core.errors import StatusError
from core.rich_status import trailing_metadata

Context = grpc.aio.ServicerContext[Any, Any]
Method = TypeVar("Method", bound=Callable[..., Any])


async def abort(context: Context, error: StatusError) -> NoReturn:
    """End the call with the error's status and message, and its google.rpc details in the trailers."""
    await context.abort(error.code, error.message, trailing_metadata(error))
    raise AssertionError("context.abort() returned")  # it always raises; this tells the type checker


def grpc_status(method: Method) -> Method:
    """Decorate a servicer method `(self, request, context)`, unary or streaming: a StatusError it raises
    ends the call with that status. Anything else is a bug and reaches gRPC as UNKNOWN, as before."""
    if inspect.isasyncgenfunction(method):

        @functools.wraps(method)
        async def stream(self: object, request: object, context: Context) -> AsyncIterator[object]:
            try:
                # aclosing: a caller that goes away closes the method's generator (and its upstream) now.
                async with contextlib.aclosing(method(self, request, context)) as items:
                    async for item in items:
                        yield item
            except StatusError as e:
                await abort(context, e)

        return cast(Method, stream)

    @functools.wraps(method)
    async def unary(self: object, request: object, context: Context) -> object:
        try:
            return await cast(Awaitable[object], method(self, request, context))
        except StatusError as e:
            await abort(context, e)

    return cast(Method, unary)
