"""Methods that take a request builder's parameters, so a long parameter list is written once.

`Client.chat`, `Client.chat_text` and their `AsyncClient` twins all take `_requests.chat_request`'s twenty
options. Each is written as `send(self, request)` under `@parameters_of(chat_request)`, which gives it the
builder's signature: to type checkers through the ParamSpec, to help() and inspect through `__signature__`
(names, defaults and annotations as the builder spells them; the return is the method's own). The request is
built when the method is called, so bad input raises there, before anything is sent; a coroutine method
stays one, raising at its await as an `async def` does.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from typing import Any, Concatenate, ParamSpec, TypeVar, cast

P = ParamSpec("P")
Request = TypeVar("Request")
Self = TypeVar("Self")
Result = TypeVar("Result")


def parameters_of(
    build: Callable[P, Request],
) -> Callable[[Callable[[Self, Request], Result]], Callable[Concatenate[Self, P], Result]]:
    def decorate(send: Callable[[Self, Request], Result]) -> Callable[Concatenate[Self, P], Result]:
        method: Any
        if inspect.iscoroutinefunction(send):

            async def method(self: Self, *args: Any, **kwargs: Any) -> Any:
                return await send(self, build(*args, **kwargs))

        else:

            def method(self: Self, *args: Any, **kwargs: Any) -> Any:
                return send(self, build(*args, **kwargs))

        functools.update_wrapper(method, send)
        method.__signature__ = _signature(build, send)
        return cast(Callable[Concatenate[Self, P], Result], method)

    return decorate


def _signature(build: Callable[..., Any], send: Callable[..., Any]) -> inspect.Signature:
    """`send`'s first parameter (self), then `build`'s parameters, returning what `send` returns."""
    own = inspect.signature(send)
    self_parameter = next(iter(own.parameters.values()))
    built = inspect.signature(build)
    return built.replace(
        parameters=[self_parameter, *built.parameters.values()], return_annotation=own.return_annotation
    )
