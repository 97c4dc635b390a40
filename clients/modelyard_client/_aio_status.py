"""The status a grpc.aio stream call really ended with, for calls that write while the server may end.

grpc.aio bug (grpc/grpc#36066, fix proposed in grpc/grpc#43486): when the server ends a request
stream early, say with NOT_FOUND for an unknown model while audio is still being sent, a client
write that fails afterwards overwrites the server's status with INTERNAL "Internal error from Core".
The done callback runs when the first, true status arrives, so it is kept here and preferred over
a later INTERNAL. This reads a private attribute; if grpc changes it, we fall back to what grpc says.
"""

from __future__ import annotations

from typing import Any

import grpc

_BY_VALUE = {code.value[0]: code for code in grpc.StatusCode}


class FirstStatus:
    def __init__(self, call: grpc.aio.Call) -> None:
        self.code: grpc.StatusCode | None = None
        self.details = ""
        call.add_done_callback(self._record)

    def _record(self, call: Any) -> None:
        status = getattr(getattr(call, "_cython_call", None), "_status", None)
        try:
            self.code = _BY_VALUE.get(status.code()) if status is not None else None
            self.details = status.details() if status is not None else ""
        except Exception:  # grpc internals changed: keep what grpc itself reports
            self.code = None

    def correct(self, error: grpc.RpcError) -> grpc.RpcError:
        """`error`, or the server's own status if grpc replaced it with a local INTERNAL."""
        reported = error.code() if isinstance(error, grpc.aio.AioRpcError) else None
        first = self.code
        if (
            reported is grpc.StatusCode.INTERNAL
            and first is not None
            and first is not grpc.StatusCode.INTERNAL
        ):
            return grpc.aio.AioRpcError(first, None, None, details=self.details)
        return error
