"""Records every call to the Admin service in the audit trail, refused ones included.

It runs before the other interceptors, so it sees the handler they chose: the servicer's, or a refusal
(not an admin). Whatever that handler does, the call's tenant, method, arguments and status are recorded when
it ends. Calls with no valid key are only counted (AuditTrail.count_unauthenticated).
"""

from __future__ import annotations

from collections.abc import Collection
from typing import TYPE_CHECKING, Any

import grpc

from core.errors import StatusError
from core.interceptors import ScopedInterceptor
from router.accounting.audit import AuditTrail
from router.accounting.auth import Authenticator

if TYPE_CHECKING:
    Handler = grpc.RpcMethodHandler[Any, Any]

Context = grpc.aio.ServicerContext[Any, Any]


class AuditInterceptor(ScopedInterceptor):
    def __init__(self, trail: AuditTrail, auth: Authenticator, services: Collection[str]) -> None:
        super().__init__(services)
        self._trail = trail
        self._auth = auth

    def scoped(self, handler: Handler, details: grpc.HandlerCallDetails) -> Handler:
        method = details.method.rsplit("/", 1)[-1]
        try:
            caller = self._auth.authenticate(details.invocation_metadata)
        except StatusError:
            # Anyone can make these: a record each would let them flood the trail and the ledger.
            self._trail.count_unauthenticated(method)
            return handler
        if handler.request_streaming or handler.response_streaming or handler.unary_unary is None:
            return handler  # every Admin method is unary; a streaming one would need its own wrapper
        tenant, admin = caller.tenant, caller.admin
        behavior = handler.unary_unary
        trail = self._trail

        async def audited(request: Any, context: Context) -> Any:
            outcome, message = "OK", ""
            try:
                return await behavior(request, context)  # type: ignore[arg-type]  # an aio handler
            except BaseException:
                code = context.code()
                outcome = code.name if isinstance(code, grpc.StatusCode) else "UNKNOWN"
                message = str(context.details() or "")
                raise
            finally:
                trail.record(tenant, method, request, outcome, message, admin=admin)

        return grpc.unary_unary_rpc_method_handler(
            audited,
            request_deserializer=handler.request_deserializer,
            response_serializer=handler.response_serializer,
        )
