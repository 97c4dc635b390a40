"""Server interceptors: the base for those scoped to some services, handlers rewrapped in the same shape, and the
refusing handler they return when a call must not reach its servicer."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Collection
from typing import TYPE_CHECKING, Any

import grpc

from core.errors import StatusError, Unauthenticated
from core.grpc_status import abort
from core.worker_token import token_matches

log = logging.getLogger(__name__)

if TYPE_CHECKING:  # generic only in the type stubs
    Handler = grpc.RpcMethodHandler[Any, Any]


def service_of(method: str) -> str:
    """ "/modelyard.v1.Router/Chat" -> "modelyard.v1.Router" ("" for anything malformed)."""
    return method.split("/")[1] if method.count("/") == 2 else ""


def same_shape(
    handler: Handler, wrap: Callable[[Any], Any], request_deserializer: Callable[[bytes], Any] | None = None
) -> Handler:
    """A handler of the same shape as `handler` (unary or streaming, each way) whose behaviour is
    `wrap(handler's behaviour)`, with the same serializers unless another request deserializer is given."""
    serializers = {
        "request_deserializer": request_deserializer or handler.request_deserializer,
        "response_serializer": handler.response_serializer,
    }
    if handler.request_streaming and handler.response_streaming:
        return grpc.stream_stream_rpc_method_handler(wrap(handler.stream_stream), **serializers)
    if handler.request_streaming:
        return grpc.stream_unary_rpc_method_handler(wrap(handler.stream_unary), **serializers)
    if handler.response_streaming:
        return grpc.unary_stream_rpc_method_handler(wrap(handler.unary_stream), **serializers)
    return grpc.unary_unary_rpc_method_handler(wrap(handler.unary_unary), **serializers)


def refusal(handler: Handler, error: StatusError) -> Handler:
    """A handler of the same shape as `handler` that only aborts with `error`: the servicer never runs."""

    async def refuse(_request: object, context: grpc.aio.ServicerContext[Any, Any]) -> None:
        await abort(context, error)

    return same_shape(handler, lambda _behaviour: refuse)


def refusal_unread(handler: Handler, error: StatusError) -> Handler:
    """Like refusal, for callers who have shown no credential: shaped to take a request stream, because gRPC
    reads request messages only when such a handler asks for them, so what the caller sent (however large) is
    never read or decoded; a unary handler is handed its request whole first."""

    async def refuse(_requests: object, context: grpc.aio.ServicerContext[Any, Any]) -> None:
        await abort(context, error)

    serializers = {
        "request_deserializer": handler.request_deserializer,
        "response_serializer": handler.response_serializer,
    }
    if handler.response_streaming:
        return grpc.stream_stream_rpc_method_handler(refuse, **serializers)
    return grpc.stream_unary_rpc_method_handler(refuse, **serializers)


class ScopedInterceptor(grpc.aio.ServerInterceptor):
    """A server interceptor for the calls to some services: `scoped` sees their handlers; calls to any other
    service, and methods no service has, pass as they are."""

    def __init__(self, services: Collection[str]) -> None:
        self._services = frozenset(services)

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[Handler | None]],
        details: grpc.HandlerCallDetails,
    ) -> Handler | None:
        handler = await continuation(details)
        if handler is None or service_of(details.method) not in self._services:
            return handler
        return self.scoped(handler, details)

    def scoped(self, handler: Handler, details: grpc.HandlerCallDetails) -> Handler:
        """The handler this call runs: `handler` itself, a wrapper of it, or a refusal."""
        raise NotImplementedError


class WorkerTokenInterceptor(ScopedInterceptor):
    """Calls to `services` without the shared worker token get UNAUTHENTICATED, and nothing else happens.

    The router puts it on WorkerRegistry (workers prove themselves), a worker on its Worker service (the
    router proves itself). Health and reflection stay open for probes.
    """

    def __init__(self, token: str, services: Collection[str]) -> None:
        if not token:
            raise ValueError("WorkerTokenInterceptor needs a token")
        super().__init__(services)
        self._token = token

    def scoped(self, handler: Handler, details: grpc.HandlerCallDetails) -> Handler:
        if token_matches(details.invocation_metadata, self._token):
            return handler
        log.warning("refused %s: missing or wrong worker token", details.method)
        return refusal_unread(handler, Unauthenticated("missing or wrong worker token"))
